// Package client is omcache's Go API: a memcached client for a list of
// servers, speaking the meta protocol (default), the classic text protocol
// (for proxies and servers older than 1.6) or the binary protocol, chosen
// per client (Options.Protocol). Commands are written once against the
// protocol-neutral seam of package proto; every reply is matched to its
// request (by sequence number where the protocol echoes one, by key and
// order where it does not), and a reply that does not match, or bytes
// nobody asked for, close the connection with ErrProtocol.
//
// One *Client is safe for concurrent use by any number of goroutines (and
// OS threads calling in from Python). Each server has a small pool of idle
// connections; a command borrows one, does one pipelined exchange on it and
// gives it back. Every exchange is bounded by Options.IOTimeout and every
// connect by Options.ConnectTimeout, so every call returns.
//
// Multi-key commands (GetMulti, SetMulti, DeleteMulti, GatMulti) group keys
// per server, send each group as one write of quiet requests followed by a
// NOOP, and drive all the servers at once from the calling thread: one
// ppoll waits on every socket, each server with its own I/O deadline. Their
// results are slices aligned with the input, so one unreachable server only
// fails its own keys.
//
// Failing servers are tracked when Options ask for it (FailureLimit,
// DeadTimeout, RetryTimeout): a dead server's keys move to live servers
// (Failover) or fail fast, and it is probed in the background until it
// answers again. See ServerState for the rules; a call never waits longer
// than ConnectTimeout plus IOTimeout whatever the servers do.
package client

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/omcache/omcache/go/conn"
	"github.com/omcache/omcache/go/proto"
	"github.com/omcache/omcache/go/proto/codecs"
)

// Defaults for zero Options fields.
const (
	DefaultConnectTimeout        = time.Second
	DefaultIOTimeout             = time.Second
	DefaultMaxIdleConnsPerServer = 8
	// DefaultReconnectTimeout is how often a dead server is probed when
	// Options.ReconnectTimeout is zero (libmemcached's retry_timeout).
	DefaultReconnectTimeout = 2 * time.Second
	// DefaultMaxItemSize is memcached's default item size limit (-I 1m).
	DefaultMaxItemSize = 1 << 20
)

// valueSlack is added to MaxItemSize for the cap on a reply's value: room
// for an error message in a binary reply's body.
const valueSlack = 4096

// Bounds on a multi-line answer (stats): a server streaming statistics
// without end cannot make a call hold more than this.
const (
	maxStatsEntries = 1 << 16
	maxStatsBytes   = 8 << 20
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// Protocol is the protocol spoken to the servers: "meta" (default,
	// memcached >= 1.6), "text" (the classic ASCII protocol: proxies such
	// as twemproxy and mcrouter, older servers) or "binary".
	Protocol string
	// ConnectTimeout bounds resolving and connecting to a server
	// (default 1 s).
	ConnectTimeout time.Duration
	// IOTimeout bounds one exchange with one server: writing the requests
	// and reading every response (default 1 s).
	IOTimeout time.Duration
	// MaxIdleConnsPerServer is how many idle connections each server keeps
	// for reuse (default 8; negative keeps none).
	MaxIdleConnsPerServer int
	// MaxItemSize is the largest value the client will accept from a server
	// (default 1 MiB). Set it to the servers' -I if raised; a response
	// announcing a bigger body is treated as a protocol error.
	MaxItemSize int
	// Selector maps keys to servers (default Modula{N: len(addrs)}).
	Selector Selector
	// BinaryKeys lets keys hold any bytes, spaces and control characters
	// included (still 1 to 250 of them), as the binary protocol allows and
	// pylibmc's binary mode does. By default keys must also be valid in the
	// text protocol, so that every client sharing the servers can use them.
	BinaryKeys bool
	// TextMultiGet makes GetMulti (not GatMulti) of a binary or meta
	// client ask each server with one text-protocol "gets" of all its keys,
	// on connections of their own, instead of a pipeline of quiet requests:
	// memcached answers a pipeline 20 requests at a time (its -R), each
	// piece a write and a wake-up of the client, and a text multi-get in
	// one piece. Ignored with BinaryKeys, whose keys the text protocol
	// cannot carry, and by text clients, which do it anyway.
	TextMultiGet bool
	// TLS, if set, encrypts every connection (conn.NewTLSConfig builds
	// it). A certificate the client does not trust fails with ErrTLS.
	TLS *conn.TLSConfig
	// Username and Password, if set, authenticate every new connection
	// before its first request: SASL PLAIN in the binary protocol
	// (memcached -S), memcached's ASCII authentication in text and meta
	// (-Y). A refusal fails with ErrAuth. A binary client then does its
	// multi-gets in binary too (a SASL memcached takes no text).
	Username string
	Password string

	// Failover sends the keys of a dead server to live servers: the
	// Selector's PickLive (the next live point on a ketama ring, the hash
	// modulo the live servers for modula), or the Ejector's placement.
	// Without it, calls for a dead server's keys fail at once with a
	// *ServerDownError matching ErrServerDead. It needs a LiveSelector or
	// an Ejector.
	Failover bool
	// FailureLimit is how many consecutive failures (connect errors,
	// timeouts, resets, protocol errors) make a server Dead. 0 counts
	// none: only DeadTimeout can then kill a server.
	FailureLimit int
	// RetryTimeout is how long calls for a server fail fast with
	// ErrServerDown after each of its failures below FailureLimit, before
	// it is tried again (libmemcached's retry_timeout). 0 keeps trying it
	// on every call.
	RetryTimeout time.Duration
	// ReconnectTimeout is how long a dead server is left alone before a
	// background probe (connect and NOOP) tries it again; the first probe
	// that succeeds makes it Healthy, and its keys return (OMcache's
	// reconnect_timeout, pylibmc's dead_timeout). Default 2 s.
	ReconnectTimeout time.Duration
	// DeadTimeout makes a server Dead at its first failure DeadTimeout or
	// more after the first failure of its streak, however few failures
	// that is (OMcache's dead_timeout): it bounds how long a server may
	// stay unreachable before its keys move. 0 disables the bound.
	DeadTimeout time.Duration
	// Ejector, if set, rebuilds the placement over the live servers each
	// time a server dies or comes back, as libmemcached does with
	// auto_eject_hosts (pylibmc's remove_failed); for weighted ketama this
	// places keys differently from walking past dead points. It implies
	// Failover.
	Ejector Ejector
}

// Client is a memcached client for a fixed list of servers.
type Client struct {
	servers  []*server
	addrs    []string
	selector Selector
	connOpts conn.Options
	// codec is the protocol of every connection but those of multiCodec,
	// which GetMulti uses (the text protocol with Options.TextMultiGet,
	// else codec).
	codec      proto.Codec
	multiCodec proto.Codec
	// binaryKeys is Options.BinaryKeys.
	binaryKeys bool
	// username and password are Options.Username and Password.
	username, password string
	// oneServer: a single server and a LiveSelector, so keys need no hashing.
	oneServer bool
	// scratches are the working memory of multi-key calls, for reuse.
	scratches scratchFree
	healthFields
}

// server is one server's address, its pools of idle connections (in the
// client's protocol, and in the multi-get one if it differs) and its health
// record.
type server struct {
	addr    string
	mu      sync.Mutex
	idle    []*conn.Conn
	idleAlt []*conn.Conn
	maxIdle int
	closed  bool
	h       health
}

// New returns a client for addrs, each "host:port", "[v6addr]:port" or an
// absolute unix socket path. It does not connect: connections are made on
// first use. It returns ErrNoServers for an empty list.
func New(addrs []string, opts Options) (*Client, error) {
	if len(addrs) == 0 {
		return nil, ErrNoServers
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.IOTimeout <= 0 {
		opts.IOTimeout = DefaultIOTimeout
	}
	switch {
	case opts.MaxIdleConnsPerServer == 0:
		opts.MaxIdleConnsPerServer = DefaultMaxIdleConnsPerServer
	case opts.MaxIdleConnsPerServer < 0:
		opts.MaxIdleConnsPerServer = 0
	}
	if opts.MaxItemSize <= 0 {
		opts.MaxItemSize = DefaultMaxItemSize
	}
	if opts.MaxItemSize > 1<<31 {
		return nil, fmt.Errorf("%w: MaxItemSize %d over 2 GiB", ErrInvalidArguments, opts.MaxItemSize)
	}
	if opts.Selector == nil {
		opts.Selector = Modula{N: len(addrs)}
	}
	codec, err := codecs.ByName(opts.Protocol)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArguments, err)
	}
	if err := checkCredentials(opts.Username, opts.Password); err != nil {
		return nil, err
	}
	pol, err := newPolicy(&opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		addrs:      append([]string(nil), addrs...),
		selector:   opts.Selector,
		binaryKeys: opts.BinaryKeys,
		username:   opts.Username,
		password:   opts.Password,
		codec:      codec,
		multiCodec: codec,
		connOpts: conn.Options{
			ConnectTimeout: opts.ConnectTimeout,
			IOTimeout:      opts.IOTimeout,
			MaxValue:       opts.MaxItemSize + valueSlack,
			TLS:            opts.TLS,
		},
	}
	saslOnly := opts.Username != "" && codec.Name() == "binary"
	if opts.TextMultiGet && !opts.BinaryKeys && codec.Pipelined() && !saslOnly {
		c.multiCodec = codecs.Text()
	}
	c.policy = pol
	c.live, _ = opts.Selector.(LiveSelector)
	c.oneServer = len(addrs) == 1 && c.live != nil
	c.now = time.Now
	c.probeAt.Store(noProbe)
	for _, a := range addrs {
		if a == "" {
			return nil, fmt.Errorf("%w: empty server address", ErrInvalidArguments)
		}
		c.servers = append(c.servers, &server{addr: a, maxIdle: opts.MaxIdleConnsPerServer})
	}
	return c, nil
}

// Protocol returns the name of the protocol the client speaks.
func (c *Client) Protocol() string { return c.codec.Name() }

// Servers returns the server addresses in the order given to New; indexes
// into it are what Selector.Pick returns and what the per-server results of
// Version, Stats, FlushAll and Noop are aligned with.
func (c *Client) Servers() []string { return append([]string(nil), c.addrs...) }

// NumServers returns the number of servers.
func (c *Client) NumServers() int { return len(c.addrs) }

// Close closes idle connections and makes every later call fail with
// ErrClosed. Calls in flight finish; their connections are then closed.
func (c *Client) Close() error {
	for _, s := range c.servers {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.dropIdle()
	}
	return nil
}

// get returns an idle connection (pooled = true) or a new one, speaking
// codec (c.codec or c.multiCodec).
func (c *Client) get(s *server, codec proto.Codec) (cn *conn.Conn, pooled bool, err error) {
	if cn, err = c.idle(s, codec); cn != nil || err != nil {
		return cn, cn != nil, err
	}
	cn, err = c.dial(s, codec)
	return cn, false, err
}

// pool is s's list of idle connections speaking codec; s.mu must be held.
func (c *Client) pool(s *server, codec proto.Codec) *[]*conn.Conn {
	if codec != c.codec {
		return &s.idleAlt
	}
	return &s.idle
}

// idle returns an idle connection to s speaking codec, nil if there is
// none, or ErrClosed. A connection of a protocol without sequence numbers
// (text) is checked for bytes nobody asked for first (Conn.Reusable):
// there, a late reply would be taken for the answer to the next request.
func (c *Client) idle(s *server, codec proto.Codec) (*conn.Conn, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		p := c.pool(s, codec)
		n := len(*p)
		if n == 0 {
			s.mu.Unlock()
			return nil, nil
		}
		cn := (*p)[n-1]
		(*p)[n-1] = nil
		*p = (*p)[:n-1]
		s.mu.Unlock()
		if codec.Pipelined() {
			return cn, nil
		}
		if cn.Reusable() {
			return cn, nil
		}
		cn.Close()
	}
}

// dial opens a new connection to s speaking codec.
func (c *Client) dial(s *server, codec proto.Codec) (*conn.Conn, error) {
	opts := c.connOpts
	opts.Codec = codec
	cn, err := conn.Dial(s.addr, opts)
	if err != nil {
		return nil, transportError(err)
	}
	if c.username != "" {
		if err := c.authenticate(cn); err != nil {
			cn.Close()
			return nil, err
		}
	}
	return cn, nil
}

// put returns a connection to the pool, or closes it if it is broken, the
// pool is full or the client closed.
func (c *Client) put(s *server, cn *conn.Conn) {
	if cn.Err() != nil {
		cn.Close()
		return
	}
	s.mu.Lock()
	p := c.pool(s, cn.Codec())
	if s.closed || len(*p) >= s.maxIdle {
		s.mu.Unlock()
		cn.Close()
		return
	}
	*p = append(*p, cn)
	s.mu.Unlock()
}

// dropIdle closes every idle connection.
func (s *server) dropIdle() {
	s.mu.Lock()
	idle := append(s.idle, s.idleAlt...)
	s.idle, s.idleAlt = nil, nil
	s.mu.Unlock()
	for _, cn := range idle {
		cn.Close()
	}
}

// request is one single-key command and its value; it lives on the
// caller's stack so a command allocates nothing but its result.
type request struct {
	proto.Request
	value []byte
}

// idempotent reports whether the request may be sent again when a pooled
// connection turns out to have been closed by the server.
func (r *request) idempotent() bool {
	switch r.Op {
	case proto.OpIncr, proto.OpDecr, proto.OpAppend, proto.OpPrepend:
		return false
	}
	return true
}

// result is what a single-key command keeps from its reply.
type result struct {
	err     error // the server's answer, mapped by statusError
	value   []byte
	dst     []byte // where a get copies a value that fits (GetTo), instead of allocating
	flags   uint32
	cas     uint64
	counter uint64
	meta    *Meta
	stats   []Stat
	// Lease state of a meta get (see proto.Reply).
	win, alreadyWon, stale bool
}

// do runs req on the server owning req.Key.
func (c *Client) do(req *request, res *result) error {
	si, err := c.route(req.Key)
	if err != nil {
		return err
	}
	return c.doOn(si, req, res)
}

// doOn runs req on server si and records the outcome in its health. It
// returns transport and protocol errors; the server's answer is in res.err.
func (c *Client) doOn(si int, req *request, res *result) error {
	epoch := c.servers[si].h.epoch.Load()
	err := c.exchangeOn(c.servers[si], req, res)
	c.record(si, epoch, failure(err))
	return err
}

// failure returns err if it is a failure of the server for its health
// record, nil if the server answered (a *ServerError) or was not asked
// (ErrNotSupported): it is alive. A server of another protocol is a
// configuration error, not a failure that failover should route around;
// so are refused credentials (ErrAuth) and an untrusted certificate (ErrTLS).
func failure(err error) error {
	if err == nil || errors.Is(err, ErrServerError) || errors.Is(err, ErrWrongProtocol) || errors.Is(err, ErrNotSupported) ||
		errors.Is(err, ErrAuth) || errors.Is(err, ErrTLS) {
		return nil
	}
	return err
}

// explainClose returns err, the failure of an exchange on cn, explained
// when a fresh connection was closed at its first request, without a byte
// of answer, by a server that answers a text "version": what twemproxy does
// with a protocol it does not speak (meta, binary) or a command it does not
// route (see wrongProtocol).
func (c *Client) explainClose(s *server, cn *conn.Conn, pooled bool, op proto.Op, err error) error {
	if err == nil || pooled || cn.Received() || !staleConnError(err) {
		return err
	}
	if c.connOpts.TLS == nil && c.speaksTLS(s) {
		return fmt.Errorf("%w: %s closed a new plaintext connection at its first request: it speaks TLS "+
			"(memcached -Z): enable TLS (tls=True): %w", ErrConnection, cn.Addr(), err)
	}
	if !c.speaksText(s) {
		return err
	}
	return wrongProtocol(cn, op, err)
}

func (c *Client) exchangeOn(s *server, req *request, res *result) error {
	for attempt := 0; ; attempt++ {
		cn, pooled, err := c.get(s, c.codec)
		if err != nil {
			return err
		}
		// A request that must not be applied twice goes only on a
		// connection that looks alive, and is never sent again: a server
		// that hung up without answering may have applied it.
		if pooled && !req.idempotent() && !cn.Reusable() {
			cn.Close()
			continue
		}
		err = c.exchange(cn, req, res)
		c.put(s, cn)
		if err == nil {
			return nil
		}
		if pooled && attempt == 0 && !cn.Received() && staleConnError(err) {
			// The server closed this idle connection, probably with all
			// its siblings (a restart): start over on a new one.
			s.dropIdle()
			if req.idempotent() {
				continue
			}
		}
		return c.explainClose(s, cn, pooled, req.Op, err)
	}
}

// speaksText reports whether s answers a text-protocol "version" on a new
// connection: what tells a server that closes connections on requests it
// does not understand from one that is failing. It runs only after such a
// close.
func (c *Client) speaksText(s *server) bool {
	cn, err := c.dial(s, codecs.Text())
	if err != nil {
		return false
	}
	defer cn.Close()
	var res result
	return c.exchange(cn, &request{Request: proto.Request{Op: proto.OpVersion}}, &res) == nil && res.err == nil
}

// exchange sends req on cn and reads its answer into res. Any reply that
// does not answer req, and any byte left over once it is complete, close
// cn and give ErrProtocol.
func (c *Client) exchange(cn *conn.Conn, req *request, res *result) error {
	req.Seq = cn.NextSeq()
	buf, err := cn.AppendRequest(cn.Buffer(), &req.Request, req.value)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	if err := cn.Send(buf); err != nil {
		return transportError(err)
	}
	if err := c.readAnswer(cn, req, res); err != nil {
		return err
	}
	if cn.Pending() {
		cn.Close()
		return protocolError(cn.Addr(), "bytes nobody asked for after the answer to %v", req.Op)
	}
	return nil
}

// readAnswer reads the replies that answer req.
func (c *Client) readAnswer(cn *conn.Conn, req *request, res *result) error {
	entries, size := 0, 0
	for {
		r, err := cn.Recv()
		if err != nil {
			return transportError(err)
		}
		if err := matches(cn, &req.Request, &r); err != nil {
			return err
		}
		if r.Kind == proto.KindStatus && r.Status != proto.StatusOK {
			res.err = statusError(cn, req.Op, &r)
			var se *ServerError
			if errors.As(res.err, &se) || errors.Is(res.err, ErrProtocol) {
				// Nothing of what follows can be trusted to answer
				// anything.
				cn.Close()
				return res.err
			}
			return nil
		}
		switch req.Op {
		case proto.OpGet, proto.OpGat:
			switch r.Kind {
			case proto.KindEnd: // text: END alone is a miss
				res.err = ErrCacheMiss
				return nil
			case proto.KindValue:
				if len(r.Key) > 0 && !r.KeyIs(req.Key) {
					cn.Close()
					return protocolError(cn.Addr(), "a value for key %q in answer to a get of %q", r.Key, req.Key)
				}
				if r.Placeholder() && !req.Leasing() {
					// The empty item of a key being loaded under a
					// lease (GetLease): for a plain get, a miss.
					res.err = ErrCacheMiss
					return nil
				}
				if res.dst != nil && len(r.Value) <= len(res.dst) {
					res.value = res.dst[:copy(res.dst, r.Value)]
				} else {
					res.value = cn.OwnValue(r.Value)
				}
				res.flags, res.cas = r.Flags, r.CAS
				res.win, res.alreadyWon, res.stale = r.Win, r.AlreadyWon, r.Stale
				if r.HasMeta {
					res.meta = &Meta{TTL: r.TTL, LastAccess: r.LastAccess, Fetched: r.Fetched, Size: r.Size}
				}
				if !r.More {
					return nil
				}
				// Text: the END that closes the answer must follow.
				if r, err = cn.Recv(); err != nil {
					return transportError(err)
				}
				if r.Kind != proto.KindEnd {
					cn.Close()
					return protocolError(cn.Addr(), "a get answered by more than one value")
				}
				return nil
			}
		case proto.OpStats:
			switch r.Kind {
			case proto.KindStat:
				entries++
				size += len(r.Key) + len(r.Value)
				if entries > maxStatsEntries || size > maxStatsBytes {
					cn.Close()
					return protocolError(cn.Addr(), "stats answer over %d entries or %d bytes", maxStatsEntries, maxStatsBytes)
				}
				res.stats = append(res.stats, Stat{string(r.Key), string(r.Value)})
				continue
			case proto.KindEnd:
				if res.stats == nil {
					res.stats = []Stat{}
				}
				return nil
			}
		case proto.OpIncr, proto.OpDecr:
			switch {
			case r.Kind == proto.KindStatus && r.HasCounter:
				res.counter = r.Counter
				return nil
			case r.Kind == proto.KindValue:
				v, ok := proto.ParseUint(r.Value, 64)
				if !ok {
					cn.Close()
					return protocolError(cn.Addr(), "%v answered with %.32q", req.Op, r.Value)
				}
				res.counter = v
				return nil
			}
		case proto.OpNoop:
			if r.Kind == proto.KindEnd || r.Kind == proto.KindStatus {
				return nil
			}
		case proto.OpVersion:
			if r.Kind == proto.KindStatus && len(r.Value) > 0 {
				res.value = append([]byte(nil), r.Value...)
				return nil
			}
		default: // touch, stores, delete, flush, verbosity
			if r.Kind == proto.KindStatus && !r.HasCounter && len(r.Value) == 0 {
				return nil
			}
		}
		cn.Close()
		return protocolError(cn.Addr(), "unexpected reply (kind %d, %v) to %v", r.Kind, r.Status, req.Op)
	}
}

// matches checks that r can answer req: the same sequence number where the
// protocol echoes one, the same command where it says which.
func matches(cn *conn.Conn, req *proto.Request, r *proto.Reply) error {
	if r.HasSeq && r.Seq != req.Seq {
		cn.Close()
		return protocolError(cn.Addr(), "a reply with sequence %d in answer to request %d (%v)", r.Seq, req.Seq, req.Op)
	}
	if r.Op != proto.OpNone && r.Op != req.Op {
		cn.Close()
		return protocolError(cn.Addr(), "a %v reply to a %v request", r.Op, req.Op)
	}
	if !r.HasSeq && cn.Codec().Pipelined() && echoesSeq(req.Op) && !errorLine(r) {
		cn.Close()
		return protocolError(cn.Addr(), "a reply without the sequence number of request %d (%v)", req.Seq, req.Op)
	}
	return nil
}

// echoesSeq reports whether a pipelined protocol's reply to op carries the
// request's sequence number (meta sends the rest as text commands).
func echoesSeq(op proto.Op) bool {
	switch op {
	case proto.OpGet, proto.OpGat, proto.OpTouch, proto.OpSet, proto.OpAdd, proto.OpReplace,
		proto.OpAppend, proto.OpPrepend, proto.OpDelete, proto.OpIncr, proto.OpDecr:
		return true
	}
	return false
}

// errorLine reports whether r is one of the error lines that text and meta
// send without a sequence number (ERROR, CLIENT_ERROR, SERVER_ERROR).
func errorLine(r *proto.Reply) bool {
	if r.Kind != proto.KindStatus {
		return false
	}
	switch r.Status {
	case proto.StatusUnknownCommand, proto.StatusClientError, proto.StatusServerError, proto.StatusTooLarge, proto.StatusDeltaBadValue:
		return true
	}
	return false
}

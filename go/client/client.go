// Package client is omcache's Go API: a memcached client speaking the
// binary protocol to a list of servers.
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
	"fmt"
	"sync"
	"time"

	"github.com/omcache/omcache/go/binprot"
	"github.com/omcache/omcache/go/conn"
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

// bodySlack is added to MaxItemSize for the response body cap: a GET
// response also carries extras and, for GETK, the key.
const bodySlack = 4096

// Options configure a Client. The zero value is usable.
type Options struct {
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
	// TextMultiGet makes GetMulti (not GatMulti) ask each server with one
	// text-protocol "gets" of all its keys, on connections of their own,
	// instead of a pipeline of binary GETKQs: memcached answers a binary
	// pipeline 20 requests at a time (its -R), each piece a wake-up of the
	// client, and a text multi-get in one piece (100 keys: ~40 instead of
	// ~90 us on loopback). Ignored with BinaryKeys, whose keys the text
	// protocol cannot carry.
	TextMultiGet bool

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
	// binaryKeys is Options.BinaryKeys.
	binaryKeys bool
	// textMulti: GetMulti uses text connections (Options.TextMultiGet).
	textMulti bool
	// oneServer: a single server and a LiveSelector, so keys need no hashing.
	oneServer bool
	// scratches are the working memory of multi-key calls, for reuse.
	scratches scratchFree
	healthFields
}

// server is one server's address, its pools of idle connections (binary,
// and text for multi-gets) and its health record.
type server struct {
	addr     string
	mu       sync.Mutex
	idle     []*conn.Conn
	idleText []*conn.Conn
	maxIdle  int
	closed   bool
	h        health
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
	pol, err := newPolicy(&opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		addrs:      append([]string(nil), addrs...),
		selector:   opts.Selector,
		binaryKeys: opts.BinaryKeys,
		textMulti:  opts.TextMultiGet && !opts.BinaryKeys,
		connOpts: conn.Options{
			ConnectTimeout: opts.ConnectTimeout,
			IOTimeout:      opts.IOTimeout,
			MaxBody:        uint32(opts.MaxItemSize + bodySlack),
		},
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
// the text protocol if text is set.
func (c *Client) get(s *server, text bool) (cn *conn.Conn, pooled bool, err error) {
	if cn, err = c.idle(s, text); cn != nil || err != nil {
		return cn, cn != nil, err
	}
	cn, err = c.dial(s, text)
	return cn, false, err
}

// pool is s's list of idle binary or text connections; s.mu must be held.
func (s *server) pool(text bool) *[]*conn.Conn {
	if text {
		return &s.idleText
	}
	return &s.idle
}

// idle returns an idle connection to s (a text one if text is set), nil if
// there is none, or ErrClosed.
func (c *Client) idle(s *server, text bool) (*conn.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	p := s.pool(text)
	n := len(*p)
	if n == 0 {
		return nil, nil
	}
	cn := (*p)[n-1]
	(*p)[n-1] = nil
	*p = (*p)[:n-1]
	return cn, nil
}

// dial opens a new connection to s, speaking the text protocol if text is
// set.
func (c *Client) dial(s *server, text bool) (*conn.Conn, error) {
	opts := c.connOpts
	opts.Text = text
	cn, err := conn.Dial(s.addr, opts)
	if err != nil {
		return nil, transportError(err)
	}
	return cn, nil
}

// put returns a connection to the pool, or closes it if it is broken, the
// pool is full or the client closed.
func (s *server) put(cn *conn.Conn) {
	if cn.Err() != nil {
		cn.Close()
		return
	}
	s.mu.Lock()
	p := s.pool(cn.Text())
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
	idle := append(s.idle, s.idleText...)
	s.idle, s.idleText = nil, nil
	s.mu.Unlock()
	for _, cn := range idle {
		cn.Close()
	}
}

// request is one single-key command; it lives on the caller's stack so a
// command allocates nothing but its result.
type request struct {
	op      binprot.Opcode
	key     []byte
	value   []byte
	flags   uint32
	exp     uint32
	cas     uint64
	delta   uint64
	initial uint64
}

// idempotent reports whether the request may be sent again when a pooled
// connection turns out to have been closed by the server.
func (r *request) idempotent() bool {
	switch r.op {
	case binprot.OpIncrement, binprot.OpDecrement, binprot.OpAppend, binprot.OpPrepend:
		return false
	}
	return true
}

// encode appends the request to buf, cn's buffer; a large value is left
// where it is for cn to write (conn.Conn.AppendValue).
func (r *request) encode(cn *conn.Conn, buf []byte) []byte {
	const opaque = 0 // one request per exchange: nothing to match
	switch r.op {
	case binprot.OpSet, binprot.OpAdd, binprot.OpReplace:
		buf = binprot.AppendStoreHeader(buf, r.op, r.key, len(r.value), r.flags, r.exp, r.cas, opaque)
		return cn.AppendValue(buf, r.value)
	case binprot.OpAppend, binprot.OpPrepend:
		buf = binprot.AppendConcatHeader(buf, r.op, r.key, len(r.value), r.cas, opaque)
		return cn.AppendValue(buf, r.value)
	case binprot.OpIncrement, binprot.OpDecrement:
		return binprot.AppendDelta(buf, r.op, r.key, r.delta, r.initial, r.exp, r.cas, opaque)
	case binprot.OpTouch, binprot.OpGAT:
		return binprot.AppendTouch(buf, r.op, r.key, r.exp, opaque)
	case binprot.OpFlush:
		return binprot.AppendFlush(buf, r.op, r.exp, opaque)
	default: // GET, DELETE, NOOP, VERSION
		return binprot.AppendKeyOnly(buf, r.op, r.key, r.cas, opaque)
	}
}

// result is what a single-key command keeps from its response.
type result struct {
	err     error // status mapped by statusError
	value   []byte
	flags   uint32
	cas     uint64
	counter uint64
}

// do runs req on the server owning req.key.
func (c *Client) do(req *request, res *result) error {
	si, err := c.route(req.key)
	if err != nil {
		return err
	}
	return c.doOn(si, req, res)
}

// doOn runs req on server si and records the outcome in its health. It
// returns transport and protocol errors; the server's status is in res.err.
func (c *Client) doOn(si int, req *request, res *result) error {
	epoch := c.servers[si].h.epoch.Load()
	err := c.exchangeOn(c.servers[si], req, res)
	c.record(si, epoch, err)
	return err
}

func (c *Client) exchangeOn(s *server, req *request, res *result) error {
	for attempt := 0; ; attempt++ {
		cn, pooled, err := c.get(s, false)
		if err != nil {
			return err
		}
		if pooled && !req.idempotent() && !cn.Alive() {
			cn.Close()
			continue
		}
		err = exchange(cn, req, res)
		s.put(cn)
		if err == nil {
			return nil
		}
		if pooled && attempt == 0 && !cn.Received() && staleConnError(err) {
			// The server closed this idle connection, probably with all
			// its siblings (a restart): start over on a new one.
			s.dropIdle()
			continue
		}
		return err
	}
}

// exchange sends req on cn and decodes its response into res.
func exchange(cn *conn.Conn, req *request, res *result) error {
	if err := cn.Send(req.encode(cn, cn.Buffer())); err != nil {
		return transportError(err)
	}
	r, err := cn.Recv()
	if err != nil {
		return transportError(err)
	}
	if r.Opcode != req.op {
		cn.Close()
		return protocolError(cn.Addr(), "%v response to a %v request", r.Opcode, req.op)
	}
	res.cas = r.CAS
	if r.Status != binprot.StatusOK {
		res.err = statusError(r.Status, r.Value)
		return nil
	}
	switch req.op {
	case binprot.OpGet, binprot.OpGAT:
		f, ok := r.Flags()
		if !ok {
			cn.Close()
			return protocolError(cn.Addr(), "%v response with %d bytes of extras", r.Opcode, len(r.Extras))
		}
		res.flags = f
		res.value = cn.OwnValue(r.Value)
	case binprot.OpIncrement, binprot.OpDecrement:
		v, ok := r.Uint64Value()
		if !ok {
			cn.Close()
			return protocolError(cn.Addr(), "%v response with a %d-byte value", r.Opcode, len(r.Value))
		}
		res.counter = v
	case binprot.OpVersion:
		res.value = cn.OwnValue(r.Value)
	}
	return nil
}

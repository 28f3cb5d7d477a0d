package client

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/omcache/omcache/go/conn"
	"github.com/omcache/omcache/go/proto"
)

// batchKind is the multi-key command a batch runs.
type batchKind uint8

const (
	kindGet    batchKind = iota // get, or gat with exp
	kindSet                     // set
	kindDelete                  // delete
)

// batch is one multi-key command, run on each server involved in one of
// three ways, by what the connection's protocol offers:
//
//   - pipelined (binary, meta): entry i becomes one quiet request whose
//     sequence number is the flight's base plus i's position in it, and a
//     NOOP (mn) ends the server's part. Quiet requests are answered only
//     when there is something to say (a hit for gets, a failure for
//     stores), and the NOOP is answered once every request before it was
//     handled, so its reply tells the client that the silence about the
//     other entries is final;
//   - one multi-key get (text): "gets k1 ... kN", answered by VALUE lines
//     in the order of the keys asked for, then END;
//   - in order (text stores and deletes): one request per entry, each
//     answered by one line, in order.
type batch struct {
	kind  batchKind
	op    proto.Op
	n     int
	keys  [][]byte // kindGet, kindDelete
	items []*Item  // kindSet; a nil item has errs[i] preset
	exp   uint32   // gat
	// codec is the protocol of the batch's connections.
	codec proto.Codec

	errs  []error
	found []*Item // kindGet: the result, pointing into slab
	slab  []Item
	ar    arena

	sc *scratch
}

// scratch is a batch's working memory, reused across calls so that a
// multi-key command allocates little more than its results.
type scratch struct {
	owner    []int32 // server of entry i, or -1 if the entry is invalid
	answered []bool
	b64      []bool  // entry i's key travels base64-encoded (meta)
	count    []int32 // per server: entries, then index into flights
	order    []int32 // entries grouped by server, backing flight.idx
	flights  []flight
	conns    []*conn.Conn
	textKeys [][]byte // a multi-key get's keys while its request is built
	ps       conn.PollSet
	wg       sync.WaitGroup
}

// scratchFree keeps a client's idle scratches. It is a plain free list,
// not a sync.Pool: a pool is emptied by every garbage collection, and
// clients moving large values collect often.
type scratchFree struct {
	mu   sync.Mutex
	free []*scratch
}

// Bounds on the scratches kept for reuse: how many (about the number of
// goroutines running multi-key calls at once) and for how many entries, so
// that one huge call does not pin its memory.
const (
	maxFreeScratch   = 16
	maxPooledEntries = 4096
)

func (c *Client) getScratch() *scratch {
	c.scratches.mu.Lock()
	defer c.scratches.mu.Unlock()
	f := c.scratches.free
	if n := len(f); n > 0 {
		sc := f[n-1]
		f[n-1] = nil
		c.scratches.free = f[:n-1]
		return sc
	}
	return new(scratch)
}

func (c *Client) putScratch(sc *scratch, entries int) {
	clear(sc.flights)
	clear(sc.conns)
	if entries > maxPooledEntries {
		return
	}
	c.scratches.mu.Lock()
	if len(c.scratches.free) < maxFreeScratch {
		c.scratches.free = append(c.scratches.free, sc)
	}
	c.scratches.mu.Unlock()
}

// flight is one server's part of a batch.
type flight struct {
	si      int
	idx     []int32 // its entries, in input order
	epoch   uint64
	cn      *conn.Conn
	pooled  bool // cn came from the idle pool
	retried bool // cn replaced a stale pooled connection
	err     error
	done    bool
	cur     int    // not pipelined: entries of idx before cur are answered or missed
	base    uint32 // pipelined: the sequence number of idx[0]
	// unmatched is an error reply that named no request (meta sends
	// SERVER_ERROR lines without the O token): it belongs to one of the
	// entries still unanswered, so all of them are reported failed.
	unmatched error
}

// resize returns s with length n, reusing its array when big enough.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (b *batch) key(i int) []byte {
	if b.kind == kindSet {
		return b.items[i].Key
	}
	return b.keys[i]
}

// request builds flight f's whole request in its connection's buffer.
func (b *batch) request(f *flight) ([]byte, error) {
	cn := f.cn
	buf := cn.Buffer()
	if b.kind == kindGet && b.codec.MultiKeyGet() {
		f.cur = 0
		keys := b.sc.textKeys[:0]
		for _, i := range f.idx {
			keys = append(keys, b.keys[i])
		}
		buf, err := cn.AppendRequest(buf, &proto.Request{Op: b.op, Keys: keys, Exp: b.exp}, nil)
		clear(keys)
		b.sc.textKeys = keys[:0]
		return buf, err
	}
	pipelined := b.codec.Pipelined()
	f.cur = 0
	if pipelined {
		f.base = cn.NextSeqs(len(f.idx) + 1)
	}
	var err error
	for k, i := range f.idx {
		req := proto.Request{Op: b.op, Key: b.key(int(i)), Exp: b.exp, Quiet: pipelined,
			WithKey: b.kind == kindGet, Seq: f.base + uint32(k), Base64Key: b.sc.b64[i]}
		var value []byte
		if b.kind == kindSet {
			it := b.items[i]
			req.Flags, req.Exp, req.CAS, value = it.Flags, it.Expiration, it.CAS, it.Value
		}
		if buf, err = cn.AppendRequest(buf, &req, value); err != nil {
			return buf, err
		}
	}
	if pipelined {
		return cn.AppendRequest(buf, &proto.Request{Op: proto.OpNoop, Seq: f.base + uint32(len(f.idx))}, nil)
	}
	return buf, nil
}

// handle processes one reply from flight f; done reports the end of f's
// part. An error means the server sent something that is not a valid
// answer; the connection is then closed.
func (b *batch) handle(f *flight, r *proto.Reply) (done bool, err error) {
	switch {
	case b.kind == kindGet && b.codec.MultiKeyGet():
		return b.handleMultiKey(f, r)
	case b.codec.Pipelined():
		return b.handlePipelined(f, r)
	default:
		return b.handleInOrder(f, r)
	}
}

func (b *batch) reject(f *flight, format string, args ...any) error {
	f.cn.Close()
	return protocolError(f.cn.Addr(), format, args...)
}

// handlePipelined is handle for quiet requests matched by sequence number.
func (b *batch) handlePipelined(f *flight, r *proto.Reply) (bool, error) {
	sc := b.sc
	end := f.base + uint32(len(f.idx))
	if r.Kind == proto.KindEnd {
		if r.HasSeq && r.Seq != end || r.Op != proto.OpNone && r.Op != proto.OpNoop {
			return false, b.reject(f, "end of batch with sequence %d, expected %d", r.Seq, end)
		}
		return true, nil
	}
	if !r.HasSeq {
		if !errorLine(r) {
			return false, b.reject(f, "a reply without a sequence number in a %v batch", b.op)
		}
		err := statusError(f.cn, b.op, r)
		if errors.Is(err, ErrWrongProtocol) {
			// No end marker will come from a server that does not
			// speak the protocol.
			f.cn.Close()
			return false, err
		}
		if f.unmatched == nil {
			f.unmatched = err
		}
		return false, nil
	}
	k := r.Seq - f.base
	if r.Seq-f.base >= uint32(len(f.idx)) {
		return false, b.reject(f, "a reply with sequence %d in a batch of %d..%d", r.Seq, f.base, end-1)
	}
	i := int(f.idx[k])
	if sc.answered[i] || r.Op != proto.OpNone && r.Op != b.op {
		return false, b.reject(f, "a second or mismatched reply (%v) for request %d of a %v batch", r.Op, r.Seq, b.op)
	}
	switch {
	case r.Kind == proto.KindStatus && r.Status == proto.StatusOK && b.kind != kindGet:
		// A success that quiet mode need not have sent.
		sc.answered[i] = true
	case r.Kind == proto.KindStatus && r.Status != proto.StatusOK:
		sc.answered[i] = true
		err := statusError(f.cn, b.op, r)
		if b.kind == kindSet {
			err = storeError(b.op, b.items[i].CAS, err)
		}
		b.errs[i] = err
	case r.Kind == proto.KindValue && b.kind == kindGet:
		if !r.KeyIs(b.keys[i]) {
			return false, b.reject(f, "a value for key %q in answer to a get of %q", r.Key, b.keys[i])
		}
		if r.Placeholder() {
			// A key being loaded under a lease (GetLease): a miss.
			sc.answered[i] = true
			break
		}
		b.hit(f, i, r)
	default:
		return false, b.reject(f, "unexpected reply (kind %d) in a %v batch", r.Kind, b.op)
	}
	return false, nil
}

// handleMultiKey is handle for a multi-key get: VALUE replies in the order
// of the keys asked for, each key at most once, then END.
func (b *batch) handleMultiKey(f *flight, r *proto.Reply) (bool, error) {
	switch r.Kind {
	case proto.KindEnd:
		return true, nil
	case proto.KindValue:
	default:
		if r.Kind == proto.KindStatus && errorLine(r) {
			f.cn.Close()
			return false, statusError(f.cn, b.op, r)
		}
		return false, b.reject(f, "unexpected reply (kind %d) in a multi-key get", r.Kind)
	}
	// The keys before this VALUE's missed.
	for f.cur < len(f.idx) && !r.KeyIs(b.keys[f.idx[f.cur]]) {
		f.cur++
	}
	if f.cur == len(f.idx) {
		return false, b.reject(f, "VALUE for key %q, not asked for or out of order", r.Key)
	}
	i := int(f.idx[f.cur])
	f.cur++
	b.hit(f, i, r)
	return false, nil
}

// handleInOrder is handle for requests answered one line each, in order.
func (b *batch) handleInOrder(f *flight, r *proto.Reply) (bool, error) {
	if r.Kind != proto.KindStatus || r.HasCounter || len(r.Value) != 0 || f.cur >= len(f.idx) {
		return false, b.reject(f, "unexpected reply (kind %d) in a %v batch", r.Kind, b.op)
	}
	i := int(f.idx[f.cur])
	f.cur++
	b.sc.answered[i] = true
	if r.Status != proto.StatusOK {
		err := statusError(f.cn, b.op, r)
		if b.kind == kindSet {
			err = storeError(b.op, b.items[i].CAS, err)
		}
		b.errs[i] = err
	}
	return f.cur == len(f.idx), nil
}

// hit records r, the answer of entry i, as an item.
func (b *batch) hit(f *flight, i int, r *proto.Reply) {
	var v []byte
	if len(r.Value) > arenaMaxValue {
		v = f.cn.OwnValue(r.Value) // large ones arrive in a buffer of their own
	} else {
		v = b.ar.clone(r.Value)
	}
	b.slab[i] = Item{Key: b.keys[i], Value: v, Flags: r.Flags, CAS: r.CAS}
	b.found[i] = &b.slab[i]
	b.sc.answered[i] = true
}

// finish sets the result of f's entries that got no answer: err if the
// exchange failed, else what silence means (a miss for gets, success for
// stores and deletes).
func (b *batch) finish(f *flight, err error) {
	if err == nil && f.unmatched != nil {
		err = f.unmatched
	}
	if err == nil && b.kind == kindGet {
		err = ErrCacheMiss
	}
	for _, i := range f.idx {
		if !b.sc.answered[i] {
			b.sc.answered[i] = true
			b.errs[i] = err
		}
	}
}

// run sends every valid entry to its server and fills b.errs. It never
// returns before every server has answered, failed or timed out.
func (c *Client) run(b *batch) {
	sc := c.getScratch()
	b.sc = sc
	defer func() {
		b.sc = nil
		c.putScratch(sc, b.n)
	}()
	sc.owner = resize(sc.owner, b.n)
	sc.answered = resize(sc.answered, b.n)
	clear(sc.answered)
	sc.b64 = resize(sc.b64, b.n)
	sc.count = resize(sc.count, len(c.servers))
	clear(sc.count)
	valid := 0
	for i := 0; i < b.n; i++ {
		sc.owner[i] = -1
		if b.errs[i] != nil {
			continue
		}
		key := b.key(i)
		b64, err := c.checkKey(key)
		if err != nil || b64 && b.codec.MultiKeyGet() {
			if err == nil {
				err = fmt.Errorf("%w: the multi-get protocol cannot carry key %q", ErrMalformedKey, key)
			}
			b.errs[i] = err
			continue
		}
		sc.b64[i] = b64
		si, err := c.route(key)
		if err != nil {
			b.errs[i] = err
			continue
		}
		sc.owner[i] = int32(si)
		sc.count[si]++
		valid++
	}
	if valid == 0 {
		return
	}
	b.ar.left = valid
	// Group the entries by server, in input order: a counting sort into
	// order, each flight's idx a window of it.
	sc.order = resize(sc.order, valid)
	sc.flights = sc.flights[:0]
	at := 0
	for si, n := range sc.count {
		if n == 0 {
			continue
		}
		sc.flights = append(sc.flights, flight{si: si, idx: sc.order[at : at : at+int(n)]})
		sc.count[si] = int32(len(sc.flights) - 1)
		at += int(n)
	}
	for i, si := range sc.owner {
		if si >= 0 {
			f := &sc.flights[sc.count[si]]
			f.idx = append(f.idx, int32(i))
		}
	}
	if len(sc.flights) == 1 {
		c.runOne(b, &sc.flights[0])
		return
	}
	c.runMany(b, sc.flights)
}

// runOne runs a batch whose keys all live on one server with the plain
// Send and Recv, whose reads block in recv(2): two system calls for
// a batch whose answer fits one read.
func (c *Client) runOne(b *batch, f *flight) {
	s := c.servers[f.si]
	f.epoch = s.h.epoch.Load()
	defer func() {
		// A panic must leave no connection half-read in the pool and no
		// entry without a result.
		if p := recover(); p != nil {
			if f.cn != nil {
				f.cn.Close()
			}
			b.finish(f, fmt.Errorf("%w: internal error: %v", ErrProtocol, p))
		}
	}()
	for attempt := 0; ; attempt++ {
		cn, pooled, err := c.get(s, b.codec)
		if err != nil {
			c.record(f.si, f.epoch, err)
			b.finish(f, err)
			return
		}
		f.cn = cn
		err = b.exchange(f)
		c.put(s, cn)
		f.cn = nil
		if err != nil && pooled && attempt == 0 && !cn.Received() && staleConnError(err) {
			// The server closed this idle connection, probably with all
			// its siblings (a restart): start over on a new one.
			s.dropIdle()
			continue
		}
		err = c.explainClose(s, cn, pooled, b.op, err)
		c.record(f.si, f.epoch, failure(err))
		b.finish(f, err)
		return
	}
}

// exchange writes f's requests in one Send and reads replies up to the end
// of f's part.
func (b *batch) exchange(f *flight) error {
	buf, err := b.request(f)
	if err != nil {
		f.cn.Close()
		return fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	if err := f.cn.Send(buf); err != nil {
		return transportError(err)
	}
	for {
		r, err := f.cn.Recv()
		if err != nil {
			return transportError(err)
		}
		if done, err := b.handle(f, &r); err != nil || done {
			if err == nil && f.cn.Pending() {
				return b.reject(f, "bytes nobody asked for after a %v batch", b.op)
			}
			return err
		}
	}
}

// runMany runs a batch over several servers from the calling thread, the
// way libmemcached does: every server's request is written without
// waiting, then one ppoll waits on all the sockets, and whichever is ready
// is written to or read from, until every server's NOOP arrived or its
// exchange failed or ran out of time. A call costs no goroutine (but for
// concurrent dials), no thread wake-up, and one system call per wait for
// all servers instead of one blocked thread per server.
func (c *Client) runMany(b *batch, flights []flight) {
	sc := b.sc
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("%w: internal error: %v", ErrProtocol, p)
			for k := range flights {
				if f := &flights[k]; !f.done {
					if f.cn != nil {
						f.cn.Close()
					}
					b.finish(f, err)
				}
			}
		}
	}()
	c.connect(sc, flights, b.codec)
	yielded := false
	for k := range flights {
		f := &flights[k]
		if f.err != nil {
			c.land(b, f, f.err)
			continue
		}
		if !yielded {
			f.cn.Yield() // once per call, see conn.Conn.Yield
			yielded = true
		}
		c.launch(b, f)
	}
	sc.conns = resize(sc.conns, len(flights))
	for {
		var deadline time.Time
		active := 0
		for k := range flights {
			f := &flights[k]
			sc.conns[k] = nil
			if f.done {
				continue
			}
			sc.conns[k] = f.cn
			if active == 0 || f.cn.Deadline().Before(deadline) {
				deadline = f.cn.Deadline()
			}
			active++
		}
		if active == 0 {
			return
		}
		_, err := sc.ps.Wait(sc.conns, deadline)
		if err != nil {
			for k := range flights {
				if f := &flights[k]; !f.done {
					f.cn.Close()
					c.land(b, f, transportError(err))
				}
			}
			return
		}
		now := time.Now()
		for k := range flights {
			f := &flights[k]
			if f.done {
				continue
			}
			if sc.ps.Writable(k) && f.cn.Writing() {
				if err := f.cn.Flush(); err != nil {
					c.land(b, f, transportError(err))
					continue
				}
			}
			if sc.ps.Readable(k) {
				c.drain(b, f)
			}
			// Time out a server only once its socket has nothing more
			// for us: a slow dial or a busy neighbour that kept this
			// loop from reading its answer do not count.
			if !f.done && !now.Before(f.cn.Deadline()) {
				c.land(b, f, transportError(f.cn.Expire()))
			}
		}
	}
}

// drain handles every response of f that can be had without waiting.
func (c *Client) drain(b *batch, f *flight) {
	for !f.done {
		r, ok, err := f.cn.TryRecv()
		if err != nil {
			c.land(b, f, transportError(err))
			return
		}
		if !ok {
			return
		}
		if done, err := b.handle(f, &r); err != nil || done {
			if err == nil && f.cn.Pending() {
				err = b.reject(f, "bytes nobody asked for after a %v batch", b.op)
			}
			c.land(b, f, err)
		}
	}
}

// launch starts f's exchange on its connection.
func (c *Client) launch(b *batch, f *flight) {
	buf, err := b.request(f)
	if err != nil {
		f.cn.Close()
		c.land(b, f, fmt.Errorf("%w: %w", ErrNotSupported, err))
		return
	}
	if err := f.cn.Start(buf); err != nil {
		c.land(b, f, transportError(err))
	}
}

// land ends flight f with err (nil: its NOOP arrived), gives its
// connection back and records the outcome in the server's health. A pooled
// connection that failed before any byte came back was most likely closed
// by the server while idle: the flight then starts over, once, on a new
// one.
func (c *Client) land(b *batch, f *flight, err error) {
	s := c.servers[f.si]
	if cn := f.cn; cn != nil {
		f.cn = nil
		c.put(s, cn)
		if err != nil && f.pooled && !f.retried && !cn.Received() && staleConnError(err) {
			s.dropIdle()
			f.pooled, f.retried = false, true
			f.unmatched, f.cur = nil, 0
			if f.cn, err = c.dial(s, b.codec); err == nil {
				c.launch(b, f)
				return
			}
		} else {
			err = c.explainClose(s, cn, f.pooled, b.op, err)
		}
	}
	f.done = true
	c.record(f.si, f.epoch, failure(err))
	b.finish(f, err)
}

// connect gives every flight a connection, an idle one or a new one, or
// sets its err. Dials run concurrently, so that servers that do not answer
// delay the call by one ConnectTimeout, not one per server; the usual case,
// an idle connection for every server, starts no goroutine.
func (c *Client) connect(sc *scratch, flights []flight, codec proto.Codec) {
	dials := 0
	for k := range flights {
		f := &flights[k]
		s := c.servers[f.si]
		f.epoch = s.h.epoch.Load()
		if f.cn, f.err = c.idle(s, codec); f.cn != nil {
			f.pooled = true
		} else if f.err == nil {
			dials++
		}
	}
	for k := range flights {
		f := &flights[k]
		if dials == 0 {
			break
		}
		if f.cn != nil || f.err != nil {
			continue
		}
		dials--
		if dials == 0 {
			c.dialFlight(f, codec) // the last one on this thread
			break
		}
		sc.wg.Add(1)
		go func() {
			defer sc.wg.Done()
			c.dialFlight(f, codec)
		}()
	}
	sc.wg.Wait()
}

func (c *Client) dialFlight(f *flight, codec proto.Codec) {
	defer func() {
		// A panic in a goroutine would kill the host process.
		if p := recover(); p != nil {
			f.err = fmt.Errorf("%w: internal error: %v", ErrProtocol, p)
		}
	}()
	f.cn, f.err = c.dial(c.servers[f.si], codec)
}

// GetMulti gets many keys at once. Both results are aligned with keys: for
// each i, items[i] is the item or nil, and errs[i] is nil, ErrCacheMiss,
// ErrMalformedKey or the error of the server owning keys[i]. Duplicate keys
// are fetched once per occurrence.
func (c *Client) GetMulti(keys [][]byte) (items []*Item, errs []error) {
	var m MultiGet // fresh: the results are the caller's
	c.GetMultiReuse(&m, keys, false, 0)
	return m.Found, m.Errs
}

// GatMulti is GetMulti that also sets the expiration of every item found to
// exp (get-and-touch).
func (c *Client) GatMulti(keys [][]byte, exp uint32) (items []*Item, errs []error) {
	var m MultiGet
	c.GetMultiReuse(&m, keys, true, exp)
	return m.Found, m.Errs
}

// MultiGet is reusable storage for GetMultiReuse: the result slices, the
// Items and the memory of small values are kept from one call to the next,
// so a caller that copies the results out at once allocates nothing per
// call. The zero value is ready to use; a MultiGet must not be used by two
// calls at once.
type MultiGet struct {
	// Found[i] is the item of keys[i], or nil.
	Found []*Item
	// Errs[i] is nil for a hit, ErrCacheMiss for a miss, or why keys[i]
	// failed (as in GetMulti).
	Errs []error
	slab []Item
	ar   arena
}

// GetMultiReuse is GetMulti, or GatMulti with exp when gat is set, storing
// its results in m. Everything m held from an earlier call is overwritten:
// the items and values of the previous results are valid only until m is
// used again.
func (c *Client) GetMultiReuse(m *MultiGet, keys [][]byte, gat bool, exp uint32) {
	n := len(keys)
	op, codec := proto.OpGet, c.multiCodec
	if gat {
		op, codec = proto.OpGat, c.codec
	} else {
		exp = 0
	}
	m.Found = resize(m.Found, n)
	clear(m.Found)
	m.Errs = resize(m.Errs, n)
	clear(m.Errs)
	// One allocation for all the Items instead of one per hit.
	m.slab = resize(m.slab, n)
	clear(m.slab)
	m.ar.chunk = m.ar.chunk[:0]
	b := batch{kind: kindGet, op: op, n: n, keys: keys, exp: exp, codec: codec,
		errs: m.Errs, found: m.Found, slab: m.slab, ar: m.ar}
	c.run(&b)
	m.ar = b.ar
}

// Retained reports the bytes of memory m keeps for reuse (slices and
// value memory), so that a pool of MultiGets can drop one grown by a
// huge call.
func (m *MultiGet) Retained() int {
	const ptr = 8
	return cap(m.Found)*ptr + cap(m.Errs)*2*ptr + cap(m.slab)*int(unsafe.Sizeof(Item{})) + cap(m.ar.chunk)
}

// SetMulti stores many items at once, as Set does for each (a nonzero CAS
// makes that item's store conditional). The result is aligned with items:
// errs[i] is nil if items[i] was stored, or why it was not. A nil item gives
// ErrInvalidArguments.
func (c *Client) SetMulti(items []*Item) []error {
	b := batch{kind: kindSet, op: proto.OpSet, n: len(items), items: items, errs: make([]error, len(items)), codec: c.codec}
	for i, it := range items {
		if it == nil {
			b.errs[i] = ErrInvalidArguments
		}
	}
	c.run(&b)
	return b.errs
}

// DeleteMulti deletes many keys at once. The result is aligned with keys:
// errs[i] is nil if keys[i] was deleted, ErrCacheMiss if it was absent, or
// another error.
func (c *Client) DeleteMulti(keys [][]byte) []error {
	b := batch{kind: kindDelete, op: proto.OpDelete, n: len(keys), keys: keys, errs: make([]error, len(keys)), codec: c.codec}
	c.run(&b)
	return b.errs
}

// arena hands out copies of small values carved from shared chunks, so a
// GetMulti of many small values makes a few allocations instead of one per
// value. Each copy's capacity is capped at its length: appending to one
// value reallocates instead of overwriting its neighbour.
type arena struct {
	chunk []byte
	left  int // values still expected: sizes the next chunk
}

const (
	arenaChunk    = 32 << 10
	arenaMaxValue = 4 << 10 // bigger values get their own allocation
)

func (a *arena) clone(b []byte) []byte {
	a.left--
	if len(b) > arenaMaxValue || len(b) == 0 {
		c := make([]byte, len(b))
		copy(c, b)
		return c
	}
	if len(b) > cap(a.chunk)-len(a.chunk) {
		// Guess that the values still to come are about this size.
		a.chunk = make([]byte, 0, min(arenaChunk, len(b)*max(1, a.left+1)))
	}
	n := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[n : n+len(b) : n+len(b)]
}

package bind

// Native completion for asyncio and gevent: a request is submitted with
// AsyncSubmit, which copies its arguments and returns an id at once; the
// engine runs it on a small, fixed set of worker goroutines per server
// ("lanes"), stores the packed result in the completion queue and writes to
// the queue's eventfd, which the event loop watches. AsyncCollect hands over
// every completed result in one call. No thread per call: each lane has at
// most asyncWorkers workers, so the number of threads blocked in the
// engine's poll(2) is bounded by servers x asyncWorkers, however many
// requests are in flight. A worker drains its lane's pending requests in
// one go and sends concurrent single-key gets, sets and deletes for that
// server as one pipelined multi-key exchange (autobatching).

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/omcache/omcache/go/client"
)

// Operations for AsyncSubmit's op argument. The results are packed as the
// synchronous bind function named in each comment returns them; an int
// status result becomes a packed one (status byte, then the message).
const (
	AsyncGet          = 1  // Get (i1 = 1: Gat with exptime i2)
	AsyncTouch        = 2  // Touch, exptime i1
	AsyncStore        = 3  // Store: op i1, flags i2, exptime i3, cas i4
	AsyncDelete       = 4  // Delete
	AsyncDelta        = 5  // Delta: i1 bit 0 decr, bit 1 create; delta i2, initial i3, exptime i4
	AsyncGetMeta      = 6  // GetMeta, bump i1
	AsyncGetLease     = 7  // GetLease: lockTTL i1, recacheBefore i2
	AsyncReleaseLease = 8  // ReleaseLease: i1 bit 0 hasValue, bit 1 stale; cas i2, ttl i3
	AsyncInvalidate   = 9  // Invalidate, staleTTL i1
	AsyncGetMulti     = 10 // GetMultiInto's packed result: keys a, nkeys i1, gat i2, exptime i3
	AsyncSetMulti     = 11 // SetMulti: keys a, values b, lengths then flags c (i3 bytes of lengths), nkeys i1, flags i2, exptime i4
	AsyncDeleteMulti  = 12 // DeleteMulti: keys a, nkeys i1
	AsyncFlushAll     = 13 // FlushAll, delay i1
	AsyncVersion      = 14 // ServerVersions
	AsyncStats        = 15 // Stats, group a
	AsyncNoop         = 16 // Noop
	AsyncVerbosity    = 17 // Verbosity, level i1
)

const (
	// asyncWorkers is the number of workers (and so of threads that can be
	// blocked on a server at once) per lane.
	asyncWorkers = 4
	// asyncMaxPending bounds the requests waiting in one lane: a submit past
	// it fails at once instead of letting memory grow without bound.
	asyncMaxPending = 1 << 16
	// asyncMaxBatch is the most requests a worker takes at once.
	asyncMaxBatch = 256
	// asyncKeepDone is the most memory a queue keeps between collects
	// for the records of its completed results.
	asyncKeepDone = 64 << 10
	// asyncIdle is how long an idle worker waits before it exits.
	asyncIdle = 2 * time.Second
)

// cqueue is one completion queue: the results of the requests submitted to
// it, and the eventfd that tells its reader there are some.
type cqueue struct {
	mu sync.Mutex
	fd int
	// ep is an epoll instance holding fd and the sockets of the inline
	// requests (async_inline.go): the one descriptor an event loop watches.
	ep      int
	done    []byte // records: u64 id, u32 length, packed result
	count   int
	next    int64
	pending map[int64]bool // in flight; true once cancelled
	closed  bool
	// inline are the requests of pending written by the caller's thread
	// (AsyncStart), whose answers AsyncCollect reads; byFd maps their
	// sockets to them.
	inline map[int64]*inlineReq
	byFd   map[int]*inlineReq
	// armed are the sockets registered in ep (see arm).
	armed map[int]armState
	// signaled says the eventfd was written and not read since (see
	// signalLocked): collect reads it only then.
	signaled bool
}

// armState is a socket registered in a queue's epoll instance: for which
// connection, and whether its one-shot event is still enabled (it has not
// been delivered by epoll_wait since it was last armed).
type armState struct {
	conn    uint64 // conn.Conn.ID
	enabled bool
}

type areq struct {
	q      *cqueue
	id     int64
	h      int64
	c      *client.Client
	op     int64
	a, b   []byte
	cbuf   []byte
	i      [4]int64
	result []byte
	// l is the lane whose worker took the request and counts it busy,
	// until finishLane.
	l *lane
}

// lane is the queue of requests for one server of one client.
type lane struct {
	mu      sync.Mutex
	pending []*areq
	workers int
	wake    chan struct{}
	// busy counts the requests workers took and have not finished, inline
	// those started by AsyncStart and not finished: a request is started
	// inline only when all three are zero.
	busy   int
	inline int
	// rtt is a moving average of how long inline answers took to arrive
	// (ns): AsyncStart waits for one only while it is short.
	rtt atomic.Int64
}

type laneKey struct {
	h      int64
	server int
}

var async struct {
	sync.Mutex
	nextQ  int64
	queues map[int64]*cqueue
	lanes  map[laneKey]*lane
}

// AsyncQueueNew creates a completion queue. It returns a packed result:
// StatusOK, the queue id (u64 LE), the eventfd (u32 LE) that becomes
// readable when results are waiting, and an epoll descriptor (u32 LE) that
// is readable when the eventfd is or when the answer of a request started
// inline (AsyncStart) arrived; or an error status and message. A caller
// watches one of the two and then calls AsyncCollect.
func AsyncQueueNew() (ret []byte) {
	defer recoverPacked(&ret)
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return packedError(fmt.Errorf("%w: eventfd: %w", errInternal, err))
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return packedError(fmt.Errorf("%w: epoll: %w", errInternal, err))
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		unix.Close(ep)
		return packedError(fmt.Errorf("%w: epoll: %w", errInternal, err))
	}
	async.Lock()
	if async.queues == nil {
		async.queues = make(map[int64]*cqueue)
		async.lanes = make(map[laneKey]*lane)
	}
	async.nextQ++
	id := async.nextQ
	async.queues[id] = &cqueue{fd: fd, ep: ep, pending: make(map[int64]bool),
		inline: make(map[int64]*inlineReq), byFd: make(map[int]*inlineReq), armed: make(map[int]armState)}
	async.Unlock()
	p := newPacker(StatusOK, 16)
	p.u64(uint64(id))
	p.u32(uint32(fd))
	p.u32(uint32(ep))
	return p.buf
}

// AsyncQueueClose forgets a completion queue and closes its eventfd (the
// caller has stopped watching it). Requests still running finish on their
// connections; their results are dropped.
func AsyncQueueClose(q int64) (ret int64) {
	defer recoverInt(&ret)
	async.Lock()
	cq := async.queues[q]
	delete(async.queues, q)
	async.Unlock()
	if cq == nil {
		return result(fmt.Errorf("%w: completion queue %d", errBadHandle, q))
	}
	cq.mu.Lock()
	cq.closed = true
	cq.done = nil
	clear(cq.pending)
	inline := cq.inline
	cq.inline, cq.byFd = nil, nil
	unix.Close(cq.ep)
	unix.Close(cq.fd)
	cq.mu.Unlock()
	for _, ir := range inline {
		go ir.abandon()
	}
	return 0
}

// AsyncForgetClient drops the lanes of a closed client (their workers exit
// when idle).
func AsyncForgetClient(h int64) (ret int64) {
	defer recoverInt(&ret)
	async.Lock()
	for k := range async.lanes {
		if k.h == h {
			delete(async.lanes, k)
		}
	}
	async.Unlock()
	return 0
}

func copyAt(addr, n int64) []byte {
	if n <= 0 {
		return nil
	}
	return append([]byte(nil), bytesAt(addr, n)...)
}

// AsyncSubmit queues one request on queue q for client h: op is one of the
// Async constants, a, b and c are byte arguments (address, length; copied
// before it returns) and i1..i4 integer arguments, as each constant says.
// It returns the request's id (> 0), or a negative int status result
// (-(status | detail token << 8)) when the request cannot be queued.
func AsyncSubmit(q, h, op, aAddr, aLen, bAddr, bLen, cAddr, cLen, i1, i2, i3, i4 int64) (ret int64) {
	defer func() {
		if r := recover(); r != nil {
			ret = -result(fmt.Errorf("%w: panic: %v", errInternal, r))
		}
	}()
	async.Lock()
	cq := async.queues[q]
	async.Unlock()
	if cq == nil {
		return -result(fmt.Errorf("%w: completion queue %d", errBadHandle, q))
	}
	e, err := lookupEntry(h)
	if err != nil {
		return -result(err)
	}
	if op < AsyncGet || op > AsyncVerbosity || aLen < 0 || bLen < 0 || cLen < 0 {
		return -result(client.ErrInvalidArguments)
	}
	r := &areq{q: cq, h: h, c: e.c, op: op, i: [4]int64{i1, i2, i3, i4}}
	r.a, r.b, r.cbuf = copyAt(aAddr, aLen), copyAt(bAddr, bLen), copyAt(cAddr, cLen)
	return submit(cq, e, r)
}

// submit gives r an id on its queue and queues it on its server's lane.
func submit(cq *cqueue, e *entry, r *areq) int64 {
	server := -1
	if r.op <= AsyncInvalidate && len(r.a) > 0 {
		server = e.sel.Pick(r.a)
	}
	cq.mu.Lock()
	if cq.closed {
		cq.mu.Unlock()
		return -result(fmt.Errorf("%w: completion queue is closed", errBadHandle))
	}
	cq.next++
	r.id = cq.next
	cq.pending[r.id] = false
	cq.mu.Unlock()
	if err := enqueue(laneKey{r.h, server}, r); err != nil {
		cq.mu.Lock()
		delete(cq.pending, r.id)
		cq.mu.Unlock()
		return -result(err)
	}
	return r.id
}

func laneFor(k laneKey) *lane {
	async.Lock()
	l := async.lanes[k]
	if l == nil {
		l = &lane{wake: make(chan struct{}, 1)}
		async.lanes[k] = l
	}
	async.Unlock()
	return l
}

func enqueue(k laneKey, r *areq) error {
	l := laneFor(k)
	l.mu.Lock()
	if len(l.pending) >= asyncMaxPending {
		l.mu.Unlock()
		return fmt.Errorf("%w: more than %d requests waiting for one server", client.ErrInvalidArguments, asyncMaxPending)
	}
	l.pending = append(l.pending, r)
	if l.workers < asyncWorkers {
		l.workers++
		go l.work()
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// work runs requests until the lane has been idle for asyncIdle.
func (l *lane) work() {
	idle := time.NewTimer(asyncIdle)
	defer idle.Stop()
	for {
		l.mu.Lock()
		n := min(len(l.pending), asyncMaxBatch)
		if n == 0 {
			l.mu.Unlock()
			idle.Reset(asyncIdle)
			select {
			case <-l.wake:
				continue
			case <-idle.C:
				l.mu.Lock()
				if len(l.pending) == 0 {
					l.workers--
					l.mu.Unlock()
					return
				}
				l.mu.Unlock()
				continue
			}
		}
		batch := make([]*areq, n)
		copy(batch, l.pending)
		rest := copy(l.pending, l.pending[n:])
		clear(l.pending[rest:])
		l.pending = l.pending[:rest]
		l.busy += n
		for _, r := range batch {
			r.l = l
		}
		more := rest > 0
		l.mu.Unlock()
		if more {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
		runBatch(batch)
		for _, r := range batch {
			r.releaseLane() // none left, unless a result was never delivered
		}
	}
}

// releaseLane gives back the busy count r holds on its worker's lane.
func (r *areq) releaseLane() {
	if l := r.l; l != nil {
		r.l = nil
		l.mu.Lock()
		l.busy--
		l.mu.Unlock()
	}
}

// finishLane records r's result once its lane no longer counts it busy
// (its connection is back in the pool by then): a caller that awaited this
// result and starts its next request at once finds the lane idle, and that
// request can go inline.
func (r *areq) finishLane(res []byte) {
	r.releaseLane()
	r.q.finish(r.id, res)
}

// runBatch runs a worker's batch: the requests still wanted, the plain
// gets, sets and deletes of each client together as multi-key exchanges.
func runBatch(batch []*areq) {
	var gets, sets, dels []*areq
	for _, r := range batch {
		if r.cancelled() {
			r.finishLane(nil)
			continue
		}
		switch {
		case r.op == AsyncGet && r.i[0] == 0:
			gets = append(gets, r)
		case r.op == AsyncStore && r.i[0] == OpSet && r.i[3] == 0 && isU32(r.i[1]) && isU32(r.i[2]):
			sets = append(sets, r)
		case r.op == AsyncDelete:
			dels = append(dels, r)
		default:
			runOne(r)
		}
	}
	runGroup(gets, func(c *client.Client, g []*areq) {
		keys := make([][]byte, len(g))
		for i, r := range g {
			keys[i] = r.a
		}
		items, errs := c.GetMulti(keys)
		for i, r := range g {
			if errs[i] == nil && items[i] == nil {
				r.result = []byte{StatusMiss}
			} else {
				r.result = packItem(items[i], errs[i])
			}
		}
	})
	runGroup(sets, func(c *client.Client, g []*areq) {
		items := make([]*client.Item, len(g))
		for i, r := range g {
			items[i] = &client.Item{Key: r.a, Value: r.b, Flags: uint32(r.i[1]), Expiration: uint32(r.i[2])}
		}
		for i, err := range c.SetMulti(items) {
			g[i].result = statusResult(result(err))
		}
	})
	runGroup(dels, func(c *client.Client, g []*areq) {
		keys := make([][]byte, len(g))
		for i, r := range g {
			keys[i] = r.a
		}
		for i, err := range c.DeleteMulti(keys) {
			g[i].result = statusResult(missOrResult(err))
		}
	})
}

// runGroup runs like requests: one alone as it is, more per client as one
// multi-key call (f), recovering a panic into every request's result.
func runGroup(g []*areq, f func(*client.Client, []*areq)) {
	if len(g) == 1 {
		runOne(g[0])
		return
	}
	byClient := map[*client.Client][]*areq{}
	for _, r := range g {
		byClient[r.c] = append(byClient[r.c], r)
	}
	for c, rs := range byClient {
		func() {
			defer func() {
				if p := recover(); p != nil {
					msg := packedError(fmt.Errorf("%w: panic: %v", errInternal, p))
					for _, r := range rs {
						if r.result == nil {
							r.result = msg
						}
					}
				}
			}()
			f(c, rs)
		}()
		for _, r := range rs {
			r.finishLane(r.result)
		}
	}
}

func (r *areq) cancelled() bool {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	return r.q.pending[r.id]
}

// statusResult turns an int status result into a packed one.
func statusResult(ret int64) []byte {
	if ret == 0 {
		return []byte{StatusOK}
	}
	code, token := byte(ret&0xff), ret>>8
	if token == 0 {
		return []byte{code}
	}
	return append([]byte{code}, ErrorDetail(token)...)
}

// tokenResult turns SetMulti/DeleteMulti's result (OK or -token) into a packed one.
func tokenResult(ret int64) []byte {
	if ret < 0 {
		return TakeResult(-ret)
	}
	return statusResult(ret)
}

func runOne(r *areq) {
	defer func() {
		if p := recover(); p != nil {
			r.result = packedError(fmt.Errorf("%w: panic: %v", errInternal, p))
		}
		r.finishLane(r.result)
	}()
	h, i, key := r.h, r.i, r.a
	switch r.op {
	case AsyncGet:
		if i[0] != 0 {
			r.result = gatKey(h, key, i[1])
		} else {
			r.result = getKey(h, key)
		}
	case AsyncTouch:
		r.result = statusResult(touchKey(h, key, i[0]))
	case AsyncStore:
		r.result = statusResult(storeKey(h, i[0], key, r.b, i[1], i[2], i[3]))
	case AsyncDelete:
		r.result = statusResult(deleteKey(h, key))
	case AsyncDelta:
		r.result = deltaKey(h, key, i[0]&1 != 0, i[1], i[2], i[0]&2 != 0, i[3])
	case AsyncGetMeta:
		r.result = getMetaKey(h, key, i[0] != 0)
	case AsyncGetLease:
		r.result = getLeaseKey(h, key, i[0], i[1])
	case AsyncReleaseLease:
		r.result = statusResult(releaseLeaseKey(h, key, i[0]&1 != 0, i[0]&2 != 0, i[1], i[2]))
	case AsyncInvalidate:
		r.result = statusResult(invalidateKey(h, key, i[0]))
	case AsyncGetMulti:
		r.result = asyncGetMulti(r)
	case AsyncSetMulti:
		if i[2] < 0 || i[2] > int64(len(r.cbuf)) {
			r.result = packedError(client.ErrInvalidArguments)
			break
		}
		r.result = tokenResult(setMultiBytes(h, key, i[0], r.b, r.cbuf[:i[2]], r.cbuf[i[2]:], i[1], i[3]))
	case AsyncDeleteMulti:
		r.result = tokenResult(deleteMultiBytes(h, key, i[0]))
	case AsyncFlushAll:
		r.result = FlushAll(h, i[0])
	case AsyncVersion:
		r.result = ServerVersions(h)
	case AsyncStats:
		r.result = Stats(h, string(r.a))
	case AsyncNoop:
		r.result = Noop(h)
	case AsyncVerbosity:
		r.result = Verbosity(h, i[0])
	}
}

func asyncGetMulti(r *areq) []byte {
	c, err := lookup(r.h)
	if err != nil {
		return packedError(err)
	}
	if !isU32(r.i[2]) {
		return packedError(client.ErrInvalidArguments)
	}
	keys, err := appendKeys(nil, r.a, r.i[0])
	if err != nil {
		return packedError(err)
	}
	var items []*client.Item
	var errs []error
	if r.i[1] != 0 {
		items, errs = c.GatMulti(keys, uint32(r.i[2]))
	} else {
		items, errs = c.GetMulti(keys)
	}
	return packItems(items, errs)
}

// finish records request id's result (nil: none, the request was
// cancelled) and wakes the queue's reader when the queue was empty.
func (q *cqueue) finish(id int64, res []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	cancelled, ok := q.pending[id]
	delete(q.pending, id)
	if q.closed || !ok || cancelled || res == nil {
		return
	}
	wasEmpty := q.count == 0
	q.appendLocked(id, res)
	if wasEmpty {
		q.signalLocked()
	}
}

// signalLocked makes the eventfd readable, which wakes the event loop;
// q.mu is held.
func (q *cqueue) signalLocked() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(q.fd, one[:])
	q.signaled = true
}

// appendLocked records request id's result for the next AsyncCollect.
func (q *cqueue) appendLocked(id int64, res []byte) {
	q.done = binary.LittleEndian.AppendUint64(q.done, uint64(id))
	q.done = binary.LittleEndian.AppendUint32(q.done, uint32(len(res)))
	q.done = append(q.done, res...)
	q.count++
}

// AsyncCollect returns every result completed on queue q since the last
// call, packed: StatusOK, u32 count, then per result u64 id, u32 length and
// the packed result. Call it when the eventfd or the epoll descriptor is
// readable. It reads the eventfd itself when it is readable, and the
// answers of the inline requests (AsyncStart) that arrived, without waiting.
func AsyncCollect(q int64) (ret []byte) {
	defer recoverPacked(&ret)
	return collect(q, nil)
}

// AsyncCollectInto is AsyncCollect writing its result into the caller's
// buffer (bufCap bytes at bufAddr) when it fits, without allocating. It
// returns the result's length, or -token when it does not fit
// (TakeResult(token) returns it).
func AsyncCollectInto(q, bufAddr, bufCap int64) (ret int64) {
	defer func() {
		if r := recover(); r != nil {
			ret = -stashResult(packedError(fmt.Errorf("%w: panic: %v", errInternal, r)))
		}
	}()
	buf := bytesAt(bufAddr, bufCap)
	out := collect(q, buf)
	if len(out) > len(buf) {
		return -stashResult(out)
	}
	if &out[0] != &buf[0] { // an error, packed apart
		copy(buf, out)
	}
	return int64(len(out))
}

// collect takes queue q's completed results, packed as AsyncCollect
// returns them, into buf when they fit there, else into a new slice.
func collect(q int64, buf []byte) []byte {
	async.Lock()
	cq := async.queues[q]
	async.Unlock()
	if cq == nil {
		return packedError(fmt.Errorf("%w: completion queue %d", errBadHandle, q))
	}
	cq.collectInline()
	cq.mu.Lock()
	defer cq.mu.Unlock()
	if cq.signaled {
		// Only the engine writes the eventfd, always with cq.mu held
		// (signalLocked): no read is needed (a system call) unless it did.
		var b [8]byte
		unix.Read(cq.fd, b[:])
		cq.signaled = false
	}
	var out []byte
	if 5+len(cq.done) <= len(buf) {
		out = buf[:5]
	} else {
		out = make([]byte, 5, 5+len(cq.done))
	}
	out[0] = StatusOK
	binary.LittleEndian.PutUint32(out[1:], uint32(cq.count))
	out = append(out, cq.done...)
	// The records are copied out: their memory takes the next ones, unless
	// a burst made it large.
	cq.done, cq.count = cq.done[:0], 0
	if cap(cq.done) > asyncKeepDone {
		cq.done = nil
	}
	return out
}

// AsyncCancel marks request id of queue q as cancelled: if it has not run
// yet it never will, and if it is running its exchange is completed (the
// connection is never left in the middle of a reply) and its result dropped.
// It returns StatusOK, or StatusMiss when the request had already completed.
func AsyncCancel(q, id int64) (ret int64) {
	defer recoverInt(&ret)
	async.Lock()
	cq := async.queues[q]
	async.Unlock()
	if cq == nil {
		return result(fmt.Errorf("%w: completion queue %d", errBadHandle, q))
	}
	cq.mu.Lock()
	defer cq.mu.Unlock()
	if _, ok := cq.pending[id]; !ok {
		return StatusMiss
	}
	if ir := cq.inline[id]; ir != nil {
		// Its answer is on the way on its own connection: a worker reads
		// it (the connection is never left in the middle of a reply) and
		// drops it.
		cq.takeLocked(ir, false)
		delete(cq.pending, id)
		go ir.abandon()
		return 0
	}
	cq.pending[id] = true
	return 0
}

// AsyncPending returns the number of requests in flight on queue q (for
// tests: cancelled requests count until their exchange ends), or -1.
func AsyncPending(q int64) (ret int64) {
	defer recoverInt(&ret)
	async.Lock()
	cq := async.queues[q]
	async.Unlock()
	if cq == nil {
		return -1
	}
	cq.mu.Lock()
	defer cq.mu.Unlock()
	return int64(len(cq.pending))
}

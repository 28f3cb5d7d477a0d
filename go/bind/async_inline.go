package bind

// The inline path of omcache.aio: a lone request (its server has nothing
// else in flight from this client) is written by the calling thread, and
// its socket joins the queue's epoll instance, which the event loop
// watches; when the answer arrives, AsyncCollect reads it without waiting.
// A request that goes through a lane costs two thread wake-ups (a worker,
// then the event loop through the eventfd); this one costs the wake-up of
// the event loop by the socket, as a pure-Python client's does. The engine
// still owns the connection, the parsing, the matching and the deadline
// (AsyncInlineExpire).

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/omcache/omcache/go/client"
	"github.com/omcache/omcache/go/proto"
)

// inlineReq is a request AsyncStart wrote on the caller's thread.
type inlineReq struct {
	r  *areq
	k  laneKey
	l  *lane
	st *client.Started
	fd int
	t0 time.Time // when it was written
}

// inlineStarted counts the requests AsyncStart wrote inline.
var inlineStarted atomic.Int64

// epollCtls counts the epoll_ctl calls of the inline path (tests).
var epollCtls atomic.Int64

// AsyncInlineStarted returns how many requests this process's engine has
// started inline (AsyncStart) so far: tests use it to tell which path ran.
func AsyncInlineStarted() int64 { return inlineStarted.Load() }

// AsyncStart is AsyncSubmit, except that a plain get, a set, add or
// replace, a touch or a delete, submitted while queue q has no other
// request in flight and its server nothing else from this client on any
// queue, is written at once by the calling thread, without waiting; its socket joins the queue's epoll descriptor and its
// result comes through AsyncCollect like any other. It returns id<<1 | 1
// for a request started so (the caller then makes sure AsyncInlineExpire
// runs at its deadline), id<<1 for one queued as AsyncSubmit queues it, or
// a negative status result as AsyncSubmit does.
func AsyncStart(q, h, op, aAddr, aLen, bAddr, bLen, cAddr, cLen, i1, i2, i3, i4 int64) (ret int64) {
	defer func() {
		if r := recover(); r != nil {
			ret = -result(fmt.Errorf("%w: panic: %v", errInternal, r))
		}
	}()
	var pop proto.Op
	switch {
	case op == AsyncGet && i1 == 0:
		pop = proto.OpGet
	case op == AsyncTouch && isU32(i1):
		pop = proto.OpTouch
	case op == AsyncDelete:
		pop = proto.OpDelete
	case op == AsyncStore && isU32(i2) && isU32(i3) && (i1 == OpSet || i1 == OpAdd || i1 == OpReplace):
		pop = [...]proto.Op{OpSet: proto.OpSet, OpAdd: proto.OpAdd, OpReplace: proto.OpReplace}[i1]
	}
	async.Lock()
	cq := async.queues[q]
	async.Unlock()
	if pop == proto.OpNone || aLen <= 0 || bLen < 0 || cq == nil {
		return queued(AsyncSubmit(q, h, op, aAddr, aLen, bAddr, bLen, cAddr, cLen, i1, i2, i3, i4))
	}
	e, err := lookupEntry(h)
	if err != nil {
		return -result(err)
	}
	r := &areq{q: cq, h: h, c: e.c, op: op, i: [4]int64{i1, i2, i3, i4}}
	r.a, r.b = copyAt(aAddr, aLen), copyAt(bAddr, bLen)
	cq.mu.Lock()
	alone := len(cq.pending) == 0
	cq.mu.Unlock()
	if !alone {
		// The loop has other requests in flight: under concurrency the
		// lanes' batching does better (measured, docs/asyncio.md).
		return queued(submit(cq, e, r))
	}
	k := laneKey{h, e.sel.Pick(r.a)}
	l := laneFor(k)
	l.mu.Lock()
	if len(l.pending) > 0 || l.busy > 0 || l.inline > 0 {
		l.mu.Unlock()
		return queued(submit(cq, e, r))
	}
	l.inline++
	l.mu.Unlock()
	ir := &inlineReq{r: r, k: k, l: l}
	var flags, exp, cas int64
	switch op {
	case AsyncStore:
		flags, exp, cas = i2, i3, i4
	case AsyncTouch:
		exp = i1
	}
	ir.st, err = e.c.Begin(pop, r.a, r.b, uint32(flags), uint32(exp), uint64(cas))
	if ir.st == nil || err != nil {
		// Not startable inline (no idle connection, an invalid key, ...):
		// the usual path runs it and reports what it finds.
		ir.release()
		return queued(submit(cq, e, r))
	}
	ir.fd = ir.st.Fd()
	cq.mu.Lock()
	if cq.closed {
		cq.mu.Unlock()
		go ir.abandon()
		return -result(fmt.Errorf("%w: completion queue %d is closed", errBadHandle, q))
	}
	cq.next++
	r.id = cq.next
	cq.pending[r.id] = false
	cq.mu.Unlock()
	inlineStarted.Add(1)
	ir.t0 = time.Now()
	if spin := inlineSpin; spin > 0 && time.Duration(l.rtt.Load()) <= spin {
		// A server nearby often answers within tens of microseconds:
		// wait that long for it here, so the event loop need not sleep
		// and be woken for it (two thread wake-ups saved). Only while its
		// answers come that fast: a distant server is not waited for.
		// (The loop has no other request of the engine to handle
		// meanwhile: see alone.)
		for {
			ready, large := ir.st.Ready()
			if ready {
				cq.advance(ir, false)
				return r.id<<2 | 3
			}
			if large || time.Since(ir.t0) >= spin {
				break
			}
		}
	}
	cq.mu.Lock()
	if cq.closed {
		cq.mu.Unlock()
		go ir.abandon()
		return -result(fmt.Errorf("%w: completion queue %d is closed", errBadHandle, q))
	}
	if cq.byFd[ir.fd] != nil || cq.arm(ir.fd, ir.st.ConnID()) != nil {
		// Not watchable (cannot happen with a connection of its own): a
		// worker finishes it.
		cq.mu.Unlock()
		go ir.complete()
		return r.id << 2
	}
	cq.inline[r.id] = ir
	cq.byFd[ir.fd] = ir
	cq.mu.Unlock()
	return r.id<<2 | 1
}

// queued turns AsyncSubmit's result into AsyncStart's.
func queued(id int64) int64 {
	if id < 0 {
		return id
	}
	return id << 2
}

// defaultInlineSpin is how long AsyncStart waits for an inline answer by
// default: not at all. The wait polls the socket on the loop's thread, so
// it costs CPU for the whole round trip (30-90 us on loopback here); it
// is an opt-in (OMCACHE_AIO_SPIN_US) for a loop on a core of its own.
const defaultInlineSpin = 0

// inlineSpin is defaultInlineSpin, or OMCACHE_AIO_SPIN_US microseconds (0:
// never wait).
var inlineSpin = func() time.Duration {
	if v, ok := os.LookupEnv("OMCACHE_AIO_SPIN_US"); ok {
		if us, err := strconv.Atoi(v); err == nil && us >= 0 {
			return time.Duration(us) * time.Microsecond
		}
	}
	return defaultInlineSpin
}()

// takeLocked removes ir from the requests the epoll instance watches;
// cq.mu is held. With keep, its socket stays registered: disabled if its
// one-shot event was just delivered (collectInline), still enabled if its
// answer was read without one (collectDirect); the next inline request on
// the same connection then costs no epoll_ctl, or one EPOLL_CTL_MOD (see
// arm), instead of an ADD now and a DEL later. Without keep (a request
// handed to a worker, which reads the socket on another thread), the
// socket leaves the set.
func (cq *cqueue) takeLocked(ir *inlineReq, keep bool) {
	delete(cq.inline, ir.r.id)
	delete(cq.byFd, ir.fd)
	if !keep {
		epollCtls.Add(1)
		unix.EpollCtl(cq.ep, unix.EPOLL_CTL_DEL, ir.fd, nil)
		delete(cq.armed, ir.fd)
	}
}

// arm makes the epoll instance report the socket fd of connection conn
// (its ID) once, when it is readable; cq.mu is held. A socket still
// registered and enabled for the same connection needs nothing; one left
// registered, disabled, by an earlier request is modified; a closed socket
// left the epoll set by itself, and a new socket that got its number is
// added (ENOENT).
func (cq *cqueue) arm(fd int, conn uint64) error {
	st, ok := cq.armed[fd]
	if ok && st.enabled && st.conn == conn {
		return nil
	}
	epollCtls.Add(1)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(fd)}
	var err error = unix.ENOENT
	if ok {
		err = unix.EpollCtl(cq.ep, unix.EPOLL_CTL_MOD, fd, &ev)
	}
	if err == unix.ENOENT {
		err = unix.EpollCtl(cq.ep, unix.EPOLL_CTL_ADD, fd, &ev)
		if err == unix.EEXIST {
			err = unix.EpollCtl(cq.ep, unix.EPOLL_CTL_MOD, fd, &ev)
		}
	}
	if err != nil {
		delete(cq.armed, fd)
		return err
	}
	cq.armed[fd] = armState{conn: conn, enabled: true}
	return nil
}

// collectInline reads, without waiting, the answers that arrived for
// inline requests and records their results.
func (cq *cqueue) collectInline() {
	if cq.collectDirect() {
		return
	}
	var evs [64]unix.EpollEvent
	for {
		n, err := unix.EpollWait(cq.ep, evs[:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range evs[:n] {
			fd := int(ev.Fd)
			if fd == cq.fd {
				continue // the eventfd: see cqueue.signaled
			}
			cq.mu.Lock()
			if st, ok := cq.armed[fd]; ok {
				st.enabled = false // delivered: one-shot
				cq.armed[fd] = st
			}
			ir := cq.byFd[fd]
			if ir != nil {
				cq.takeLocked(ir, true)
			}
			cq.mu.Unlock()
			if ir != nil {
				cq.advance(ir, false)
			}
		}
		if n < len(evs) {
			return
		}
	}
}

// collectDirect completes the queue's one inline request, if there is just
// one and its answer arrived, reading its socket without asking the epoll
// instance (the common case of a loop awaiting one call at a time: one
// epoll_wait less, and the socket stays armed for the next request). It
// reports whether it did; otherwise collectInline asks epoll, which also
// disables any other socket that woke the loop.
func (cq *cqueue) collectDirect() bool {
	cq.mu.Lock()
	if len(cq.inline) != 1 {
		cq.mu.Unlock()
		return false
	}
	var ir *inlineReq
	for _, ir = range cq.inline {
	}
	if ready, _ := ir.st.Ready(); !ready {
		cq.mu.Unlock()
		return false
	}
	cq.takeLocked(ir, true)
	cq.mu.Unlock()
	cq.advance(ir, false)
	return true
}

// advance completes ir if its answer arrived (or, with expire, once its
// deadline passed) and records the result; otherwise it watches ir again.
// ir has been taken (takeLocked).
func (cq *cqueue) advance(ir *inlineReq, expire bool) {
	defer func() {
		if p := recover(); p != nil {
			ir.release()
			cq.deliver(ir.r.id, packedError(fmt.Errorf("%w: panic: %v", errInternal, p)))
		}
	}()
	ready, large := ir.st.Ready()
	if !ready && !large && expire && ir.st.Expired() {
		ir.st.Expire()
		ready = true
	}
	if !ready {
		if large {
			go ir.complete()
			return
		}
		cq.mu.Lock()
		if cq.closed || cq.arm(ir.fd, ir.st.ConnID()) != nil {
			cq.mu.Unlock()
			go ir.complete()
			return
		}
		cq.inline[ir.r.id] = ir
		cq.byFd[ir.fd] = ir
		cq.mu.Unlock()
		return
	}
	// The answer's delay (or the timeout), averaged over the last few
	// (1/8 weight).
	d, old := int64(time.Since(ir.t0)), ir.l.rtt.Load()
	ir.l.rtt.Store(old + (d-old)/8)
	ir.st.Finish()
	ir.release()
	if ir.st.Retry {
		ir.retry()
		return
	}
	cq.deliver(ir.r.id, ir.result())
}

// deliver records a result for the AsyncCollect under way (no eventfd
// write: the caller is collecting).
func (cq *cqueue) deliver(id int64, res []byte) {
	cq.mu.Lock()
	defer cq.mu.Unlock()
	cancelled, ok := cq.pending[id]
	delete(cq.pending, id)
	if cq.closed || !ok || cancelled {
		return
	}
	cq.appendLocked(id, res)
}

// AsyncInlineExpire fails the inline requests of queue q whose I/O
// deadline passed (their server did not answer in time) and records their
// results, writing the eventfd if there are any. It returns how many
// milliseconds remain until the next inline request's deadline (at least
// 1), -1 when none is in flight, or a negative status result below -1 for
// a bad queue. Call it again then: the epoll descriptor alone never fires
// for a server that stays silent.
func AsyncInlineExpire(q int64) (ret int64) {
	defer func() {
		if r := recover(); r != nil {
			ret = -2 - result(fmt.Errorf("%w: panic: %v", errInternal, r))
		}
	}()
	async.Lock()
	cq := async.queues[q]
	async.Unlock()
	if cq == nil {
		return -2 - result(fmt.Errorf("%w: completion queue %d", errBadHandle, q))
	}
	now := time.Now()
	var due []*inlineReq
	next := time.Duration(-1)
	cq.mu.Lock()
	for _, ir := range cq.inline {
		left := ir.st.Deadline().Sub(now)
		if left <= 0 {
			due = append(due, ir)
		} else if next < 0 || left < next {
			next = left
		}
	}
	for _, ir := range due {
		cq.takeLocked(ir, false)
	}
	before := cq.count
	cq.mu.Unlock()
	for _, ir := range due {
		cq.advance(ir, true)
	}
	cq.mu.Lock()
	if before == 0 && cq.count > 0 && !cq.closed {
		cq.signalLocked()
	}
	for _, ir := range cq.inline {
		if left := ir.st.Deadline().Sub(now); next < 0 || left < next {
			next = left
		}
	}
	cq.mu.Unlock()
	if next < 0 {
		return -1
	}
	return max(int64((next+time.Millisecond-1)/time.Millisecond), 1)
}

// result is the packed result of a finished request, as the lanes pack it.
func (ir *inlineReq) result() []byte {
	switch ir.r.op {
	case AsyncGet:
		return packItem(ir.st.Item())
	case AsyncStore:
		return statusResult(result(ir.st.Err()))
	}
	return statusResult(missOrResult(ir.st.Err())) // touch, delete
}

// retry queues a request whose pooled connection had been closed by the
// server (Started.Retry) on its lane, which runs it the usual way.
func (ir *inlineReq) retry() {
	if err := enqueue(ir.k, ir.r); err != nil {
		ir.r.q.finish(ir.r.id, packedError(err))
	}
}

func (ir *inlineReq) release() {
	ir.l.mu.Lock()
	ir.l.inline--
	ir.l.mu.Unlock()
}

// complete finishes the request on a worker goroutine, waiting for its
// answer, and delivers the result through the queue.
func (ir *inlineReq) complete() {
	released := false
	defer func() {
		if p := recover(); p != nil {
			if !released {
				ir.release()
			}
			ir.r.q.finish(ir.r.id, packedError(fmt.Errorf("%w: panic: %v", errInternal, p)))
		}
	}()
	ir.st.Wait()
	ir.release()
	released = true
	if ir.st.Retry {
		ir.retry()
		return
	}
	ir.r.q.finish(ir.r.id, ir.result())
}

// abandon finishes a request nobody waits for any more (cancelled, or its
// queue closed): its answer is read, so the connection goes back to the
// pool in a clean state, and dropped.
func (ir *inlineReq) abandon() {
	defer ir.release()
	defer func() {
		_ = recover() // nothing to report to: the caller is gone
	}()
	ir.st.Wait()
}

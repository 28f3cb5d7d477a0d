package bind

// The inline path of omcache.aio: a lone request (its server has nothing
// else in flight from this client) is written by the calling thread, and
// the event loop watches the connection's socket; when it is readable,
// AsyncInlinePoll reads the answer without waiting. A request that goes
// through a lane costs two thread wake-ups (a worker, then the event loop
// through the eventfd); this one costs the wake-up of the event loop by
// the socket, as a pure-Python client's does. The engine still owns the
// connection, the parsing, the matching and the deadline.

import (
	"fmt"

	"github.com/omcache/omcache/go/client"
	"github.com/omcache/omcache/go/proto"
)

// AsyncInlinePoll's answers (first byte), apart from a packed error.
const (
	inlineWait   = 'w' // not complete: keep watching the descriptor
	inlineDone   = 'd' // complete: the packed result follows
	inlineQueued = 'q' // handed to a worker: the result comes through the queue
)

// inlineFdLimit bounds the descriptors AsyncStart's result can carry.
const inlineFdLimit = 1<<22 - 1

// inlineReq is a request AsyncStart wrote on the caller's thread.
type inlineReq struct {
	r  *areq
	k  laneKey
	l  *lane
	st *client.Started
}

// AsyncStart is AsyncSubmit, except that a plain get, a set, add or
// replace, a touch or a delete whose server has nothing else in flight
// from this client on any queue is written at once by the calling thread,
// without waiting. Its answer is then read by AsyncInlinePoll when the
// returned descriptor is readable (the caller watches it); it never
// reaches the queue, unless AsyncInlinePoll says so. It returns
// id<<22 | (fd+1) for a request started inline, id<<22 for one queued as
// AsyncSubmit queues it, or a negative status result as AsyncSubmit does.
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
	cq.mu.Lock()
	if cq.closed {
		cq.mu.Unlock()
		go ir.abandon()
		return -result(fmt.Errorf("%w: completion queue %d is closed", errBadHandle, q))
	}
	cq.next++
	r.id = cq.next
	cq.pending[r.id] = false
	fd := ir.st.Fd()
	if fd < 0 || fd >= inlineFdLimit {
		// Not a descriptor the result can name: a worker finishes it.
		cq.mu.Unlock()
		go ir.complete()
		return r.id << 22
	}
	cq.inline[r.id] = ir
	cq.mu.Unlock()
	return r.id<<22 | int64(fd+1)
}

// queued turns AsyncSubmit's result into AsyncStart's.
func queued(id int64) int64 {
	if id < 0 {
		return id
	}
	return id << 22
}

// AsyncInlinePoll reads the answer of request id of queue q, started
// inline by AsyncStart, without waiting, once its descriptor was readable
// (or when its timeout is due: expire nonzero). It returns one byte:
// 'w' (not complete yet: keep watching), 'q' (handed to a worker, or no
// longer inline: its result, if any, comes through the queue), or 'd'
// followed by the request's packed result; or a packed error. The caller
// must stop watching the descriptor before the call: a completed request
// may close it.
func AsyncInlinePoll(q, id, expire int64) (ret []byte) {
	defer recoverPacked(&ret)
	async.Lock()
	cq := async.queues[q]
	async.Unlock()
	if cq == nil {
		return packedError(fmt.Errorf("%w: completion queue %d", errBadHandle, q))
	}
	// Take the request, so that a close or cancel from another thread
	// cannot use its connection meanwhile.
	cq.mu.Lock()
	ir := cq.inline[id]
	delete(cq.inline, id)
	cq.mu.Unlock()
	if ir == nil {
		return []byte{inlineQueued}
	}
	ready, large := ir.st.Ready()
	if !ready && !large && expire != 0 && ir.st.Expired() {
		ir.st.Expire()
		ready = true
	}
	if !ready {
		if large {
			go ir.complete()
			return []byte{inlineQueued}
		}
		cq.mu.Lock()
		if cq.closed {
			cq.mu.Unlock()
			go ir.abandon()
			return []byte{inlineQueued}
		}
		cq.inline[id] = ir
		cq.mu.Unlock()
		return []byte{inlineWait}
	}
	ir.st.Finish()
	ir.release()
	if ir.st.Retry {
		return ir.retry()
	}
	res := ir.result()
	cq.mu.Lock()
	delete(cq.pending, id)
	cq.mu.Unlock()
	return append([]byte{inlineDone}, res...)
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
func (ir *inlineReq) retry() []byte {
	if err := enqueue(ir.k, ir.r); err != nil {
		ir.r.q.finish(ir.r.id, packedError(err))
	}
	return []byte{inlineQueued}
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

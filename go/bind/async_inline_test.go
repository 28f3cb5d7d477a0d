package bind

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/memcachedtest"
)

// start calls AsyncStart for op on key (and value) and returns the id and
// whether the request was started inline.
func start(t *testing.T, q, h, op int64, key, value string, i1 int64) (id int64, inline bool) {
	t.Helper()
	k, kn := pyMem(t, []byte(key))
	v, vn := pyMem(t, []byte(value))
	r := AsyncStart(q, h, op, k, kn, v, vn, 0, 0, i1, 0, 0, 0)
	if r <= 0 {
		t.Fatalf("AsyncStart(%d, %q): %d", op, key, r)
	}
	return r >> 2, r&1 == 1
}

// newQueueEp is newQueue returning the epoll descriptor too.
func newQueueEp(t *testing.T) (q int64, ep int) {
	t.Helper()
	r := AsyncQueueNew()
	if r[0] != StatusOK || len(r) != 17 {
		t.Fatalf("AsyncQueueNew: %q", r)
	}
	q = int64(binary.LittleEndian.Uint64(r[1:]))
	t.Cleanup(func() { AsyncQueueClose(q) })
	return q, int(binary.LittleEndian.Uint32(r[13:]))
}

// result waits (up to 5 s) on the epoll descriptor for request id's result.
func resultOf(t *testing.T, q int64, ep int, id int64) []byte {
	t.Helper()
	got := collectAll(t, q, ep, 1)
	res, ok := got[id]
	if len(got) != 1 || !ok {
		t.Fatalf("want the result of request %d alone, got %v", id, got)
	}
	return res
}

func newAsyncClient(t *testing.T, addr, extra string) int64 {
	t.Helper()
	r := ClientNew("server=" + addr + "\n" + extra)
	if r[0] != StatusOK {
		t.Fatalf("ClientNew: %s", r[1:])
	}
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	t.Cleanup(func() { ClientClose(h) })
	return h
}

// inlineFixture is a client of a new memcached, a completion queue and its
// epoll descriptor, with AsyncStart's wait for an inline answer off for
// the test.
func inlineFixture(t *testing.T) (h, q int64, ep int) {
	t.Helper()
	addr := mctest.Start(t, mctest.Options{}).Addr
	h = newAsyncClient(t, addr, "io_timeout_ms=2000")
	q, ep = newQueueEp(t)
	saved := inlineSpin
	t.Cleanup(func() { inlineSpin = saved })
	inlineSpin = 0
	return h, q, ep
}

// A lone request goes inline once the client has an idle connection; one
// submitted while another is in flight goes through the lane; each result
// reaches its own request.
func TestAsyncStartInlineAndQueued(t *testing.T) {
	// No waiting in AsyncStart: a first get in flight while the second is
	// submitted.
	h, q, ep := inlineFixture(t)
	// No idle connection yet: the first request is queued (and dials).
	id, inline := start(t, q, h, AsyncStore, "ik1", "iv1", OpSet)
	if inline {
		t.Fatal("first request started inline without an idle connection")
	}
	if res := resultOf(t, q, ep, id); len(res) != 1 || res[0] != StatusOK {
		t.Fatalf("queued set: %q", res)
	}
	id, inline = start(t, q, h, AsyncStore, "ik2", "iv2", OpSet)
	if !inline {
		t.Fatal("a lone set with an idle connection was queued")
	}
	if res := resultOf(t, q, ep, id); string(res) != string([]byte{StatusOK}) {
		t.Fatalf("inline set: %q", res)
	}
	id1, inline1 := start(t, q, h, AsyncGet, "ik1", "", 0)
	id2, inline2 := start(t, q, h, AsyncGet, "ik2", "", 0)
	if !inline1 || inline2 {
		t.Fatalf("inline %v, %v: want the first get inline, the second queued", inline1, inline2)
	}
	got := collectAll(t, q, ep, 2)
	if r := got[id1]; r[0] != StatusOK || string(r[getHeaderLen:]) != "iv1" {
		t.Fatalf("inline get: %q", r)
	}
	if r := got[id2]; r[0] != StatusOK || string(r[getHeaderLen:]) != "iv2" {
		t.Fatalf("queued get: %q", r)
	}
	id, _ = start(t, q, h, AsyncDelete, "ik1", "", 0)
	if res := resultOf(t, q, ep, id); string(res) != string([]byte{StatusOK}) {
		t.Fatalf("inline delete: %q", res)
	}
	id, _ = start(t, q, h, AsyncGet, "ik1", "", 0)
	if res := resultOf(t, q, ep, id); string(res) != string([]byte{StatusMiss}) {
		t.Fatalf("inline get of a deleted key: %q", res)
	}
	if ms := AsyncInlineExpire(q); ms != -1 {
		t.Fatalf("AsyncInlineExpire with nothing in flight: %d", ms)
	}
	if p := AsyncPending(q); p != 0 {
		t.Fatalf("%d pending", p)
	}
}

func faultServer(t *testing.T) *memcachedtest.Server {
	t.Helper()
	srv, err := memcachedtest.Start(memcachedtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// warm leaves an idle connection in the client's pool.
func warm(t *testing.T, q, h int64, ep int) {
	t.Helper()
	id, _ := start(t, q, h, AsyncStore, "warm", "w", OpSet)
	resultOf(t, q, ep, id)
}

// A stalled server: collecting never waits, and once the io_timeout is due
// AsyncInlineExpire fails the request with a timeout.
func TestAsyncInlineStalledServerTimesOut(t *testing.T) {
	srv := faultServer(t)
	h := newAsyncClient(t, srv.Addr(), "io_timeout_ms=200")
	q, ep := newQueueEp(t)
	warm(t, q, h, ep)
	if err := srv.SetFault(memcachedtest.Fault{Stall: true}); err != nil {
		t.Fatal(err)
	}
	id, inline := start(t, q, h, AsyncGet, "stalled", "", 0)
	if !inline {
		t.Fatal("not started inline")
	}
	t0 := time.Now()
	for i := 0; i < 10; i++ {
		if r := AsyncCollect(q); string(r) != "\x00\x00\x00\x00\x00" {
			t.Fatalf("collect %d before the timeout: %q", i, r)
		}
		if ms := AsyncInlineExpire(q); ms < 1 || ms > 200 {
			t.Fatalf("AsyncInlineExpire before the deadline: %d ms", ms)
		}
	}
	// Ten rounds on a silent socket take microseconds; 100 ms is room for
	// a loaded machine, and still well under the 200 ms io_timeout.
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Fatalf("ten collects took %v: one waited", d)
	}
	time.Sleep(250 * time.Millisecond)
	if ms := AsyncInlineExpire(q); ms != -1 {
		t.Fatalf("AsyncInlineExpire after the deadline: %d", ms)
	}
	if res := resultOf(t, q, ep, id); res[0] != StatusTimeout {
		t.Fatalf("after the timeout: %q", res)
	}
	if p := AsyncPending(q); p != 0 {
		t.Fatalf("%d pending", p)
	}
}

// A cancelled inline request's answer is read by a worker and dropped: it
// never reaches the queue, and the next request on the connection gets its
// own answer.
func TestAsyncInlineCancelMidRequest(t *testing.T) {
	srv := faultServer(t)
	h := newAsyncClient(t, srv.Addr(), "io_timeout_ms=2000")
	q, ep := newQueueEp(t)
	warm(t, q, h, ep)
	for i, kv := range []string{"c1", "c2"} {
		id, inline := start(t, q, h, AsyncStore, kv, "value-"+kv, OpSet)
		if !inline {
			t.Fatalf("set %d not inline", i)
		}
		resultOf(t, q, ep, id)
	}
	if err := srv.SetFault(memcachedtest.Fault{Delay: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	id, inline := start(t, q, h, AsyncGet, "c1", "", 0)
	if !inline {
		t.Fatal("not started inline")
	}
	if st := AsyncCancel(q, id); st != 0 {
		t.Fatalf("cancel: %d", st)
	}
	if p := AsyncPending(q); p != 0 {
		t.Fatalf("%d pending after the cancel", p)
	}
	if err := srv.SetFault(memcachedtest.Fault{}); err != nil {
		t.Fatal(err)
	}
	// Until the worker has read the cancelled answer the lane is busy and
	// requests are queued; then they are inline again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		id2, inline2 := start(t, q, h, AsyncGet, "c2", "", 0)
		res := resultOf(t, q, ep, id2)
		if res[0] != StatusOK || string(res[getHeaderLen:]) != "value-c2" {
			t.Fatalf("get c2: %q", res)
		}
		if inline2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("requests still queued 5 s after the cancel")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Nothing for the cancelled request arrived meanwhile.
	if got := collectAll(t, q, ep, 0); len(got) != 0 {
		t.Fatalf("results after the cancel: %v", got)
	}
}

// An answer that arrives while AsyncStart waits for it (inlineSpin) is in
// the queue when AsyncStart returns (bit 2 set); with no wait it comes
// through the epoll descriptor.
func TestAsyncStartWaitsBrieflyForTheAnswer(t *testing.T) {
	addr := mctest.Start(t, mctest.Options{}).Addr
	h := newAsyncClient(t, addr, "io_timeout_ms=2000")
	q, ep := newQueueEp(t)
	warm(t, q, h, ep)
	saved := inlineSpin
	defer func() { inlineSpin = saved }()
	k, kn := pyMem(t, []byte("warm"))
	// 50 ms is far more than a loopback round trip, even on a loaded machine.
	inlineSpin = 50 * time.Millisecond
	answered := 0
	for i := 0; i < 20; i++ {
		r := AsyncStart(q, h, AsyncGet, k, kn, 0, 0, 0, 0, 0, 0, 0, 0)
		if r&1 == 0 {
			t.Fatalf("get %d not inline: %d", i, r)
		}
		if r&2 != 0 {
			answered++
			c := AsyncCollect(q)
			if binary.LittleEndian.Uint32(c[1:]) != 1 || int64(binary.LittleEndian.Uint64(c[5:])) != r>>2 ||
				string(c[17+getHeaderLen:]) != "w" {
				t.Fatalf("collect right after AsyncStart: %q", c)
			}
		} else {
			resultOf(t, q, ep, r>>2)
		}
	}
	if answered == 0 {
		t.Fatal("no answer arrived within 50 ms of AsyncStart")
	}
	inlineSpin = 0
	for i := 0; i < 5; i++ {
		r := AsyncStart(q, h, AsyncGet, k, kn, 0, 0, 0, 0, 0, 0, 0, 0)
		if r&3 != 1 {
			t.Fatalf("without waiting: %d", r&3)
		}
		if res := resultOf(t, q, ep, r>>2); string(res[getHeaderLen:]) != "w" {
			t.Fatalf("get: %q", res)
		}
	}
}

// One get at a time on a loop: after the first, the answers are read
// straight from the socket, which stays armed in the epoll set (no
// epoll_ctl per request). When another caller uses the connection, its
// answer wakes the queue at most once and is not read by the queue; the
// next inline request gets its own answer.
func TestAsyncInlineSocketStaysArmed(t *testing.T) {
	h, q, ep := inlineFixture(t)
	warm(t, q, h, ep)
	get := func(key, want string) {
		t.Helper()
		id, inline := start(t, q, h, AsyncGet, key, "", 0)
		if !inline {
			t.Fatal("a lone get was queued")
		}
		if r := resultOf(t, q, ep, id); r[0] != StatusOK || string(r[getHeaderLen:]) != want {
			t.Fatalf("get %s: %q", key, r)
		}
	}
	id, _ := start(t, q, h, AsyncStore, "armed", "v1", OpSet)
	resultOf(t, q, ep, id)
	get("armed", "v1")
	before := epollCtls.Load()
	for i := 0; i < 20; i++ {
		get("armed", "v1")
	}
	if n := epollCtls.Load() - before; n != 0 {
		t.Fatalf("%d epoll_ctl calls for 20 gets one after the other on one connection", n)
	}
	// A synchronous call on the same (pooled) connection.
	k, kn := pyMem(t, []byte("armed"))
	if r := Get(h, k, kn); r[0] != StatusOK {
		t.Fatalf("sync Get: %q", r)
	}
	time.Sleep(20 * time.Millisecond)
	if r := AsyncCollect(q); r[0] != StatusOK || binary.LittleEndian.Uint32(r[1:]) != 0 {
		t.Fatalf("collect after another caller's answer: %q", r)
	}
	pfd := []unix.PollFd{{Fd: int32(ep), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 0); err != nil || n != 0 {
		t.Fatalf("the epoll descriptor is still readable after the collect: %d %v", n, err)
	}
	before = epollCtls.Load()
	get("armed", "v1")
	// One EPOLL_CTL_MOD if the other caller's answer was delivered (and
	// so disabled the socket), none if it was read before that.
	if n := epollCtls.Load() - before; n > 1 {
		t.Fatalf("%d epoll_ctl calls to re-arm the socket", n)
	}
	if p := AsyncPending(q); p != 0 {
		t.Fatalf("%d pending", p)
	}
}

// A lane's worker gives back its count on the lane (and the connection to
// the pool) before the result is seen: a loop that awaits a lane request
// (an incr never goes inline) and starts the next one at once finds the
// lane idle, and that one goes inline. Before, the count came back after
// the result, and under load the next request sometimes took the lane.
func TestAsyncLaneIdleWhenItsResultIsSeen(t *testing.T) {
	h, q, ep := inlineFixture(t)
	warm(t, q, h, ep)
	id, _ := start(t, q, h, AsyncStore, "n", "0", OpSet)
	resultOf(t, q, ep, id)
	for i := 0; i < 300; i++ {
		id, inline := start(t, q, h, AsyncDelta, "n", "", 0)
		if inline {
			t.Fatal("an incr went inline")
		}
		resultOf(t, q, ep, id)
		id, inline = start(t, q, h, AsyncGet, "n", "", 0)
		if !inline {
			t.Fatalf("round %d: the get right after a lane's result was queued", i)
		}
		resultOf(t, q, ep, id)
	}
}

// A connection closed after an inline request whose answer was read
// directly leaves its socket's entry behind, armed; a new connection that
// gets the same descriptor number is a different connection
// (conn.Conn.ID) and is added to the epoll set, so its answers still wake
// the loop (a stale "armed" entry would leave it unwatched, and the get
// waiting until its deadline).
func TestAsyncInlineNewConnectionOnAnOldDescriptor(t *testing.T) {
	addr := mctest.Start(t, mctest.Options{}).Addr
	q, ep := newQueueEp(t)
	saved := inlineSpin
	t.Cleanup(func() { inlineSpin = saved })
	inlineSpin = 0
	async.Lock()
	cq := async.queues[q]
	async.Unlock()
	armed := func() map[int]armState {
		cq.mu.Lock()
		defer cq.mu.Unlock()
		m := map[int]armState{}
		for fd, st := range cq.armed {
			m[fd] = st
		}
		return m
	}
	reused := false
	for round := 0; round < 3; round++ {
		r := ClientNew("server=" + addr + "\nio_timeout_ms=2000")
		if r[0] != StatusOK {
			t.Fatalf("ClientNew: %s", r[1:])
		}
		h := int64(binary.LittleEndian.Uint64(r[1:]))
		before := armed()
		warm(t, q, h, ep) // through the lane: dials the connection
		id, inline := start(t, q, h, AsyncGet, "warm", "", 0)
		if !inline {
			t.Fatalf("round %d: get not inline", round)
		}
		// The answer must make the epoll descriptor readable (collectAll
		// would also find it by collecting after a timeout).
		pfd := []unix.PollFd{{Fd: int32(ep), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, 2000); n != 1 || err != nil {
			t.Fatalf("round %d: the answer did not wake the epoll descriptor in 2 s: %d %v", round, n, err)
		}
		if res := resultOf(t, q, ep, id); res[0] != StatusOK || string(res[getHeaderLen:]) != "w" {
			t.Fatalf("round %d: get: %q", round, res)
		}
		after := armed()
		for fd, old := range before {
			if now, ok := after[fd]; ok && now.conn != old.conn {
				reused = true // a new connection on an old descriptor
			}
		}
		t.Logf("round %d: armed before %v, after %v", round, before, after)
		ClientClose(h) // closes the connection; its entry stays behind
	}
	if !reused {
		t.Fatal("no new connection got an old descriptor number: the case was not exercised")
	}
}

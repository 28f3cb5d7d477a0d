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
// the descriptor to watch (-1: the request was queued).
func start(t *testing.T, q, h, op int64, key, value string, i1 int64) (id int64, fd int) {
	t.Helper()
	k, kn := pyMem(t, []byte(key))
	v, vn := pyMem(t, []byte(value))
	r := AsyncStart(q, h, op, k, kn, v, vn, 0, 0, i1, 0, 0, 0)
	if r <= 0 {
		t.Fatalf("AsyncStart(%d, %q): %d", op, key, r)
	}
	return r >> 22, int(r&inlineFdLimit) - 1
}

// pollInline waits (up to 5 s) for fd to be readable and polls request id
// until it is no longer waiting.
func pollInline(t *testing.T, q, id int64, fd int) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		if r := AsyncInlinePoll(q, id, 0); r[0] != inlineWait {
			return r
		}
	}
	t.Fatalf("request %d still waiting after 5 s", id)
	return nil
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

// A lone request goes inline once the client has an idle connection; one
// submitted while it is in flight goes through the lane; each result
// reaches its own request.
func TestAsyncStartInlineAndQueued(t *testing.T) {
	addr := mctest.Start(t, mctest.Options{}).Addr
	h := newAsyncClient(t, addr, "io_timeout_ms=2000")
	q, qfd := newQueue(t)
	// No idle connection yet: the first request is queued (and dials).
	id, fd := start(t, q, h, AsyncStore, "ik1", "iv1", OpSet)
	if fd != -1 {
		t.Fatalf("first request started inline on fd %d without an idle connection", fd)
	}
	if res := collectAll(t, q, qfd, 1)[id]; len(res) != 1 || res[0] != StatusOK {
		t.Fatalf("queued set: %q", res)
	}
	id, fd = start(t, q, h, AsyncStore, "ik2", "iv2", OpSet)
	if fd < 0 {
		t.Fatal("a lone set with an idle connection was queued")
	}
	if r := pollInline(t, q, id, fd); string(r) != string([]byte{inlineDone, StatusOK}) {
		t.Fatalf("inline set: %q", r)
	}
	id1, fd1 := start(t, q, h, AsyncGet, "ik1", "", 0)
	id2, fd2 := start(t, q, h, AsyncGet, "ik2", "", 0)
	if fd1 < 0 || fd2 != -1 {
		t.Fatalf("fds %d, %d: want the first get inline, the second queued", fd1, fd2)
	}
	r := pollInline(t, q, id1, fd1)
	if r[0] != inlineDone || r[1] != StatusOK || string(r[1+getHeaderLen:]) != "iv1" {
		t.Fatalf("inline get: %q", r)
	}
	if res := collectAll(t, q, qfd, 1)[id2]; res[0] != StatusOK || string(res[getHeaderLen:]) != "iv2" {
		t.Fatalf("queued get: %q", res)
	}
	id, fd = start(t, q, h, AsyncDelete, "ik1", "", 0)
	if r := pollInline(t, q, id, fd); string(r) != string([]byte{inlineDone, StatusOK}) {
		t.Fatalf("inline delete: %q", r)
	}
	id, fd = start(t, q, h, AsyncGet, "ik1", "", 0)
	if r := pollInline(t, q, id, fd); string(r) != string([]byte{inlineDone, StatusMiss}) {
		t.Fatalf("inline get of a deleted key: %q", r)
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
func warm(t *testing.T, q, h int64, qfd int) {
	t.Helper()
	id, fd := start(t, q, h, AsyncStore, "warm", "w", OpSet)
	if fd >= 0 {
		pollInline(t, q, id, fd)
		return
	}
	collectAll(t, q, qfd, 1)
}

// A stalled server: polling the inline request never waits, and once its
// io_timeout is due the request fails with a timeout.
func TestAsyncInlineStalledServerTimesOut(t *testing.T) {
	srv := faultServer(t)
	h := newAsyncClient(t, srv.Addr(), "io_timeout_ms=200")
	q, qfd := newQueue(t)
	warm(t, q, h, qfd)
	if err := srv.SetFault(memcachedtest.Fault{Stall: true}); err != nil {
		t.Fatal(err)
	}
	id, fd := start(t, q, h, AsyncGet, "stalled", "", 0)
	if fd < 0 {
		t.Fatal("not started inline")
	}
	t0 := time.Now()
	for i := 0; i < 10; i++ {
		if r := AsyncInlinePoll(q, id, 1); r[0] != inlineWait {
			t.Fatalf("poll %d before the timeout: %q", i, r)
		}
	}
	// Ten polls of a silent socket take microseconds; 100 ms is room for
	// a loaded machine, and still well under the 200 ms io_timeout.
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Fatalf("ten polls took %v: a poll waited", d)
	}
	time.Sleep(250 * time.Millisecond)
	r := AsyncInlinePoll(q, id, 1)
	if r[0] != inlineDone || r[1] != StatusTimeout {
		t.Fatalf("after the timeout: %q", r)
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
	q, qfd := newQueue(t)
	warm(t, q, h, qfd)
	for i, kv := range []string{"c1", "c2"} {
		id, fd := start(t, q, h, AsyncStore, kv, "value-"+kv, OpSet)
		if fd < 0 {
			t.Fatalf("set %d not inline", i)
		}
		pollInline(t, q, id, fd)
	}
	if err := srv.SetFault(memcachedtest.Fault{Delay: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	id, fd := start(t, q, h, AsyncGet, "c1", "", 0)
	if fd < 0 {
		t.Fatal("not started inline")
	}
	if st := AsyncCancel(q, id); st != 0 {
		t.Fatalf("cancel: %d", st)
	}
	if p := AsyncPending(q); p != 0 {
		t.Fatalf("%d pending after the cancel", p)
	}
	if r := AsyncInlinePoll(q, id, 0); r[0] != inlineQueued {
		t.Fatalf("poll of a cancelled request: %q", r)
	}
	if err := srv.SetFault(memcachedtest.Fault{}); err != nil {
		t.Fatal(err)
	}
	// Until the worker has read the cancelled answer the lane is busy and
	// requests are queued; then they are inline again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		id2, fd2 := start(t, q, h, AsyncGet, "c2", "", 0)
		var res []byte
		if fd2 >= 0 {
			r := pollInline(t, q, id2, fd2)
			if r[0] != inlineDone {
				t.Fatalf("inline get: %q", r)
			}
			res = r[1:]
		} else {
			got := collectAll(t, q, qfd, 1)
			res = got[id2]
			if len(got) != 1 || res == nil {
				t.Fatalf("queued get: %d results (a cancelled one?): %v", len(got), got)
			}
		}
		if res[0] != StatusOK || string(res[getHeaderLen:]) != "value-c2" {
			t.Fatalf("get c2: %q", res)
		}
		if fd2 >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("requests still queued 5 s after the cancel")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Nothing for the cancelled request arrived meanwhile.
	if got := collectAll(t, q, qfd, 0); len(got) != 0 {
		t.Fatalf("results after the cancel: %v", got)
	}
}

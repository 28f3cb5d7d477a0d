package bind

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/omcache/omcache/go/internal/mctest"
)

func newQueue(t *testing.T) (q int64, fd int) {
	t.Helper()
	r := AsyncQueueNew()
	if r[0] != StatusOK {
		t.Fatalf("AsyncQueueNew: %q", r)
	}
	q = int64(binary.LittleEndian.Uint64(r[1:]))
	t.Cleanup(func() { AsyncQueueClose(q) })
	return q, int(binary.LittleEndian.Uint32(r[9:]))
}

// collectAll waits on the eventfd until want results have arrived (and
// collects once at least).
func collectAll(t *testing.T, q int64, fd int, want int) map[int64][]byte {
	t.Helper()
	got := map[int64][]byte{}
	deadline := time.Now().Add(10 * time.Second)
	for first := true; first || len(got) < want; first = false {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d results after 10 s", len(got), want)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		var b [8]byte
		unix.Read(fd, b[:])
		r := AsyncCollect(q)
		if r[0] != StatusOK {
			t.Fatalf("AsyncCollect: %q", r)
		}
		n, pos := binary.LittleEndian.Uint32(r[1:]), 5
		for i := uint32(0); i < n; i++ {
			id := int64(binary.LittleEndian.Uint64(r[pos:]))
			l := int(binary.LittleEndian.Uint32(r[pos+8:]))
			got[id] = r[pos+12 : pos+12+l]
			pos += 12 + l
		}
		if pos != len(r) {
			t.Fatalf("%d bytes past the records", len(r)-pos)
		}
	}
	return got
}

func TestAsyncSubmitAutobatchesAndCompletes(t *testing.T) {
	addr := mctest.Start(t, mctest.Options{}).Addr
	r := ClientNew("server=" + addr + "\nio_timeout_ms=2000")
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	defer ClientClose(h)
	q, fd := newQueue(t)
	const n = 500
	ids := map[int64]int{}
	for i := 0; i < n; i++ {
		k, v := pyMem(t, []byte(fmt.Sprintf("ak%d", i)))
		va, vn := pyMem(t, []byte(fmt.Sprintf("av%d", i)))
		id := AsyncSubmit(q, h, AsyncStore, k, v, va, vn, 0, 0, OpSet, 0, 0, 0)
		if id <= 0 {
			t.Fatalf("submit: %d", id)
		}
		ids[id] = i
	}
	for id, res := range collectAll(t, q, fd, n) {
		if len(res) != 1 || res[0] != StatusOK {
			t.Fatalf("set %d: %q", ids[id], res)
		}
	}
	ids = map[int64]int{}
	for i := 0; i < n; i++ {
		k, v := pyMem(t, []byte(fmt.Sprintf("ak%d", i)))
		ids[AsyncSubmit(q, h, AsyncGet, k, v, 0, 0, 0, 0, 0, 0, 0, 0)] = i
	}
	for id, res := range collectAll(t, q, fd, n) {
		if res[0] != StatusOK || string(res[getHeaderLen:]) != fmt.Sprintf("av%d", ids[id]) {
			t.Fatalf("get %d: %q", ids[id], res)
		}
	}
	if p := AsyncPending(q); p != 0 {
		t.Fatalf("%d pending", p)
	}
}

func TestAsyncCancelDropsTheResult(t *testing.T) {
	addr := mctest.Start(t, mctest.Options{}).Addr
	r := ClientNew("server=" + addr + "\nio_timeout_ms=2000")
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	defer ClientClose(h)
	q, fd := newQueue(t)
	k, kn := pyMem(t, []byte("cancel-key"))
	var keep int64
	// A request that completed before its cancel (StatusMiss) has its
	// result queued already: Python drops it; any other must never arrive.
	allowed := map[int64]bool{}
	for i := 0; i < 50; i++ {
		id := AsyncSubmit(q, h, AsyncGet, k, kn, 0, 0, 0, 0, 0, 0, 0, 0)
		if i == 49 {
			keep = id
		} else if AsyncCancel(q, id) == StatusMiss {
			allowed[id] = true
		}
	}
	got := collectAll(t, q, fd, 1)
	time.Sleep(50 * time.Millisecond)
	for id := range collectAll(t, q, fd, 0) {
		got[id] = nil
	}
	if _, ok := got[keep]; !ok {
		t.Fatalf("no result for %d", keep)
	}
	for id := range got {
		if id != keep && !allowed[id] {
			t.Fatalf("a result for cancelled request %d", id)
		}
	}
	if st := AsyncCancel(q, keep); st != StatusMiss {
		t.Fatalf("cancel after completion: %d", st)
	}
}

func TestAsyncBadArguments(t *testing.T) {
	q, _ := newQueue(t)
	if id := AsyncSubmit(q, 1<<40, AsyncGet, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0); id >= 0 || (-id)&0xff != StatusBadHandle {
		t.Fatalf("bad client handle: %d", id)
	}
	if id := AsyncSubmit(1<<40, 1, AsyncGet, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0); id >= 0 || (-id)&0xff != StatusBadHandle {
		t.Fatalf("bad queue: %d", id)
	}
	if r := AsyncCollect(1 << 40); r[0] != StatusBadHandle {
		t.Fatalf("collect on a bad queue: %q", r)
	}
	if st := AsyncQueueClose(1 << 40); st&0xff != StatusBadHandle {
		t.Fatalf("close of a bad queue: %d", st)
	}
}

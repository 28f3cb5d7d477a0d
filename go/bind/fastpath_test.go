package bind

import (
	"encoding/binary"
	"testing"

	"github.com/omcache/omcache/go/internal/mctest"
)

func TestFastPathTableHasTheVersion(t *testing.T) {
	addr := FastPathTable()
	if addr == 0 {
		t.Fatal("no table")
	}
	if v := int64(binary.LittleEndian.Uint64(bytesAt(addr, 8))); v != FastPathVersion() || v < 1 {
		t.Fatalf("table version %d, FastPathVersion %d", v, FastPathVersion())
	}
}

func TestDeltaIntoFitsOrStashes(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{})
	r := ClientNew("server=" + srv.Addr)
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	defer ClientClose(h)
	bufAddr, bufCap := pyMem(t, make([]byte, 256))
	buf := bytesAt(bufAddr, bufCap)
	ka, kn := pyMem(t, []byte("delta-key"))
	cases := []struct {
		name                   string
		decr, create           bool
		delta, initial, expire int64
		capacity               int64
		n                      int64 // 0: stashed
		status                 byte
		value                  uint64
	}{
		{"missing", false, false, 1, 0, 0, bufCap, 1, StatusMiss, 0},
		{"created", false, true, 1, 40, 0, bufCap, 9, StatusOK, 40},
		{"incr", false, false, 2, 0, 0, bufCap, 9, StatusOK, 42},
		{"decr", true, false, 50, 0, 0, bufCap, 9, StatusOK, 0},
		{"expire out of range", false, false, 1, 0, 1 << 33, bufCap, -1, StatusInvalidArgs, 0},
		{"no room for the value", false, false, 1, 0, 0, 4, 0, StatusOK, 1},
	}
	for _, tc := range cases {
		n := DeltaInto(h, ka, kn, tc.decr, tc.delta, tc.initial, tc.create, tc.expire, bufAddr, tc.capacity)
		switch {
		case tc.n == 0:
			if n >= 0 {
				t.Fatalf("%s: DeltaInto = %d, want a token", tc.name, n)
			}
			got := TakeResult(-n)
			if got[0] != tc.status || binary.LittleEndian.Uint64(got[1:]) != tc.value {
				t.Fatalf("%s: TakeResult = %v", tc.name, got)
			}
		case tc.n < 0:
			if n < 2 || buf[0] != tc.status {
				t.Fatalf("%s: DeltaInto = %d, status %d", tc.name, n, buf[0])
			}
		default:
			if n != tc.n || buf[0] != tc.status || (n == 9 && binary.LittleEndian.Uint64(buf[1:]) != tc.value) {
				t.Fatalf("%s: DeltaInto = %d, %v", tc.name, n, buf[:n])
			}
		}
	}
	if n := DeltaInto(987654, ka, kn, false, 1, 0, false, 0, bufAddr, bufCap); n < 2 || buf[0] != StatusBadHandle {
		t.Fatalf("bad handle: %d %d", n, buf[0])
	}
	if PendingResults() != 0 {
		t.Fatalf("%d results left pending", PendingResults())
	}
}

func TestAsyncCollectIntoFitsOrStashes(t *testing.T) {
	r := AsyncQueueNew()
	if r[0] != StatusOK {
		t.Fatalf("AsyncQueueNew: %v", r)
	}
	q := int64(binary.LittleEndian.Uint64(r[1:]))
	defer AsyncQueueClose(q)
	async.Lock()
	cq := async.queues[q]
	async.Unlock()
	bufAddr, bufCap := pyMem(t, make([]byte, 64))
	buf := bytesAt(bufAddr, bufCap)
	for _, tc := range []struct {
		name    string
		results [][]byte
		stashed bool
	}{
		{"nothing", nil, false},
		{"two small", [][]byte{{StatusOK, 'a'}, {StatusMiss}}, false},
		{"one too big", [][]byte{make([]byte, 100)}, true},
	} {
		cq.mu.Lock()
		for i, res := range tc.results {
			cq.appendLocked(int64(i+1), res)
		}
		cq.mu.Unlock()
		want := []byte{StatusOK, byte(len(tc.results)), 0, 0, 0}
		for i, res := range tc.results {
			want = binary.LittleEndian.AppendUint64(want, uint64(i+1))
			want = binary.LittleEndian.AppendUint32(want, uint32(len(res)))
			want = append(want, res...)
		}
		n := AsyncCollectInto(q, bufAddr, bufCap)
		var got []byte
		if tc.stashed {
			if n >= 0 {
				t.Fatalf("%s: AsyncCollectInto = %d, want a token", tc.name, n)
			}
			got = TakeResult(-n)
		} else {
			got = buf[:n]
		}
		if string(got) != string(want) {
			t.Fatalf("%s: got %v, want %v", tc.name, got, want)
		}
	}
	if n := AsyncCollectInto(987654, bufAddr, bufCap); n < 2 || buf[0] != StatusBadHandle {
		t.Fatalf("unknown queue: %d %v", n, buf[:2])
	}
	if PendingResults() != 0 {
		t.Fatalf("%d results left pending", PendingResults())
	}
}

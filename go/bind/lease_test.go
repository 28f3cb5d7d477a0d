package bind

import (
	"encoding/binary"
	"testing"

	"github.com/omcache/omcache/go/internal/mctest"
)

func TestLeaseThroughBind(t *testing.T) {
	addr := mctest.Start(t, mctest.Options{}).Addr
	r := ClientNew("server=" + addr + "\nio_timeout_ms=2000")
	if r[0] != StatusOK {
		t.Fatalf("ClientNew: %s", r[1:])
	}
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	defer ClientClose(h)
	ka, kn := pyMem(t, []byte("lease-key"))
	type lease struct {
		state, hasValue, stale int
		flags                  uint32
		cas                    uint64
		ttl                    int64
		value                  string
	}
	get := func() lease {
		t.Helper()
		g := GetLease(h, ka, kn, 30, 0)
		if g[0] != StatusOK || len(g) < 1+leaseHeaderLen {
			t.Fatalf("GetLease: %q", g)
		}
		return lease{int(g[1]), int(g[2]), int(g[3]), binary.LittleEndian.Uint32(g[4:]),
			binary.LittleEndian.Uint64(g[8:]), int64(binary.LittleEndian.Uint64(g[16:])), string(g[1+leaseHeaderLen:])}
	}
	won := get()
	if won.state != LeaseWon || won.hasValue != 0 || won.cas == 0 {
		t.Fatalf("first GetLease: %+v", won)
	}
	if l := get(); l.state != LeaseBusy || l.hasValue != 0 {
		t.Fatalf("second GetLease: %+v", l)
	}
	if st := ReleaseLease(h, ka, kn, false, false, int64(won.cas), won.ttl); st != StatusOK {
		t.Fatalf("ReleaseLease: %d %s", st&0xff, ErrorDetail(st>>8))
	}
	if l := get(); l.state != LeaseWon {
		t.Fatalf("GetLease after release: %+v", l)
	}
	va, vn := pyMem(t, []byte("v"))
	if st := Store(h, OpSet, ka, kn, va, vn, 7, 100, 0); st != 0 {
		t.Fatalf("Store: %d", st)
	}
	if l := get(); l.state != LeaseHit || l.hasValue != 1 || l.flags != 7 || l.value != "v" || l.ttl <= 0 {
		t.Fatalf("GetLease of a stored value: %+v", l)
	}
	if st := Invalidate(h, ka, kn, 20); st != StatusOK {
		t.Fatalf("Invalidate: %d", st)
	}
	if l := get(); l.state != LeaseWon || l.stale != 1 || l.value != "v" {
		t.Fatalf("GetLease of a stale value: %+v", l)
	}
	ma, mn := pyMem(t, []byte("missing"))
	if st := Invalidate(h, ma, mn, 20); st != StatusMiss {
		t.Fatalf("Invalidate of a missing key: %d", st)
	}
	if g := GetLease(h, ka, kn, -1, 0); g[0] != StatusInvalidArgs {
		t.Fatalf("GetLease with a negative lock TTL: %q", g)
	}
	if st := Invalidate(h, ka, kn, 1<<32); st&0xff != StatusInvalidArgs {
		t.Fatalf("Invalidate with a TTL over 32 bits: %d", st)
	}
	if g := GetLease(987654, ka, kn, 30, 0); g[0] != StatusBadHandle {
		t.Fatalf("GetLease on a bad handle: %q", g)
	}
	if st := ReleaseLease(987654, ka, kn, false, false, 1, 1); st&0xff != StatusBadHandle {
		t.Fatalf("ReleaseLease on a bad handle: %d", st)
	}
}

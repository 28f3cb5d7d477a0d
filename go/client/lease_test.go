package client

import (
	"errors"
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/memcachedtest"
)

// leaseServers returns the address of a memcached and of an embedded
// server: the lease tests run against both.
func leaseServers(t *testing.T) map[string]string {
	t.Helper()
	s, err := memcachedtest.Start(memcachedtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return map[string]string{
		"memcached": mctest.Start(t, mctest.Options{}).Addr,
		"embedded":  s.Addr(),
	}
}

func eachLeaseServer(t *testing.T, f func(t *testing.T, c *Client)) {
	for name, addr := range leaseServers(t) {
		t.Run(name, func(t *testing.T) {
			f(t, newClientFor(t, []string{addr}, Options{}))
		})
	}
}

func mustLease(t *testing.T, c *Client, key string, lockTTL, recache uint32) *Lease {
	t.Helper()
	l, err := c.GetLease([]byte(key), lockTTL, recache)
	if err != nil {
		t.Fatalf("GetLease(%q): %v", key, err)
	}
	return l
}

func checkLease(t *testing.T, l *Lease, state LeaseState, value string, hasValue, stale bool) {
	t.Helper()
	if l.State != state || (l.Item != nil) != hasValue || l.Stale != stale {
		t.Fatalf("lease %v item %v stale %v; want %v, value %v, stale %v", l.State, l.Item, l.Stale, state, hasValue, stale)
	}
	if hasValue && string(l.Item.Value) != value {
		t.Fatalf("lease value %q, want %q", l.Item.Value, value)
	}
}

func TestLeaseMiss(t *testing.T) {
	eachLeaseServer(t, func(t *testing.T, c *Client) {
		won := mustLease(t, c, "k", 30, 0)
		checkLease(t, won, LeaseWon, "", false, false)
		busy := mustLease(t, c, "k", 30, 0)
		checkLease(t, busy, LeaseBusy, "", false, false)
		if busy.TTL <= 0 || busy.TTL > 30 {
			t.Fatalf("placeholder TTL %d, want 1..30", busy.TTL)
		}
		// A plain get sees the placeholder as a miss, in both paths.
		if _, err := c.Get([]byte("k")); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Get of a placeholder: %v, want ErrCacheMiss", err)
		}
		if found, errs := c.GetMulti([][]byte{[]byte("k")}); found[0] != nil || errs[0] != nil {
			t.Fatalf("GetMulti of a placeholder: %v, %v", found[0], errs[0])
		}
		// The winner's set ends the lease.
		mustSet(t, c, "k", "v")
		checkLease(t, mustLease(t, c, "k", 30, 0), LeaseHit, "v", true, false)
	})
}

func TestLeaseRelease(t *testing.T) {
	eachLeaseServer(t, func(t *testing.T, c *Client) {
		won := mustLease(t, c, "k", 30, 0)
		checkLease(t, won, LeaseWon, "", false, false)
		if err := c.ReleaseLease([]byte("k"), won); err != nil {
			t.Fatal(err)
		}
		again := mustLease(t, c, "k", 30, 0)
		checkLease(t, again, LeaseWon, "", false, false)
		// Releasing a lease that ended (another caller stored) leaves
		// the stored value alone.
		mustSet(t, c, "k", "v")
		if err := c.ReleaseLease([]byte("k"), again); err != nil {
			t.Fatal(err)
		}
		checkLease(t, mustLease(t, c, "k", 30, 0), LeaseHit, "v", true, false)
		// Releasing a hit or a busy lease does nothing.
		if err := c.ReleaseLease([]byte("k"), &Lease{State: LeaseBusy}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLeaseExpires(t *testing.T) {
	eachLeaseServer(t, func(t *testing.T, c *Client) {
		checkLease(t, mustLease(t, c, "k", 1, 0), LeaseWon, "", false, false)
		checkLease(t, mustLease(t, c, "k", 1, 0), LeaseBusy, "", false, false)
		// A winner that never stores: its placeholder expires after
		// lockTTL (memcached's clock ticks each second: up to 2 s).
		time.Sleep(2100 * time.Millisecond)
		checkLease(t, mustLease(t, c, "k", 1, 0), LeaseWon, "", false, false)
	})
}

func TestLeaseInvalidate(t *testing.T) {
	eachLeaseServer(t, func(t *testing.T, c *Client) {
		if err := c.Invalidate([]byte("missing"), 30); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Invalidate of a missing key: %v", err)
		}
		if err := c.Set(&Item{Key: []byte("k"), Value: []byte("old"), Expiration: 100}); err != nil {
			t.Fatal(err)
		}
		if err := c.Invalidate([]byte("k"), 30); err != nil {
			t.Fatal(err)
		}
		won := mustLease(t, c, "k", 10, 0)
		checkLease(t, won, LeaseWon, "old", true, true)
		if won.TTL <= 0 || won.TTL > 30 {
			t.Fatalf("stale TTL %d", won.TTL)
		}
		checkLease(t, mustLease(t, c, "k", 10, 0), LeaseBusy, "old", true, true)
		// A plain get returns the stale value.
		if it, err := c.Get([]byte("k")); err != nil || string(it.Value) != "old" {
			t.Fatalf("Get of a stale item: %v, %v", it, err)
		}
		// The winner gives up: the next caller wins the refresh.
		if err := c.ReleaseLease([]byte("k"), won); err != nil {
			t.Fatal(err)
		}
		checkLease(t, mustLease(t, c, "k", 10, 0), LeaseWon, "old", true, true)
		checkLease(t, mustLease(t, c, "k", 10, 0), LeaseBusy, "old", true, true)
		// A store ends staleness and the lease.
		mustSet(t, c, "k", "new")
		checkLease(t, mustLease(t, c, "k", 10, 0), LeaseHit, "new", true, false)
		// Invalidating twice hands the refresh out again.
		for i := 0; i < 2; i++ {
			if err := c.Invalidate([]byte("k"), 30); err != nil {
				t.Fatal(err)
			}
			checkLease(t, mustLease(t, c, "k", 10, 0), LeaseWon, "new", true, true)
		}
	})
}

func TestLeaseRecache(t *testing.T) {
	eachLeaseServer(t, func(t *testing.T, c *Client) {
		if err := c.Set(&Item{Key: []byte("k"), Value: []byte("v1"), Expiration: 100}); err != nil {
			t.Fatal(err)
		}
		if err := c.Set(&Item{Key: []byte("forever"), Value: []byte("f")}); err != nil {
			t.Fatal(err)
		}
		// 100 s left, over a 50 s threshold: a hit.
		checkLease(t, mustLease(t, c, "k", 10, 50), LeaseHit, "v1", true, false)
		// Under 200 s: one caller wins the early refresh, the others
		// are served the current value.
		won := mustLease(t, c, "k", 10, 200)
		checkLease(t, won, LeaseWon, "v1", true, false)
		checkLease(t, mustLease(t, c, "k", 10, 200), LeaseBusy, "v1", true, false)
		// Releasing an early refresh does nothing: still busy.
		if err := c.ReleaseLease([]byte("k"), won); err != nil {
			t.Fatal(err)
		}
		checkLease(t, mustLease(t, c, "k", 10, 200), LeaseBusy, "v1", true, false)
		if err := c.Set(&Item{Key: []byte("k"), Value: []byte("v2"), Expiration: 100}); err != nil {
			t.Fatal(err)
		}
		checkLease(t, mustLease(t, c, "k", 10, 200), LeaseWon, "v2", true, false)
		// An item that never expires is never refreshed early.
		checkLease(t, mustLease(t, c, "forever", 10, 200), LeaseHit, "f", true, false)
	})
}

func TestLeaseDeleteEndsLease(t *testing.T) {
	eachLeaseServer(t, func(t *testing.T, c *Client) {
		checkLease(t, mustLease(t, c, "k", 30, 0), LeaseWon, "", false, false)
		if err := c.Delete([]byte("k")); err != nil {
			t.Fatal(err)
		}
		checkLease(t, mustLease(t, c, "k", 30, 0), LeaseWon, "", false, false)
	})
}

func TestLeaseNotSupported(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{})
	for _, p := range []string{"text", "binary"} {
		c := newClientFor(t, []string{srv.Addr}, Options{Protocol: p})
		if _, err := c.GetLease([]byte("k"), 30, 0); !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s GetLease: %v", p, err)
		}
		if err := c.Invalidate([]byte("k"), 30); !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s Invalidate: %v", p, err)
		}
		if err := c.ReleaseLease([]byte("k"), &Lease{State: LeaseWon}); !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s ReleaseLease: %v", p, err)
		}
	}
	c := newClientFor(t, []string{srv.Addr}, Options{})
	if _, err := c.GetLease([]byte("a b"), 30, 0); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("GetLease of a bad key: %v", err)
	}
}

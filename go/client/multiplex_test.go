package client

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
)

// Each server of one multi-key call keeps its own outcome and its own
// deadline: stalled servers time out, a corrupt one is a protocol error, a
// slow one (under the timeout) answers, a healthy one answers, and the
// call takes about one IOTimeout, not one per stalled server.
func TestMultiServersFailIndependently(t *testing.T) {
	const ioTimeout = 500 * time.Millisecond
	servers := embedded(t, 5)
	c := newClientFor(t, addrsOf(servers), Options{IOTimeout: ioTimeout, FailureLimit: 10})
	sel := Modula{N: 5}
	var keys [][]byte
	for si := 0; si < 5; si++ {
		keys = append(keys, keysOn(sel, si, 5)...)
	}
	for i, err := range c.SetMulti(itemsFor(keys, "v")) {
		if err != nil {
			t.Fatalf("SetMulti %d: %v", i, err)
		}
	}
	faults := []string{"stall", "corrupt", "stall", "delay=100ms", ""}
	for si, f := range faults {
		if f != "" {
			if err := servers[si].SetFaultString(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := time.Now()
	items, errs := c.GetMulti(keys)
	took := time.Since(start)
	want := []error{ErrTimeout, ErrProtocol, ErrTimeout, nil, nil}
	for i, k := range keys {
		si := sel.Pick(k)
		if w := want[si]; w == nil {
			if errs[i] != nil || items[i] == nil || string(items[i].Value) != "v" {
				t.Errorf("key %q on server %d (%s): %+v %v", k, si, faults[si], items[i], errs[i])
			}
		} else if !errors.Is(errs[i], w) || items[i] != nil {
			t.Errorf("key %q on server %d (%s): %+v %v, want %v", k, si, faults[si], items[i], errs[i], w)
		}
	}
	// One IOTimeout (an exact lower bound), not one per stalled server
	// (2x): the upper bound leaves 450 ms, most of a second IOTimeout, as
	// room for -race on a loaded machine.
	if took < ioTimeout || took > 2*ioTimeout-50*time.Millisecond {
		t.Errorf("call took %v with an I/O timeout of %v", took, ioTimeout)
	}
	h := c.Health()
	for si, w := range want {
		if failing := h[si].State != Healthy; failing != (w != nil) {
			t.Errorf("server %d (%s): health %v", si, faults[si], h[si].State)
		}
	}
}

// Pooled connections that every server closed while idle (a restart of
// all of them) are replaced within the call: nothing fails.
func TestMultiReplacesStalePooledConnections(t *testing.T) {
	servers := embedded(t, 3)
	addrs := addrsOf(servers)
	c := newClientFor(t, addrs, Options{})
	var keys [][]byte
	for si := 0; si < 3; si++ {
		keys = append(keys, keysOn(Modula{N: 3}, si, 4)...)
	}
	for i, err := range c.SetMulti(itemsFor(keys, "before")) {
		if err != nil {
			t.Fatalf("SetMulti %d: %v", i, err)
		}
	}
	for i, s := range servers {
		s.Close()
		servers[i] = restart(t, addrs[i])
	}
	time.Sleep(20 * time.Millisecond) // for the FINs to reach the pooled sockets
	for i, err := range c.SetMulti(itemsFor(keys, "after")) {
		if err != nil {
			t.Fatalf("SetMulti after the restarts, entry %d: %v", i, err)
		}
	}
	items, errs := c.GetMulti(keys)
	for i := range keys {
		if errs[i] != nil || string(items[i].Value) != "after" {
			t.Fatalf("GetMulti entry %d: %+v %v", i, items[i], errs[i])
		}
	}
}

// Large values on several servers at once: each server's request is
// megabytes (partial writes resumed on POLLOUT, read while written) and
// each large answer is read into a buffer of its own.
func TestMultiLargeValuesOverServers(t *testing.T) {
	var addrs []string
	for i := 0; i < 3; i++ {
		addrs = append(addrs, mctest.Start(t, mctest.Options{Args: []string{"-I", "2m", "-m", "64"}}).Addr)
	}
	c := newClientFor(t, addrs, Options{MaxItemSize: 2 << 20, IOTimeout: 5 * time.Second})
	var items []*Item
	var keys [][]byte
	for si := 0; si < 3; si++ {
		for j, k := range keysOn(Modula{N: 3}, si, 6) {
			size := 100
			if j%2 == 0 {
				size = 1<<20 + j
			}
			v := make([]byte, size)
			for x := range v {
				v[x] = byte(x*31 + si + j)
			}
			items = append(items, &Item{Key: k, Value: v, Flags: uint32(j)})
			keys = append(keys, k)
		}
	}
	for i, err := range c.SetMulti(items) {
		if err != nil {
			t.Fatalf("SetMulti %d: %v", i, err)
		}
	}
	got, errs := c.GetMulti(keys)
	for i := range keys {
		if errs[i] != nil || !bytes.Equal(got[i].Value, items[i].Value) || got[i].Flags != items[i].Flags {
			t.Fatalf("GetMulti %d: %v", i, errs[i])
		}
	}
}

// Once every server has an idle connection, a GetMulti over several
// servers allocates its results and nothing else: no goroutines, no
// per-server or per-key bookkeeping.
func TestGetMultiAllocatesOnlyItsResults(t *testing.T) {
	c, keys, items := threeServerItems(t, 100, func(i int) *Item {
		return &Item{Key: []byte(fmt.Sprintf("alloc-%d", i)), Value: bytes.Repeat([]byte{'x'}, 100)}
	})
	for _, err := range c.SetMulti(items) {
		if err != nil {
			t.Fatal(err)
		}
	}
	var errs []error
	allocs := testing.AllocsPerRun(50, func() { _, errs = c.GetMulti(keys) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	// The items, their slab, the errors and one chunk for the values.
	if allocs > 4 {
		t.Errorf("GetMulti of 100 keys over 3 servers: %v allocations", allocs)
	}
}

// GetMultiReuse gives GetMulti's results and, once its MultiGet has grown,
// allocates nothing; a second call overwrites the first one's results.
func TestGetMultiReuseAllocatesNothing(t *testing.T) {
	c, keys, items := threeServerItems(t, 100, func(i int) *Item {
		return &Item{Key: []byte(fmt.Sprintf("reuse-%d", i)), Value: []byte(fmt.Sprintf("value-%d", i)), Flags: uint32(i)}
	})
	for _, err := range c.SetMulti(items[:90]) { // the last 10 keys miss
		if err != nil {
			t.Fatal(err)
		}
	}
	var m MultiGet
	check := func(keys [][]byte, hits int) {
		t.Helper()
		if len(m.Found) != len(keys) || len(m.Errs) != len(keys) {
			t.Fatalf("%d found, %d errs for %d keys", len(m.Found), len(m.Errs), len(keys))
		}
		for i := range keys {
			switch {
			case i < hits && (m.Errs[i] != nil || m.Found[i] == nil ||
				string(m.Found[i].Value) != fmt.Sprintf("value-%d", i) || m.Found[i].Flags != uint32(i)):
				t.Fatalf("hit %d: %+v, %v", i, m.Found[i], m.Errs[i])
			case i >= hits && (!errors.Is(m.Errs[i], ErrCacheMiss) || m.Found[i] != nil):
				t.Fatalf("miss %d: %+v, %v", i, m.Found[i], m.Errs[i])
			}
		}
	}
	c.GetMultiReuse(&m, keys, false, 0)
	check(keys, 90)
	// Fewer keys, all misses: nothing of the first call's hits is left.
	misses := keys[90:]
	c.GetMultiReuse(&m, misses, false, 0)
	for i := range misses {
		if m.Found[i] != nil || !errors.Is(m.Errs[i], ErrCacheMiss) {
			t.Fatalf("entry %d after reuse: %+v, %v", i, m.Found[i], m.Errs[i])
		}
	}
	allocs := testing.AllocsPerRun(50, func() { c.GetMultiReuse(&m, keys, false, 0) })
	check(keys, 90)
	if allocs > 0 {
		t.Errorf("GetMultiReuse of 100 keys over 3 servers: %v allocations", allocs)
	}
	if m.Retained() <= 0 {
		t.Errorf("Retained() = %d", m.Retained())
	}
}

// threeServerItems starts three memcacheds and returns a client for them
// and n items made by item (not stored), with their keys.
func threeServerItems(t *testing.T, n int, item func(i int) *Item) (*Client, [][]byte, []*Item) {
	t.Helper()
	var addrs []string
	for i := 0; i < 3; i++ {
		addrs = append(addrs, mctest.Start(t, mctest.Options{}).Addr)
	}
	c := newClientFor(t, addrs, Options{})
	keys := make([][]byte, n)
	items := make([]*Item, n)
	for i := range items {
		items[i] = item(i)
		keys[i] = items[i].Key
	}
	return c, keys, items
}

package client

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/omcache/omcache/go/internal/mctest"
)

// threeServers returns a client for two live memcacheds and one address
// that refuses connections (index 2), and keys spread over all three.
func threeServers(t *testing.T, nkeys int) (*Client, [][]byte) {
	t.Helper()
	a := mctest.Start(t, mctest.Options{})
	b := mctest.Start(t, mctest.Options{})
	c := newClientFor(t, []string{a.Addr, b.Addr, mctest.RefusedAddr(t)}, Options{})
	keys := make([][]byte, nkeys)
	per := make([]int, 3)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key-%d", i))
		per[c.selector.Pick(keys[i])]++
	}
	for si, n := range per {
		if n == 0 {
			t.Fatalf("no key on server %d: %v", si, per)
		}
	}
	return c, keys
}

// checkDeadServerErrors checks errs[i] is a refused connection exactly for
// the keys on server 2, and passes the other errors to live.
func checkDeadServerErrors(t *testing.T, c *Client, keys [][]byte, errs []error, live func(i int, err error)) {
	t.Helper()
	if len(errs) != len(keys) {
		t.Fatalf("%d errors for %d keys", len(errs), len(keys))
	}
	for i, err := range errs {
		if c.selector.Pick(keys[i]) == 2 {
			if !errors.Is(err, ErrConnection) || !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("key %q on the dead server: %v", keys[i], err)
			}
			continue
		}
		live(i, err)
	}
}

func TestMultiWithDeadServer(t *testing.T) {
	c, keys := threeServers(t, 30)
	items := make([]*Item, len(keys))
	for i, k := range keys {
		items[i] = &Item{Key: k, Value: []byte("value of " + string(k)), Flags: uint32(i)}
	}
	checkDeadServerErrors(t, c, keys, c.SetMulti(items), func(i int, err error) {
		if err != nil {
			t.Errorf("SetMulti %q: %v", keys[i], err)
		}
	})
	got, errs := c.GetMulti(keys)
	checkDeadServerErrors(t, c, keys, errs, func(i int, err error) {
		if err != nil || got[i] == nil || !bytes.Equal(got[i].Value, items[i].Value) || got[i].Flags != uint32(i) || got[i].CAS == 0 {
			t.Errorf("GetMulti %q: %+v %v", keys[i], got[i], err)
		}
	})
	for i := range keys {
		if c.selector.Pick(keys[i]) == 2 && got[i] != nil {
			t.Errorf("item for a key on the dead server: %+v", got[i])
		}
	}
	// Delete half, then delete all: the second pass reports the first
	// half as misses.
	checkDeadServerErrors(t, c, keys[:15], c.DeleteMulti(keys[:15]), func(i int, err error) {
		if err != nil {
			t.Errorf("DeleteMulti %q: %v", keys[i], err)
		}
	})
	checkDeadServerErrors(t, c, keys, c.DeleteMulti(keys), func(i int, err error) {
		if i < 15 && !errors.Is(err, ErrCacheMiss) || i >= 15 && err != nil {
			t.Errorf("second DeleteMulti %q: %v", keys[i], err)
		}
	})
	_, errs = c.GetMulti(keys)
	checkDeadServerErrors(t, c, keys, errs, func(i int, err error) {
		if !errors.Is(err, ErrCacheMiss) {
			t.Errorf("GetMulti after delete %q: %v", keys[i], err)
		}
	})
}

func TestGetMultiMixedResults(t *testing.T) {
	c, keys := threeServers(t, 12)
	live := func(k []byte) bool { return c.selector.Pick(k) != 2 }
	var hit, miss []byte
	for _, k := range keys {
		if live(k) && hit == nil {
			hit = k
		} else if live(k) && miss == nil {
			miss = k
		}
	}
	mustSet(t, c, string(hit), "h")
	req := [][]byte{hit, []byte("bad key"), miss, hit, nil, bytes.Repeat([]byte("x"), 251)}
	items, errs := c.GetMulti(req)
	want := []error{nil, ErrMalformedKey, ErrCacheMiss, nil, ErrMalformedKey, ErrMalformedKey}
	for i := range req {
		if !errors.Is(errs[i], want[i]) || (want[i] == nil) != (errs[i] == nil) {
			t.Errorf("entry %d (%q): %v, want %v", i, req[i], errs[i], want[i])
		}
		if (items[i] != nil) != (want[i] == nil) {
			t.Errorf("entry %d: item %+v with error %v", i, items[i], errs[i])
		}
	}
	if items[0] == items[3] || string(items[3].Value) != "h" {
		t.Errorf("duplicate key must get its own item: %p %p", items[0], items[3])
	}
	if items, errs := c.GetMulti(nil); len(items) != 0 || len(errs) != 0 {
		t.Errorf("GetMulti(nil): %v %v", items, errs)
	}
}

func TestSetMultiPerItemErrors(t *testing.T) {
	c, _ := newTestClient(t)
	mustSet(t, c, "cas", "v")
	it, err := c.Gets([]byte("cas"))
	if err != nil {
		t.Fatal(err)
	}
	items := []*Item{
		{Key: []byte("a"), Value: []byte("1")},
		nil,
		{Key: []byte("cas"), Value: []byte("x"), CAS: it.CAS + 1000},
		{Key: []byte("bad key")},
		{Key: []byte("gone"), Value: []byte("x"), CAS: 77},
		{Key: []byte("cas"), Value: []byte("y"), CAS: it.CAS},
		{Key: []byte("b"), Value: []byte("2"), Flags: 9, Expiration: 100},
	}
	errs := c.SetMulti(items)
	want := []error{nil, ErrInvalidArguments, ErrKeyExists, ErrMalformedKey, ErrCacheMiss, nil, nil}
	for i := range items {
		if !errors.Is(errs[i], want[i]) || (want[i] == nil) != (errs[i] == nil) {
			t.Errorf("item %d: %v, want %v", i, errs[i], want[i])
		}
	}
	got, gerrs := c.GetMulti([][]byte{[]byte("a"), []byte("cas"), []byte("b"), []byte("gone")})
	if gerrs[0] != nil || string(got[0].Value) != "1" || string(got[1].Value) != "y" || got[2].Flags != 9 || !errors.Is(gerrs[3], ErrCacheMiss) {
		t.Errorf("after SetMulti: %+v %v", got, gerrs)
	}
}

func TestLargeBatches(t *testing.T) {
	// 20 MB of responses to 200 KB of requests on one connection: more than
	// socket buffers hold, so this only finishes if the client reads while
	// it writes.
	c, _ := newTestClient(t, "-m", "128")
	const n = 10000
	keys := make([][]byte, n)
	items := make([]*Item, n)
	value := bytes.Repeat([]byte("v"), 2000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("k%d", i))
		items[i] = &Item{Key: keys[i], Value: value}
	}
	for i, err := range c.SetMulti(items) {
		if err != nil {
			t.Fatalf("SetMulti %d: %v", i, err)
		}
	}
	got, errs := c.GetMulti(keys)
	for i := range keys {
		if errs[i] != nil || len(got[i].Value) != len(value) {
			t.Fatalf("GetMulti %d: %v", i, errs[i])
		}
	}
	for i, err := range c.DeleteMulti(keys) {
		if err != nil {
			t.Fatalf("DeleteMulti %d: %v", i, err)
		}
	}
}

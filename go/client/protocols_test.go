package client

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/memcachedtest"
	"github.com/omcache/omcache/go/proto/codecs"
)

// backend is a pair of servers of one kind for the per-protocol tests:
// Debian's memcached, or the embedded memcachedtest server.
type backend struct {
	name    string
	addrs   []string
	version string // what "version" reports
}

// protocolItemSize is the servers' item size limit (-I): 1 MiB values fit.
const protocolItemSize = 2 << 20

// backends starts two memcacheds and two embedded servers, all with a
// 2 MiB item size limit.
func backends(t *testing.T) []backend {
	t.Helper()
	real := backend{name: "memcached"}
	for i := 0; i < 2; i++ {
		real.addrs = append(real.addrs, mctest.Start(t, mctest.Options{Args: []string{"-I", "2m"}}).Addr)
	}
	emb := backend{name: "embedded", version: memcachedtest.DefaultVersion}
	for i := 0; i < 2; i++ {
		s, err := memcachedtest.Start(memcachedtest.Config{ItemSizeMax: protocolItemSize})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		emb.addrs = append(emb.addrs, s.Addr())
	}
	return []backend{real, emb}
}

// eachProtocol runs f for every protocol against every backend, with a
// client for both servers of the backend (multi-key calls then drive two
// servers at once) and one for the first server only (one server: the
// single-connection path).
func eachProtocol(t *testing.T, f func(t *testing.T, be backend, protocol string, two, one *Client)) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			for _, p := range codecs.Names() {
				t.Run(p, func(t *testing.T) {
					opts := Options{Protocol: p, MaxItemSize: protocolItemSize}
					two := newClientFor(t, be.addrs, opts)
					one := newClientFor(t, be.addrs[:1], opts)
					if errs := two.FlushAll(0); errs[0] != nil || errs[1] != nil {
						t.Fatalf("FlushAll: %v", errs)
					}
					if two.Protocol() != p {
						t.Fatalf("Protocol() = %q, want %q", two.Protocol(), p)
					}
					f(t, be, p, two, one)
				})
			}
		})
	}
}

func TestProtocolSingleKeyCommands(t *testing.T) {
	eachProtocol(t, func(t *testing.T, be backend, protocol string, c, _ *Client) {
		k := func(s string) []byte { return []byte(s) }
		if _, err := c.Get(k("k")); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Get missing: %v", err)
		}
		if err := c.Set(&Item{Key: k("k"), Value: k("v1"), Flags: 0xdeadbeef}); err != nil {
			t.Fatal(err)
		}
		it, err := c.Get(k("k"))
		if err != nil || string(it.Value) != "v1" || it.Flags != 0xdeadbeef || it.CAS == 0 || string(it.Key) != "k" {
			t.Fatalf("Get: %+v %v", it, err)
		}
		if it2, err := c.Gets(k("k")); err != nil || it2.CAS != it.CAS || string(it2.Value) != "v1" {
			t.Fatalf("Gets: %+v %v", it2, err)
		}

		// Conditional stores.
		conds := []struct {
			name string
			run  func() error
			want error
		}{
			{"add existing", func() error { return c.Add(&Item{Key: k("k"), Value: k("x")}) }, ErrNotStored},
			{"add new", func() error { return c.Add(&Item{Key: k("added"), Value: k("a"), Flags: 3}) }, nil},
			{"replace missing", func() error { return c.Replace(&Item{Key: k("nope"), Value: k("x")}) }, ErrNotStored},
			{"replace existing", func() error { return c.Replace(&Item{Key: k("added"), Value: k("mid"), Flags: 7}) }, nil},
			{"append missing", func() error { return c.Append(&Item{Key: k("nope"), Value: k("x")}) }, ErrNotStored},
			{"prepend missing", func() error { return c.Prepend(&Item{Key: k("nope"), Value: k("x")}) }, ErrNotStored},
			{"append", func() error { return c.Append(&Item{Key: k("added"), Value: k(">>"), Flags: 99}) }, nil},
			{"prepend", func() error { return c.Prepend(&Item{Key: k("added"), Value: k("<<"), Flags: 99}) }, nil},
			{"cas on missing key", func() error { return c.Set(&Item{Key: k("nope"), Value: k("x"), CAS: 42}) }, ErrCacheMiss},
			{"replace cas on missing key", func() error { return c.Replace(&Item{Key: k("nope"), Value: k("x"), CAS: 42}) }, ErrCacheMiss},
		}
		for _, tt := range conds {
			if err := tt.run(); !errors.Is(err, tt.want) || tt.want == nil && err != nil {
				t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
			}
		}
		if it, err := c.Get(k("added")); err != nil || string(it.Value) != "<<mid>>" || it.Flags != 7 {
			t.Fatalf("after replace, append and prepend: %+v %v", it, err)
		}
		if _, err := c.Get(k("nope")); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("a failed store created the key: %v", err)
		}

		// Compare and swap.
		stale := it.CAS
		if err := c.Set(&Item{Key: k("k"), Value: k("v2"), CAS: stale}); err != nil {
			t.Fatalf("cas with the current id: %v", err)
		}
		if err := c.Set(&Item{Key: k("k"), Value: k("v3"), CAS: stale}); !errors.Is(err, ErrKeyExists) {
			t.Fatalf("cas mismatch: %v", err)
		}
		if err := c.Replace(&Item{Key: k("k"), Value: k("v3"), CAS: stale}); !errors.Is(err, ErrKeyExists) {
			t.Fatalf("replace cas mismatch: %v", err)
		}
		for name, op := range map[string]func(*Item) error{"append": c.Append, "prepend": c.Prepend} {
			err := op(&Item{Key: k("k"), Value: k("x"), CAS: stale})
			if protocol == "text" {
				// "append" has no CAS form in the text protocol.
				if !errors.Is(err, ErrNotSupported) {
					t.Errorf("text %s with a CAS: %v", name, err)
				}
			} else if !errors.Is(err, ErrKeyExists) {
				t.Errorf("stale cas on %s: %v", name, err)
			}
		}
		if got, err := c.Get(k("k")); err != nil || string(got.Value) != "v2" {
			t.Fatalf("value after failed cas: %+v %v", got, err)
		}

		// Delete.
		if err := c.Delete(k("k")); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(k("k")); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("second Delete: %v", err)
		}
		if _, err := c.Get(k("k")); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Get deleted: %v", err)
		}

		// Touch and get-and-touch.
		if err := c.Touch(k("nope"), 100); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Touch missing: %v", err)
		}
		if err := c.Touch(k("added"), 100); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		if it, err := c.Gat(k("added"), 200); err != nil || string(it.Value) != "<<mid>>" || it.Flags != 7 || it.CAS == 0 {
			t.Fatalf("Gat: %+v %v", it, err)
		}
		if _, err := c.Gat(k("nope"), 100); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Gat missing: %v", err)
		}

		// An empty value.
		if err := c.Set(&Item{Key: k("empty"), Flags: 5}); err != nil {
			t.Fatal(err)
		}
		if it, err := c.Get(k("empty")); err != nil || it.Value == nil || len(it.Value) != 0 || it.Flags != 5 {
			t.Fatalf("empty value: %+v %v", it, err)
		}
	})
}

func TestProtocolIncrDecr(t *testing.T) {
	eachProtocol(t, func(t *testing.T, be backend, protocol string, c, _ *Client) {
		key := func(s string) []byte { return []byte(s) }
		if _, err := c.Incr(key("missing"), 1, 5, 0, false); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("incr without create: %v", err)
		}
		if _, err := c.Decr(key("missing"), 1, 5, 0, false); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("decr without create: %v", err)
		}
		if _, err := c.Get(key("missing")); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("do-not-create created the key: %v", err)
		}
		tests := []struct {
			name string
			run  func() (uint64, error)
			want uint64
		}{
			{"incr create with initial", func() (uint64, error) { return c.Incr(key("n"), 10, 5, 0, true) }, 5},
			{"incr", func() (uint64, error) { return c.Incr(key("n"), 10, 5, 0, true) }, 15},
			{"decr", func() (uint64, error) { return c.Decr(key("n"), 3, 0, 0, false) }, 12},
			{"decr clamps at zero", func() (uint64, error) { return c.Decr(key("n"), 100, 0, 0, false) }, 0},
			{"decr create", func() (uint64, error) { return c.Decr(key("d"), 1, 7, 0, true) }, 7},
			{"incr to max", func() (uint64, error) { return c.Incr(key("w"), math.MaxUint64-1, 1, 0, true) }, 1},
			{"incr max", func() (uint64, error) { return c.Incr(key("w"), math.MaxUint64-1, 0, 0, false) }, math.MaxUint64},
			{"incr wraps at 2**64", func() (uint64, error) { return c.Incr(key("w"), 3, 0, 0, false) }, 2},
		}
		for _, tt := range tests {
			if got, err := tt.run(); err != nil || got != tt.want {
				t.Errorf("%s: got %d, %v; want %d", tt.name, got, err, tt.want)
			}
		}
		// memcached rewrites a shrinking counter in place, padding with
		// spaces.
		if it, err := c.Get(key("w")); err != nil || strings.TrimRight(string(it.Value), " ") != "2" {
			t.Errorf("stored counter: %q %v", it.Value, err)
		}
		mustSet(t, c, "text", "abc")
		if _, err := c.Incr(key("text"), 1, 0, 0, false); !errors.Is(err, ErrDeltaBadValue) {
			t.Errorf("incr non-numeric: %v", err)
		}
		if _, err := c.Decr(key("text"), 1, 0, 0, true); !errors.Is(err, ErrDeltaBadValue) {
			t.Errorf("decr non-numeric: %v", err)
		}
		// The connection is still in step after the errors.
		if v, err := c.Incr(key("n"), 1, 0, 0, false); err != nil || v != 1 {
			t.Errorf("incr after the errors: %d %v", v, err)
		}
	})
}

func TestProtocolServerCommands(t *testing.T) {
	eachProtocol(t, func(t *testing.T, be backend, protocol string, c, _ *Client) {
		for i, err := range c.Noop() {
			if err != nil {
				t.Errorf("Noop server %d: %v", i, err)
			}
		}
		versions, errs := c.Version()
		for i := range versions {
			if errs[i] != nil || versions[i] == "" || be.version != "" && versions[i] != be.version {
				t.Errorf("Version server %d: %q %v", i, versions[i], errs[i])
			}
		}
		stats, errs := c.Stats("")
		for i := range stats {
			if errs[i] != nil || stats[i]["pid"] == "" || stats[i]["version"] != versions[i] {
				t.Errorf("Stats server %d: %d stats, pid %q, version %q, %v", i, len(stats[i]), stats[i]["pid"], stats[i]["version"], errs[i])
			}
		}
		settings, errs := c.Stats("settings")
		for i := range settings {
			if errs[i] != nil || settings[i]["item_size_max"] != fmt.Sprint(protocolItemSize) {
				t.Errorf("Stats settings server %d: item_size_max %q, %v", i, settings[i]["item_size_max"], errs[i])
			}
		}
		if _, errs := c.Stats("no-such-group"); !errors.Is(errs[0], ErrServerError) || !errors.Is(errs[1], ErrServerError) {
			t.Errorf("Stats of an unknown group: %v", errs)
		}
		for _, level := range []uint32{1, 0} {
			for i, err := range c.Verbosity(level) {
				// memcached 1.6.18 has no binary VERBOSITY: it answers
				// "Unknown command" only after swallowing 4 bytes more
				// than the packet (the next request), so a client that
				// sends one times out. The binary client must refuse it.
				if protocol == "binary" && !errors.Is(err, ErrNotSupported) || protocol != "binary" && err != nil {
					t.Errorf("Verbosity(%d) server %d: %v", level, i, err)
				}
			}
		}
		// Everything above left the connections in step.
		mustSet(t, c, "after", "v")
		for i, err := range c.FlushAll(0) {
			if err != nil {
				t.Errorf("FlushAll server %d: %v", i, err)
			}
		}
		if _, err := c.Get([]byte("after")); !errors.Is(err, ErrCacheMiss) {
			t.Errorf("Get after FlushAll: %v", err)
		}
		// A delayed flush leaves the items for now.
		mustSet(t, c, "after", "v")
		for i, err := range c.FlushAll(100) {
			if err != nil {
				t.Errorf("FlushAll(100) server %d: %v", i, err)
			}
		}
		if _, err := c.Get([]byte("after")); err != nil {
			t.Errorf("Get after a delayed FlushAll: %v", err)
		}
	})
}

func TestProtocolGetMeta(t *testing.T) {
	eachProtocol(t, func(t *testing.T, be backend, protocol string, c, _ *Client) {
		if err := c.Set(&Item{Key: []byte("m"), Value: []byte("12345"), Flags: 4, Expiration: 1000}); err != nil {
			t.Fatal(err)
		}
		it, m, err := c.GetMeta([]byte("m"), true)
		if protocol != "meta" {
			if !errors.Is(err, ErrNotSupported) || it != nil || m != nil {
				t.Fatalf("GetMeta in %s: %+v %+v %v", protocol, it, m, err)
			}
			return
		}
		if err != nil || string(it.Value) != "12345" || it.Flags != 4 || it.CAS == 0 {
			t.Fatalf("GetMeta: %+v %v", it, err)
		}
		if m.TTL <= 0 || m.TTL > 1000 || m.Size != 5 || m.Fetched || m.LastAccess < 0 {
			t.Fatalf("first GetMeta: %+v", m)
		}
		// The first read bumped the item: fetched now.
		if _, m, err = c.GetMeta([]byte("m"), false); err != nil || !m.Fetched {
			t.Fatalf("second GetMeta: %+v %v", m, err)
		}
		mustSet(t, c, "forever", "x")
		if _, m, err = c.GetMeta([]byte("forever"), false); err != nil || m.TTL != -1 {
			t.Fatalf("GetMeta of an item without expiry: %+v %v", m, err)
		}
		// Without bump the item stays unfetched.
		if _, m, err = c.GetMeta([]byte("forever"), false); err != nil || m.Fetched {
			t.Fatalf("GetMeta after a read without bump: %+v %v", m, err)
		}
		if _, _, err := c.GetMeta([]byte("nope"), true); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("GetMeta missing: %v", err)
		}
	})
}

// valueOf returns a value of n bytes that tells keys apart.
func valueOf(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31+i>>9) ^ seed
	}
	return b
}

func TestProtocolLargeValues(t *testing.T) {
	sizes := []int{LargeValue - 1, LargeValue, LargeValue + 1, 300 << 10, 1 << 20}
	eachProtocol(t, func(t *testing.T, be backend, protocol string, two, one *Client) {
		for _, c := range []*Client{one, two} {
			var items []*Item
			var keys [][]byte
			for i, n := range sizes {
				k := []byte(fmt.Sprintf("large-%d-%d", c.NumServers(), n))
				v := valueOf(n, byte(i))
				if err := c.Set(&Item{Key: k, Value: v, Flags: uint32(n)}); err != nil {
					t.Fatalf("Set %d bytes: %v", n, err)
				}
				it, err := c.Get(k)
				if err != nil || !bytes.Equal(it.Value, v) || it.Flags != uint32(n) {
					t.Fatalf("Get %d bytes: %v", n, err)
				}
				ReleaseValue(it.Value) // the next large value may reuse it
				items = append(items, &Item{Key: append(k, 'm'), Value: v, Flags: uint32(i)})
				keys = append(keys, append(k, 'm'), []byte("small"))
			}
			items = append(items, &Item{Key: []byte("small"), Value: []byte("s")})
			for i, err := range c.SetMulti(items) {
				if err != nil {
					t.Fatalf("SetMulti %q: %v", items[i].Key, err)
				}
			}
			got, errs := c.GetMulti(keys)
			for i := range keys {
				want := []byte("s")
				if i%2 == 0 {
					want = items[i/2].Value
				}
				if errs[i] != nil || !bytes.Equal(got[i].Value, want) {
					t.Fatalf("GetMulti %q: %v", keys[i], errs[i])
				}
			}
			got, errs = c.GatMulti(keys[:4], 100)
			if errs[0] != nil || !bytes.Equal(got[0].Value, items[0].Value) || errs[3] != nil || string(got[3].Value) != "s" {
				t.Fatalf("GatMulti: %v", errs)
			}
		}
	})
}

func TestProtocolMultiCommands(t *testing.T) {
	eachProtocol(t, func(t *testing.T, be backend, protocol string, two, one *Client) {
		for _, c := range []*Client{one, two} {
			testProtocolMulti(t, protocol, c)
		}
	})
}

func testProtocolMulti(t *testing.T, protocol string, c *Client) {
	t.Helper()
	c.FlushAll(0)
	var items []*Item
	var keys [][]byte
	for i := 0; i < 40; i++ {
		k := []byte(fmt.Sprintf("multi-%d", i))
		keys = append(keys, k)
		if i%3 != 0 { // a third are misses
			items = append(items, &Item{Key: k, Value: valueOf(i, byte(i)), Flags: uint32(100 + i)})
		}
	}
	for i, err := range c.SetMulti(items) {
		if err != nil {
			t.Fatalf("SetMulti %q: %v", items[i].Key, err)
		}
	}
	stored := map[string]*Item{}
	for _, it := range items {
		stored[string(it.Key)] = it
	}
	keys = append(keys, []byte("bad key"), keys[1], keys[2], bytes.Repeat([]byte("k"), 251), nil)
	check := func(name string, got []*Item, errs []error) {
		t.Helper()
		if len(got) != len(keys) || len(errs) != len(keys) {
			t.Fatalf("%s: %d items, %d errors for %d keys", name, len(got), len(errs), len(keys))
		}
		for i, k := range keys {
			want := stored[string(k)]
			switch {
			case len(k) == 0 || len(k) > 250 || bytes.IndexByte(k, ' ') >= 0:
				if !errors.Is(errs[i], ErrMalformedKey) || got[i] != nil {
					t.Errorf("%s %q: %+v %v, want ErrMalformedKey", name, k, got[i], errs[i])
				}
			case want == nil:
				if !errors.Is(errs[i], ErrCacheMiss) || got[i] != nil {
					t.Errorf("%s %q: %+v %v, want a miss", name, k, got[i], errs[i])
				}
			default:
				if errs[i] != nil || got[i] == nil || !bytes.Equal(got[i].Value, want.Value) || got[i].Flags != want.Flags ||
					got[i].CAS == 0 || !bytes.Equal(got[i].Key, k) {
					t.Errorf("%s %q: %+v %v, want %+v", name, k, got[i], errs[i], want)
				}
			}
		}
	}
	got, errs := c.GetMulti(keys)
	check("GetMulti", got, errs)
	got, errs = c.GatMulti(keys, 100)
	check("GatMulti", got, errs)
	var m MultiGet
	for round := 0; round < 2; round++ {
		c.GetMultiReuse(&m, keys, false, 0)
		check("GetMultiReuse", m.Found, m.Errs)
	}

	// Per-entry failures of SetMulti: a stale CAS, a CAS on a missing key,
	// a malformed key, a nil item, all among successes.
	cur, err := c.Get(keys[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(&Item{Key: keys[1], Value: []byte("changed")}); err != nil {
		t.Fatal(err)
	}
	batch := []*Item{
		{Key: keys[2], Value: []byte("ok2")},
		{Key: keys[1], Value: []byte("lost"), CAS: cur.CAS},
		{Key: []byte("gone"), Value: []byte("x"), CAS: 12345},
		{Key: []byte("bad key"), Value: []byte("x")},
		nil,
		{Key: keys[4], Value: []byte("ok4")},
	}
	wantErrs := []error{nil, ErrKeyExists, ErrCacheMiss, ErrMalformedKey, ErrInvalidArguments, nil}
	for i, err := range c.SetMulti(batch) {
		if !errors.Is(err, wantErrs[i]) || wantErrs[i] == nil && err != nil {
			t.Errorf("SetMulti entry %d: %v, want %v", i, err, wantErrs[i])
		}
	}
	for key, want := range map[string]string{string(keys[2]): "ok2", string(keys[1]): "changed", string(keys[4]): "ok4"} {
		if it, err := c.Get([]byte(key)); err != nil || string(it.Value) != want {
			t.Errorf("after SetMulti, %q: %+v %v, want %q", key, it, err, want)
		}
	}
	if _, err := c.Get([]byte("gone")); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("a CAS store of a missing key created it: %v", err)
	}

	// A value over the item size limit fails its own entry. In the meta
	// protocol memcached's SERVER_ERROR names no request, so the entries
	// without an answer fail with it (see TestTooLargeKeepsConnectionUsable).
	// The entries of the other servers are not concerned.
	errs = c.SetMulti([]*Item{{Key: []byte("huge"), Value: make([]byte, protocolItemSize+1)}, {Key: keys[5], Value: []byte("ok5")}})
	s1, _ := c.ServerFor([]byte("huge"))
	s2, _ := c.ServerFor(keys[5])
	unknowable := protocol == "meta" && s1 == s2
	if !errors.Is(errs[0], ErrTooLarge) || !unknowable && errs[1] != nil || unknowable && !errors.Is(errs[1], ErrTooLarge) {
		t.Errorf("SetMulti with a value too large: %v", errs)
	}
	if it, err := c.Get(keys[5]); err != nil || string(it.Value) != "ok5" {
		t.Errorf("the entry after the one too large: %+v %v", it, err)
	}

	// DeleteMulti: hits, misses, a malformed key; a second time all miss.
	del := [][]byte{keys[1], keys[3], keys[4], []byte("bad key"), []byte("never")}
	wantDel := []error{nil, ErrCacheMiss, nil, ErrMalformedKey, ErrCacheMiss}
	for i, err := range c.DeleteMulti(del) {
		if !errors.Is(err, wantDel[i]) || wantDel[i] == nil && err != nil {
			t.Errorf("DeleteMulti %q: %v, want %v", del[i], err, wantDel[i])
		}
	}
	for i, err := range c.DeleteMulti(del) {
		if i != 3 && !errors.Is(err, ErrCacheMiss) {
			t.Errorf("second DeleteMulti %q: %v", del[i], err)
		}
	}
	// Empty calls.
	if got, errs := c.GetMulti(nil); len(got) != 0 || len(errs) != 0 {
		t.Errorf("GetMulti(nil): %v %v", got, errs)
	}
	if errs := c.SetMulti(nil); len(errs) != 0 {
		t.Errorf("SetMulti(nil): %v", errs)
	}
}

// Binary keys per protocol: meta carries them base64-encoded, binary as
// they are, text refuses them (ErrMalformedKey) before sending, against
// both kinds of server.
func TestProtocolBinaryKeys(t *testing.T) {
	eachProtocol(t, func(t *testing.T, be backend, protocol string, two, _ *Client) {
		c := newClientFor(t, two.Servers(), Options{Protocol: protocol, BinaryKeys: true})
		// The last two are text keys too: the text protocol splits on
		// spaces and control characters only.
		keys := [][]byte{[]byte("a b"), []byte("nul\x00"), []byte("crlf\r\n"), []byte("\x7f"), []byte("\xff\xfe"), []byte("plain")}
		var items []*Item
		for i, k := range keys {
			items = append(items, &Item{Key: k, Value: []byte{'v', byte('0' + i)}})
		}
		errs := c.SetMulti(items)
		got, gerrs := c.GetMulti(keys)
		for i, k := range keys {
			textOK := i >= len(keys)-2
			if protocol == "text" && !textOK {
				if !errors.Is(errs[i], ErrMalformedKey) || !errors.Is(gerrs[i], ErrMalformedKey) {
					t.Errorf("text %q: %v / %v, want ErrMalformedKey", k, errs[i], gerrs[i])
				}
				if _, err := c.Get(k); !errors.Is(err, ErrMalformedKey) {
					t.Errorf("text Get %q: %v", k, err)
				}
				continue
			}
			if errs[i] != nil || gerrs[i] != nil || !bytes.Equal(got[i].Value, items[i].Value) || !bytes.Equal(got[i].Key, k) {
				t.Errorf("%q: set %v, get %+v %v", k, errs[i], got[i], gerrs[i])
				continue
			}
			if it, err := c.Get(k); err != nil || !bytes.Equal(it.Value, items[i].Value) {
				t.Errorf("Get %q: %+v %v", k, it, err)
			}
			if err := c.Delete(k); err != nil {
				t.Errorf("Delete %q: %v", k, err)
			}
		}
	})
}

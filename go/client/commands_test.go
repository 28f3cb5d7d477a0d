package client

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/omcache/omcache/go/proto"
)

func TestMalformedKeysAreRejectedBeforeSending(t *testing.T) {
	// No server at all: a malformed key must fail before any connect.
	c := newClientFor(t, []string{"127.0.0.1:1"}, Options{})
	bad := [][]byte{nil, {}, []byte("a b"), []byte("a\nb"), []byte("tab\t"), []byte("del\x7f"),
		[]byte("nul\x00"), bytes.Repeat([]byte("k"), 251)}
	for _, key := range bad {
		if _, err := c.Get(key); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("Get(%q): %v", key, err)
		}
		if err := c.Set(&Item{Key: key}); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("Set(%q): %v", key, err)
		}
		if _, err := c.Incr(key, 1, 0, 0, true); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("Incr(%q): %v", key, err)
		}
		if err := c.Touch(key, 1); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("Touch(%q): %v", key, err)
		}
	}
	if err := c.Set(nil); !errors.Is(err, ErrInvalidArguments) {
		t.Errorf("Set(nil): %v", err)
	}
}

func TestLegalKeyBoundaries(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"a", true},
		{strings.Repeat("k", 250), true},
		{strings.Repeat("k", 251), false},
		{"", false},
		{"\x21~utf8\xc3\xa9", true},
		{" ", false},
		{"\x7f", false},
		{"\x80\xff", true},
	}
	c := newClientFor(t, []string{"127.0.0.1:1"}, Options{})
	for _, tt := range tests {
		if got, why := proto.TextKeyOK([]byte(tt.key)); got != tt.want || got != (why == "") {
			t.Errorf("TextKeyOK(%q) = %v, %q", tt.key, got, why)
		}
		if _, err := c.checkKey([]byte(tt.key)); (err == nil) != tt.want || err != nil && !errors.Is(err, ErrMalformedKey) {
			t.Errorf("checkKey(%q) = %v", tt.key, err)
		}
	}
}

func TestStoreCommandsConditions(t *testing.T) {
	c, _ := newTestClient(t)
	item := func(k, v string) *Item { return &Item{Key: []byte(k), Value: []byte(v)} }
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"add new", func() error { return c.Add(item("add", "1")) }, nil},
		{"add existing", func() error { return c.Add(item("add", "2")) }, ErrNotStored},
		{"replace missing", func() error { return c.Replace(item("rep", "1")) }, ErrNotStored},
		{"append missing", func() error { return c.Append(item("app", "1")) }, ErrNotStored},
		{"prepend missing", func() error { return c.Prepend(item("pre", "1")) }, ErrNotStored},
		{"cas on missing key", func() error { return c.Set(&Item{Key: []byte("nocas"), Value: []byte("x"), CAS: 42}) }, ErrCacheMiss},
		{"replace cas on missing key", func() error {
			return c.Replace(&Item{Key: []byte("nocas"), Value: []byte("x"), CAS: 42})
		}, ErrCacheMiss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	it, err := c.Get([]byte("add"))
	if err != nil || string(it.Value) != "1" {
		t.Fatalf("failed Add must not overwrite: %+v %v", it, err)
	}
	for _, k := range []string{"rep", "app", "pre", "nocas"} {
		if _, err := c.Get([]byte(k)); !errors.Is(err, ErrCacheMiss) {
			t.Errorf("%s: a failed store created the key: %v", k, err)
		}
	}
}

func TestAppendPrependKeepFlags(t *testing.T) {
	c, _ := newTestClient(t)
	if err := c.Set(&Item{Key: []byte("k"), Value: []byte("mid"), Flags: 7}); err != nil {
		t.Fatal(err)
	}
	if err := c.Append(&Item{Key: []byte("k"), Value: []byte(">>"), Flags: 99}); err != nil {
		t.Fatal(err)
	}
	if err := c.Prepend(&Item{Key: []byte("k"), Value: []byte("<<")}); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get([]byte("k"))
	if err != nil || string(it.Value) != "<<mid>>" || it.Flags != 7 {
		t.Fatalf("got %+v %v", it, err)
	}
	if err := c.Replace(&Item{Key: []byte("k"), Value: []byte("new"), Flags: 3}); err != nil {
		t.Fatal(err)
	}
	if it, err := c.Gets([]byte("k")); err != nil || string(it.Value) != "new" || it.Flags != 3 {
		t.Fatalf("after Replace: %+v %v", it, err)
	}
}

func TestCompareAndSwap(t *testing.T) {
	c, _ := newTestClient(t)
	mustSet(t, c, "k", "v1")
	it, err := c.Gets([]byte("k"))
	if err != nil || it.CAS == 0 {
		t.Fatalf("Gets: %+v %v", it, err)
	}
	stale := it.CAS
	it.Value = []byte("v2")
	if err := c.Set(it); err != nil {
		t.Fatalf("cas with current id: %v", err)
	}
	if err := c.Set(&Item{Key: []byte("k"), Value: []byte("v3"), CAS: stale}); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("cas mismatch: %v", err)
	}
	for _, op := range []func(*Item) error{c.Replace, c.Append, c.Prepend} {
		if err := op(&Item{Key: []byte("k"), Value: []byte("x"), CAS: stale}); !errors.Is(err, ErrKeyExists) {
			t.Errorf("stale cas on replace/append/prepend: %v", err)
		}
	}
	if got, _ := c.Get([]byte("k")); string(got.Value) != "v2" {
		t.Fatalf("value after failed cas: %q", got.Value)
	}
}

func TestIncrDecr(t *testing.T) {
	c, _ := newTestClient(t)
	key := func(s string) []byte { return []byte(s) }
	if _, err := c.Incr(key("missing"), 1, 5, 0, false); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("incr do-not-create: %v", err)
	}
	if _, err := c.Get(key("missing")); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("do-not-create created the key: %v", err)
	}
	tests := []struct {
		name string
		run  func() (uint64, error)
		want uint64
	}{
		{"create with initial", func() (uint64, error) { return c.Incr(key("n"), 10, 5, 0, true) }, 5},
		{"incr", func() (uint64, error) { return c.Incr(key("n"), 10, 5, 0, true) }, 15},
		{"decr", func() (uint64, error) { return c.Decr(key("n"), 3, 0, 0, false) }, 12},
		{"decr clamps at zero", func() (uint64, error) { return c.Decr(key("n"), 100, 0, 0, false) }, 0},
		{"decr create", func() (uint64, error) { return c.Decr(key("d"), 1, 7, 0, true) }, 7},
		{"incr to max", func() (uint64, error) { return c.Incr(key("w"), math.MaxUint64-1, 1, 0, true) }, 1},
		{"incr max", func() (uint64, error) { return c.Incr(key("w"), math.MaxUint64-1, 0, 0, false) }, math.MaxUint64},
		{"incr wraps at 2**64", func() (uint64, error) { return c.Incr(key("w"), 3, 0, 0, false) }, 2},
	}
	for _, tt := range tests {
		got, err := tt.run()
		if err != nil || got != tt.want {
			t.Errorf("%s: got %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	// memcached rewrites a shrinking counter in place, padding with spaces.
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
}

func TestZeroByteValue(t *testing.T) {
	c, _ := newTestClient(t)
	if err := c.Set(&Item{Key: []byte("empty"), Flags: 5}); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get([]byte("empty"))
	if err != nil || it.Value == nil || len(it.Value) != 0 || it.Flags != 5 {
		t.Fatalf("got %+v %v", it, err)
	}
	items, errs := c.GetMulti([][]byte{[]byte("empty")})
	if errs[0] != nil || items[0].Value == nil || len(items[0].Value) != 0 {
		t.Fatalf("GetMulti: %+v %v", items[0], errs[0])
	}
}

func TestExpiration(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("sleeps 2 s")
	}
	c, _ := newTestClient(t)
	// memcached's clock ticks once a second and an item with a relative
	// expiry of n s is gone after n ticks, i.e. after n-1 to n seconds. So
	// with n = 2 it is certainly there for the next few milliseconds and
	// certainly gone 2.1 s later (at least two ticks).
	if err := c.Set(&Item{Key: []byte("short"), Value: []byte("x"), Expiration: 2}); err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "touched", "x")
	mustSet(t, c, "gat", "x")
	mustSet(t, c, "gatmulti", "x")
	mustSet(t, c, "extended", "x")
	if err := c.Touch([]byte("touched"), 2); err != nil {
		t.Fatal(err)
	}
	if it, err := c.Gat([]byte("gat"), 2); err != nil || string(it.Value) != "x" {
		t.Fatalf("Gat: %+v %v", it, err)
	}
	if _, errs := c.GatMulti([][]byte{[]byte("gatmulti"), []byte("nope")}, 2); errs[0] != nil || !errors.Is(errs[1], ErrCacheMiss) {
		t.Fatalf("GatMulti: %v", errs)
	}
	if err := c.Set(&Item{Key: []byte("extended"), Value: []byte("x"), Expiration: 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.Touch([]byte("extended"), 100); err != nil {
		t.Fatal(err)
	}
	if err := c.Touch([]byte("nope"), 1); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("Touch missing: %v", err)
	}
	if _, err := c.Gat([]byte("nope"), 1); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("Gat missing: %v", err)
	}
	if _, err := c.Get([]byte("short")); err != nil {
		t.Fatalf("expired too early: %v", err)
	}
	time.Sleep(2100 * time.Millisecond)
	for _, k := range []string{"short", "touched", "gat", "gatmulti"} {
		if _, err := c.Get([]byte(k)); !errors.Is(err, ErrCacheMiss) {
			t.Errorf("%s not expired: %v", k, err)
		}
	}
	if _, err := c.Get([]byte("extended")); err != nil {
		t.Errorf("touch did not extend the expiry: %v", err)
	}
}

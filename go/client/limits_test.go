package client

import (
	"bytes"
	"errors"
	"testing"

	"github.com/omcache/omcache/go/proto/codecs"
)

// memcached stores an item in one allocation of at most -I bytes holding a
// 48-byte header, the 8-byte CAS, the key and its NUL, and the value with
// the "\r\n" it keeps for the text protocol. With -I 1m and a 3-byte key the
// largest value is therefore 1 MiB - 62 bytes (found by bisection against
// memcached 1.6.18, and the arithmetic agrees).
func largestValue(itemSizeMax, keyLen int) int { return itemSizeMax - 48 - 8 - (keyLen + 1) - 2 }

func TestItemSizeLimit(t *testing.T) {
	c, _ := newTestClient(t, "-I", "1m", "-m", "64")
	for _, key := range [][]byte{[]byte("big"), bytes.Repeat([]byte("k"), 250)} {
		n := largestValue(1<<20, len(key))
		value := bytes.Repeat([]byte{0xa5}, n)
		if err := c.Set(&Item{Key: key, Value: value}); err != nil {
			t.Fatalf("key %d bytes: value of %d bytes (the limit): %v", len(key), n, err)
		}
		it, err := c.Get(key)
		if err != nil || !bytes.Equal(it.Value, value) {
			t.Fatalf("key %d bytes: reading back %d bytes: %v", len(key), n, err)
		}
		if err := c.Set(&Item{Key: key, Value: make([]byte, n+1)}); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("key %d bytes: value of %d bytes (one over): %v", len(key), n+1, err)
		}
		// memcached drops the old value when a SET fails for size, so no
		// stale data survives the failed update.
		if _, err := c.Get(key); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("key %d bytes: old value after failed set: %v", len(key), err)
		}
	}
}

func TestTooLargeKeepsConnectionUsable(t *testing.T) {
	srv, _ := newTestClient(t, "-I", "1m")
	for _, p := range codecs.Names() {
		t.Run(p, func(t *testing.T) { testTooLargeKeepsConnectionUsable(t, srv.Servers(), p) })
	}
}

func testTooLargeKeepsConnectionUsable(t *testing.T, addrs []string, protocol string) {
	c := newClientFor(t, addrs, Options{Protocol: protocol, MaxIdleConnsPerServer: 1})
	mustSet(t, c, "before", "1")
	connsBefore := totalConnections(t, c)
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"set 2 MiB", func() error { return c.Set(&Item{Key: []byte("huge"), Value: make([]byte, 2<<20)}) }, ErrTooLarge},
		{"set 9 MiB", func() error { return c.Set(&Item{Key: []byte("huge"), Value: make([]byte, 9<<20)}) }, ErrTooLarge},
		{"add 2 MiB", func() error { return c.Add(&Item{Key: []byte("huge"), Value: make([]byte, 2<<20)}) }, ErrTooLarge},
		// The append itself fits, so memcached only fails when it builds
		// the combined item, and then it answers NOT_STORED.
		{"append past the limit", func() error {
			mustSet(t, c, "grow", string(make([]byte, 600<<10)))
			return c.Append(&Item{Key: []byte("grow"), Value: make([]byte, 600<<10)})
		}, ErrNotStored},
	}
	for _, tt := range tests {
		if err := tt.op(); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
		if it, err := c.Get([]byte("before")); err != nil || string(it.Value) != "1" {
			t.Fatalf("%s: next command on the connection: %v", tt.name, err)
		}
	}
	// The meta protocol's SERVER_ERROR for the too-large value names no
	// request (memcached sends no O token with it), and quiet successes
	// are silent: the client cannot tell which entry failed, so it reports
	// every entry without an answer failed, never stored. The binary
	// protocol's quiet reply carries the opaque, text answers each store.
	errs := c.SetMulti([]*Item{{Key: []byte("m1"), Value: make([]byte, 2<<20)}, {Key: []byte("m2"), Value: []byte("ok")}})
	if !errors.Is(errs[0], ErrTooLarge) || c.Protocol() != "meta" && errs[1] != nil || c.Protocol() == "meta" && !errors.Is(errs[1], ErrTooLarge) {
		t.Errorf("SetMulti with one too large: %v", errs)
	}
	if it, err := c.Get([]byte("m2")); err != nil || string(it.Value) != "ok" {
		t.Errorf("the entry after the too large one: %v", err)
	}
	if after := totalConnections(t, c); after != connsBefore {
		t.Errorf("the connection was replaced: total_connections %s -> %s", connsBefore, after)
	}
}

func totalConnections(t *testing.T, c *Client) string {
	t.Helper()
	stats, errs := c.Stats("")
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	return stats[0]["total_connections"]
}

func TestMaxItemSizeCapsResponses(t *testing.T) {
	// A client told to expect small items refuses a bigger response as a
	// protocol error instead of buffering it, and drops that connection.
	srv, _ := newTestClient(t, "-I", "2m")
	big := newClientFor(t, srv.Servers(), Options{MaxItemSize: 2 << 20})
	if err := big.Set(&Item{Key: []byte("k"), Value: make([]byte, 1<<20)}); err != nil {
		t.Fatal(err)
	}
	if it, err := big.Get([]byte("k")); err != nil || len(it.Value) != 1<<20 {
		t.Fatalf("1 MiB under a 2 MiB cap: %v", err)
	}
	small := newClientFor(t, srv.Servers(), Options{MaxItemSize: 64 << 10})
	if _, err := small.Get([]byte("k")); !errors.Is(err, ErrProtocol) {
		t.Fatalf("1 MiB over a 64 KiB cap: %v", err)
	}
	mustSet(t, small, "s", "x")
	if it, err := small.Get([]byte("s")); err != nil || string(it.Value) != "x" {
		t.Fatalf("after a refused response: %v", err)
	}
}

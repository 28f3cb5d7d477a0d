package client

import (
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
)

// newTestClient starts a memcached with extra args and returns a client for
// it with short timeouts, closed at the end of the test.
func newTestClient(t *testing.T, args ...string) (*Client, *mctest.Server) {
	t.Helper()
	srv := mctest.Start(t, mctest.Options{Args: args})
	return newClientFor(t, []string{srv.Addr}, Options{}), srv
}

func newClientFor(t *testing.T, addrs []string, opts Options) *Client {
	t.Helper()
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 2 * time.Second
	}
	if opts.IOTimeout == 0 {
		opts.IOTimeout = 2 * time.Second
	}
	c, err := New(addrs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustSet(t *testing.T, c *Client, key, value string) {
	t.Helper()
	if err := c.Set(&Item{Key: []byte(key), Value: []byte(value)}); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

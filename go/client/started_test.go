package client

import (
	"errors"
	"testing"
	"time"

	"github.com/omcache/omcache/go/proto"
)

// Begin starts a command only on an idle connection of a protocol whose
// answer is one reply; Ready, Finish and Wait then complete it with the
// same results as the blocking commands.
func TestBeginStartsOnIdleConnectionsAndCompletes(t *testing.T) {
	for _, protocol := range []string{"meta", "binary"} {
		t.Run(protocol, func(t *testing.T) {
			c, _ := newTestClient(t)
			c2 := newClientFor(t, c.Servers(), Options{Protocol: protocol})
			if st, err := c2.Begin(proto.OpGet, []byte("k"), nil, 0, 0, 0); st != nil || err != nil {
				t.Fatalf("Begin without an idle connection: %v, %v", st, err)
			}
			mustSet(t, c2, "k", "v1")
			st, err := c2.Begin(proto.OpSet, []byte("k"), []byte("v2"), 7, 0, 0)
			if st == nil || err != nil {
				t.Fatalf("Begin(set): %v, %v", st, err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for ready, _ := st.Ready(); !ready; ready, _ = st.Ready() {
				if time.Now().After(deadline) {
					t.Fatal("set not answered in 5 s")
				}
				time.Sleep(time.Millisecond)
			}
			st.Finish()
			if err := st.Err(); err != nil || st.Retry {
				t.Fatalf("set: %v (retry %v)", err, st.Retry)
			}
			st, _ = c2.Begin(proto.OpGet, []byte("k"), nil, 0, 0, 0)
			st.Wait()
			if it, err := st.Item(); err != nil || string(it.Value) != "v2" || it.Flags != 7 {
				t.Fatalf("get: %+v, %v", it, err)
			}
			st, _ = c2.Begin(proto.OpAdd, []byte("k"), []byte("x"), 0, 0, 0)
			st.Wait()
			if err := st.Err(); !errors.Is(err, ErrNotStored) {
				t.Fatalf("add of an existing key: %v", err)
			}
			st, _ = c2.Begin(proto.OpGet, []byte("missing"), nil, 0, 0, 0)
			st.Wait()
			if _, err := st.Item(); !errors.Is(err, ErrCacheMiss) {
				t.Fatalf("get of a missing key: %v", err)
			}
			if _, err := c2.Begin(proto.OpGet, []byte("bad key"), nil, 0, 0, 0); !errors.Is(err, ErrMalformedKey) {
				t.Fatalf("Begin with a bad key: %v", err)
			}
			if st, _ := c2.Begin(proto.OpIncr, []byte("k"), nil, 0, 0, 0); st != nil {
				t.Fatal("Begin started an incr")
			}
		})
	}
	t.Run("text", func(t *testing.T) {
		c, _ := newTestClient(t)
		c2 := newClientFor(t, c.Servers(), Options{Protocol: "text"})
		mustSet(t, c2, "k", "v")
		if st, err := c2.Begin(proto.OpGet, []byte("k"), nil, 0, 0, 0); st != nil || err != nil {
			t.Fatalf("Begin on text (a get answers in two replies): %v, %v", st, err)
		}
	})
}

package conn

import (
	"bytes"
	"testing"
	"time"

	"github.com/omcache/omcache/go/binprot"
	"github.com/omcache/omcache/go/internal/mctest"
)

func drainReleased() {
	largeFree.Lock()
	defer largeFree.Unlock()
	clear(largeFree.bufs)
	largeFree.bufs, largeFree.bytes = largeFree.bufs[:0], 0
}

func TestLargeBuffersAreReused(t *testing.T) {
	drainReleased()
	defer drainReleased()
	small := make([]byte, LargeValue-1)
	ReleaseValue(small)
	if n, _ := releasedBuffers(); n != 0 {
		t.Fatal("a value below LargeValue was kept")
	}
	a := largeBuffer(100 << 10)
	ReleaseValue(a)
	if n, b := releasedBuffers(); n != 1 || b != cap(a) {
		t.Fatalf("released %d buffers, %d bytes", n, b)
	}
	// Too small for 200 KiB, too big (over twice) for 40 KiB: new buffers.
	if b := largeBuffer(200 << 10); &b[0] == &a[0] {
		t.Fatal("a buffer smaller than asked was reused")
	}
	if b := largeBuffer(40 << 10); &b[0] == &a[0] {
		t.Fatal("a buffer over twice the size asked was reused")
	}
	b := largeBuffer(60 << 10)
	if &b[0] != &a[0] || len(b) != 60<<10 {
		t.Fatal("a fitting released buffer was not reused")
	}
	if n, bytes := releasedBuffers(); n != 0 || bytes != 0 {
		t.Fatalf("after reuse: %d buffers, %d bytes kept", n, bytes)
	}
	// The keeper is bounded in count and bytes.
	for i := 0; i < 2*largeFreeMax; i++ {
		ReleaseValue(make([]byte, LargeValue))
	}
	if n, _ := releasedBuffers(); n != largeFreeMax {
		t.Fatalf("%d buffers kept, want %d", n, largeFreeMax)
	}
	drainReleased()
	ReleaseValue(make([]byte, largeFreeBytes+1))
	if n, _ := releasedBuffers(); n != 0 {
		t.Fatal("a buffer over the byte limit was kept")
	}
}

// A released value's buffer receives the next large value, over both
// protocols, and the values read are right.
func TestReleasedBufferReceivesTheNextValue(t *testing.T) {
	drainReleased()
	defer drainReleased()
	srv := mctest.Start(t, mctest.Options{Args: []string{"-I", "4m"}})
	bin := dial(t, srv.Addr, Options{IOTimeout: 5 * time.Second, MaxBody: 4 << 20})
	text := dial(t, srv.Addr, textOpts)
	v1, v2 := pattern(LargeValue*4, 1), pattern(LargeValue*3, 2)
	buf := bin.Buffer()
	for i, v := range [][]byte{v1, v2} {
		buf = binprot.AppendStoreHeader(buf, binprot.OpSetQ, []byte{'k', byte('1' + i)}, len(v), 0, 0, 0, 0)
		buf = bin.AppendValue(buf, v)
	}
	if err := bin.Send(binprot.AppendKeyOnly(buf, binprot.OpNoop, nil, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := bin.Recv(); err != nil {
		t.Fatal(err)
	}
	get := func(c *Conn, key string) []byte {
		t.Helper()
		var req []byte
		if c.Text() {
			req = AppendGets(c.Buffer(), []byte(key))
		} else {
			req = binprot.AppendKeyOnly(c.Buffer(), binprot.OpGet, []byte(key), 0, 0)
		}
		if err := c.Send(req); err != nil {
			t.Fatal(err)
		}
		r, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		v := c.OwnValue(r.Value)
		if c.Text() {
			if end, err := c.Recv(); err != nil || end.Opcode != binprot.OpNoop {
				t.Fatalf("END: %v %v", end.Opcode, err)
			}
		}
		return v
	}
	for _, c := range []*Conn{bin, text} {
		first := get(c, "k1")
		if !bytes.Equal(first, v1) {
			t.Fatal("first value wrong")
		}
		ReleaseValue(first)
		second := get(c, "k2")
		if !bytes.Equal(second, v2) || &second[0] != &first[0] {
			t.Fatalf("text=%v: the second value is wrong (%v) or not in the released buffer", c.Text(), bytes.Equal(second, v2))
		}
		ReleaseValue(second)
		drainReleased()
	}
}

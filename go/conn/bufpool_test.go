package conn

import (
	"bytes"
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/proto"
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

// A released value's buffer receives the next large value, in every
// protocol, and the values read are right.
func TestReleasedBufferReceivesTheNextValue(t *testing.T) {
	drainReleased()
	defer drainReleased()
	srv := mctest.Start(t, mctest.Options{Args: []string{"-I", "4m"}})
	v1, v2 := pattern(LargeValue*4, 1), pattern(LargeValue*3, 2)
	eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
		c := dial(t, srv.Addr, Options{IOTimeout: 5 * time.Second, MaxValue: 4 << 20, Codec: cd})
		buf := c.Buffer()
		for i, v := range [][]byte{v1, v2} {
			buf = appendReq(t, c, buf, proto.Request{Op: proto.OpSet, Key: []byte{'k', byte('1' + i)}, Seq: uint32(i)}, v)
		}
		if err := c.Send(buf); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if r := recvOK(t, c); r.Kind != proto.KindStatus || r.Status != proto.StatusOK {
				t.Fatalf("set %d: %+v", i, r)
			}
		}
		_, first := getValue(t, c, "k1")
		if !bytes.Equal(first, v1) {
			t.Fatal("first value wrong")
		}
		ReleaseValue(first)
		_, second := getValue(t, c, "k2")
		if !bytes.Equal(second, v2) || &second[0] != &first[0] {
			t.Fatalf("the second value is wrong (%v) or not in the released buffer", bytes.Equal(second, v2))
		}
		ReleaseValue(second)
		drainReleased()
	})
}

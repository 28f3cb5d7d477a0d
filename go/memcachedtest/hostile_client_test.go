package memcachedtest

import (
	"encoding/binary"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A 605-byte "get b b ... b" for 300 copies of a 1 MB item, sent by a client
// that never reads, must not make the server hold 300 MB: replies refer to
// the stored value and the connection stops at flushThreshold until the
// client reads.  Others are served meanwhile, and the reader, once it reads,
// gets every value.
func TestUnreadMultiGetKeepsServerMemoryBounded(t *testing.T) {
	s := startServer(t, Config{MaxBytes: 64 << 20})
	value := strings.Repeat("v", largestValue(DefaultItemSizeMax)-1)
	dialServer(t, s).do("set b 0 0 "+strconv.Itoa(len(value))+"\r\n"+value+"\r\n", "STORED")

	before := heapInUse()
	hostile := dialServer(t, s)
	req := "get" + strings.Repeat(" b", 300) + "\r\n"
	if len(req) != 605 {
		t.Fatalf("request is %d bytes", len(req))
	}
	hostile.send(req)
	time.Sleep(500 * time.Millisecond) // the server works until its writes block
	grown := int64(heapInUse()) - int64(before)
	// Before: every reply copied into the connection's buffer, +300 MB.
	// Now: the pending output stays near flushThreshold plus socket buffers.
	if grown > 32<<20 {
		t.Errorf("heap grew by %d MB while the client did not read", grown>>20)
	}
	dialServer(t, s).do("version\r\n", "VERSION "+DefaultVersion)

	hostile.c.SetDeadline(time.Now().Add(30 * time.Second))
	for i := 0; i < 300; i++ {
		hostile.expect("VALUE b 0 " + strconv.Itoa(len(value)))
		if got := hostile.line(); len(got) != len(value) {
			t.Fatalf("value %d is %d bytes", i, len(got))
		}
	}
	hostile.expect("END")
}

// memcached refuses a binary SET whose header announces a body larger than
// an item at once, before the body arrives (it swallows it afterwards).
func TestBinarySetAnnouncingHugeBodyIsRefusedAtOnce(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	var h [24]byte
	h[0], h[1] = 0x80, opSet
	binary.BigEndian.PutUint16(h[2:], 1)
	h[4] = 8
	binary.BigEndian.PutUint32(h[8:], 0xFFFFFFF0) // a 4 GB body, never sent
	binary.BigEndian.PutUint32(h[12:], 77)
	w.sendBytes(append(append(h[:], make([]byte, 8)...), 'k'))
	w.c.SetDeadline(time.Now().Add(2 * time.Second))
	p := w.readBin()
	if p.status != statusE2BIG || p.opaque != 77 {
		t.Fatalf("got %v, want E2BIG for opaque 77", p)
	}
	dialServer(t, s).do("version\r\n", "VERSION "+DefaultVersion)
}

// The text protocol does the same for a set announcing more than an item.
func TestTextSetAnnouncingHugeBodyIsRefusedAtOnce(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	w.c.SetDeadline(time.Now().Add(2 * time.Second))
	w.send("set k 0 0 2000000000\r\n")
	w.expect(msgTooLarge)
}

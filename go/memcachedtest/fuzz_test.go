package memcachedtest

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// checkStore verifies the store's invariants: map, LRU list, byte and
// per-class accounting agree, and memory stays under the limit.
func checkStore(s *store) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int
	var bytes int64
	perClass := make([]int64, len(s.classes))
	var prev *item
	for it := s.head; it != nil; it = it.next {
		if it.prev != prev {
			return fmt.Errorf("item %q: broken back link", it.key)
		}
		if s.items[it.key] != it {
			return fmt.Errorf("item %q on the LRU list is not in the map", it.key)
		}
		if it.size != itemTotalSize(len(it.key), it.flags, len(it.value)) {
			return fmt.Errorf("item %q: size %d for %d-byte value", it.key, it.size, len(it.value))
		}
		n++
		bytes += it.size
		perClass[it.class]++
		prev = it
	}
	if prev != s.tail {
		return fmt.Errorf("tail is not the last item")
	}
	if n != len(s.items) || bytes != s.bytes {
		return fmt.Errorf("list has %d items/%d bytes, map %d, accounted %d bytes", n, bytes, len(s.items), s.bytes)
	}
	if s.bytes > s.maxBytes {
		return fmt.Errorf("%d bytes stored over a %d limit", s.bytes, s.maxBytes)
	}
	for id := range s.classes {
		if s.classes[id].items != perClass[id] {
			return fmt.Errorf("class %d counts %d items, has %d", id, s.classes[id].items, perClass[id])
		}
	}
	return nil
}

// FuzzServerInput feeds arbitrary bytes to a connection: whatever arrives,
// the server must neither crash nor hang, must keep its accounting
// straight, and must go on serving other clients.
func FuzzServerInput(f *testing.F) {
	for _, seed := range []string{
		"set k 0 0 1\r\nx\r\nget k\r\n",
		"gets a b c\r\nincr k 1\r\ndecr k 9\r\ntouch k 10\r\ngat 1 k\r\n",
		"ms k 2 T10 F3 c k O1 b\r\nab\r\nmg k v c f s t h l k O2 q\r\nmn\r\n",
		"ma n N0 J5 v MD D2\r\nmd n I T1 q\r\nmg n v\r\nme n\r\n",
		"append k 0 0 3\r\nabc\r\nprepend k 0 0 1\r\nz\r\ncas k 0 0 1 1\r\nq\r\n",
		"flush_all 10\r\nstats\r\nstats items\r\nstats slabs\r\nstats cachedump 1 0\r\nverbosity 1\r\n",
		"set k 0 0 -1\r\nset k 0 0 99999999\r\n",
		string(binReq{opcode: opSet, key: "k", value: []byte("v"), extras: setExtras(1, 0)}.bytes()) +
			string(binReq{opcode: opGetKQ, key: "k"}.bytes()) + string(binReq{opcode: opNoop}.bytes()),
		string(binReq{opcode: opIncrement, key: "n", extras: deltaExtras(1, 7, 0)}.bytes()) +
			string(binReq{opcode: opStat, key: "settings"}.bytes()),
		"\x80\x01\x00\x01\x08\x00\x00\x00\xff\xff\xff\xff",
	} {
		f.Add([]byte(seed))
	}
	s, err := Start(Config{MaxBytes: 64 << 10, ItemSizeMax: 4096, Clock: NewManualClock(testEpoch)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.DialTimeout("tcp", s.Addr(), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		go func() {
			c.Write(data)
			// End of input: a server waiting for more of a command sees EOF.
			c.(*net.TCPConn).CloseWrite()
		}()
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("server did not finish with %q: %v", data, err)
		}
		if err := checkStore(s.store); err != nil {
			t.Fatalf("after %q: %v", data, err)
		}
		w := dialServer(t, s)
		w.do("version\r\n", "VERSION "+DefaultVersion)
	})
}

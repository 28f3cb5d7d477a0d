package memcachedtest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// tenItems is a memory limit that holds exactly ten items with a 3-byte
// key and a 100-byte value (memcached charges 162 bytes for each).
var tenItems = 10 * itemTotalSize(3, 0, 100)

func value100(c byte) string { return strings.Repeat(string(c), 100) }

func TestEvictionDropsLeastRecentlyUsed(t *testing.T) {
	s := startServer(t, Config{MaxBytes: tenItems})
	w := dialServer(t, s)
	for i := range 10 {
		w.do(fmt.Sprintf("set k%02d 0 0 100\r\n%s\r\n", i, value100('a')), "STORED")
	}
	// Reading k00 makes k01 the least recently used.
	w.do("get k00\r\n", "VALUE k00 0 100", value100('a'), "END")
	w.do("set k10 0 0 100\r\n"+value100('b')+"\r\n", "STORED")
	w.do("get k01\r\n", "END")
	w.do("mg k00\r\nmg k02\r\nmg k10\r\n", "HD", "HD", "HD")

	st := s.Stats()
	if st.Evictions != 1 || st.EvictedUnfetched != 1 || st.CurrItems != 10 || st.Bytes != tenItems {
		t.Fatalf("stats after one eviction: %+v", st)
	}
	// 162-byte items live in memcached's 192-byte class, number 4.
	if class := classFor(newSlabClasses(), itemTotalSize(3, 0, 100)); class != 4 {
		t.Fatalf("slab class %d, want 4", class)
	}
	w.send("stats items\r\n")
	found := false
	for l := w.line(); l != "END"; l = w.line() {
		if l == "STAT items:4:evicted 1" {
			found = true
		}
	}
	if !found {
		t.Error("stats items does not show the eviction in class 4")
	}
}

func TestEvictionKeepsMemoryUnderTheLimit(t *testing.T) {
	s := startServer(t, Config{MaxBytes: tenItems})
	w := dialServer(t, s)
	var req strings.Builder
	var want []string
	for i := range 500 {
		fmt.Fprintf(&req, "set %03d 0 0 100\r\n%s\r\n", i, value100('x'))
		want = append(want, "STORED")
	}
	w.do(req.String(), want...)
	st := s.Stats()
	if st.Bytes > tenItems || st.CurrItems != 10 || st.Evictions != 490 || st.TotalItems != 500 {
		t.Fatalf("stats: %+v", st)
	}
	// The survivors are the last ten stored.
	w.do("get 489 490 499\r\n", "VALUE 490 0 100", value100('x'), "VALUE 499 0 100", value100('x'), "END")
}

func TestEvictionReclaimsExpiredItemsFirst(t *testing.T) {
	clock := NewManualClock(testEpoch)
	s := startServer(t, Config{MaxBytes: tenItems, Clock: clock})
	w := dialServer(t, s)
	w.do("set old 0 5 100\r\n"+value100('o')+"\r\n", "STORED")
	for i := range 9 {
		w.do(fmt.Sprintf("set k%02d 0 0 100\r\n%s\r\n", i, value100('a')), "STORED")
	}
	clock.Advance(10 * time.Second)
	w.do("set new 0 0 100\r\n"+value100('n')+"\r\n", "STORED")
	if st := s.Stats(); st.Evictions != 0 || st.Reclaimed != 1 || st.CurrItems != 10 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestReplacingAnItemDoesNotEvictIt(t *testing.T) {
	s := startServer(t, Config{MaxBytes: tenItems})
	w := dialServer(t, s)
	for i := range 10 {
		w.do(fmt.Sprintf("set k%02d 0 0 100\r\n%s\r\n", i, value100('a')), "STORED")
	}
	w.do("set k00 0 0 100\r\n"+value100('b')+"\r\n", "STORED")
	if st := s.Stats(); st.Evictions != 0 {
		t.Fatalf("overwriting evicted %d items", st.Evictions)
	}
	w.do("append k05 0 0 1\r\n+\r\n", "STORED")
	if st := s.Stats(); st.Evictions != 1 {
		t.Fatalf("growing an item by one byte evicted %d items, want 1", st.Evictions)
	}
	w.do("mg k05 s\r\n", "HD s101")
}

func TestNoEvictRefusesWhenFull(t *testing.T) {
	s := startServer(t, Config{MaxBytes: tenItems, NoEvict: true})
	w := dialServer(t, s)
	for i := range 10 {
		w.do(fmt.Sprintf("set k%02d 0 0 100\r\n%s\r\n", i, value100('a')), "STORED")
	}
	w.do("set k10 0 0 100\r\n"+value100('b')+"\r\n", msgNoMemory)
	w.do("ms k10 100\r\n"+value100('b')+"\r\n", msgNoMemory)
	w.do("get k00\r\n", "VALUE k00 0 100", value100('a'), "END")
	b := dialServer(t, s)
	b.binDo(binReq{opcode: opSet, key: "k11", value: []byte(value100('c')), extras: setExtras(0, 0)}, statusENOMEM)
	if st := s.Stats(); st.StoreNoMemory != 3 || st.Evictions != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestItemLargerThanMemoryIsRefused(t *testing.T) {
	s := startServer(t, Config{MaxBytes: 1000})
	w := dialServer(t, s)
	w.do("set k 0 0 2000\r\n"+strings.Repeat("x", 2000)+"\r\n", msgNoMemory)
	w.do("set k 0 0 10\r\n0123456789\r\n", "STORED")
}

func TestCacheMemlimitShrinksOnNextStore(t *testing.T) {
	s := startServer(t, Config{MaxBytes: 64 << 20})
	w := dialServer(t, s)
	big := strings.Repeat("z", 500_000)
	for i := range 40 {
		w.do(fmt.Sprintf("set b%02d 0 0 %d\r\n%s\r\n", i, len(big), big), "STORED")
	}
	w.do("cache_memlimit 8\r\n", "OK")
	w.do("set last 0 0 1\r\nx\r\n", "STORED")
	if st := s.Stats(); st.Bytes > 8<<20 || st.LimitMaxbytes != 8<<20 {
		t.Fatalf("after shrinking: %+v", st)
	}
}

package memcachedtest

import (
	"strconv"
	"strings"
	"testing"
)

// largestValue is the longest value that fits in an item of size max for a
// one-byte key and zero flags.
func largestValue(max int) int {
	return max - int(itemTotalSize(1, 0, 0))
}

func TestItemSizeLimitText(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	n := largestValue(DefaultItemSizeMax)
	if n != 1048516 {
		t.Fatalf("largest value for 1 MiB is %d, memcached 1.6 stores 1048516", n)
	}
	fits, over := strings.Repeat("a", n), strings.Repeat("b", n+1)
	w.do("set k 0 0 "+strconv.Itoa(n)+"\r\n"+fits+"\r\n", "STORED")
	w.do("set j 0 0 "+strconv.Itoa(n+1)+"\r\n"+over+"\r\n", msgTooLarge)
	// The connection is still in step: the value was swallowed.
	w.do("get k j\r\n", "VALUE k 0 "+strconv.Itoa(n), fits, "END")
	// A too-large set removes the old value; add and replace leave it.
	w.do("add k 0 0 "+strconv.Itoa(n+1)+"\r\n"+over+"\r\n", msgTooLarge)
	w.do("mg k s\r\n", "HD s"+strconv.Itoa(n))
	w.do("set k 0 0 "+strconv.Itoa(n+1)+"\r\n"+over+"\r\n", msgTooLarge)
	w.do("mg k\r\n", "EN")
	// Flags take 4 bytes of the item.
	w.do("set f 1 0 "+strconv.Itoa(n)+"\r\n"+fits+"\r\n", msgTooLarge)
	w.do("set f 1 0 "+strconv.Itoa(n-4)+"\r\n"+fits[:n-4]+"\r\n", "STORED")
	// Growing past the limit by append fails without losing the item.
	w.do("append f 0 0 5\r\nzzzzz\r\n", "NOT_STORED")
	w.do("mg f s\r\n", "HD s"+strconv.Itoa(n-4))
	if st := s.Stats(); st.StoreTooLarge != 4 {
		t.Errorf("store_too_large %d, want 4", st.StoreTooLarge)
	}
}

func TestItemSizeLimitMeta(t *testing.T) {
	s := startServer(t, Config{ItemSizeMax: 4096})
	w := dialServer(t, s)
	n := largestValue(4096)
	w.do("ms k "+strconv.Itoa(n)+"\r\n"+strings.Repeat("a", n)+"\r\n", "HD")
	w.do("ms k "+strconv.Itoa(n+1)+" q\r\n"+strings.Repeat("a", n+1)+"\r\n", msgTooLarge)
	w.do("mg k\r\nmn\r\n", "EN", "MN")
}

func TestItemSizeLimitBinary(t *testing.T) {
	s := startServer(t, Config{ItemSizeMax: 4096})
	w := dialServer(t, s)
	n := largestValue(4096)
	set := func(op byte, size int) binReq {
		return binReq{opcode: op, key: "k", value: []byte(strings.Repeat("v", size)), extras: setExtras(0, 0)}
	}
	w.binDo(set(opSet, n), statusOK)
	if r := w.binDo(set(opAdd, n+1), statusE2BIG); string(r.value) != "Too large." {
		t.Fatalf("E2BIG body %q", r.value)
	}
	w.binDo(binReq{opcode: opGet, key: "k"}, statusOK)
	// Quiet sets report E2BIG as well, and the stream stays in sync.
	w.sendBin(set(opSetQ, n+1), binReq{opcode: opGet, key: "k"}, binReq{opcode: opNoop})
	for _, want := range []uint16{statusE2BIG, statusKeyENOENT, statusOK} {
		if r := w.readBin(); r.status != want {
			t.Fatalf("got %v, want status %#x", r, want)
		}
	}
	w.binDo(binReq{opcode: opAppend, key: "k", value: make([]byte, n+1)}, statusE2BIG)
}

func TestItemSizeMaxIsConfigurable(t *testing.T) {
	s := startServer(t, Config{ItemSizeMax: 2 << 20})
	w := dialServer(t, s)
	n := largestValue(2 << 20)
	w.do("set k 0 0 "+strconv.Itoa(n)+"\r\n"+strings.Repeat("x", n)+"\r\n", "STORED")
	if _, err := Start(Config{ItemSizeMax: 100}); err == nil {
		t.Fatal("Start accepted an item size limit of 100 bytes")
	}
}

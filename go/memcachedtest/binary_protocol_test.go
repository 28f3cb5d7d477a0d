package memcachedtest

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestBinaryCommands(t *testing.T) {
	set := func(op byte, key, value string, flags uint32, cas uint64) binReq {
		return binReq{opcode: op, key: key, value: []byte(value), extras: setExtras(flags, 0), cas: cas, opaque: 11}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, w *wire)
	}{
		{"set then get returns flags, value and cas", func(t *testing.T, w *wire) {
			r := w.binDo(set(opSet, "k", "hello", 42, 0), statusOK)
			if r.cas != 1 {
				t.Fatalf("set cas %d, want 1", r.cas)
			}
			r = w.binDo(binReq{opcode: opGet, key: "k", opaque: 5}, statusOK)
			if binary.BigEndian.Uint32(r.extras) != 42 || string(r.value) != "hello" || r.cas != 1 || r.key != "" {
				t.Fatalf("get: %v", r)
			}
			r = w.binDo(binReq{opcode: opGetK, key: "k"}, statusOK)
			if r.key != "k" || string(r.value) != "hello" {
				t.Fatalf("getk: %v", r)
			}
		}},
		{"get miss", func(t *testing.T, w *wire) {
			if r := w.binDo(binReq{opcode: opGet, key: "k"}, statusKeyENOENT); string(r.value) != "Not found" {
				t.Fatalf("get miss: %v", r)
			}
			if r := w.binDo(binReq{opcode: opGetK, key: "k"}, statusKeyENOENT); r.key != "k" || len(r.value) != 0 {
				t.Fatalf("getk miss: %v", r)
			}
		}},
		{"quiet gets answer hits only; noop ends the batch", func(t *testing.T, w *wire) {
			w.binDo(set(opSet, "a", "1", 0, 0), statusOK)
			w.sendBin(binReq{opcode: opGetQ, key: "a", opaque: 1}, binReq{opcode: opGetKQ, key: "b", opaque: 2},
				binReq{opcode: opGetKQ, key: "a", opaque: 3}, binReq{opcode: opNoop, opaque: 4})
			for _, want := range []binResp{{opcode: opGetQ, opaque: 1, value: []byte("1")},
				{opcode: opGetKQ, opaque: 3, key: "a", value: []byte("1")}, {opcode: opNoop, opaque: 4}} {
				r := w.readBin()
				if r.opcode != want.opcode || r.opaque != want.opaque || r.key != want.key || !bytes.Equal(r.value, want.value) {
					t.Fatalf("got %v, want %v", r, want)
				}
			}
		}},
		{"quiet stores are silent on success, loud on failure", func(t *testing.T, w *wire) {
			w.sendBin(set(opSetQ, "a", "1", 0, 0), set(opAddQ, "a", "2", 0, 0), set(opReplaceQ, "b", "2", 0, 0),
				binReq{opcode: opAppendQ, key: "a", value: []byte("+")}, binReq{opcode: opDeleteQ, key: "zz"},
				binReq{opcode: opIncrementQ, key: "zz", extras: deltaExtras(1, 0, 0xffffffff)},
				binReq{opcode: opFlushQ}, binReq{opcode: opNoop, opaque: 9})
			for _, want := range []struct {
				op     byte
				status uint16
			}{{opAddQ, statusKeyEEXISTS}, {opReplaceQ, statusKeyENOENT}, {opDeleteQ, statusKeyENOENT},
				{opIncrementQ, statusKeyENOENT}, {opNoop, statusOK}} {
				if r := w.readBin(); r.opcode != want.op || r.status != want.status {
					t.Fatalf("got %v, want op %#x status %#x", r, want.op, want.status)
				}
			}
		}},
		{"add and replace", func(t *testing.T, w *wire) {
			w.binDo(set(opAdd, "k", "a", 0, 0), statusOK)
			w.binDo(set(opAdd, "k", "b", 0, 0), statusKeyEEXISTS)
			w.binDo(set(opReplace, "z", "b", 0, 0), statusKeyENOENT)
			w.binDo(set(opReplace, "k", "c", 0, 0), statusOK)
			if r := w.binDo(binReq{opcode: opGet, key: "k"}, statusOK); string(r.value) != "c" {
				t.Fatalf("get: %v", r)
			}
		}},
		{"append and prepend", func(t *testing.T, w *wire) {
			w.binDo(binReq{opcode: opAppend, key: "k", value: []byte("x")}, statusNotStoredB)
			w.binDo(set(opSet, "k", "mm", 3, 0), statusOK)
			w.binDo(binReq{opcode: opAppend, key: "k", value: []byte(">>")}, statusOK)
			w.binDo(binReq{opcode: opPrepend, key: "k", value: []byte("<<")}, statusOK)
			w.binDo(binReq{opcode: opAppend, key: "k", value: []byte("!"), cas: 1}, statusKeyEEXISTS)
			r := w.binDo(binReq{opcode: opGet, key: "k"}, statusOK)
			if string(r.value) != "<<mm>>" || binary.BigEndian.Uint32(r.extras) != 3 {
				t.Fatalf("get: %v", r)
			}
		}},
		{"cas", func(t *testing.T, w *wire) {
			r := w.binDo(set(opSet, "k", "a", 0, 0), statusOK)
			w.binDo(set(opSet, "k", "b", 0, r.cas+100), statusKeyEEXISTS)
			w.binDo(set(opSet, "z", "b", 0, 5), statusKeyENOENT)
			r2 := w.binDo(set(opReplace, "k", "c", 0, r.cas), statusOK)
			if r2.cas == r.cas {
				t.Fatal("cas did not change on store")
			}
			w.binDo(binReq{opcode: opDelete, key: "k", cas: r.cas}, statusKeyEEXISTS)
			w.binDo(binReq{opcode: opDelete, key: "k", cas: r2.cas}, statusOK)
			w.binDo(binReq{opcode: opDelete, key: "k"}, statusKeyENOENT)
		}},
		{"incr and decr", func(t *testing.T, w *wire) {
			value := func(r binResp) uint64 { return binary.BigEndian.Uint64(r.value) }
			w.binDo(binReq{opcode: opIncrement, key: "n", extras: deltaExtras(1, 0, 0xffffffff)}, statusKeyENOENT)
			if r := w.binDo(binReq{opcode: opIncrement, key: "n", extras: deltaExtras(1, 10, 0)}, statusOK); value(r) != 10 {
				t.Fatalf("created with %d, want 10", value(r))
			}
			if r := w.binDo(binReq{opcode: opIncrement, key: "n", extras: deltaExtras(5, 0, 0)}, statusOK); value(r) != 15 {
				t.Fatalf("incr gave %d", value(r))
			}
			if r := w.binDo(binReq{opcode: opDecrement, key: "n", extras: deltaExtras(100, 0, 0)}, statusOK); value(r) != 0 {
				t.Fatalf("decr below zero gave %d", value(r))
			}
			w.binDo(binReq{opcode: opIncrement, key: "n", extras: deltaExtras(1<<64-1, 0, 0)}, statusOK)
			if r := w.binDo(binReq{opcode: opIncrement, key: "n", extras: deltaExtras(2, 0, 0)}, statusOK); value(r) != 1 {
				t.Fatalf("incr past 2^64 gave %d, want 1", value(r))
			}
			w.binDo(set(opSet, "s", "abc", 0, 0), statusOK)
			w.binDo(binReq{opcode: opIncrement, key: "s", extras: deltaExtras(1, 0, 0)}, statusDeltaBadval)
			w.binDo(binReq{opcode: opDecrement, key: "n", extras: deltaExtras(1, 0, 0), cas: 12345}, statusKeyEEXISTS)
		}},
		{"touch, gat and gatk", func(t *testing.T, w *wire) {
			w.binDo(binReq{opcode: opTouch, key: "k", extras: u32(10)}, statusKeyENOENT)
			w.binDo(set(opSet, "k", "v", 9, 0), statusOK)
			if r := w.binDo(binReq{opcode: opTouch, key: "k", extras: u32(10)}, statusOK); len(r.value) != 0 || binary.BigEndian.Uint32(r.extras) != 9 {
				t.Fatalf("touch: %v", r)
			}
			if r := w.binDo(binReq{opcode: opGat, key: "k", extras: u32(10)}, statusOK); string(r.value) != "v" || r.key != "" {
				t.Fatalf("gat: %v", r)
			}
			if r := w.binDo(binReq{opcode: opGatK, key: "k", extras: u32(10)}, statusOK); string(r.value) != "v" || r.key != "k" {
				t.Fatalf("gatk: %v", r)
			}
			w.sendBin(binReq{opcode: opGatQ, key: "nope", extras: u32(1)}, binReq{opcode: opGatKQ, key: "k", extras: u32(1)})
			if r := w.readBin(); r.opcode != opGatKQ || r.key != "k" {
				t.Fatalf("gatkq: %v", r)
			}
		}},
		{"flush, noop and version", func(t *testing.T, w *wire) {
			w.binDo(set(opSet, "k", "v", 0, 0), statusOK)
			w.binDo(binReq{opcode: opFlush}, statusOK)
			w.binDo(binReq{opcode: opGet, key: "k"}, statusKeyENOENT)
			w.binDo(binReq{opcode: opNoop, opaque: 77}, statusOK)
			if r := w.binDo(binReq{opcode: opVersion}, statusOK); string(r.value) != DefaultVersion {
				t.Fatalf("version: %v", r)
			}
		}},
		{"stat groups end with an empty packet", func(t *testing.T, w *wire) {
			for _, group := range []string{"", "settings", "items", "slabs", "sizes", "reset", "detail on"} {
				w.sendBin(binReq{opcode: opStat, key: group, opaque: 3})
				stats := map[string]string{}
				for {
					r := w.readBin()
					if r.opcode != opStat || r.status != statusOK || r.opaque != 3 {
						t.Fatalf("stat %q: %v", group, r)
					}
					if r.key == "" {
						break
					}
					stats[r.key] = string(r.value)
				}
				switch group {
				case "":
					if stats["pid"] == "" || stats["curr_connections"] != "1" || stats["limit_maxbytes"] == "" {
						t.Errorf("stats: %v", stats)
					}
				case "settings":
					if stats["item_size_max"] != "1048576" {
						t.Errorf("stats settings: %v", stats)
					}
				}
			}
			w.binDo(binReq{opcode: opStat, key: "conns"}, statusKeyENOENT)
		}},
		{"unknown opcodes are refused and the connection goes on", func(t *testing.T, w *wire) {
			w.binDo(binReq{opcode: 0x1b, extras: u32(1)}, statusUnknownCmd)
			w.binDo(binReq{opcode: 0x55, key: "x", value: []byte("body")}, statusUnknownCmd)
			w.binDo(binReq{opcode: opNoop}, statusOK)
		}},
		{"quit answers then closes", func(t *testing.T, w *wire) {
			w.binDo(binReq{opcode: opQuit}, statusOK)
			w.expectClosed()
		}},
		{"quitq closes silently", func(t *testing.T, w *wire) {
			w.sendBin(binReq{opcode: opQuitQ})
			w.expectClosed()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{})
			tt.run(t, dialServer(t, s))
		})
	}
}

func TestBinaryProtocolErrorsClose(t *testing.T) {
	tests := []struct {
		name   string
		req    binReq
		status uint16
	}{
		{"key over 250 bytes", binReq{opcode: opGet, key: strings.Repeat("k", 251)}, statusEINVAL},
		{"get with extras", binReq{opcode: opGet, key: "k", extras: u32(0)}, statusEINVAL},
		{"set without extras", binReq{opcode: opSet, key: "k", value: []byte("v")}, statusEINVAL},
		{"set without key", binReq{opcode: opSet, extras: setExtras(0, 0), value: []byte("v")}, statusEINVAL},
		{"incr with short extras", binReq{opcode: opIncrement, key: "k", extras: u32(1)}, statusEINVAL},
		{"version with a body", binReq{opcode: opVersion, value: []byte("x")}, statusEINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{})
			w := dialServer(t, s)
			w.binDo(tt.req, tt.status)
			w.expectClosed()
		})
	}

	t.Run("body shorter than key and extras", func(t *testing.T) {
		s := startServer(t, Config{})
		w := dialServer(t, s)
		b := binReq{opcode: opGet, key: "key"}.bytes()
		binary.BigEndian.PutUint32(b[8:], 1)
		w.sendBytes(b)
		if r := w.readBin(); r.status != statusUnknownCmd {
			t.Fatalf("got %v", r)
		}
		w.expectClosed()
	})
	t.Run("bad magic after the first packet", func(t *testing.T) {
		s := startServer(t, Config{})
		w := dialServer(t, s)
		w.binDo(binReq{opcode: opNoop}, statusOK)
		w.sendBytes(append([]byte{0x81}, make([]byte, 23)...))
		w.expectClosed()
	})
}

func TestProtocolIsChosenPerConnection(t *testing.T) {
	s := startServer(t, Config{})
	text, bin := dialServer(t, s), dialServer(t, s)
	text.do("set k 0 0 1\r\nx\r\n", "STORED")
	if r := bin.binDo(binReq{opcode: opGet, key: "k"}, statusOK); string(r.value) != "x" {
		t.Fatalf("binary get: %v", r)
	}
	bin.binDo(binReq{opcode: opSet, key: "k", value: []byte("y"), extras: setExtras(0, 0)}, statusOK)
	text.do("get k\r\n", "VALUE k 0 1", "y", "END")
	// A text connection stays text: a binary packet is just a bad line.
	text.do("\x80\r\n", "ERROR")
}

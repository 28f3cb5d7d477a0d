package conn

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/omcache/omcache/go/binprot"
	"github.com/omcache/omcache/go/internal/mctest"
)

var textOpts = Options{IOTimeout: 5 * time.Second, MaxBody: 4 << 20, Text: true}

// textResult is one translated response, its value copied.
type textResult struct {
	key   string
	flags uint32
	cas   uint64
	value string
	end   bool
}

// recvText reads translated responses up to END or the first error.
func recvText(c *Conn) ([]textResult, error) {
	var out []textResult
	for {
		r, err := c.Recv()
		if err != nil {
			return out, err
		}
		if r.Opcode == binprot.OpNoop {
			return append(out, textResult{end: true}), nil
		}
		f, ok := r.Flags()
		if !ok || r.Opcode != binprot.OpGetK || r.Magic != binprot.MagicResponse {
			return out, fmt.Errorf("not a GETK translation: %+v", r.Header)
		}
		out = append(out, textResult{key: string(r.Key), flags: f, cas: r.CAS, value: string(c.OwnValue(r.Value))})
	}
}

func TestTextAnswersInPieces(t *testing.T) {
	big := string(pattern(LargeValue*2+5, 3))
	tests := []struct {
		name    string
		stream  string
		want    []textResult
		wantErr string // substring; "" for none
		server  bool   // a *TextError for a SERVER_ERROR
	}{
		{"only END", "END\r\n", []textResult{{end: true}}, "", false},
		{"values", "VALUE a 5 3 77\r\nxyz\r\nVALUE bb 0 0 1\r\n\r\nEND\r\n",
			[]textResult{{key: "a", flags: 5, cas: 77, value: "xyz"}, {key: "bb", cas: 1}, {end: true}}, "", false},
		{"value holding CRLF", "VALUE k 4294967295 4 18446744073709551615\r\n\r\n\r\n\r\nEND\r\n",
			[]textResult{{key: "k", flags: 1<<32 - 1, cas: 1<<64 - 1, value: "\r\n\r\n"}, {end: true}}, "", false},
		{"large value", "VALUE big 9 " + fmt.Sprint(len(big)) + " 3\r\n" + big + "\r\nVALUE s 1 1 4\r\nz\r\nEND\r\n",
			[]textResult{{key: "big", flags: 9, cas: 3, value: big}, {key: "s", flags: 1, cas: 4, value: "z"}, {end: true}}, "", false},
		{"server error", "VALUE a 0 1 1\r\nx\r\nSERVER_ERROR out of memory writing get response\r\n",
			[]textResult{{key: "a", cas: 1, value: "x"}}, "SERVER_ERROR out of memory", true},
		{"client error", "CLIENT_ERROR bad command line format\r\n", nil, "CLIENT_ERROR", false},
		{"error", "ERROR\r\n", nil, `"ERROR"`, false},
		{"unknown line", "STORED\r\n", nil, "unexpected line", false},
		{"no CR", "END\n", nil, "not ended by CRLF", false},
		{"value without CRLF", "VALUE a 0 3 1\r\nxyzEND\r\n", nil, "not followed by CRLF", false},
		{"large value without CRLF", "VALUE a 0 " + fmt.Sprint(len(big)) + " 1\r\n" + big + "ab", nil, "not followed by CRLF", false},
		{"missing cas", "VALUE a 0 3\r\nxyz\r\nEND\r\n", nil, "bad VALUE line", false},
		{"extra field", "VALUE a 0 3 1 2\r\nxyz\r\nEND\r\n", nil, "bad VALUE line", false},
		{"flags too big", "VALUE a 4294967296 1 1\r\nx\r\nEND\r\n", nil, "bad VALUE line", false},
		{"negative size", "VALUE a 0 -1 1\r\n", nil, "bad VALUE line", false},
		{"size over the limit", "VALUE a 0 4194305 1\r\n", nil, "over the 4194304-byte limit", false},
		{"endless line", strings.Repeat("x", MaxTextLine+10), nil, "a line of over", false},
		{"cut short", "VALUE a 0 10 1\r\nxy", nil, "unexpected EOF", false},
	}
	for _, tt := range tests {
		for _, piece := range []int{1, 7, 1 << 20} {
			if piece == 1 && len(tt.stream) > 4096 {
				continue
			}
			t.Run(fmt.Sprintf("%s/pieces of %d", tt.name, piece), func(t *testing.T) {
				addr := fake(t, func(c net.Conn) {
					c.Read(make([]byte, 64))
					if piece >= len(tt.stream) {
						c.Write([]byte(tt.stream))
						return
					}
					for b := []byte(tt.stream); len(b) > 0; {
						k := min(piece, len(b))
						if _, err := c.Write(b[:k]); err != nil {
							return
						}
						b = b[k:]
						if len(b)%97 < piece { // a pause now and then
							time.Sleep(time.Millisecond)
						}
					}
				})
				c := dial(t, addr, textOpts)
				if err := c.Send(AppendGets(c.Buffer(), []byte("a"))); err != nil {
					t.Fatal(err)
				}
				got, err := recvText(c)
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				var te *TextError
				if errors.As(err, &te) != (strings.Contains(tt.wantErr, "_ERROR") || tt.wantErr == `"ERROR"`) || (te != nil && te.Server() != tt.server) {
					t.Fatalf("error %v: TextError %v, server %v", err, te, tt.server)
				}
				if err != nil && c.Err() == nil {
					t.Fatal("the connection is still usable after an error")
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %d results %+v, want %+v", len(got), got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("result %d = %+v, want %+v", i, got[i], tt.want[i])
					}
				}
			})
		}
	}
}

// Against memcached: one "gets" of many keys, hits and misses, a duplicate
// and a large value, twice on the same connection.
func TestTextGetsAgainstMemcached(t *testing.T) {
	inBothReadModes(t, func(t *testing.T) {
		srv := mctest.Start(t, mctest.Options{Args: []string{"-I", "4m"}})
		bin := dial(t, srv.Addr, Options{IOTimeout: 5 * time.Second, MaxBody: 4 << 20})
		values := map[string][]byte{"t-1": []byte("one"), "t-2": {}, "t-big": pattern(LargeValue*3, 1)}
		buf := bin.Buffer()
		for k, v := range values {
			buf = binprot.AppendStoreHeader(buf, binprot.OpSetQ, []byte(k), len(v), 42, 0, 0, 0)
			buf = bin.AppendValue(buf, v)
		}
		if err := bin.Send(binprot.AppendKeyOnly(buf, binprot.OpNoop, nil, 0, 0)); err != nil {
			t.Fatal(err)
		}
		if r, err := bin.Recv(); err != nil || r.Opcode != binprot.OpNoop {
			t.Fatalf("stores: %v %v", r.Opcode, err)
		}
		c := dial(t, srv.Addr, textOpts)
		keys := [][]byte{[]byte("t-1"), []byte("t-missing"), []byte("t-big"), []byte("t-2"), []byte("t-1")}
		for round := 0; round < 2; round++ {
			if err := c.Send(AppendGets(c.Buffer(), keys...)); err != nil {
				t.Fatal(err)
			}
			got, err := recvText(c)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"t-1", "t-big", "t-2", "t-1", ""}
			if len(got) != len(want) {
				t.Fatalf("round %d: %d results, want %d", round, len(got), len(want))
			}
			for i, k := range want {
				if k == "" {
					if !got[i].end {
						t.Fatalf("round %d: no END", round)
					}
					continue
				}
				if got[i].key != k || got[i].value != string(values[k]) || got[i].flags != 42 || got[i].cas == 0 {
					t.Fatalf("round %d, result %d: %q flags %d cas %d, %d bytes", round, i, got[i].key, got[i].flags, got[i].cas, len(got[i].value))
				}
			}
		}
		if !bytes.Equal(AppendGets(nil, []byte("a"), []byte("b")), []byte("gets a b\r\n")) {
			t.Fatal("AppendGets")
		}
	})
}

func FuzzParseValueLine(f *testing.F) {
	f.Add([]byte("key 1 2 3"))
	f.Add([]byte("k 4294967295 0 18446744073709551615"))
	f.Add([]byte("k  1 2 3"))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, flags, size, cas, ok := parseValueLine(b)
		if !ok {
			return
		}
		// A key without spaces, and the fields print back to a line that
		// parses the same (leading zeros aside, the same line).
		again := fmt.Sprintf("%s %d %d %d", key, flags, size, cas)
		k2, f2, s2, c2, ok2 := parseValueLine([]byte(again))
		if bytes.IndexByte(key, ' ') >= 0 || !ok2 || string(k2) != string(key) || f2 != flags || s2 != size || c2 != cas {
			t.Fatalf("%q parsed as %q", b, again)
		}
		if !bytes.Contains(b, []byte(" 0")) && again != string(b) {
			t.Fatalf("%q parsed as %q", b, again)
		}
	})
}

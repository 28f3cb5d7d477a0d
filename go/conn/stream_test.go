package conn

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/proto"
	"github.com/omcache/omcache/go/proto/meta"
	"github.com/omcache/omcache/go/proto/text"
)

// result is one reply, its key and value copied.
type result struct {
	kind   proto.Kind
	status proto.Status
	key    string
	flags  uint32
	cas    uint64
	seq    uint32
	value  string
}

// recvUntilEnd reads replies up to the end of a batch (END, MN), a status
// other than OK, or the first error.
func recvUntilEnd(c *Conn) ([]result, error) {
	var out []result
	for {
		r, err := c.Recv()
		if err != nil {
			return out, err
		}
		out = append(out, result{kind: r.Kind, status: r.Status, key: string(r.Key), flags: r.Flags, cas: r.CAS,
			seq: r.Seq, value: string(c.OwnValue(r.Value))})
		if r.Kind == proto.KindEnd || r.Kind == proto.KindStatus && r.Status != proto.StatusOK {
			return out, nil
		}
	}
}

// writeInPieces writes stream to c piece bytes at a time, pausing now and
// then, so that the client sees replies cut at every possible place.
func writeInPieces(c net.Conn, stream string, piece int) {
	if piece >= len(stream) {
		c.Write([]byte(stream))
		return
	}
	for b := []byte(stream); len(b) > 0; {
		k := min(piece, len(b))
		if _, err := c.Write(b[:k]); err != nil {
			return
		}
		b = b[k:]
		if len(b)%97 < piece { // a pause now and then
			time.Sleep(time.Millisecond)
		}
	}
}

type streamCase struct {
	name    string
	stream  string
	want    []result
	wantErr string // substring; "" for none
}

func runStreamCases(t *testing.T, cd proto.Codec, tests []streamCase) {
	for _, tt := range tests {
		for _, piece := range []int{1, 7, 1 << 20} {
			if piece == 1 && len(tt.stream) > 4096 {
				continue
			}
			t.Run(fmt.Sprintf("%s/pieces of %d", tt.name, piece), func(t *testing.T) {
				addr := fake(t, func(c net.Conn) {
					c.Read(make([]byte, 64))
					writeInPieces(c, tt.stream, piece)
				})
				c := dial(t, addr, Options{IOTimeout: 5 * time.Second, MaxValue: 4 << 20, Codec: cd})
				if err := c.Send(appendReq(t, c, c.Buffer(), proto.Request{Op: proto.OpGet, Key: []byte("a"), Seq: 1}, nil)); err != nil {
					t.Fatal(err)
				}
				got, err := recvUntilEnd(c)
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				if err != nil && (c.Err() == nil || !errors.Is(err, proto.ErrMalformed) && !strings.Contains(tt.wantErr, "EOF")) {
					t.Fatalf("error %v: connection error %v", err, c.Err())
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %d results %+v, want %+v", len(got), got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("result %d = %+v, want %+v", i, got[i], tt.want[i])
					}
				}
				if err == nil && c.Pending() {
					t.Fatal("bytes left after the answer")
				}
			})
		}
	}
}

func TestTextAnswersInPieces(t *testing.T) {
	big := string(pattern(LargeValue*2+5, 3))
	end := result{kind: proto.KindEnd}
	value := func(key string, flags uint32, cas uint64, v string) result {
		return result{kind: proto.KindValue, key: key, flags: flags, cas: cas, value: v}
	}
	runStreamCases(t, text.Codec{}, []streamCase{
		{"only END", "END\r\n", []result{end}, ""},
		{"values", "VALUE a 5 3 77\r\nxyz\r\nVALUE bb 0 0 1\r\n\r\nEND\r\n",
			[]result{value("a", 5, 77, "xyz"), value("bb", 0, 1, ""), end}, ""},
		{"value without cas", "VALUE a 0 3\r\nxyz\r\nEND\r\n", []result{value("a", 0, 0, "xyz"), end}, ""},
		{"value holding CRLF", "VALUE k 4294967295 4 18446744073709551615\r\n\r\n\r\n\r\nEND\r\n",
			[]result{value("k", 1<<32-1, 1<<64-1, "\r\n\r\n"), end}, ""},
		{"large value", "VALUE big 9 " + fmt.Sprint(len(big)) + " 3\r\n" + big + "\r\nVALUE s 1 1 4\r\nz\r\nEND\r\n",
			[]result{value("big", 9, 3, big), value("s", 1, 4, "z"), end}, ""},
		{"server error", "VALUE a 0 1 1\r\nx\r\nSERVER_ERROR out of memory writing get response\r\n",
			[]result{value("a", 0, 1, "x"), {kind: proto.KindStatus, status: proto.StatusServerError}}, ""},
		{"client error", "CLIENT_ERROR bad command line format\r\n", []result{{status: proto.StatusClientError}}, ""},
		{"error", "ERROR\r\n", []result{{status: proto.StatusUnknownCommand}}, ""},
		{"unknown line", "HELLO\r\n", nil, "unexpected line"},
		{"meta reply", "EN\r\n", nil, "unexpected line"},
		{"no CR", "END\n", nil, "not ended by CRLF"},
		{"binary reply", "\x81\x00\x00\x00", nil, "binary protocol"},
		{"value without CRLF", "VALUE a 0 3 1\r\nxyzEND\r\n", nil, "not followed by CRLF"},
		{"large value without CRLF", "VALUE a 0 " + fmt.Sprint(len(big)) + " 1\r\n" + big + "ab", nil, "not followed by CRLF"},
		{"extra field", "VALUE a 0 3 1 2\r\nxyz\r\nEND\r\n", nil, "bad VALUE line"},
		{"flags too big", "VALUE a 4294967296 1 1\r\nx\r\nEND\r\n", nil, "bad VALUE line"},
		{"negative size", "VALUE a 0 -1 1\r\n", nil, "bad VALUE line"},
		{"size over the limit", "VALUE a 0 4194305 1\r\n", nil, "over the 4194304-byte limit"},
		{"endless line", strings.Repeat("x", proto.MaxLine+10), nil, "a line of over"},
		{"cut short", "VALUE a 0 10 1\r\nxy", nil, "unexpected EOF"},
	})
}

func TestMetaAnswersInPieces(t *testing.T) {
	big := string(pattern(LargeValue*2+5, 3))
	end := result{kind: proto.KindEnd}
	value := func(key string, flags uint32, cas uint64, seq uint32, v string) result {
		return result{kind: proto.KindValue, key: key, flags: flags, cas: cas, seq: seq, value: v}
	}
	runStreamCases(t, meta.Codec{}, []streamCase{
		{"only MN", "MN\r\n", []result{end}, ""},
		{"values", "VA 3 f5 c77 ka O1\r\nxyz\r\nVA 0 kbb O2 c1\r\n\r\nMN\r\n",
			[]result{value("a", 5, 77, 1, "xyz"), value("bb", 0, 1, 2, ""), end}, ""},
		{"value holding CRLF", "VA 4 f4294967295 c18446744073709551615 O4294967295\r\n\r\n\r\n\r\nMN\r\n",
			[]result{value("", 1<<32-1, 1<<64-1, 1<<32-1, "\r\n\r\n"), end}, ""},
		{"unknown flags skipped", "VA 1 W Z X f2 O3 Q9\r\nx\r\nMN\r\n", []result{value("", 2, 0, 3, "x"), end}, ""},
		{"large value", "VA " + fmt.Sprint(len(big)) + " f9 kbig O1\r\n" + big + "\r\nVA 1 ks O2\r\nz\r\nMN\r\n",
			[]result{value("big", 9, 0, 1, big), value("s", 0, 0, 2, "z"), end}, ""},
		{"statuses", "HD O1\r\nNS O2\r\n", []result{{kind: proto.KindStatus, seq: 1}, {status: proto.StatusNotStored, seq: 2}}, ""},
		{"miss", "EN O7\r\n", []result{{status: proto.StatusMiss, seq: 7}}, ""},
		{"server error", "SERVER_ERROR out of memory\r\n", []result{{status: proto.StatusServerError}}, ""},
		{"error", "ERROR\r\n", []result{{status: proto.StatusUnknownCommand}}, ""},
		{"text VALUE", "VALUE a 0 1 1\r\nx\r\nEND\r\n", nil, "text VALUE line on a meta connection"},
		{"binary reply", "\x81\x0a\x00\x00", nil, "binary protocol"},
		{"bad size", "VA x O1\r\n", nil, "bad VA line"},
		{"bad opaque", "HD Ox\r\n", nil, "bad return flag"},
		{"MN with flags", "MN O1\r\n", nil, "bad MN line"},
		{"size over the limit", "VA 4194305 O1\r\n", nil, "over the 4194304-byte limit"},
		{"value without CRLF", "VA 3 O1\r\nxyzMN\r\n", nil, "not followed by CRLF"},
		{"large value without CRLF", "VA " + fmt.Sprint(len(big)) + " O1\r\n" + big + "ab", nil, "not followed by CRLF"},
		{"cut short", "VA 10 O1\r\nxy", nil, "unexpected EOF"},
	})
}

// Against memcached: one text "gets" of many keys, hits and misses, a
// duplicate and a large value, twice on the same connection, after the
// values were stored over a meta pipeline.
func TestTextGetsAgainstMemcached(t *testing.T) {
	inBothReadModes(t, func(t *testing.T) {
		srv := mctest.Start(t, mctest.Options{Args: []string{"-I", "4m"}})
		m := dial(t, srv.Addr, Options{IOTimeout: 5 * time.Second, MaxValue: 4 << 20, Codec: meta.Codec{}})
		values := map[string]string{"t-1": "one", "t-2": "", "t-big": string(pattern(LargeValue*3, 1))}
		buf := m.Buffer()
		for k, v := range values {
			buf = appendReq(t, m, buf, proto.Request{Op: proto.OpSet, Key: []byte(k), Flags: 42, Quiet: true, Seq: m.NextSeq()}, []byte(v))
		}
		if err := m.Send(appendNoop(t, m, buf, m.NextSeq())); err != nil {
			t.Fatal(err)
		}
		if r := recvOK(t, m); r.Kind != proto.KindEnd {
			t.Fatalf("stores: %+v", r)
		}
		c := dial(t, srv.Addr, Options{IOTimeout: 5 * time.Second, MaxValue: 4 << 20, Codec: text.Codec{}})
		keys := [][]byte{[]byte("t-1"), []byte("t-missing"), []byte("t-big"), []byte("t-2"), []byte("t-1")}
		for round := 0; round < 2; round++ {
			if err := c.Send(appendReq(t, c, c.Buffer(), proto.Request{Op: proto.OpGet, Keys: keys}, nil)); err != nil {
				t.Fatal(err)
			}
			got, err := recvUntilEnd(c)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"t-1", "t-big", "t-2", "t-1", ""}
			if len(got) != len(want) {
				t.Fatalf("round %d: %d results, want %d", round, len(got), len(want))
			}
			for i, k := range want {
				if k == "" {
					if got[i].kind != proto.KindEnd {
						t.Fatalf("round %d: no END", round)
					}
					continue
				}
				if got[i].key != k || got[i].value != values[k] || got[i].flags != 42 || got[i].cas == 0 {
					t.Fatalf("round %d, result %d: %q flags %d cas %d, %d bytes", round, i, got[i].key, got[i].flags, got[i].cas, len(got[i].value))
				}
			}
			if c.Pending() {
				t.Fatalf("round %d: bytes left", round)
			}
		}
	})
}

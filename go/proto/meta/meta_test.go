package meta

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/omcache/omcache/go/proto"
)

func TestAppendRequest(t *testing.T) {
	k := []byte("key")
	bin := []byte("a b\x00\xff")
	b64 := base64.StdEncoding.EncodeToString(bin)
	tests := []struct {
		name string
		req  proto.Request
		want string // "" for ErrUnsupported
	}{
		{"get", proto.Request{Op: proto.OpGet, Key: k, Seq: 5}, "mg key v f c O5\r\n"},
		{"get with key", proto.Request{Op: proto.OpGet, Key: k, Seq: 5, WithKey: true}, "mg key v f c k O5\r\n"},
		{"quiet get", proto.Request{Op: proto.OpGet, Key: k, Seq: 4294967295, WithKey: true, Quiet: true}, "mg key v f c k O4294967295 q\r\n"},
		{"gat", proto.Request{Op: proto.OpGat, Key: k, Exp: 10, Seq: 1}, "mg key v f c T10 O1\r\n"},
		{"quiet gat", proto.Request{Op: proto.OpGat, Key: k, Exp: 0, Seq: 1, WithKey: true, Quiet: true}, "mg key v f c k T0 O1 q\r\n"},
		{"get metadata", proto.Request{Op: proto.OpGet, Key: k, Seq: 2, Meta: true}, "mg key v f c t l h s O2\r\n"},
		{"get metadata without bump", proto.Request{Op: proto.OpGet, Key: k, Seq: 2, Meta: true, NoBump: true}, "mg key v f c t l h s u O2\r\n"},
		{"get base64", proto.Request{Op: proto.OpGet, Key: bin, Base64Key: true, Seq: 3, WithKey: true}, "mg " + b64 + " v f c k b O3\r\n"},
		{"touch", proto.Request{Op: proto.OpTouch, Key: k, Exp: 100, Seq: 6}, "mg key T100 O6\r\n"},
		{"quiet touch", proto.Request{Op: proto.OpTouch, Key: k, Exp: 100, Seq: 6, Quiet: true}, ""},
		{"set", proto.Request{Op: proto.OpSet, Key: k, ValueLen: 3, Flags: 1, Exp: 2, Seq: 7}, "ms key 3 F1 T2 O7\r\n"},
		{"add", proto.Request{Op: proto.OpAdd, Key: k, ValueLen: 0, Seq: 7}, "ms key 0 ME O7\r\n"},
		{"replace", proto.Request{Op: proto.OpReplace, Key: k, ValueLen: 1, Flags: 4294967295, Exp: 4294967295, Seq: 7}, "ms key 1 F4294967295 T4294967295 MR O7\r\n"},
		{"append", proto.Request{Op: proto.OpAppend, Key: k, ValueLen: 1, Flags: 9, Exp: 9, Seq: 7}, "ms key 1 MA O7\r\n"},
		{"prepend", proto.Request{Op: proto.OpPrepend, Key: k, ValueLen: 1, Seq: 7}, "ms key 1 MP O7\r\n"},
		{"set with cas", proto.Request{Op: proto.OpSet, Key: k, ValueLen: 3, CAS: 18446744073709551615, Seq: 7}, "ms key 3 C18446744073709551615 O7\r\n"},
		{"append with cas", proto.Request{Op: proto.OpAppend, Key: k, ValueLen: 3, CAS: 9, Seq: 7}, "ms key 3 MA C9 O7\r\n"},
		{"quiet set", proto.Request{Op: proto.OpSet, Key: k, ValueLen: 3, Seq: 8, Quiet: true}, "ms key 3 O8 q\r\n"},
		{"set base64", proto.Request{Op: proto.OpSet, Key: bin, Base64Key: true, ValueLen: 3, Seq: 8}, "ms " + b64 + " 3 b O8\r\n"},
		{"delete", proto.Request{Op: proto.OpDelete, Key: k, Seq: 9}, "md key O9\r\n"},
		{"delete with cas", proto.Request{Op: proto.OpDelete, Key: k, CAS: 3, Seq: 9}, "md key C3 O9\r\n"},
		{"quiet delete", proto.Request{Op: proto.OpDelete, Key: k, Seq: 9, Quiet: true}, "md key O9 q\r\n"},
		{"incr", proto.Request{Op: proto.OpIncr, Key: k, Delta: 3, Seq: 10}, "ma key D3 v O10\r\n"},
		{"decr", proto.Request{Op: proto.OpDecr, Key: k, Delta: 18446744073709551615, Seq: 10}, "ma key MD D18446744073709551615 v O10\r\n"},
		{"incr create", proto.Request{Op: proto.OpIncr, Key: k, Delta: 1, Create: true, Exp: 60, Initial: 7, Seq: 10}, "ma key D1 v N60 J7 O10\r\n"},
		{"decr create with cas", proto.Request{Op: proto.OpDecr, Key: k, Delta: 1, Create: true, Initial: 0, CAS: 2, Seq: 10}, "ma key MD D1 v N0 J0 C2 O10\r\n"},
		{"lease get", proto.Request{Op: proto.OpGet, Key: k, Seq: 12, Meta: true, Vivify: 30, Recache: 5}, "mg key v f c t l h s N30 R5 O12\r\n"},
		{"vivify get", proto.Request{Op: proto.OpGet, Key: k, Seq: 12, Vivify: 4294967295}, "mg key v f c N4294967295 O12\r\n"},
		{"recache get", proto.Request{Op: proto.OpGet, Key: k, Seq: 12, Recache: 1}, "mg key v f c R1 O12\r\n"},
		{"invalidate", proto.Request{Op: proto.OpDelete, Key: k, Seq: 13, Invalidate: true, Exp: 30}, "md key I T30 O13\r\n"},
		{"invalidate without ttl", proto.Request{Op: proto.OpDelete, Key: k, Seq: 13, Invalidate: true}, "md key I O13\r\n"},
		{"invalidate with cas", proto.Request{Op: proto.OpDelete, Key: k, Seq: 13, Invalidate: true, Exp: 2, CAS: 8}, "md key I T2 C8 O13\r\n"},
		{"vivify on a set", proto.Request{Op: proto.OpSet, Key: k, Vivify: 3}, ""},
		{"recache on a touch", proto.Request{Op: proto.OpTouch, Key: k, Recache: 3}, ""},
		{"invalidate on a get", proto.Request{Op: proto.OpGet, Key: k, Invalidate: true}, ""},
		{"noop", proto.Request{Op: proto.OpNoop, Seq: 11}, "mn\r\n"},
		{"flush", proto.Request{Op: proto.OpFlush, Exp: 5}, "flush_all 5\r\n"},
		{"quiet flush", proto.Request{Op: proto.OpFlush, Quiet: true}, ""},
		{"version", proto.Request{Op: proto.OpVersion}, "version\r\n"},
		{"stats", proto.Request{Op: proto.OpStats, Key: []byte("items")}, "stats items\r\n"},
		{"verbosity", proto.Request{Op: proto.OpVerbosity, Delta: 0}, "verbosity 0\r\n"},
		{"several keys", proto.Request{Op: proto.OpGet, Keys: [][]byte{k, k}}, ""},
		{"key with a space", proto.Request{Op: proto.OpGet, Key: []byte("a b")}, ""},
		{"empty key", proto.Request{Op: proto.OpSet}, ""},
		{"empty base64 key", proto.Request{Op: proto.OpSet, Base64Key: true}, ""},
		{"key of 251 bytes", proto.Request{Op: proto.OpDelete, Key: []byte(strings.Repeat("k", 251))}, ""},
		// memcached refuses a key token over 250 bytes, base64 or not:
		// 186 bytes are 248 of base64, 187 are 252.
		{"base64 key of 186 bytes", proto.Request{Op: proto.OpDelete, Key: []byte(strings.Repeat(" ", 186)), Base64Key: true},
			"md " + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", 186))) + " b O0\r\n"},
		{"base64 key of 187 bytes", proto.Request{Op: proto.OpDelete, Key: []byte(strings.Repeat(" ", 187)), Base64Key: true}, ""},
		{"base64 key of 250 bytes", proto.Request{Op: proto.OpGet, Key: []byte(strings.Repeat(" ", 250)), Base64Key: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Codec{}.AppendRequest([]byte("prefix"), &tt.req)
			if tt.want == "" {
				if !errors.Is(err, proto.ErrUnsupported) {
					t.Fatalf("got %q, %v; want ErrUnsupported", got, err)
				}
				if string(got) != "prefix" {
					t.Fatalf("an unsupported request appended %q", got[len("prefix"):])
				}
				return
			}
			if err != nil || string(got) != "prefix"+tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, "prefix"+tt.want)
			}
		})
	}
	if got := (Codec{}).AppendValueEnd([]byte("v")); string(got) != "v\r\n" {
		t.Fatalf("AppendValueEnd: %q", got)
	}
}

func TestCodecProperties(t *testing.T) {
	c := Codec{}
	if c.Name() != "meta" || !c.Pipelined() || c.MultiKeyGet() || !c.CreateOnDelta() {
		t.Fatalf("properties: %s pipelined %v multi %v create %v", c.Name(), c.Pipelined(), c.MultiKeyGet(), c.CreateOnDelta())
	}
	for _, tt := range []struct {
		key    string
		base64 bool
		ok     bool
	}{
		{"k", false, true}, {"a b", false, false}, {"a b", true, true}, {"\x00", true, true},
		{strings.Repeat("k", 250), false, true}, {"", true, false}, {strings.Repeat("k", 251), true, false},
		{strings.Repeat("k", 186), true, true}, {strings.Repeat("k", 187), true, false},
	} {
		if ok, why := c.KeyOK([]byte(tt.key), tt.base64); ok != tt.ok || ok != (why == "") {
			t.Errorf("KeyOK(%d bytes %.10q, base64 %v) = %v, %q", len(tt.key), tt.key, tt.base64, ok, why)
		}
	}
}

type parseCase struct {
	name    string
	in      string
	want    proto.Reply
	value   int
	wantErr string
	wrong   bool
}

func TestParse(t *testing.T) {
	st := func(s proto.Status, seq uint32) proto.Reply {
		return proto.Reply{Kind: proto.KindStatus, Status: s, Seq: seq, HasSeq: true}
	}
	tests := []parseCase{
		{"VA", "VA 3 f5 c77 kkey O1\r\n", proto.Reply{Kind: proto.KindValue, Flags: 5, CAS: 77, Key: []byte("key"), Seq: 1, HasSeq: true}, 3, "", false},
		{"VA empty", "VA 0\r\n", proto.Reply{Kind: proto.KindValue}, 0, "", false},
		{"VA limits", "VA 1024 f4294967295 c18446744073709551615 O4294967295\r\n",
			proto.Reply{Kind: proto.KindValue, Flags: 1<<32 - 1, CAS: 1<<64 - 1, Seq: 1<<32 - 1, HasSeq: true}, 1024, "", false},
		{"VA base64 key", "VA 1 kYSBi b O2\r\n", proto.Reply{Kind: proto.KindValue, Key: []byte("YSBi"), KeyBase64: true, Seq: 2, HasSeq: true}, 1, "", false},
		{"VA metadata", "VA 2 t-1 l3 h1 s2 O4\r\n", proto.Reply{Kind: proto.KindValue, HasMeta: true, TTL: -1, LastAccess: 3, Fetched: true, Size: 2, Seq: 4, HasSeq: true}, 2, "", false},
		{"VA unknown flags", "VA 1 P9 Q O4\r\n", proto.Reply{Kind: proto.KindValue, Seq: 4, HasSeq: true}, 1, "", false},
		{"VA won", "VA 0 c1 t-1 O1 W\r\n", proto.Reply{Kind: proto.KindValue, CAS: 1, HasMeta: true, TTL: -1, Seq: 1, HasSeq: true, Win: true}, 0, "", false},
		{"VA already won", "VA 0 c1 t30 O2 Z\r\n", proto.Reply{Kind: proto.KindValue, CAS: 1, HasMeta: true, TTL: 30, Seq: 2, HasSeq: true, AlreadyWon: true}, 0, "", false},
		{"VA stale won", "VA 3 c5 t30 X W\r\n", proto.Reply{Kind: proto.KindValue, CAS: 5, HasMeta: true, TTL: 30, Stale: true, Win: true}, 3, "", false},
		{"VA stale", "VA 3 c5 t30 Z X\r\n", proto.Reply{Kind: proto.KindValue, CAS: 5, HasMeta: true, TTL: 30, Stale: true, AlreadyWon: true}, 3, "", false},
		{"bad win flag", "VA 1 W1\r\n", proto.Reply{}, -1, "bad return flag", false},
		{"bad stale flag", "VA 1 Xy\r\n", proto.Reply{}, -1, "bad return flag", false},
		{"HD", "HD O7\r\n", st(proto.StatusOK, 7), -1, "", false},
		{"HD bare", "HD\r\n", proto.Reply{Kind: proto.KindStatus}, -1, "", false},
		{"HD with key", "HD kk O7 c9\r\n", proto.Reply{Key: []byte("k"), CAS: 9, Seq: 7, HasSeq: true}, -1, "", false},
		{"EN", "EN O1\r\n", st(proto.StatusMiss, 1), -1, "", false},
		{"NF", "NF O2\r\n", st(proto.StatusMiss, 2), -1, "", false},
		{"NS", "NS O3\r\n", st(proto.StatusNotStored, 3), -1, "", false},
		{"EX", "EX O4\r\n", st(proto.StatusExists, 4), -1, "", false},
		{"MN", "MN\r\n", proto.Reply{Kind: proto.KindEnd}, -1, "", false},
		{"text OK", "OK\r\n", proto.Reply{}, -1, "", false},
		{"text END", "END\r\n", proto.Reply{Kind: proto.KindEnd}, -1, "", false},
		{"text STAT", "STAT pid 1\r\n", proto.Reply{Kind: proto.KindStat, Key: []byte("pid"), Value: []byte("1"), More: true}, -1, "", false},
		{"text VERSION", "VERSION 1.6.18\r\n", proto.Reply{Value: []byte("1.6.18")}, -1, "", false},
		{"ERROR", "ERROR\r\n", proto.Reply{Status: proto.StatusUnknownCommand}, -1, "", false},
		{"CLIENT_ERROR", "CLIENT_ERROR bad data chunk\r\n", proto.Reply{Status: proto.StatusClientError, Message: []byte("bad data chunk")}, -1, "", false},
		{"SERVER_ERROR", "SERVER_ERROR out of memory\r\n", proto.Reply{Status: proto.StatusServerError, Message: []byte("out of memory")}, -1, "", false},
		{"SERVER_ERROR too large", "SERVER_ERROR object too large for cache\r\n",
			proto.Reply{Status: proto.StatusTooLarge, Message: []byte("object too large for cache")}, -1, "", false},
		{"text VALUE", "VALUE k 0 1 1\r\n", proto.Reply{}, -1, "text VALUE line", false},
		{"VA without size", "VA\r\n", proto.Reply{}, -1, "bad VA line", false},
		{"VA bad size", "VA -1 O1\r\n", proto.Reply{}, -1, "bad VA line", false},
		{"VA over the limit", "VA 1025 O1\r\n", proto.Reply{}, -1, "over the 1024-byte limit", false},
		{"bad opaque", "HD O\r\n", proto.Reply{}, -1, "bad return flag", false},
		{"opaque over 32 bits", "HD O4294967296\r\n", proto.Reply{}, -1, "bad return flag", false},
		{"bad cas", "HD c-1\r\n", proto.Reply{}, -1, "bad return flag", false},
		{"bad flags", "VA 1 fx\r\n", proto.Reply{}, -1, "bad return flag", false},
		{"bad hit", "VA 1 h2\r\n", proto.Reply{}, -1, "bad return flag", false},
		{"bad ttl", "VA 1 t\r\n", proto.Reply{}, -1, "bad return flag", false},
		{"empty key", "VA 1 k\r\n", proto.Reply{}, -1, "bad return flag", false},
		{"MN with flags", "MN O1\r\n", proto.Reply{}, -1, "bad MN line", false},
		{"unknown line", "XY O1\r\n", proto.Reply{}, -1, "unexpected line", false},
		{"LF alone", "HD\n", proto.Reply{}, -1, "not ended by CRLF", false},
		{"binary reply", "\x81\x0a\x00\x00", proto.Reply{}, -1, "binary protocol", true},
		{"endless line", "VA 1 " + strings.Repeat("x", proto.MaxLine), proto.Reply{}, -1, "a line of over", false},
	}
	const maxValue = 1024
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			var r proto.Reply
			complete := strings.IndexByte(tt.in, '\n') + 1
			for i := 0; i < complete && tt.wantErr == ""; i++ {
				head, _, _, need, err := Codec{}.Parse(in[:i], maxValue, &r)
				if err != nil || head != 0 || need <= i {
					t.Fatalf("prefix of %d bytes: head %d, need %d, %v", i, head, need, err)
				}
			}
			buf := append(append([]byte(nil), in...), "MN\r\n"...)
			head, value, trailer, _, err := Codec{}.Parse(buf, maxValue, &r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, proto.ErrMalformed) ||
					errors.Is(err, proto.ErrWrongProtocol) != tt.wrong || head != 0 {
					t.Fatalf("got head %d, %v; want an error with %q (wrong protocol %v)", head, err, tt.wantErr, tt.wrong)
				}
				return
			}
			if err != nil || head != len(in) || value != tt.value || (value >= 0) != (trailer == 2) {
				t.Fatalf("head %d value %d trailer %d, %v; want head %d value %d", head, value, trailer, err, len(in), tt.value)
			}
			if err := (Codec{}).Complete(&r); err != nil {
				t.Fatal(err)
			}
			if !replyEqual(r, tt.want) {
				t.Fatalf("got %+v\nwant %+v", r, tt.want)
			}
		})
	}
}

func TestReplyKeyIs(t *testing.T) {
	bin := []byte("a b\x00")
	r := proto.Reply{Key: []byte(base64.StdEncoding.EncodeToString(bin)), KeyBase64: true}
	if !r.KeyIs(bin) || r.KeyIs([]byte("a b")) || r.KeyIs(r.Key) {
		t.Fatal("KeyIs of a base64 key")
	}
	r = proto.Reply{Key: []byte("!!!"), KeyBase64: true}
	if r.KeyIs([]byte("!!!")) {
		t.Fatal("an invalid base64 key matched")
	}
	r = proto.Reply{Key: []byte("plain")}
	if !r.KeyIs([]byte("plain")) || r.KeyIs([]byte("plai")) {
		t.Fatal("KeyIs of a plain key")
	}
}

func replyEqual(a, b proto.Reply) bool {
	eq := func(x, y []byte) bool { return string(x) == string(y) }
	a2, b2 := a, b
	a2.Key, a2.Value, a2.Message, b2.Key, b2.Value, b2.Message = nil, nil, nil, nil, nil, nil
	return reflect.DeepEqual(a2, b2) && eq(a.Key, b.Key) && eq(a.Value, b.Value) && eq(a.Message, b.Message)
}

// FuzzMetaParse is FuzzTextParse for the meta codec.
func FuzzMetaParse(f *testing.F) {
	f.Add([]byte("VA 3 f5 c77 kkey b O1 t-1\r\nxyz\r\nMN\r\n"), uint16(16))
	f.Add([]byte("HD O1\r\nEN\r\nSERVER_ERROR x\r\nSTAT a b\r\nEND\r\n"), uint16(0))
	f.Add([]byte("VA 99999 O1\r\n"), uint16(1024))
	f.Add([]byte("\x81\x00"), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, maxValue uint16) {
		rest := data
		for len(rest) > 0 {
			var r proto.Reply
			head, value, trailer, need, err := Codec{}.Parse(rest, int(maxValue), &r)
			if err != nil {
				if !errors.Is(err, proto.ErrMalformed) || head != 0 {
					t.Fatalf("error %v with head %d", err, head)
				}
				return
			}
			if head == 0 {
				if need <= len(rest) {
					t.Fatalf("need %d with %d bytes buffered: no progress", need, len(rest))
				}
				return
			}
			if head > len(rest) || value > int(maxValue) || value < -1 || value < 0 && trailer != 0 || value >= 0 && trailer != 2 {
				t.Fatalf("head %d value %d trailer %d for %d bytes, max %d", head, value, trailer, len(rest), maxValue)
			}
			if r.KeyBase64 {
				r.KeyIs([]byte("k")) // must not panic on any key
			}
			end := head + max(value, 0) + trailer
			if end > len(rest) {
				return
			}
			if err := (Codec{}).Complete(&r); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			rest = rest[end:]
		}
	})
}

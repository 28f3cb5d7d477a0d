package binprot

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The expected packets are the worked examples of the memcached wiki's
// binary protocol document, so the encoders are checked against the spec,
// not against themselves.
func TestEncodeMatchesSpecExamples(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"get Hello", AppendKeyOnly(nil, OpGet, []byte("Hello"), 0, 0),
			"800000050000000000000005000000000000000000000000 48656c6c6f"},
		{"set Hello World", AppendStore(nil, OpAdd, []byte("Hello"), []byte("World"), 0xdeadbeef, 0xe10, 0, 0),
			"800200050800000000000012000000000000000000000000 deadbeef00000e10 48656c6c6f 576f726c64"},
		{"incr counter", AppendDelta(nil, OpIncrement, []byte("counter"), 1, 0, 0xe10, 0, 0),
			"80050007140000000000001b000000000000000000000000 0000000000000001 0000000000000000 00000e10 636f756e746572"},
		{"append", AppendConcat(nil, OpAppend, []byte("Hello"), []byte("!"), 0, 0),
			"800e00050000000000000006000000000000000000000000 48656c6c6f 21"},
		// The header encoders stop before the value, which goes out on its
		// own (writev): the same packets once the value is appended.
		{"set Hello World, value apart", append(AppendStoreHeader(nil, OpAdd, []byte("Hello"), 5, 0xdeadbeef, 0xe10, 0, 0), "World"...),
			"800200050800000000000012000000000000000000000000 deadbeef00000e10 48656c6c6f 576f726c64"},
		{"append, value apart", append(AppendConcatHeader(nil, OpAppend, []byte("Hello"), 1, 0, 0), '!'),
			"800e00050000000000000006000000000000000000000000 48656c6c6f 21"},
		{"flush delay", AppendFlush(nil, OpFlush, 0xe10, 0),
			"800800000400000000000004000000000000000000000000 00000e10"},
		{"flush now", AppendFlush(nil, OpFlushQ, 0, 7),
			"801800000000000000000000000000070000000000000000"},
		{"touch", AppendTouch(nil, OpGATKQ, []byte("k"), 10, 0x01020304),
			"802400010400000000000005010203040000000000000000 0000000a 6b"},
		{"noop", AppendKeyOnly(nil, OpNoop, nil, 0, 0),
			"800a00000000000000000000000000000000000000000000"},
		{"delete with cas", AppendKeyOnly(nil, OpDelete, []byte("k"), 0x1122334455667788, 9),
			"800400010000000000000001000000091122334455667788 6b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := unhex(t, tt.want); !bytes.Equal(tt.got, want) {
				t.Errorf("got  %x\nwant %x", tt.got, want)
			}
		})
	}
}

func TestEncodeAppendsToCallerBuffer(t *testing.T) {
	buf := make([]byte, 0, 256)
	buf = append(buf, "prefix"...)
	buf = AppendKeyOnly(buf, OpGetKQ, []byte("a"), 0, 1)
	buf = AppendKeyOnly(buf, OpNoop, nil, 0, 2)
	if !bytes.HasPrefix(buf, []byte("prefix")) || len(buf) != 6+25+24 {
		t.Fatalf("unexpected buffer %x", buf)
	}
	allocs := testing.AllocsPerRun(100, func() {
		b := buf[:0]
		b = AppendStore(b, OpSet, []byte("key"), []byte("value"), 1, 2, 3, 4)
		b = AppendDelta(b, OpIncrement, []byte("key"), 1, 2, 3, 0, 5)
		_ = AppendTouch(b, OpGAT, []byte("key"), 3, 6)
	})
	if allocs != 0 {
		t.Errorf("encoding into a big enough buffer allocated %v times", allocs)
	}
}

func TestParseResponse(t *testing.T) {
	getResp := "810000000400000000000009000000000000000000000001 deadbeef 576f726c64"
	tests := []struct {
		name    string
		in      string
		n       int
		wantErr bool
		check   func(t *testing.T, r Response)
	}{
		{name: "empty", in: ""},
		{name: "partial header", in: "8100000004"},
		{name: "header only, body pending", in: getResp[:48], check: func(t *testing.T, r Response) {
			if r.BodyLen != 9 || r.CAS != 1 {
				t.Errorf("header not reported for a partial packet: %+v", r.Header)
			}
		}},
		{name: "get hit", in: getResp, n: 33, check: func(t *testing.T, r Response) {
			f, ok := r.Flags()
			if !ok || f != 0xdeadbeef || string(r.Value) != "World" || r.CAS != 1 || len(r.Key) != 0 {
				t.Errorf("bad decode: %+v", r)
			}
		}},
		{name: "trailing bytes are left alone", in: getResp + "81", n: 33},
		{name: "not found with message", in: "810000000000000100000009000000000000000000000000 4e6f7420666f756e64", n: 33,
			check: func(t *testing.T, r Response) {
				if r.Status != StatusKeyNotFound || string(r.Value) != "Not found" {
					t.Errorf("bad decode: %+v", r)
				}
			}},
		{name: "incr value", in: "810500000000000000000008000000050000000000000002 00000000000000ff", n: 32,
			check: func(t *testing.T, r Response) {
				v, ok := r.Uint64Value()
				if !ok || v != 255 || r.Opaque != 5 {
					t.Errorf("bad decode: %+v", r)
				}
			}},
		{name: "getk key", in: "810c00030400000000000007000000000000000000000000 00000000 6b6579", n: 31,
			check: func(t *testing.T, r Response) {
				if string(r.Key) != "key" || len(r.Value) != 0 {
					t.Errorf("bad decode: %+v", r)
				}
			}},
		{name: "request magic", in: "800000000000000000000000000000000000000000000000", wantErr: true},
		{name: "text protocol", in: "4552524f520d0a4552524f520d0a4552524f520d0a455252", wantErr: true},
		{name: "data type", in: "810000000001000000000000000000000000000000000000", wantErr: true},
		{name: "extras over body", in: "8100000005000000000000040000000000000000000000000000000000", wantErr: true},
		{name: "key over body", in: "81000100000000000000000000000000000000000000000000", wantErr: true},
		{name: "extras plus key over body", in: "810000ff04000000000001020000000000000000000000000000", wantErr: true},
		{name: "absurd body", in: "8100000000000000ffffffff0000000000000000000000000000", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, n, err := ParseResponse(unhex(t, tt.in), 1<<20)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) || n != 0 {
					t.Fatalf("want ErrMalformed, got n=%d err=%v", n, err)
				}
				return
			}
			if err != nil || n != tt.n {
				t.Fatalf("got n=%d err=%v, want n=%d", n, err, tt.n)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestParseResponseCapsBody(t *testing.T) {
	hdr := unhex(t, "810000000000000000000101000000000000000000000000")
	if _, _, err := ParseResponse(hdr, 0x100); !errors.Is(err, ErrMalformed) {
		t.Errorf("body of 0x101 under cap 0x100: got %v", err)
	}
	if _, n, err := ParseResponse(hdr, 0x101); err != nil || n != 0 {
		t.Errorf("body of 0x101 under cap 0x101: got n=%d err=%v", n, err)
	}
}

func TestParseResponseByteByByte(t *testing.T) {
	// A stream of pipelined responses fed one byte at a time must come out
	// whole, in order, with no error on any prefix.
	var stream []byte
	stream = append(stream, unhex(t, "810d00010400000000000007000000010000000000000009 00000001 61 7878")...)
	stream = append(stream, unhex(t, "810a00000000000000000000000000020000000000000000")...)
	var got []uint32
	start := 0
	for end := 0; end <= len(stream); end++ {
		r, n, err := ParseResponse(stream[start:end], 64)
		if err != nil {
			t.Fatalf("prefix %d: %v", end, err)
		}
		if n > 0 {
			got = append(got, r.Opaque)
			start += n
		}
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 || start != len(stream) {
		t.Fatalf("got opaques %v, consumed %d of %d", got, start, len(stream))
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{OpGATKQ.String(), "GATKQ"},
		{Opcode(0xfe).String(), "OP(0xfe)"},
		{StatusValueTooLarge.String(), "value too large"},
		{Status(0x1234).String(), "status 0x1234"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q want %q", tt.got, tt.want)
		}
	}
}

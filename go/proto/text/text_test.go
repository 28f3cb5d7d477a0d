package text

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/omcache/omcache/go/proto"
)

func TestAppendRequest(t *testing.T) {
	k := []byte("key")
	tests := []struct {
		name string
		req  proto.Request
		want string // "" for ErrUnsupported
	}{
		{"get", proto.Request{Op: proto.OpGet, Key: k, Seq: 9, WithKey: true}, "gets key\r\n"},
		{"multi get", proto.Request{Op: proto.OpGet, Keys: [][]byte{[]byte("a"), []byte("b"), []byte("c")}}, "gets a b c\r\n"},
		{"gat", proto.Request{Op: proto.OpGat, Key: k, Exp: 10}, "gats 10 key\r\n"},
		{"multi gat", proto.Request{Op: proto.OpGat, Keys: [][]byte{[]byte("a"), []byte("b")}, Exp: 0}, "gats 0 a b\r\n"},
		{"touch", proto.Request{Op: proto.OpTouch, Key: k, Exp: 4294967295}, "touch key 4294967295\r\n"},
		{"set", proto.Request{Op: proto.OpSet, Key: k, Flags: 1, Exp: 2, ValueLen: 3}, "set key 1 2 3\r\n"},
		{"add", proto.Request{Op: proto.OpAdd, Key: k, ValueLen: 0}, "add key 0 0 0\r\n"},
		{"replace", proto.Request{Op: proto.OpReplace, Key: k, Flags: 4294967295, ValueLen: 1 << 20}, "replace key 4294967295 0 1048576\r\n"},
		{"append", proto.Request{Op: proto.OpAppend, Key: k, Flags: 7, Exp: 8, ValueLen: 1}, "append key 7 8 1\r\n"},
		{"prepend", proto.Request{Op: proto.OpPrepend, Key: k, ValueLen: 1}, "prepend key 0 0 1\r\n"},
		{"set with cas", proto.Request{Op: proto.OpSet, Key: k, Flags: 1, Exp: 2, ValueLen: 3, CAS: 18446744073709551615}, "cas key 1 2 3 18446744073709551615\r\n"},
		{"replace with cas", proto.Request{Op: proto.OpReplace, Key: k, ValueLen: 3, CAS: 5}, "cas key 0 0 3 5\r\n"},
		{"add with cas", proto.Request{Op: proto.OpAdd, Key: k, ValueLen: 3, CAS: 5}, ""},
		{"append with cas", proto.Request{Op: proto.OpAppend, Key: k, ValueLen: 3, CAS: 5}, ""},
		{"prepend with cas", proto.Request{Op: proto.OpPrepend, Key: k, ValueLen: 3, CAS: 5}, ""},
		{"delete", proto.Request{Op: proto.OpDelete, Key: k}, "delete key\r\n"},
		{"delete with cas", proto.Request{Op: proto.OpDelete, Key: k, CAS: 1}, ""},
		{"incr", proto.Request{Op: proto.OpIncr, Key: k, Delta: 18446744073709551615}, "incr key 18446744073709551615\r\n"},
		{"decr", proto.Request{Op: proto.OpDecr, Key: k, Delta: 0}, "decr key 0\r\n"},
		{"incr create", proto.Request{Op: proto.OpIncr, Key: k, Delta: 1, Create: true}, ""},
		{"flush", proto.Request{Op: proto.OpFlush}, "flush_all\r\n"},
		{"flush delayed", proto.Request{Op: proto.OpFlush, Exp: 30}, "flush_all 30\r\n"},
		{"noop", proto.Request{Op: proto.OpNoop, Seq: 3}, "version\r\n"},
		{"version", proto.Request{Op: proto.OpVersion}, "version\r\n"},
		{"stats", proto.Request{Op: proto.OpStats}, "stats\r\n"},
		{"stats group", proto.Request{Op: proto.OpStats, Key: []byte("slabs")}, "stats slabs\r\n"},
		{"stats group with a newline", proto.Request{Op: proto.OpStats, Key: []byte("x\r\nflush_all")}, ""},
		{"verbosity", proto.Request{Op: proto.OpVerbosity, Delta: 1}, "verbosity 1\r\n"},
		{"quiet get", proto.Request{Op: proto.OpGet, Key: k, Quiet: true}, ""},
		{"quiet set", proto.Request{Op: proto.OpSet, Key: k, Quiet: true}, ""},
		{"key with a space", proto.Request{Op: proto.OpGet, Key: []byte("a b")}, ""},
		{"key with a newline", proto.Request{Op: proto.OpSet, Key: []byte("a\r\nflush_all")}, ""},
		{"empty key", proto.Request{Op: proto.OpDelete}, ""},
		{"key of 251 bytes", proto.Request{Op: proto.OpTouch, Key: []byte(strings.Repeat("k", 251))}, ""},
		{"key of 250 bytes", proto.Request{Op: proto.OpDelete, Key: []byte(strings.Repeat("k", 250))}, "delete " + strings.Repeat("k", 250) + "\r\n"},
		{"base64 key", proto.Request{Op: proto.OpGet, Key: k, Base64Key: true}, ""},
		{"multi get with a bad key", proto.Request{Op: proto.OpGet, Keys: [][]byte{[]byte("a"), []byte("b c")}}, ""},
		{"multi get with an empty key", proto.Request{Op: proto.OpGet, Keys: [][]byte{[]byte("a"), {}}}, ""},
		{"no command", proto.Request{Op: proto.OpNone, Key: k}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, err := Codec{}.AppendRequest(prefix, &tt.req)
			if tt.want == "" {
				if !errors.Is(err, proto.ErrUnsupported) {
					t.Fatalf("got %q, %v; want ErrUnsupported", got, err)
				}
				if string(got) != "prefix" {
					t.Fatalf("an unsupported request appended %q", got[len(prefix):])
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
	if c.Name() != "text" || c.Pipelined() || !c.MultiKeyGet() || c.CreateOnDelta() {
		t.Fatalf("properties: %s pipelined %v multi %v create %v", c.Name(), c.Pipelined(), c.MultiKeyGet(), c.CreateOnDelta())
	}
	for _, tt := range []struct {
		key    string
		base64 bool
		ok     bool
	}{
		{"k", false, true}, {"\x80\xff", false, true}, {strings.Repeat("k", 250), false, true},
		{"", false, false}, {"a b", false, false}, {"\x7f", false, false}, {"\x00", false, false},
		{strings.Repeat("k", 251), false, false}, {"k", true, false},
	} {
		if ok, why := c.KeyOK([]byte(tt.key), tt.base64); ok != tt.ok || ok != (why == "") {
			t.Errorf("KeyOK(%q, %v) = %v, %q", tt.key, tt.base64, ok, why)
		}
	}
}

// parseCase is one reply and what Parse must make of it.
type parseCase struct {
	name    string
	in      string
	want    proto.Reply
	value   int    // length of the value after the head, -1 for none
	wantErr string // substring of the error; "" for none
	wrong   bool   // the error also wraps ErrWrongProtocol
}

func TestParse(t *testing.T) {
	st := func(s proto.Status) proto.Reply { return proto.Reply{Kind: proto.KindStatus, Status: s} }
	tests := []parseCase{
		{"END", "END\r\n", proto.Reply{Kind: proto.KindEnd}, -1, "", false},
		{"STORED", "STORED\r\n", st(proto.StatusOK), -1, "", false},
		{"DELETED", "DELETED\r\n", st(proto.StatusOK), -1, "", false},
		{"TOUCHED", "TOUCHED\r\n", st(proto.StatusOK), -1, "", false},
		{"OK", "OK\r\n", st(proto.StatusOK), -1, "", false},
		{"NOT_FOUND", "NOT_FOUND\r\n", st(proto.StatusMiss), -1, "", false},
		{"NOT_STORED", "NOT_STORED\r\n", st(proto.StatusNotStored), -1, "", false},
		{"EXISTS", "EXISTS\r\n", st(proto.StatusExists), -1, "", false},
		{"ERROR", "ERROR\r\n", st(proto.StatusUnknownCommand), -1, "", false},
		{"CLIENT_ERROR", "CLIENT_ERROR bad command line format\r\n",
			proto.Reply{Status: proto.StatusClientError, Message: []byte("bad command line format")}, -1, "", false},
		{"CLIENT_ERROR non-numeric", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
			proto.Reply{Status: proto.StatusDeltaBadValue, Message: []byte("cannot increment or decrement non-numeric value")}, -1, "", false},
		{"SERVER_ERROR", "SERVER_ERROR out of memory storing object\r\n",
			proto.Reply{Status: proto.StatusServerError, Message: []byte("out of memory storing object")}, -1, "", false},
		{"SERVER_ERROR too large", "SERVER_ERROR object too large for cache\r\n",
			proto.Reply{Status: proto.StatusTooLarge, Message: []byte("object too large for cache")}, -1, "", false},
		{"VALUE", "VALUE key 5 3 77\r\n", proto.Reply{Kind: proto.KindValue, Key: []byte("key"), Flags: 5, CAS: 77, More: true}, 3, "", false},
		{"VALUE without cas", "VALUE k 4294967295 0\r\n", proto.Reply{Kind: proto.KindValue, Key: []byte("k"), Flags: 1<<32 - 1, More: true}, 0, "", false},
		{"VALUE max cas", "VALUE k 0 1 18446744073709551615\r\n", proto.Reply{Kind: proto.KindValue, Key: []byte("k"), CAS: 1<<64 - 1, More: true}, 1, "", false},
		{"VALUE at the limit", "VALUE k 0 1024 1\r\n", proto.Reply{Kind: proto.KindValue, Key: []byte("k"), CAS: 1, More: true}, 1024, "", false},
		{"STAT", "STAT pid 123\r\n", proto.Reply{Kind: proto.KindStat, Key: []byte("pid"), Value: []byte("123"), More: true}, -1, "", false},
		{"STAT with spaces", "STAT version 1.6.18 extra\r\n", proto.Reply{Kind: proto.KindStat, Key: []byte("version"), Value: []byte("1.6.18 extra"), More: true}, -1, "", false},
		{"STAT without value", "STAT empty\r\n", proto.Reply{Kind: proto.KindStat, Key: []byte("empty"), Value: []byte{}, More: true}, -1, "", false},
		{"VERSION", "VERSION 1.6.18\r\n", proto.Reply{Value: []byte("1.6.18")}, -1, "", false},
		{"counter", "42\r\n", proto.Reply{Counter: 42, HasCounter: true}, -1, "", false},
		{"counter padded", "7   \r\n", proto.Reply{Counter: 7, HasCounter: true}, -1, "", false},
		{"counter max", "18446744073709551615\r\n", proto.Reply{Counter: 1<<64 - 1, HasCounter: true}, -1, "", false},
		{"counter overflow", "18446744073709551616\r\n", proto.Reply{}, -1, "bad number", false},
		{"counter junk", "4x\r\n", proto.Reply{}, -1, "bad number", false},
		{"unknown line", "HELLO\r\n", proto.Reply{}, -1, "unexpected line", false},
		{"meta reply", "HD O1\r\n", proto.Reply{}, -1, "unexpected line", false},
		{"empty line", "\r\n", proto.Reply{}, -1, "unexpected line", false},
		{"VALUE over the limit", "VALUE k 0 1025 1\r\n", proto.Reply{}, -1, "over the 1024-byte limit", false},
		{"VALUE missing size", "VALUE k 0\r\n", proto.Reply{}, -1, "bad VALUE line", false},
		{"VALUE extra field", "VALUE k 0 1 1 1\r\n", proto.Reply{}, -1, "bad VALUE line", false},
		{"VALUE two spaces", "VALUE k  0 1\r\n", proto.Reply{}, -1, "bad VALUE line", false},
		{"VALUE negative size", "VALUE k 0 -1 1\r\n", proto.Reply{}, -1, "bad VALUE line", false},
		{"VALUE flags over 32 bits", "VALUE k 4294967296 1 1\r\n", proto.Reply{}, -1, "bad VALUE line", false},
		{"VALUE key over 250 bytes", "VALUE " + strings.Repeat("k", 251) + " 0 1 1\r\n", proto.Reply{}, -1, "bad VALUE line", false},
		{"LF alone", "END\n", proto.Reply{}, -1, "not ended by CRLF", false},
		{"binary reply", "\x81\x00\x00\x00\x00\x00\x00\x00", proto.Reply{}, -1, "binary protocol", true},
		{"endless line", strings.Repeat("x", proto.MaxLine+2), proto.Reply{}, -1, "a line of over", false},
	}
	runParseCases(t, tests)
}

func runParseCases(t *testing.T, tests []parseCase) {
	t.Helper()
	const maxValue = 1024
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			var r proto.Reply
			// Byte by byte: every prefix asks for more, never errs, unless
			// the error shows before the line ends.
			complete := strings.IndexByte(tt.in, '\n') + 1
			for i := 0; i < complete && tt.wantErr == ""; i++ {
				head, _, _, need, err := Codec{}.Parse(in[:i], maxValue, &r)
				if err != nil || head != 0 || need <= i {
					t.Fatalf("prefix of %d bytes: head %d, need %d, %v", i, head, need, err)
				}
			}
			// The line followed by the start of another reply: only the
			// line is consumed.
			buf := append(append([]byte(nil), in...), "END\r\n"...)
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

// replyEqual compares replies, byte slices by content (nil equals empty
// except for Value, where a STAT without value must have an empty one).
func replyEqual(a, b proto.Reply) bool {
	eq := func(x, y []byte) bool { return string(x) == string(y) }
	a2, b2 := a, b
	a2.Key, a2.Value, a2.Message, b2.Key, b2.Value, b2.Message = nil, nil, nil, nil, nil, nil
	return reflect.DeepEqual(a2, b2) && eq(a.Key, b.Key) && eq(a.Value, b.Value) && eq(a.Message, b.Message) && (a.Value == nil) == (b.Value == nil)
}

// FuzzTextParse feeds arbitrary bytes to Parse as a stream of replies. It
// checks that Parse never panics, never claims more bytes than it was
// given, asks for more only when no line is complete, and never announces
// a value over maxValue; errors wrap ErrMalformed.
func FuzzTextParse(f *testing.F) {
	f.Add([]byte("VALUE k 5 3 77\r\nxyz\r\nEND\r\n"), uint16(16))
	f.Add([]byte("STAT pid 1\r\nEND\r\n42\r\nSERVER_ERROR x\r\n"), uint16(0))
	f.Add([]byte("VALUE k 0 99999 1\r\n"), uint16(1024))
	f.Add([]byte("\x81\x00"), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, maxValue uint16) {
		fuzzParse(t, Codec{}, data, int(maxValue))
	})
}

// fuzzParse runs codec's Parse over data as a stream.
func fuzzParse(t *testing.T, c proto.Codec, data []byte, maxValue int) {
	rest := data
	for len(rest) > 0 {
		var r proto.Reply
		head, value, trailer, need, err := c.Parse(rest, maxValue, &r)
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
		if head > len(rest) || value > maxValue || value < -1 || trailer < 0 || trailer > 2 || value < 0 && trailer != 0 {
			t.Fatalf("head %d value %d trailer %d for %d bytes, max %d", head, value, trailer, len(rest), maxValue)
		}
		if value < 0 {
			value = 0
		}
		end := head + value + trailer
		if end > len(rest) {
			return
		}
		r.Value = rest[head : head+value]
		if err := c.Complete(&r); err != nil && !errors.Is(err, proto.ErrMalformed) {
			t.Fatalf("Complete: %v", err)
		}
		rest = rest[end:]
	}
}

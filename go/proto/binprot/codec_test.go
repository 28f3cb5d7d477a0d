package binprot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/omcache/omcache/go/proto"
)

func TestCodecAppendRequest(t *testing.T) {
	k := []byte("key")
	bin := []byte("a b\x00\xff")
	tests := []struct {
		name string
		req  proto.Request
		want []byte // nil for ErrUnsupported
	}{
		{"get", proto.Request{Op: proto.OpGet, Key: k, Seq: 5}, AppendKeyOnly(nil, OpGet, k, 0, 5)},
		{"get with key", proto.Request{Op: proto.OpGet, Key: k, Seq: 5, WithKey: true}, AppendKeyOnly(nil, OpGetK, k, 0, 5)},
		{"quiet get", proto.Request{Op: proto.OpGet, Key: k, Seq: 5, Quiet: true}, AppendKeyOnly(nil, OpGetQ, k, 0, 5)},
		{"quiet get with key", proto.Request{Op: proto.OpGet, Key: k, Seq: 5, Quiet: true, WithKey: true}, AppendKeyOnly(nil, OpGetKQ, k, 0, 5)},
		{"binary key", proto.Request{Op: proto.OpGet, Key: bin, Seq: 1, Base64Key: true}, AppendKeyOnly(nil, OpGet, bin, 0, 1)},
		{"gat", proto.Request{Op: proto.OpGat, Key: k, Exp: 10, Seq: 6}, AppendTouch(nil, OpGAT, k, 10, 6)},
		{"gatk", proto.Request{Op: proto.OpGat, Key: k, Exp: 10, Seq: 6, WithKey: true}, AppendTouch(nil, OpGATK, k, 10, 6)},
		{"gatq", proto.Request{Op: proto.OpGat, Key: k, Exp: 10, Seq: 6, Quiet: true}, AppendTouch(nil, OpGATQ, k, 10, 6)},
		{"gatkq", proto.Request{Op: proto.OpGat, Key: k, Exp: 10, Seq: 6, Quiet: true, WithKey: true}, AppendTouch(nil, OpGATKQ, k, 10, 6)},
		{"touch", proto.Request{Op: proto.OpTouch, Key: k, Exp: 100, Seq: 7}, AppendTouch(nil, OpTouch, k, 100, 7)},
		{"quiet touch", proto.Request{Op: proto.OpTouch, Key: k, Quiet: true}, nil},
		{"set", proto.Request{Op: proto.OpSet, Key: k, ValueLen: 3, Flags: 1, Exp: 2, CAS: 3, Seq: 8}, AppendStoreHeader(nil, OpSet, k, 3, 1, 2, 3, 8)},
		{"setq", proto.Request{Op: proto.OpSet, Key: k, ValueLen: 3, Quiet: true, Seq: 8}, AppendStoreHeader(nil, OpSetQ, k, 3, 0, 0, 0, 8)},
		{"add", proto.Request{Op: proto.OpAdd, Key: k, ValueLen: 0, Seq: 8}, AppendStoreHeader(nil, OpAdd, k, 0, 0, 0, 0, 8)},
		{"addq", proto.Request{Op: proto.OpAdd, Key: k, Quiet: true, Seq: 8}, AppendStoreHeader(nil, OpAddQ, k, 0, 0, 0, 0, 8)},
		{"replace", proto.Request{Op: proto.OpReplace, Key: k, ValueLen: 9, Flags: 7, Seq: 8}, AppendStoreHeader(nil, OpReplace, k, 9, 7, 0, 0, 8)},
		{"replaceq", proto.Request{Op: proto.OpReplace, Key: k, Quiet: true, Seq: 8}, AppendStoreHeader(nil, OpReplaceQ, k, 0, 0, 0, 0, 8)},
		{"append", proto.Request{Op: proto.OpAppend, Key: k, ValueLen: 1, Flags: 7, Exp: 9, CAS: 4, Seq: 8}, AppendConcatHeader(nil, OpAppend, k, 1, 4, 8)},
		{"appendq", proto.Request{Op: proto.OpAppend, Key: k, ValueLen: 1, Quiet: true, Seq: 8}, AppendConcatHeader(nil, OpAppendQ, k, 1, 0, 8)},
		{"prepend", proto.Request{Op: proto.OpPrepend, Key: k, ValueLen: 1, Seq: 8}, AppendConcatHeader(nil, OpPrepend, k, 1, 0, 8)},
		{"prependq", proto.Request{Op: proto.OpPrepend, Key: k, ValueLen: 1, Quiet: true, Seq: 8}, AppendConcatHeader(nil, OpPrependQ, k, 1, 0, 8)},
		{"delete", proto.Request{Op: proto.OpDelete, Key: k, Seq: 9}, AppendKeyOnly(nil, OpDelete, k, 0, 9)},
		{"delete with cas", proto.Request{Op: proto.OpDelete, Key: k, CAS: 5, Seq: 9}, AppendKeyOnly(nil, OpDelete, k, 5, 9)},
		{"deleteq", proto.Request{Op: proto.OpDelete, Key: k, Quiet: true, Seq: 9}, AppendKeyOnly(nil, OpDeleteQ, k, 0, 9)},
		{"incr", proto.Request{Op: proto.OpIncr, Key: k, Delta: 2, Initial: 5, Exp: 60, Seq: 10}, AppendDelta(nil, OpIncrement, k, 2, 5, NoCreate, 0, 10)},
		{"incr create", proto.Request{Op: proto.OpIncr, Key: k, Delta: 2, Initial: 5, Exp: 60, Create: true, Seq: 10}, AppendDelta(nil, OpIncrement, k, 2, 5, 60, 0, 10)},
		{"incr create at the reserved expiration", proto.Request{Op: proto.OpIncr, Key: k, Delta: 2, Exp: NoCreate, Create: true, Seq: 10},
			AppendDelta(nil, OpIncrement, k, 2, 0, NoCreate-1, 0, 10)},
		{"decr", proto.Request{Op: proto.OpDecr, Key: k, Delta: 2, CAS: 3, Seq: 10}, AppendDelta(nil, OpDecrement, k, 2, 0, NoCreate, 3, 10)},
		{"decrq", proto.Request{Op: proto.OpDecr, Key: k, Delta: 2, Quiet: true, Seq: 10}, AppendDelta(nil, OpDecrementQ, k, 2, 0, NoCreate, 0, 10)},
		{"flush", proto.Request{Op: proto.OpFlush, Exp: 30, Seq: 11}, AppendFlush(nil, OpFlush, 30, 11)},
		{"flushq", proto.Request{Op: proto.OpFlush, Quiet: true, Seq: 11}, AppendFlush(nil, OpFlushQ, 0, 11)},
		{"noop", proto.Request{Op: proto.OpNoop, Seq: 12}, AppendKeyOnly(nil, OpNoop, nil, 0, 12)},
		{"quiet noop", proto.Request{Op: proto.OpNoop, Quiet: true}, nil},
		{"version", proto.Request{Op: proto.OpVersion, Seq: 13}, AppendKeyOnly(nil, OpVersion, nil, 0, 13)},
		{"stats", proto.Request{Op: proto.OpStats, Seq: 14}, AppendKeyOnly(nil, OpStat, nil, 0, 14)},
		{"stats group", proto.Request{Op: proto.OpStats, Key: []byte("items"), Seq: 14}, AppendKeyOnly(nil, OpStat, []byte("items"), 0, 14)},
		{"stats group too long", proto.Request{Op: proto.OpStats, Key: []byte(strings.Repeat("s", 251))}, nil},
		{"several keys", proto.Request{Op: proto.OpGet, Keys: [][]byte{k, k}}, nil},
		{"empty key", proto.Request{Op: proto.OpGet}, nil},
		{"key of 251 bytes", proto.Request{Op: proto.OpSet, Key: []byte(strings.Repeat("k", 251))}, nil},
		{"key of 250 bytes", proto.Request{Op: proto.OpDelete, Key: []byte(strings.Repeat("k", 250))}, AppendKeyOnly(nil, OpDelete, []byte(strings.Repeat("k", 250)), 0, 0)},
		{"no command", proto.Request{Op: proto.OpNone, Key: k}, nil},
		{"unknown command", proto.Request{Op: proto.Op(200), Key: k}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Codec{}.AppendRequest([]byte("prefix"), &tt.req)
			if tt.want == nil {
				if !errors.Is(err, proto.ErrUnsupported) || string(got) != "prefix" {
					t.Fatalf("got %x, %v; want ErrUnsupported and nothing appended", got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, append([]byte("prefix"), tt.want...)) {
				t.Fatalf("got  %x, %v\nwant %x", got, err, tt.want)
			}
		})
	}
	if got := (Codec{}).AppendValueEnd([]byte("v")); string(got) != "v" {
		t.Fatalf("AppendValueEnd: %q", got)
	}
	c := Codec{}
	if c.Name() != "binary" || !c.Pipelined() || c.MultiKeyGet() || !c.CreateOnDelta() {
		t.Fatal("codec properties")
	}
	if ok, _ := c.KeyOK([]byte("a b\x00"), false); !ok {
		t.Fatal("KeyOK refuses a binary key")
	}
	if ok, why := c.KeyOK(nil, false); ok || why == "" {
		t.Fatal("KeyOK accepts an empty key")
	}
}

// resp builds a response packet.
func resp(op Opcode, status Status, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(extras)+len(key)+len(value))
	b[0] = MagicResponse
	b[1] = byte(op)
	binary.BigEndian.PutUint16(b[2:], uint16(len(key)))
	b[4] = byte(len(extras))
	binary.BigEndian.PutUint16(b[6:], uint16(status))
	binary.BigEndian.PutUint32(b[8:], uint32(len(extras)+len(key)+len(value)))
	binary.BigEndian.PutUint32(b[12:], opaque)
	binary.BigEndian.PutUint64(b[16:], cas)
	b = append(b, extras...)
	b = append(b, key...)
	return append(b, value...)
}

func TestCodecParse(t *testing.T) {
	flags := []byte{0xde, 0xad, 0xbe, 0xef}
	counter := []byte{0, 0, 0, 0, 0, 0, 0, 42}
	seq := func(r proto.Reply) proto.Reply { r.Seq, r.HasSeq = 77, true; return r }
	tests := []struct {
		name    string
		in      []byte
		head    int
		want    proto.Reply // after Complete with the value
		wantErr string
		wrong   bool
	}{
		{"get hit", resp(OpGet, 0, 77, 9, flags, nil, []byte("v")), HeaderLen + 4,
			seq(proto.Reply{Kind: proto.KindValue, Op: proto.OpGet, Flags: 0xdeadbeef, CAS: 9, Value: []byte("v")}), "", false},
		{"getk hit", resp(OpGetK, 0, 77, 9, flags, []byte("key"), []byte("value")), HeaderLen + 7,
			seq(proto.Reply{Kind: proto.KindValue, Op: proto.OpGet, Flags: 0xdeadbeef, CAS: 9, Key: []byte("key"), Value: []byte("value")}), "", false},
		{"getkq hit", resp(OpGetKQ, 0, 77, 1, flags, []byte("k"), nil), HeaderLen + 5,
			seq(proto.Reply{Kind: proto.KindValue, Op: proto.OpGet, Flags: 0xdeadbeef, CAS: 1, Key: []byte("k")}), "", false},
		{"gatk hit", resp(OpGATK, 0, 77, 1, flags, []byte("k"), []byte("v")), HeaderLen + 5,
			seq(proto.Reply{Kind: proto.KindValue, Op: proto.OpGat, Flags: 0xdeadbeef, CAS: 1, Key: []byte("k"), Value: []byte("v")}), "", false},
		{"get miss", resp(OpGet, StatusKeyNotFound, 77, 0, nil, nil, []byte("Not found")), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpGet, Status: proto.StatusMiss, Message: []byte("Not found")}), "", false},
		{"set ok", resp(OpSet, 0, 77, 5, nil, nil, nil), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpSet, CAS: 5}), "", false},
		{"setq exists", resp(OpSetQ, StatusKeyExists, 77, 0, nil, nil, []byte("Data exists for key.")), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpSet, Status: proto.StatusExists, Message: []byte("Data exists for key.")}), "", false},
		{"add not stored", resp(OpAdd, StatusNotStored, 77, 0, nil, nil, nil), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpAdd, Status: proto.StatusNotStored}), "", false},
		{"too large", resp(OpSet, StatusValueTooLarge, 77, 0, nil, nil, []byte("Too large.")), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpSet, Status: proto.StatusTooLarge, Message: []byte("Too large.")}), "", false},
		{"invalid", resp(OpSet, StatusInvalidArgs, 77, 0, nil, nil, nil), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpSet, Status: proto.StatusInvalid}), "", false},
		{"auth", resp(OpGet, StatusAuthError, 77, 0, nil, nil, nil), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpGet, Status: proto.StatusAuth}), "", false},
		{"unknown command", resp(OpVerbosity, StatusUnknownCommand, 77, 0, nil, nil, []byte("Unknown command")), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpVerbosity, Status: proto.StatusUnknownCommand, Message: []byte("Unknown command")}), "", false},
		{"unknown status", resp(OpSet, Status(0x86), 77, 0, nil, nil, []byte("busy")), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpSet, Status: proto.StatusServerError, Message: []byte("busy")}), "", false},
		{"incr", resp(OpIncrement, 0, 77, 3, nil, nil, counter), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpIncr, CAS: 3, Counter: 42, HasCounter: true, Value: counter}), "", false},
		{"decr bad value", resp(OpDecrement, StatusDeltaBadValue, 77, 0, nil, nil, []byte("Non-numeric")), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpDecr, Status: proto.StatusDeltaBadValue, Message: []byte("Non-numeric")}), "", false},
		{"noop", resp(OpNoop, 0, 77, 0, nil, nil, nil), HeaderLen, seq(proto.Reply{Kind: proto.KindEnd, Op: proto.OpNoop}), "", false},
		{"version", resp(OpVersion, 0, 77, 0, nil, nil, []byte("1.6.18")), HeaderLen,
			seq(proto.Reply{Kind: proto.KindStatus, Op: proto.OpVersion, Value: []byte("1.6.18")}), "", false},
		{"stat", resp(OpStat, 0, 77, 0, nil, []byte("pid"), []byte("12")), HeaderLen + 3,
			seq(proto.Reply{Kind: proto.KindStat, Op: proto.OpStats, More: true, Key: []byte("pid"), Value: []byte("12")}), "", false},
		{"stat end", resp(OpStat, 0, 77, 0, nil, nil, nil), HeaderLen, seq(proto.Reply{Kind: proto.KindEnd, Op: proto.OpStats}), "", false},
		{"incr with a short value", resp(OpIncrement, 0, 77, 0, nil, nil, counter[:7]), HeaderLen, proto.Reply{}, "7-byte value", false},
		{"get hit without flags", resp(OpGet, 0, 77, 0, nil, nil, []byte("v")), 0, proto.Reply{}, "0 bytes of extras", false},
		{"unknown opcode", resp(Opcode(0x60), 0, 77, 0, nil, nil, nil), 0, proto.Reply{}, "unknown opcode", false},
		{"quit", resp(OpQuit, 0, 77, 0, nil, nil, nil), 0, proto.Reply{}, "unknown opcode", false},
		{"body over the limit", resp(OpGet, 0, 77, 0, flags, nil, make([]byte, 2000)), 0, proto.Reply{}, "body", false},
		{"extras over the body", func() []byte { b := resp(OpGet, 0, 77, 0, flags, nil, nil); b[4] = 200; return b }(), 0, proto.Reply{}, "", false},
		{"request magic", func() []byte { b := resp(OpGet, 0, 77, 0, flags, nil, nil); b[0] = MagicRequest; return b }(), 0,
			proto.Reply{}, "bad magic 0x80", false},
		{"text ERRORs", []byte("ERROR\r\nERROR\r\nERROR\r\nERROR\r\n"), 0, proto.Reply{}, "text-protocol reply", true},
		{"text SERVER_ERROR", []byte("SERVER_ERROR out of memory storing object\r\n"), 0, proto.Reply{}, "text-protocol reply", true},
		{"text line", []byte("VERSION 1.6.18-memcachedtest\r\n"), 0, proto.Reply{}, "does not speak", true},
	}
	const maxValue = 1024
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Codec{}
			var r proto.Reply
			// Byte by byte up to the end of the head: more is needed, and
			// never more than the head.
			if tt.head > 0 {
				for i := 0; i < tt.head; i++ {
					head, _, _, need, err := c.Parse(tt.in[:i], maxValue, &r)
					if err != nil || head != 0 || need <= i || need > tt.head {
						t.Fatalf("prefix of %d bytes: head %d, need %d, %v", i, head, need, err)
					}
				}
			}
			head, value, trailer, need, err := c.Parse(tt.in, maxValue, &r)
			if err == nil && head > 0 {
				if value < 0 || head+value+trailer != len(tt.in) || trailer != 0 {
					t.Fatalf("head %d value %d trailer %d for a packet of %d", head, value, trailer, len(tt.in))
				}
				r.Value = tt.in[head : head+value : head+value]
				if len(r.Value) == 0 {
					r.Value = nil
				}
				err = c.Complete(&r)
			}
			if tt.head == 0 {
				if err == nil || !errors.Is(err, proto.ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) ||
					errors.Is(err, proto.ErrWrongProtocol) != tt.wrong {
					t.Fatalf("head %d need %d, %v; want an error with %q (wrong protocol %v)", head, need, err, tt.wantErr, tt.wrong)
				}
				return
			}
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, proto.ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Complete: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || head != tt.head {
				t.Fatalf("head %d, %v; want head %d", head, err, tt.head)
			}
			if !replyEqual(r, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", r, tt.want)
			}
		})
	}
}

// A text error line shorter than a binary header is recognised at once,
// not waited on for the 24 bytes of a header that will never come.
func TestCodecParseShortTextReply(t *testing.T) {
	for _, in := range []string{"ERROR\r\n", "CLIENT_ERROR x\r\n", "SERVER_ERROR busy\r\n"} {
		var r proto.Reply
		head, _, _, need, err := Codec{}.Parse([]byte(in), 1024, &r)
		if !errors.Is(err, proto.ErrWrongProtocol) {
			t.Errorf("%q: head %d, need %d, %v; want ErrWrongProtocol", in, head, need, err)
		}
	}
	// The start of a text line is waited on to its end, for the message;
	// one byte that cannot start a line is enough to know the reply is not
	// binary.
	var r proto.Reply
	if head, _, _, need, err := (Codec{}).Parse([]byte("E"), 1024, &r); head != 0 || need != 2 || err != nil {
		t.Errorf("%q: head %d, need %d, %v; want a wait for the line", "E", head, need, err)
	}
	if head, _, _, need, err := (Codec{}).Parse([]byte{0x05}, 1024, &r); !errors.Is(err, proto.ErrMalformed) {
		t.Errorf("%q: head %d, need %d, %v; want ErrMalformed", "\x05", head, need, err)
	}
}

func replyEqual(a, b proto.Reply) bool {
	eq := func(x, y []byte) bool { return string(x) == string(y) }
	a2, b2 := a, b
	a2.Key, a2.Value, a2.Message, b2.Key, b2.Value, b2.Message = nil, nil, nil, nil, nil, nil
	return reflect.DeepEqual(a2, b2) && eq(a.Key, b.Key) && eq(a.Value, b.Value) && eq(a.Message, b.Message)
}

// FuzzBinaryCodecParse feeds arbitrary bytes to Codec.Parse as a stream of
// responses. It checks that Parse never panics, never claims more bytes
// than it was given, asks for more only when no head is complete (and no
// more than the head), never announces a value over maxValue plus the room
// an error message may take, and that whatever it accepts re-encodes to the
// same bytes.
func FuzzBinaryCodecParse(f *testing.F) {
	f.Add(resp(OpGetK, 0, 1, 2, []byte{0, 0, 0, 1}, []byte("k"), []byte("v")), uint16(16))
	f.Add(append(resp(OpIncrement, 0, 1, 0, nil, nil, []byte{0, 0, 0, 0, 0, 0, 0, 1}), resp(OpNoop, 0, 2, 0, nil, nil, nil)...), uint16(0))
	f.Add(resp(OpStat, 0, 1, 0, nil, []byte("a"), []byte("b"))[:25], uint16(8))
	f.Add([]byte("ERROR\r\n"), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, maxValue uint16) {
		c := Codec{}
		rest := data
		for len(rest) > 0 {
			var r proto.Reply
			head, value, trailer, need, err := c.Parse(rest, int(maxValue), &r)
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
			if head > len(rest) || head < HeaderLen || value < 0 || trailer != 0 || value > int(maxValue)+MaxKeyLen+64 {
				t.Fatalf("head %d value %d trailer %d for %d bytes, max %d", head, value, trailer, len(rest), maxValue)
			}
			if head+value > len(rest) {
				return
			}
			r.Value = rest[head : head+value]
			h, _ := DecodeHeader(rest)
			if int(h.BodyLen) != head-HeaderLen+value || r.Seq != h.Opaque || !r.HasSeq || r.CAS != h.CAS {
				t.Fatalf("reply %+v from header %+v", r, h)
			}
			if err := c.Complete(&r); err != nil && !errors.Is(err, proto.ErrMalformed) {
				t.Fatalf("Complete: %v", err)
			}
			rest = rest[head+value:]
		}
	})
}

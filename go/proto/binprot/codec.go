package binprot

import (
	"encoding/binary"

	"github.com/omcache/omcache/go/proto"
)

// Codec is the binary protocol as a proto.Codec. Every request carries
// Request.Seq as its opaque, and every reply's opaque and opcode are
// reported so that the caller can match it. The zero value is ready to use.
type Codec struct{}

var _ proto.Codec = Codec{}

// Name returns "binary".
func (Codec) Name() string { return "binary" }

// Pipelined returns true: quiet opcodes, opaques and a NOOP to end a batch.
func (Codec) Pipelined() bool { return true }

// MultiKeyGet returns false: a multi-get is a pipeline of GETKQ.
func (Codec) MultiKeyGet() bool { return false }

// CreateOnDelta returns true: INCREMENT and DECREMENT take an initial value.
func (Codec) CreateOnDelta() bool { return true }

// KeyOK reports whether key fits a binary request: any 1 to 250 bytes.
func (Codec) KeyOK(key []byte, _ bool) (bool, string) { return proto.BinaryKeyOK(key) }

// opcodes[op][quiet][withKey]; 0xff: none.
var opcodes = [...][2][2]Opcode{
	proto.OpGet:     {{OpGet, OpGetK}, {OpGetQ, OpGetKQ}},
	proto.OpGat:     {{OpGAT, OpGATK}, {OpGATQ, OpGATKQ}},
	proto.OpTouch:   {{OpTouch, OpTouch}, {0xff, 0xff}},
	proto.OpSet:     {{OpSet, OpSet}, {OpSetQ, OpSetQ}},
	proto.OpAdd:     {{OpAdd, OpAdd}, {OpAddQ, OpAddQ}},
	proto.OpReplace: {{OpReplace, OpReplace}, {OpReplaceQ, OpReplaceQ}},
	proto.OpAppend:  {{OpAppend, OpAppend}, {OpAppendQ, OpAppendQ}},
	proto.OpPrepend: {{OpPrepend, OpPrepend}, {OpPrependQ, OpPrependQ}},
	proto.OpDelete:  {{OpDelete, OpDelete}, {OpDeleteQ, OpDeleteQ}},
	proto.OpIncr:    {{OpIncrement, OpIncrement}, {OpIncrementQ, OpIncrementQ}},
	proto.OpDecr:    {{OpDecrement, OpDecrement}, {OpDecrementQ, OpDecrementQ}},
	proto.OpFlush:   {{OpFlush, OpFlush}, {OpFlushQ, OpFlushQ}},
	proto.OpNoop:    {{OpNoop, OpNoop}, {0xff, 0xff}},
	proto.OpVersion: {{OpVersion, OpVersion}, {0xff, 0xff}},
	proto.OpStats:   {{OpStat, OpStat}, {0xff, 0xff}},
}

// ops maps a response opcode back to its command.
var ops [256]proto.Op

func init() {
	// Never sent (memcached leaves it unanswered), but a server that
	// refuses it answers with its opcode.
	ops[OpVerbosity] = proto.OpVerbosity
	for op, byQuiet := range opcodes {
		for _, byKey := range byQuiet {
			for _, code := range byKey {
				if code != 0xff && proto.Op(op) != proto.OpNone {
					ops[code] = proto.Op(op)
				}
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AppendRequest appends req as one binary request packet.
func (Codec) AppendRequest(buf []byte, req *proto.Request) ([]byte, error) {
	if req.Leasing() {
		return buf, proto.Unsupported("leases (vivify, recache, invalidate) in the binary protocol")
	}
	if int(req.Op) >= len(opcodes) || req.Op == proto.OpNone {
		// Verbosity among them: memcached leaves the binary VERBOSITY
		// unanswered.
		return buf, proto.Unsupported("%v in the binary protocol", req.Op)
	}
	if len(req.Keys) > 0 {
		return buf, proto.Unsupported("several keys in one binary request")
	}
	code := opcodes[req.Op][b2i(req.Quiet)][b2i(req.WithKey)]
	if code == 0xff {
		return buf, proto.Unsupported("quiet %v in the binary protocol", req.Op)
	}
	switch req.Op {
	case proto.OpFlush, proto.OpNoop, proto.OpVersion, proto.OpStats, proto.OpVerbosity:
		if len(req.Key) > MaxKeyLen {
			return buf, proto.Unsupported("a stats group of %d bytes", len(req.Key))
		}
	default:
		if ok, why := proto.BinaryKeyOK(req.Key); !ok {
			return buf, proto.Unsupported("key: %s", why)
		}
	}
	seq := req.Seq
	switch req.Op {
	case proto.OpSet, proto.OpAdd, proto.OpReplace:
		return AppendStoreHeader(buf, code, req.Key, req.ValueLen, req.Flags, req.Exp, req.CAS, seq), nil
	case proto.OpAppend, proto.OpPrepend:
		return AppendConcatHeader(buf, code, req.Key, req.ValueLen, req.CAS, seq), nil
	case proto.OpIncr, proto.OpDecr:
		exp := uint32(NoCreate)
		if req.Create {
			// The one expiration the protocol reserves for "do not
			// create": clamp rather than silently not create.
			exp = min(req.Exp, NoCreate-1)
		}
		return AppendDelta(buf, code, req.Key, req.Delta, req.Initial, exp, req.CAS, seq), nil
	case proto.OpTouch, proto.OpGat:
		return AppendTouch(buf, code, req.Key, req.Exp, seq), nil
	case proto.OpFlush:
		return AppendFlush(buf, code, req.Exp, seq), nil
	default: // get, delete, noop, version, stats
		return AppendKeyOnly(buf, code, req.Key, req.CAS, seq), nil
	}
}

// AppendValueEnd appends nothing: a binary value is delimited by the
// header's body length.
func (Codec) AppendValueEnd(buf []byte) []byte { return buf }

var statuses = map[Status]proto.Status{
	StatusOK:             proto.StatusOK,
	StatusKeyNotFound:    proto.StatusMiss,
	StatusKeyExists:      proto.StatusExists,
	StatusValueTooLarge:  proto.StatusTooLarge,
	StatusInvalidArgs:    proto.StatusInvalid,
	StatusNotStored:      proto.StatusNotStored,
	StatusDeltaBadValue:  proto.StatusDeltaBadValue,
	StatusAuthError:      proto.StatusAuth,
	StatusAuthContinue:   proto.StatusAuth,
	StatusUnknownCommand: proto.StatusUnknownCommand,
}

// Parse decodes a response header with its extras and key (see
// proto.Codec); the body's rest is the value.
func (Codec) Parse(buf []byte, maxValue int, r *proto.Reply) (head, value, trailer, need int, err error) {
	if len(buf) > 0 && buf[0] != MagicResponse {
		// Say so at once: a short text line ("ERROR\r\n") must not wait
		// for a 24-byte header that never comes. A text line is waited for
		// up to its end, for the message.
		if textStart(buf) {
			return 0, 0, 0, len(buf) + 1, nil
		}
		return 0, 0, 0, 0, notBinary(buf)
	}
	if len(buf) < HeaderLen {
		return 0, 0, 0, HeaderLen, nil
	}
	h, _ := DecodeHeader(buf)
	if err := h.validate(uint32(min(maxValue+MaxKeyLen+64, 1<<32-1))); err != nil {
		return 0, 0, 0, 0, proto.Malformed("%v", err)
	}
	head = HeaderLen + int(h.ExtrasLen) + int(h.KeyLen)
	if len(buf) < head {
		return 0, 0, 0, head, nil
	}
	*r = proto.Reply{Op: ops[h.Opcode], Seq: h.Opaque, HasSeq: true, CAS: h.CAS}
	if h.KeyLen > 0 {
		r.Key = buf[HeaderLen+int(h.ExtrasLen) : head : head]
	}
	if r.Op == proto.OpNone {
		return 0, 0, 0, 0, proto.Malformed("unknown opcode %v", h.Opcode)
	}
	st, ok := statuses[h.Status]
	if !ok {
		st = proto.StatusServerError
	}
	r.Status = st
	extras := buf[HeaderLen : HeaderLen+int(h.ExtrasLen)]
	switch {
	case r.Op == proto.OpNoop:
		r.Kind = proto.KindEnd
	case r.Op == proto.OpStats && st == proto.StatusOK && h.BodyLen == 0:
		r.Kind = proto.KindEnd
	case r.Op == proto.OpStats && st == proto.StatusOK:
		r.Kind, r.More = proto.KindStat, true
	case (r.Op == proto.OpGet || r.Op == proto.OpGat) && st == proto.StatusOK:
		if len(extras) != 4 {
			return 0, 0, 0, 0, proto.Malformed("%v response with %d bytes of extras", h.Opcode, len(extras))
		}
		r.Kind, r.Flags = proto.KindValue, binary.BigEndian.Uint32(extras)
	default:
		r.Kind = proto.KindStatus
	}
	return head, int(h.BodyLen) - int(h.ExtrasLen) - int(h.KeyLen), 0, 0, nil
}

// Complete moves an error's text to Message and decodes an incr/decr
// counter.
func (Codec) Complete(r *proto.Reply) error {
	if r.Kind != proto.KindStatus {
		return nil
	}
	if r.Status != proto.StatusOK {
		r.Message, r.Value = r.Value, nil
		return nil
	}
	if r.Op == proto.OpIncr || r.Op == proto.OpDecr {
		if len(r.Value) != 8 {
			return proto.Malformed("%v response with a %d-byte value", r.Op, len(r.Value))
		}
		r.Counter, r.HasCounter = binary.BigEndian.Uint64(r.Value), true
	}
	return nil
}

// textStart reports whether buf is the start of a printable line that has
// not ended yet (and is still short).
func textStart(buf []byte) bool {
	if len(buf) >= 64 {
		return false
	}
	for _, b := range buf {
		if b < ' ' && b != '\r' || b >= 0x7f {
			return false
		}
	}
	return true
}

// notBinary describes a reply that does not start with the response magic:
// a text-protocol server's error line, or something that is not memcached.
func notBinary(buf []byte) error {
	n := 0
	for n < len(buf) && n < 64 && buf[n] != '\n' && (buf[n] >= ' ' && buf[n] < 0x7f || buf[n] == '\r') {
		n++
	}
	if n >= 3 && (n == len(buf) || buf[n] == '\n' || n == 64) {
		line := buf[:n]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		switch {
		case string(line) == "ERROR", len(line) > 12 && (string(line[:12]) == "CLIENT_ERROR" || string(line[:12]) == "SERVER_ERROR"):
			return proto.WrongProtocol("the server answered %q, a text-protocol reply: it does not speak the binary protocol", line)
		}
		return proto.WrongProtocol("the peer answered %q: it does not speak memcached's binary protocol", line)
	}
	return proto.Malformed("bad magic 0x%02x", buf[0])
}

// Package meta is memcached's meta protocol (memcached >= 1.6) as a
// proto.Codec: mg, ms, md, ma and mn, with opaque tokens (O) that every
// reply echoes, quiet mode (q) for pipelined batches closed by mn, keys
// base64-encoded (b) when the ASCII tokenizer could not carry them, and the
// item metadata the protocol offers.
//
// Requests:
//
//	get, gat      mg <key> [b] v f c [k] [T<exp>] [t l h s] [u] [N<vivify>] [R<recache>] O<seq> [q]
//	touch         mg <key> [b] T<exp> O<seq>
//	stores        ms <key> <len> [b] [F<flags> T<exp>] [C<cas>] [M<mode>] O<seq> [q]
//	delete        md <key> [b] [I [T<exp>]] [C<cas>] O<seq> [q]
//	incr, decr    ma <key> [b] [MD] D<delta> v [N<exp> J<initial>] [C<cas>] O<seq> [q]
//	noop          mn
//	others        the text commands (flush_all, version, stats, verbosity),
//	              which memcached takes on the same connection
package meta

import (
	"encoding/base64"
	"fmt"

	"github.com/omcache/omcache/go/proto"
	"github.com/omcache/omcache/go/proto/text"
)

// Codec is the meta protocol. The zero value is ready to use.
type Codec struct{}

var _ proto.Codec = Codec{}

// Name returns "meta".
func (Codec) Name() string { return "meta" }

// Pipelined returns true: quiet requests with O tokens, ended by mn.
func (Codec) Pipelined() bool { return true }

// MultiKeyGet returns false: a multi-get is a pipeline of quiet mg.
func (Codec) MultiKeyGet() bool { return false }

// CreateOnDelta returns true: ma N<ttl> J<initial>.
func (Codec) CreateOnDelta() bool { return true }

// KeyOK reports whether key can be sent: as it is, one token of 1 to 250
// bytes without spaces or control characters, or base64-encoded, any 1 to
// 250 bytes.
func (Codec) KeyOK(key []byte, b64 bool) (bool, string) {
	if !b64 {
		return proto.TextKeyOK(key)
	}
	if ok, why := proto.BinaryKeyOK(key); !ok {
		return false, why
	}
	// memcached takes no key token over 250 characters, encoded or not.
	if n := base64.StdEncoding.EncodedLen(len(key)); n > proto.MaxKeyLen {
		return false, fmt.Sprintf("key of %d bytes, %d in base64: the meta protocol carries at most %d bytes of such keys",
			len(key), n, maxBase64Key)
	}
	return true, ""
}

// maxBase64Key is the longest key whose base64 form memcached takes.
const maxBase64Key = proto.MaxKeyLen / 4 * 3

var storeModes = [...]string{
	proto.OpSet: "", proto.OpAdd: " ME", proto.OpReplace: " MR",
	proto.OpAppend: " MA", proto.OpPrepend: " MP",
}

// AppendRequest appends req as a meta command.
func (c Codec) AppendRequest(buf []byte, req *proto.Request) ([]byte, error) {
	var cmd string
	switch req.Op {
	case proto.OpGet, proto.OpGat, proto.OpTouch:
		cmd = "mg "
	case proto.OpSet, proto.OpAdd, proto.OpReplace, proto.OpAppend, proto.OpPrepend:
		cmd = "ms "
	case proto.OpDelete:
		cmd = "md "
	case proto.OpIncr, proto.OpDecr:
		cmd = "ma "
	case proto.OpNoop:
		return append(buf, "mn\r\n"...), nil
	default:
		if req.Quiet {
			return buf, proto.Unsupported("quiet %v", req.Op)
		}
		return text.AppendCommon(buf, req)
	}
	if len(req.Keys) > 0 {
		return buf, proto.Unsupported("several keys in one meta request")
	}
	if (req.Vivify != 0 || req.Recache != 0) && req.Op != proto.OpGet && req.Op != proto.OpGat {
		return buf, proto.Unsupported("lease flags on %v", req.Op)
	}
	if req.Invalidate && req.Op != proto.OpDelete {
		return buf, proto.Unsupported("invalidate on %v", req.Op)
	}
	if ok, why := c.KeyOK(req.Key, req.Base64Key); !ok {
		return buf, proto.Unsupported("key: %s", why)
	}
	start := len(buf)
	buf = append(buf, cmd...)
	if req.Base64Key {
		buf = base64.StdEncoding.AppendEncode(buf, req.Key)
	} else {
		buf = append(buf, req.Key...)
	}
	switch req.Op {
	case proto.OpGet, proto.OpGat:
		buf = append(buf, " v f c"...)
		if req.WithKey {
			buf = append(buf, " k"...)
		}
		if req.Op == proto.OpGat {
			buf = proto.AppendUint(append(buf, " T"...), uint64(req.Exp))
		}
		if req.Meta {
			buf = append(buf, " t l h s"...)
		}
		if req.NoBump {
			buf = append(buf, " u"...)
		}
		if req.Vivify != 0 {
			buf = proto.AppendUint(append(buf, " N"...), uint64(req.Vivify))
		}
		if req.Recache != 0 {
			buf = proto.AppendUint(append(buf, " R"...), uint64(req.Recache))
		}
	case proto.OpTouch:
		buf = proto.AppendUint(append(buf, " T"...), uint64(req.Exp))
	case proto.OpSet, proto.OpAdd, proto.OpReplace, proto.OpAppend, proto.OpPrepend:
		buf = proto.AppendUint(append(buf, ' '), uint64(req.ValueLen))
		if req.Op != proto.OpAppend && req.Op != proto.OpPrepend {
			// Appends keep the item's flags and expiration. Zero is what
			// memcached takes for a missing F or T: the common request
			// stays shorter to send and to tokenize.
			if req.Flags != 0 {
				buf = proto.AppendUint(append(buf, " F"...), uint64(req.Flags))
			}
			if req.Exp != 0 {
				buf = proto.AppendUint(append(buf, " T"...), uint64(req.Exp))
			}
		}
		buf = append(buf, storeModes[req.Op]...)
		if req.CAS != 0 {
			buf = proto.AppendUint(append(buf, " C"...), req.CAS)
		}
	case proto.OpDelete:
		if req.Invalidate {
			buf = append(buf, " I"...)
			if req.Exp != 0 {
				buf = proto.AppendUint(append(buf, " T"...), uint64(req.Exp))
			}
		}
		if req.CAS != 0 {
			buf = proto.AppendUint(append(buf, " C"...), req.CAS)
		}
	case proto.OpIncr, proto.OpDecr:
		if req.Op == proto.OpDecr {
			buf = append(buf, " MD"...)
		}
		buf = proto.AppendUint(append(buf, " D"...), req.Delta)
		buf = append(buf, " v"...)
		if req.Create {
			buf = proto.AppendUint(append(buf, " N"...), uint64(req.Exp))
			buf = proto.AppendUint(append(buf, " J"...), req.Initial)
		}
		if req.CAS != 0 {
			buf = proto.AppendUint(append(buf, " C"...), req.CAS)
		}
	}
	if req.Base64Key {
		buf = append(buf, " b"...)
	}
	buf = proto.AppendUint(append(buf, " O"...), uint64(req.Seq))
	if req.Quiet {
		if req.Op == proto.OpTouch {
			return buf[:start], proto.Unsupported("quiet touch")
		}
		buf = append(buf, " q"...)
	}
	return append(buf, proto.CRLF...), nil
}

// AppendValueEnd appends the CRLF that ends a value.
func (Codec) AppendValueEnd(buf []byte) []byte { return append(buf, proto.CRLF...) }

// Parse decodes one reply line (see proto.Codec): a meta reply, or one of
// the text protocol's for the text commands meta connections send.
func (Codec) Parse(buf []byte, maxValue int, r *proto.Reply) (head, value, trailer, need int, err error) {
	line, n, err := proto.NextLine(buf)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if n == 0 {
		return 0, 0, 0, len(buf) + 1, nil
	}
	*r = proto.Reply{}
	if len(line) >= 2 && (len(line) == 2 || line[2] == ' ') {
		value, ok, err := parseMeta(line, maxValue, r)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		if ok {
			if value >= 0 {
				return n, value, 2, 0, nil
			}
			return n, -1, 0, 0, nil
		}
	}
	value, err = text.ParseLine(line, maxValue, r)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if value >= 0 {
		// A VALUE line: the text "gets" is not a command this codec
		// sends.
		return 0, 0, 0, 0, proto.Malformed("a text VALUE line on a meta connection")
	}
	return n, -1, 0, 0, nil
}

// parseMeta parses a meta reply line; ok is false when the line is not one.
func parseMeta(line []byte, maxValue int, r *proto.Reply) (value int, ok bool, err error) {
	value = -1
	r.Kind = proto.KindStatus
	rest := line[2:]
	switch string(line[:2]) {
	case "VA":
		size, tail, found := token(rest)
		v, good := proto.ParseUint(size, 32)
		if !found || !good {
			return -1, true, proto.Malformed("bad VA line %.300q", line)
		}
		if v > uint64(maxValue) {
			return -1, true, proto.Malformed("a value of %d bytes announced, over the %d-byte limit", v, maxValue)
		}
		r.Kind, value, rest = proto.KindValue, int(v), tail
	case "HD":
		r.Status = proto.StatusOK
	case "EN":
		r.Status = proto.StatusMiss
	case "NF":
		r.Status = proto.StatusMiss
	case "NS":
		r.Status = proto.StatusNotStored
	case "EX":
		r.Status = proto.StatusExists
	case "MN":
		if len(rest) != 0 {
			return -1, true, proto.Malformed("bad MN line %.64q", line)
		}
		r.Kind = proto.KindEnd
		return -1, true, nil
	default:
		return -1, false, nil
	}
	return value, true, parseFlags(rest, r)
}

// token splits the first space-separated token off b (which starts with a
// space or is empty); found is false if there is none.
func token(b []byte) (tok, rest []byte, found bool) {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	if len(b) == 0 {
		return nil, nil, false
	}
	for i, c := range b {
		if c == ' ' {
			return b[:i], b[i:], true
		}
	}
	return b, nil, true
}

// parseFlags reads a reply's return flags into r. Unknown flags are skipped
// (newer servers may add some); known ones must parse.
func parseFlags(b []byte, r *proto.Reply) error {
	for i := 0; i < len(b); {
		if b[i] == ' ' {
			i++
			continue
		}
		j := i + 1
		for j < len(b) && b[j] != ' ' {
			j++
		}
		tok := b[i:j]
		i = j
		arg := tok[1:]
		var ok = true
		switch tok[0] {
		case 'O':
			var v uint64
			v, ok = proto.ParseUint(arg, 32)
			r.Seq, r.HasSeq = uint32(v), true
		case 'k':
			ok = len(arg) > 0 && len(arg) <= 2*proto.MaxKeyLen
			r.Key = arg
		case 'b':
			r.KeyBase64 = true
		case 'c':
			r.CAS, ok = proto.ParseUint(arg, 64)
		case 'f':
			var v uint64
			v, ok = proto.ParseUint(arg, 32)
			r.Flags = uint32(v)
		case 't':
			r.TTL, ok = proto.ParseInt(arg)
			r.HasMeta = true
		case 'l':
			r.LastAccess, ok = proto.ParseInt(arg)
		case 'h':
			r.Fetched = string(arg) == "1"
			ok = string(arg) == "0" || string(arg) == "1"
		case 's':
			r.Size, ok = proto.ParseInt(arg)
		case 'W':
			r.Win, ok = true, len(arg) == 0
		case 'Z':
			r.AlreadyWon, ok = true, len(arg) == 0
		case 'X':
			r.Stale, ok = true, len(arg) == 0
		}
		if !ok {
			return proto.Malformed("bad return flag %.64q", tok)
		}
	}
	return nil
}

// Complete has nothing to finish: a counter arrives as a decimal value,
// which the caller reads.
func (Codec) Complete(*proto.Reply) error { return nil }

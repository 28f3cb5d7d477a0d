// Package text is memcached's classic ASCII protocol as a proto.Codec: what
// proxies (twemproxy, mcrouter), memcached before 1.6 and the text modes of
// pylibmc and python-memcached speak.
//
// Requests:
//
//	get, gat      gets <key>... / gats <exp> <key>   (always with CAS)
//	touch         touch <key> <exp>
//	stores        set|add|replace|append|prepend <key> <flags> <exp> <len>
//	              cas <key> <flags> <exp> <len> <cas>   (set/replace with a CAS)
//	delete        delete <key>
//	incr, decr    incr|decr <key> <delta>
//	others        flush_all [delay], version, stats [group], verbosity <n>;
//	              a noop is a "version", the cheapest command there is
//
// The protocol has no quiet requests and no sequence numbers: replies come
// in request order, and a VALUE line names its key, which the client checks.
package text

import (
	"github.com/omcache/omcache/go/proto"
)

// Codec is the text protocol. The zero value is ready to use.
type Codec struct{}

var _ proto.Codec = Codec{}

// Name returns "text".
func (Codec) Name() string { return "text" }

// Pipelined returns false: text requests have no quiet forms.
func (Codec) Pipelined() bool { return false }

// MultiKeyGet returns true: "gets k1 k2 ...".
func (Codec) MultiKeyGet() bool { return true }

// CreateOnDelta returns false: incr/decr cannot create a key.
func (Codec) CreateOnDelta() bool { return false }

// KeyOK reports whether key can be one token of a text command.
func (Codec) KeyOK(key []byte, base64 bool) (bool, string) {
	if base64 {
		return false, "the text protocol cannot carry keys with spaces, control characters or binary bytes"
	}
	return proto.TextKeyOK(key)
}

var storeNames = [...]string{
	proto.OpSet: "set ", proto.OpAdd: "add ", proto.OpReplace: "replace ",
	proto.OpAppend: "append ", proto.OpPrepend: "prepend ",
}

// AppendRequest appends req as a text command.
func (c Codec) AppendRequest(buf []byte, req *proto.Request) ([]byte, error) {
	if req.Quiet {
		return buf, proto.Unsupported("quiet %v in the text protocol", req.Op)
	}
	if req.Leasing() {
		return buf, proto.Unsupported("leases (vivify, recache, invalidate) in the text protocol")
	}
	if (req.Op != proto.OpGet && req.Op != proto.OpGat) || len(req.Keys) == 0 {
		switch req.Op {
		case proto.OpFlush, proto.OpNoop, proto.OpVersion, proto.OpStats, proto.OpVerbosity:
		default:
			if ok, why := c.KeyOK(req.Key, req.Base64Key); !ok {
				return buf, proto.Unsupported("key: %s", why)
			}
		}
	}
	return AppendCommon(buf, req)
}

// AppendCommon appends the requests that the text and meta protocols spell
// the same way (text commands are valid on a meta connection); key checks
// are the caller's.
func AppendCommon(buf []byte, req *proto.Request) ([]byte, error) {
	start := len(buf)
	switch req.Op {
	case proto.OpGet, proto.OpGat:
		if req.Op == proto.OpGat {
			buf = proto.AppendUint(append(buf, "gats "...), uint64(req.Exp))
		} else {
			buf = append(buf, "gets"...)
		}
		if len(req.Keys) == 0 {
			buf = append(append(buf, ' '), req.Key...)
		}
		for _, k := range req.Keys {
			if ok, why := proto.TextKeyOK(k); !ok {
				return buf[:start], proto.Unsupported("key: %s", why)
			}
			buf = append(append(buf, ' '), k...)
		}
	case proto.OpTouch:
		buf = append(append(buf, "touch "...), req.Key...)
		buf = proto.AppendUint(append(buf, ' '), uint64(req.Exp))
	case proto.OpSet, proto.OpAdd, proto.OpReplace, proto.OpAppend, proto.OpPrepend:
		cas := req.CAS != 0
		if cas && req.Op != proto.OpSet && req.Op != proto.OpReplace {
			return buf[:start], proto.Unsupported("%v with a CAS in the text protocol", req.Op)
		}
		if cas {
			// "cas" stores only over an item with that CAS, which exists:
			// the replace condition holds by itself.
			buf = append(buf, "cas "...)
		} else {
			buf = append(buf, storeNames[req.Op]...)
		}
		buf = append(append(buf, req.Key...), ' ')
		buf = proto.AppendUint(buf, uint64(req.Flags))
		buf = proto.AppendUint(append(buf, ' '), uint64(req.Exp))
		buf = proto.AppendUint(append(buf, ' '), uint64(req.ValueLen))
		if cas {
			buf = proto.AppendUint(append(buf, ' '), req.CAS)
		}
	case proto.OpDelete:
		if req.CAS != 0 {
			return buf, proto.Unsupported("delete with a CAS in the text protocol")
		}
		buf = append(append(buf, "delete "...), req.Key...)
	case proto.OpIncr, proto.OpDecr:
		if req.Create {
			return buf, proto.Unsupported("%v creating a key in the text protocol", req.Op)
		}
		if req.Op == proto.OpIncr {
			buf = append(buf, "incr "...)
		} else {
			buf = append(buf, "decr "...)
		}
		buf = append(append(buf, req.Key...), ' ')
		buf = proto.AppendUint(buf, req.Delta)
	case proto.OpFlush:
		buf = append(buf, "flush_all"...)
		if req.Exp != 0 {
			buf = proto.AppendUint(append(buf, ' '), uint64(req.Exp))
		}
	case proto.OpNoop, proto.OpVersion:
		buf = append(buf, "version"...)
	case proto.OpStats:
		for _, b := range req.Key {
			if b < ' ' || b == 0x7f {
				return buf, proto.Unsupported("a stats group with control characters")
			}
		}
		buf = append(buf, "stats"...)
		if len(req.Key) > 0 {
			buf = append(append(buf, ' '), req.Key...)
		}
	case proto.OpVerbosity:
		buf = proto.AppendUint(append(buf, "verbosity "...), req.Delta)
	default:
		return buf, proto.Unsupported("%v in the text protocol", req.Op)
	}
	return append(buf, proto.CRLF...), nil
}

// AppendValueEnd appends the CRLF that ends a value.
func (Codec) AppendValueEnd(buf []byte) []byte { return append(buf, proto.CRLF...) }

// Parse decodes one reply line (see proto.Codec).
func (Codec) Parse(buf []byte, maxValue int, r *proto.Reply) (head, value, trailer, need int, err error) {
	line, n, err := proto.NextLine(buf)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if n == 0 {
		return 0, 0, 0, len(buf) + 1, nil
	}
	*r = proto.Reply{}
	value, err = ParseLine(line, maxValue, r)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if value >= 0 {
		return n, value, 2, 0, nil
	}
	return n, -1, 0, 0, nil
}

// ParseLine classifies one text reply line (without its CRLF) into r and
// returns the length of the value that follows it, or -1.
func ParseLine(line []byte, maxValue int, r *proto.Reply) (value int, err error) {
	value = -1
	r.Kind = proto.KindStatus
	switch string(line) {
	case "END":
		r.Kind = proto.KindEnd
		return value, nil
	case "STORED", "DELETED", "TOUCHED", "OK":
		r.Status = proto.StatusOK
		return value, nil
	case "NOT_FOUND":
		r.Status = proto.StatusMiss
		return value, nil
	case "NOT_STORED":
		r.Status = proto.StatusNotStored
		return value, nil
	case "EXISTS":
		r.Status = proto.StatusExists
		return value, nil
	}
	switch {
	case len(line) > 6 && string(line[:6]) == "VALUE ":
		return parseValue(line[6:], maxValue, r)
	case len(line) > 5 && string(line[:5]) == "STAT ":
		rest := line[5:]
		for i, b := range rest {
			if b == ' ' {
				r.Kind, r.Key, r.Value, r.More = proto.KindStat, rest[:i], rest[i+1:], true
				return value, nil
			}
		}
		r.Kind, r.Key, r.Value, r.More = proto.KindStat, rest, rest[len(rest):], true
		return value, nil
	case len(line) > 8 && string(line[:8]) == "VERSION ":
		r.Value = line[8:]
		return value, nil
	case len(line) > 0 && line[0] >= '0' && line[0] <= '9':
		v, ok := proto.ParseUint(trimRight(line), 64)
		if !ok {
			return value, proto.Malformed("bad number %.32q", line)
		}
		r.Counter, r.HasCounter = v, true
		return value, nil
	case proto.ErrorLine(line, r):
		if r.Status == proto.StatusClientError && string(r.Message) == "cannot increment or decrement non-numeric value" {
			r.Status = proto.StatusDeltaBadValue
		}
		return value, nil
	}
	return value, proto.Malformed("unexpected line %.64q: is the peer a memcached speaking the text protocol?", line)
}

// trimRight drops the spaces memcached pads incr/decr results with when the
// new number is shorter than the old (it rewrites the value in place).
func trimRight(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// parseValue parses what follows "VALUE ": key, flags, size and an optional
// cas, separated by single spaces.
func parseValue(b []byte, maxValue int, r *proto.Reply) (int, error) {
	var fields [4][]byte
	n := 0
	start := 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == ' ' {
			if n == len(fields) {
				return -1, proto.Malformed("bad VALUE line %.300q", b)
			}
			fields[n] = b[start:i]
			n++
			start = i + 1
		}
	}
	if n < 3 || len(fields[0]) == 0 || len(fields[0]) > proto.MaxKeyLen {
		return -1, proto.Malformed("bad VALUE line %.300q", b)
	}
	flags, ok1 := proto.ParseUint(fields[1], 32)
	size, ok2 := proto.ParseUint(fields[2], 32)
	var cas uint64
	ok3 := true
	if n == 4 {
		cas, ok3 = proto.ParseUint(fields[3], 64)
	}
	if !ok1 || !ok2 || !ok3 {
		return -1, proto.Malformed("bad VALUE line %.300q", b)
	}
	if size > uint64(maxValue) {
		return -1, proto.Malformed("a value of %d bytes announced, over the %d-byte limit", size, maxValue)
	}
	r.Kind, r.More = proto.KindValue, true
	r.Key, r.Flags, r.CAS = fields[0], uint32(flags), cas
	return int(size), nil
}

// Complete has nothing to finish.
func (Codec) Complete(*proto.Reply) error { return nil }

package conn

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/omcache/omcache/go/binprot"
)

// The text protocol, for one command only: a multi-key "gets". memcached
// answers a pipelined batch of binary requests 20 at a time (its -R
// requests per event), each piece a write and a wake-up of the client,
// while one text "gets k1 ... kN" is one command answered in one piece.
// A connection speaks one protocol for its whole life: Options.Text.
//
// Recv and TryRecv on a text connection translate the answer into
// binprot.Responses, so that callers share their binary code paths:
//
//	VALUE <key> <flags> <bytes> <cas>\r\n<data>\r\n  -> a GETK response (Key,
//	                                                   4 bytes of flags in
//	                                                   Extras, CAS, Value)
//	END\r\n                                          -> a NOOP response
//	ERROR, CLIENT_ERROR ..., SERVER_ERROR ...        -> a *TextError
//
// Anything else is a binprot.ErrMalformed error.

// MaxTextLine is the longest text-protocol line accepted: VALUE, a 250-byte
// key and three numbers fit many times over; error lines are short.
const MaxTextLine = 2048

// TextError is an error line a text connection received: "ERROR",
// "CLIENT_ERROR <message>" or "SERVER_ERROR <message>". The connection is
// closed: what follows it is unknown.
type TextError struct {
	// Line is the line without its CRLF.
	Line string
}

func (e *TextError) Error() string { return fmt.Sprintf("memcached answered %q", e.Line) }

// Server reports whether the line is a SERVER_ERROR: the server failed to
// do what was asked (out of memory, ...), as opposed to refusing the request.
func (e *TextError) Server() bool {
	return len(e.Line) >= 12 && e.Line[:12] == "SERVER_ERROR"
}

// AppendGets appends a text "gets" of keys, which must be valid text-protocol
// keys (no spaces or control characters), to buf.
func AppendGets(buf []byte, keys ...[]byte) []byte {
	buf = append(buf, "gets"...)
	for _, k := range keys {
		buf = append(buf, ' ')
		buf = append(buf, k...)
	}
	return append(buf, '\r', '\n')
}

// Text reports whether the connection speaks the text protocol.
func (c *Conn) Text() bool { return c.opts.Text }

// parseText is parse for a text connection.
func (c *Conn) parseText() (r binprot.Response, ok bool, need int, err error) {
	if c.big != nil {
		if c.bigGot < len(c.big) {
			return r, false, 0, nil
		}
		n := len(c.big) - 2
		if c.big[n] != '\r' || c.big[n+1] != '\n' {
			return r, false, 0, fmt.Errorf("%w: a %d-byte value not followed by CRLF", binprot.ErrMalformed, n)
		}
		// The value keeps the CRLF as spare capacity, for ReleaseValue.
		v, meta := c.big[:n], c.bigMeta
		key, flags := meta[:len(meta)-4], binary.BigEndian.Uint32(meta[len(meta)-4:])
		r = c.textValue(key, flags, c.bigHdr.CAS, v)
		c.owned, c.big = v, nil
		return r, true, 0, nil
	}
	buf := c.rbuf[c.rpos:c.rend]
	eol := bytes.IndexByte(buf, '\n')
	if eol < 0 {
		if len(buf) > MaxTextLine {
			return r, false, 0, fmt.Errorf("%w: a line of over %d bytes", binprot.ErrMalformed, MaxTextLine)
		}
		return r, false, len(buf) + 1, nil
	}
	if eol == 0 || buf[eol-1] != '\r' {
		return r, false, 0, fmt.Errorf("%w: a line not ended by CRLF", binprot.ErrMalformed)
	}
	line, head := buf[:eol-1], eol+1
	switch {
	case string(line) == "END":
		c.rpos += head
		r.Magic, r.Opcode = binprot.MagicResponse, binprot.OpNoop
		return r, true, 0, nil
	case bytes.HasPrefix(line, []byte("VALUE ")):
	case string(line) == "ERROR" || bytes.HasPrefix(line, []byte("CLIENT_ERROR")) || bytes.HasPrefix(line, []byte("SERVER_ERROR")):
		return r, false, 0, &TextError{Line: string(line)}
	default:
		return r, false, 0, fmt.Errorf("%w: unexpected line %.64q", binprot.ErrMalformed, line)
	}
	key, flags, size, cas, ok := parseValueLine(line[len("VALUE "):])
	if !ok {
		return r, false, 0, fmt.Errorf("%w: bad VALUE line %.300q", binprot.ErrMalformed, line)
	}
	if size > uint64(c.opts.MaxBody) {
		return r, false, 0, fmt.Errorf("%w: a value of %d bytes announced, over the %d-byte limit",
			binprot.ErrMalformed, size, c.opts.MaxBody)
	}
	total := head + int(size) + 2
	if int(size)+2 < LargeValue {
		if len(buf) < total {
			return r, false, total, nil
		}
		if buf[total-2] != '\r' || buf[total-1] != '\n' {
			return r, false, 0, fmt.Errorf("%w: a %d-byte value not followed by CRLF", binprot.ErrMalformed, size)
		}
		c.rpos += total
		return c.textValue(key, flags, cas, buf[head:total-2:total-2]), true, 0, nil
	}
	// A large value is read straight into the buffer that becomes the
	// caller's (with its CRLF), starting with what already arrived; the
	// key and flags wait in bigMeta.
	c.bigMeta = binary.BigEndian.AppendUint32(append(c.bigMeta[:0], key...), flags)
	c.bigHdr = binprot.Header{CAS: cas}
	c.big = largeBuffer(int(size) + 2)
	c.bigGot = copy(c.big, buf[head:])
	c.rpos += head + c.bigGot
	return c.parseText()
}

// textValue is the GETK response standing for a VALUE.
func (c *Conn) textValue(key []byte, flags uint32, cas uint64, value []byte) binprot.Response {
	binary.BigEndian.PutUint32(c.textFlags[:], flags)
	return binprot.Response{
		Header: binprot.Header{
			Magic: binprot.MagicResponse, Opcode: binprot.OpGetK, KeyLen: uint16(len(key)),
			ExtrasLen: 4, BodyLen: uint32(4 + len(key) + len(value)), CAS: cas,
		},
		Extras: c.textFlags[:],
		Key:    key,
		Value:  value,
	}
}

// parseValueLine parses what follows "VALUE ": key, flags, size and cas,
// separated by single spaces.
func parseValueLine(b []byte) (key []byte, flags uint32, size, cas uint64, ok bool) {
	var fields [4][]byte
	n := 0
	for n < 4 {
		i := bytes.IndexByte(b, ' ')
		if i < 0 {
			fields[n] = b
			n++
			b = nil
			break
		}
		fields[n], b = b[:i], b[i+1:]
		n++
	}
	if n != 4 || b != nil || len(fields[0]) == 0 || len(fields[0]) > 250 {
		return nil, 0, 0, 0, false
	}
	f, ok1 := parseUint(fields[1], 32)
	size, ok2 := parseUint(fields[2], 32)
	cas, ok3 := parseUint(fields[3], 64)
	return fields[0], uint32(f), size, cas, ok1 && ok2 && ok3
}

// parseUint parses a decimal number of at most bits bits.
func parseUint(b []byte, bits uint) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		d := uint64(ch - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if bits < 64 && v >= 1<<bits {
		return 0, false
	}
	return v, true
}

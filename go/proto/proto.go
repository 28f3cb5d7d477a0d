// Package proto is the seam between omcache's commands and the wire
// protocols memcached speaks: binary, classic text and meta.
//
// The client works only with the protocol-neutral types here: it builds a
// Request, a Codec appends it to a connection's write buffer, and the same
// Codec parses what the server sends back into Replies. Each protocol is a
// package of its own (proto/binprot, proto/text, proto/meta) with one Codec;
// a connection speaks one protocol for its whole life.
//
// Parsing is split so that large values never pass through a connection's
// read buffer: Codec.Parse decodes only a reply's head (the binary header
// with its extras and key, or a text/meta line) and reports how long the
// value that follows is; the connection then reads the value wherever it
// wants (its buffer for small ones, a buffer that becomes the caller's for
// large ones) and calls Codec.Complete.
//
// Codecs are pure functions over byte slices, built for hostile input: no
// length is trusted before it is checked against the caller's cap, junk
// gives an error wrapping ErrMalformed, never a panic or a huge allocation.
package proto

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every parse error: the bytes are not a valid
// reply in the connection's protocol, and the stream cannot be trusted.
var ErrMalformed = errors.New("malformed reply")

// ErrWrongProtocol is wrapped, with ErrMalformed, by parse errors that show
// the peer speaks another protocol than the connection's (or is not
// memcached at all).
var ErrWrongProtocol = errors.New("wrong protocol")

// ErrUnsupported is wrapped by AppendRequest errors for a request the
// protocol cannot express (a CAS append in text, a key the text protocols
// cannot carry). Nothing was appended.
var ErrUnsupported = errors.New("not supported by the protocol")

// MaxKeyLen is the longest key memcached accepts (KEY_MAX_LENGTH).
const MaxKeyLen = 250

// Op is a command, independent of how a protocol spells it.
type Op uint8

// Commands. OpNone is what a Reply carries when its protocol does not say
// which command it answers (text and meta).
const (
	OpNone      Op = iota
	OpGet          // value, flags and CAS of a key
	OpGat          // OpGet that also sets the expiration (get-and-touch)
	OpTouch        // set the expiration
	OpSet          // store
	OpAdd          // store if absent
	OpReplace      // store if present
	OpAppend       // add to the end of the stored value
	OpPrepend      // add to the start of the stored value
	OpDelete       // remove
	OpIncr         // add to a decimal counter
	OpDecr         // subtract from a decimal counter, stopping at 0
	OpFlush        // invalidate every item, after Exp seconds if nonzero
	OpNoop         // do nothing; ends a pipelined batch
	OpVersion      // the server's version
	OpStats        // statistics of the group in Key ("" for the general ones)
	OpVerbosity    // set the server's log level to Delta
	numOps
)

var opNames = [numOps]string{
	"none", "get", "gat", "touch", "set", "add", "replace", "append", "prepend",
	"delete", "incr", "decr", "flush_all", "noop", "version", "stats", "verbosity",
}

// String returns the command's name, as the text protocol mostly spells it.
func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// IsStore reports whether o carries a value (set, add, replace, append,
// prepend).
func (o Op) IsStore() bool { return o >= OpSet && o <= OpPrepend }

// Status is a reply's outcome, independent of how a protocol spells it.
type Status uint8

// Outcomes.
const (
	StatusOK             Status = iota // done; for gets, a hit
	StatusMiss                         // no such key (binary KEY_ENOENT, NOT_FOUND, EN, NF)
	StatusExists                       // CAS mismatch (KEY_EEXISTS, EXISTS, EX)
	StatusNotStored                    // a conditional store's condition failed (NOT_STORED, NS)
	StatusTooLarge                     // value over the server's item size
	StatusInvalid                      // the server refused the request's arguments
	StatusDeltaBadValue                // incr/decr of a value that is not a number
	StatusUnknownCommand               // the server does not know the command (ERROR)
	StatusClientError                  // CLIENT_ERROR: the server says the request is malformed
	StatusServerError                  // the server failed (out of memory, busy, SERVER_ERROR...)
	StatusAuth                         // authentication required or failed
)

var statusNames = [...]string{
	"ok", "not found", "exists", "not stored", "value too large", "invalid arguments",
	"incr/decr on a non-numeric value", "unknown command", "client error", "server error",
	"authentication error",
}

// String returns a short description of the status.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Request is one command. A store's value is not part of it: the caller
// appends ValueLen bytes after AppendRequest, then AppendValueEnd.
type Request struct {
	Op  Op
	Key []byte
	// Keys, for a text-protocol OpGet, asks for several keys in one command
	// ("gets k1 k2 ..."); Key is then ignored. Only codecs whose
	// MultiKeyGet is true accept it.
	Keys [][]byte
	// ValueLen is the length of a store's value.
	ValueLen int
	Flags    uint32
	// Exp is the expiration (stores, gat, touch, incr/decr with Create) or
	// the delay (flush).
	Exp uint32
	// CAS, nonzero, makes a store or delete conditional on the item's CAS.
	CAS     uint64
	Delta   uint64
	Initial uint64
	// Create makes incr/decr store Initial (with Exp) when the key is
	// missing. Only codecs whose CreateOnDelta is true accept it.
	Create bool
	// Quiet asks for no reply on success (and none on a miss for gets):
	// pipelined batches end with an OpNoop whose reply tells the silence is
	// final. Only codecs whose Pipelined is true accept it.
	Quiet bool
	// Seq is echoed in the reply by codecs whose Pipelined is true (binary
	// opaque, meta O), so that every reply can be matched to its request.
	Seq uint32
	// WithKey asks the reply to carry its key (binary GETK, meta k), so that
	// it can be checked too.
	WithKey bool
	// Base64Key sends Key base64-encoded (meta b): how the meta protocol
	// carries keys with spaces, control characters or non-UTF-8 bytes.
	Base64Key bool
	// Meta asks a get for the item's metadata (meta: t, l, h, s) and NoBump
	// leaves its LRU position and access time alone (meta u): meta only.
	Meta   bool
	NoBump bool
	// Vivify, nonzero, makes a get of a missing key create an empty
	// placeholder item living Vivify seconds and hand this request the win
	// (Reply.Win); later gets see the placeholder with Reply.AlreadyWon
	// until a store replaces it (meta mg N). Meta only.
	Vivify uint32
	// Recache, nonzero, hands a get the win when the item has less than
	// Recache seconds to live and nobody else won it (meta mg R). Meta
	// only.
	Recache uint32
	// Invalidate makes a delete mark the item stale instead of removing it
	// (meta md I); a nonzero Exp then becomes its time to live (md T).
	// Gets of a stale item see Reply.Stale, and the first one the win.
	// Meta only.
	Invalidate bool
}

// Leasing reports whether req uses the meta protocol's lease flags (Vivify,
// Recache, Invalidate), which only the meta codec can express.
func (req *Request) Leasing() bool {
	return req.Vivify != 0 || req.Recache != 0 || req.Invalidate
}

// Kind tells what a Reply is.
type Kind uint8

// Reply kinds.
const (
	KindStatus Kind = iota // an outcome in Status (and for incr/decr, Counter)
	KindValue              // a value follows (Reply.Value once complete)
	KindEnd                // the end of a batch (NOOP, MN) or of a multi-line answer (END)
	KindStat               // one statistic: Key is its name, Value its value
)

// Reply is one reply. Key, Message and Value alias the connection's buffers
// and are valid only until the next read from it.
type Reply struct {
	Kind   Kind
	Status Status
	// Op is the command the reply says it answers (binary only), else
	// OpNone.
	Op Op
	// Seq is the echoed Request.Seq where HasSeq.
	Seq    uint32
	HasSeq bool
	// Key is the key the reply names (binary GETK, text VALUE, meta k), or
	// a statistic's name. KeyBase64: it is base64-encoded (meta b).
	Key       []byte
	KeyBase64 bool
	Value     []byte
	Flags     uint32
	CAS       uint64
	// Counter is an incr/decr result where HasCounter (binary, text); meta
	// sends it as a decimal Value.
	Counter    uint64
	HasCounter bool
	// More: this reply is not the last of its request's answer (text VALUE
	// lines are followed by END, STAT lines by END).
	More bool
	// Message is the text the server sent with an error.
	Message []byte
	// Item metadata from a meta get with Request.Meta (HasMeta): seconds of
	// life left (-1: never expires), seconds since the last access, whether
	// it was fetched before, and its value's size.
	HasMeta    bool
	TTL        int64
	LastAccess int64
	Fetched    bool
	Size       int64
	// Lease state of a meta get (flags W, Z, X): Win, this request won the
	// right to store the item's next value; AlreadyWon, another request
	// won it before; Stale, the item was invalidated (md I) and its value
	// is out of date.
	Win        bool
	AlreadyWon bool
	Stale      bool
}

// Placeholder reports whether r, a get's value, is the empty item memcached
// creates for a lease on a missing key (meta mg N): a lease was handed out
// on it (Win or AlreadyWon) and it holds 0 bytes with flags 0. Plain gets
// report it as a miss; a real empty value with flags 0 under a lease looks
// the same and is reported as a miss too until it is stored again.
func (r *Reply) Placeholder() bool {
	return (r.Win || r.AlreadyWon) && len(r.Value) == 0 && r.Flags == 0
}

// Codec is one wire protocol.
type Codec interface {
	// Name is the protocol's name: "binary", "text" or "meta".
	Name() string
	// AppendRequest appends req to buf. A store's value follows: append
	// req.ValueLen bytes and then AppendValueEnd. It returns an error
	// wrapping ErrUnsupported, and buf unchanged, for a request the
	// protocol cannot express.
	AppendRequest(buf []byte, req *Request) ([]byte, error)
	// AppendValueEnd appends what follows a store's value on the wire.
	AppendValueEnd(buf []byte) []byte
	// Parse decodes the head of the reply at the start of buf into r. When
	// the head is complete it returns its length (head > 0) and the length
	// of the value that follows it (-1 if the reply carries none) plus the
	// trailer after the value, a prefix of "\r\n" the caller checks. When
	// more bytes are needed it returns head 0 and need, how many bytes buf
	// should hold to make progress. maxValue caps an announced value: a
	// bigger one is an error, before anything waits for it.
	Parse(buf []byte, maxValue int, r *Reply) (head, value, trailer, need int, err error)
	// Complete finishes r once its value (if any) is in r.Value.
	Complete(r *Reply) error
	// Pipelined reports whether the protocol has quiet requests whose
	// replies carry Request.Seq and an OpNoop to end a batch of them.
	Pipelined() bool
	// MultiKeyGet reports whether one OpGet can ask for many keys
	// (Request.Keys), answered by KindValue replies with More and a
	// KindEnd.
	MultiKeyGet() bool
	// CreateOnDelta reports whether incr/decr can create a missing key
	// (Request.Create) in one request.
	CreateOnDelta() bool
	// KeyOK reports whether the protocol can carry key (with base64 set:
	// base64-encoded). It returns a reason when it cannot.
	KeyOK(key []byte, base64 bool) (bool, string)
}

// CRLF ends text and meta lines and values.
const CRLF = "\r\n"

// MaxLine is the longest text or meta reply line accepted: a VALUE line with
// a 250-byte key (344 in base64) and every meta flag fits many times over,
// and so do error lines.
const MaxLine = 4096

// Malformed returns an error wrapping ErrMalformed.
func Malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// WrongProtocol returns an error wrapping ErrMalformed and ErrWrongProtocol.
func WrongProtocol(format string, args ...any) error {
	return fmt.Errorf("%w (%w): %s", ErrMalformed, ErrWrongProtocol, fmt.Sprintf(format, args...))
}

// Unsupported returns an error wrapping ErrUnsupported.
func Unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// TextKeyOK reports whether key is a key memcached's ASCII tokenizer takes
// as one token: 1 to 250 bytes, none of them a space, a control character
// or DEL. It returns the reason when not.
func TextKeyOK(key []byte) (bool, string) {
	if len(key) == 0 {
		return false, "empty key"
	}
	if len(key) > MaxKeyLen {
		return false, fmt.Sprintf("key of %d bytes, over %d", len(key), MaxKeyLen)
	}
	for i, b := range key {
		if b <= ' ' || b == 0x7f {
			return false, fmt.Sprintf("byte 0x%02x at position %d", b, i)
		}
	}
	return true, ""
}

// ParseUint parses a decimal number of at most bits bits.
func ParseUint(b []byte, bits uint) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	if len(b) < 20 {
		// Up to 19 digits cannot overflow: no check (and no division) per digit.
		for _, ch := range b {
			d := ch - '0'
			if d > 9 {
				return 0, false
			}
			v = v*10 + uint64(d)
		}
	} else {
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
	}
	if bits < 64 && v >= 1<<bits {
		return 0, false
	}
	return v, true
}

// ParseInt parses a decimal number that may start with '-'.
func ParseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	v, ok := ParseUint(b, 63)
	if !ok {
		return 0, false
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

// AppendUint appends v in decimal.
func AppendUint(buf []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(buf, tmp[i:]...)
}

// ErrorLine classifies the error lines text and meta share: "ERROR",
// "CLIENT_ERROR msg" and "SERVER_ERROR msg". ok is false for other lines.
func ErrorLine(line []byte, r *Reply) bool {
	switch {
	case string(line) == "ERROR":
		r.Status = StatusUnknownCommand
	case hasPrefix(line, "CLIENT_ERROR"):
		r.Status = StatusClientError
		r.Message = trimSpace(line[len("CLIENT_ERROR"):])
	case hasPrefix(line, "SERVER_ERROR"):
		r.Status = StatusServerError
		r.Message = trimSpace(line[len("SERVER_ERROR"):])
		if string(r.Message) == "object too large for cache" {
			r.Status = StatusTooLarge
		}
	default:
		return false
	}
	r.Kind = KindStatus
	return true
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

// NextLine returns the line at the start of buf without its CRLF and the
// length of the line with it; n is 0 when the line is not complete. A line
// over MaxLine bytes or one not ended by CRLF is an error.
func NextLine(buf []byte) (line []byte, n int, err error) {
	if len(buf) > 0 && buf[0] == 0x81 {
		return nil, 0, WrongProtocol("a binary-protocol reply (magic 0x81): the peer speaks the binary protocol")
	}
	lim := buf
	if len(lim) > MaxLine+2 {
		lim = lim[:MaxLine+2]
	}
	i := bytes.IndexByte(lim, '\n')
	if i < 0 {
		if len(buf) > MaxLine+1 {
			return nil, 0, Malformed("a line of over %d bytes", MaxLine)
		}
		return nil, 0, nil
	}
	if i == 0 || buf[i-1] != '\r' {
		return nil, 0, Malformed("a line not ended by CRLF: %.64q", buf[:i+1])
	}
	return buf[: i-1 : i-1], i + 1, nil
}

// BinaryKeyOK reports whether key is a key the binary protocol (and the
// meta protocol, base64-encoded) can carry: any 1 to 250 bytes.
func BinaryKeyOK(key []byte) (bool, string) {
	if len(key) == 0 {
		return false, "empty key"
	}
	if len(key) > MaxKeyLen {
		return false, fmt.Sprintf("key of %d bytes, over %d", len(key), MaxKeyLen)
	}
	return true, ""
}

// KeyIs reports whether the key a reply names is key, decoding it first
// when the reply says it is base64-encoded.
func (r *Reply) KeyIs(key []byte) bool {
	if !r.KeyBase64 {
		return string(r.Key) == string(key)
	}
	var tmp [MaxKeyLen + 3]byte
	if base64.StdEncoding.DecodedLen(len(r.Key)) > len(tmp) {
		return false
	}
	n, err := base64.StdEncoding.Decode(tmp[:], r.Key)
	return err == nil && string(tmp[:n]) == string(key)
}

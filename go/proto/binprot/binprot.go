// Package binprot encodes requests and decodes responses of the memcached
// binary protocol.
//
// Everything here is a pure function over byte slices: encoders append a
// request to a caller's buffer (so a connection can reuse one buffer for a
// whole pipeline of requests) and the decoder parses a response out of a
// caller's read buffer without copying, reporting whether more bytes are
// needed. The decoder is built for hostile input: lengths are checked against
// each other and against a caller-supplied cap before anything is sliced, so
// junk from a peer gives an error, never a panic or a huge allocation.
//
// The wire format is described in memcached's protocol_binary.h and the
// "BinaryProtocolRevamped" document of the memcached wiki.
package binprot

// Magic bytes that open every packet.
const (
	// MagicRequest opens every request packet.
	MagicRequest = 0x80
	// MagicResponse opens every response packet.
	MagicResponse = 0x81
)

// HeaderLen is the length of the fixed header that starts every packet.
const HeaderLen = 24

// MaxKeyLen is the longest key memcached accepts (KEY_MAX_LENGTH).
const MaxKeyLen = 250

// NoCreate is the expiration that tells INCREMENT and DECREMENT not to create
// a missing key (the server then answers KeyNotFound).
const NoCreate = 0xffffffff

// Opcode is the command byte of a packet.
type Opcode uint8

// Opcodes of the binary protocol. The "Q" variants are quiet: the server
// sends no response on success (and, for the GET family, none on a miss),
// which is what makes pipelined multi-key commands cheap: a trailing NOOP
// marks the end of the batch.
const (
	OpGet        Opcode = 0x00
	OpSet        Opcode = 0x01
	OpAdd        Opcode = 0x02
	OpReplace    Opcode = 0x03
	OpDelete     Opcode = 0x04
	OpIncrement  Opcode = 0x05
	OpDecrement  Opcode = 0x06
	OpQuit       Opcode = 0x07
	OpFlush      Opcode = 0x08
	OpGetQ       Opcode = 0x09
	OpNoop       Opcode = 0x0a
	OpVersion    Opcode = 0x0b
	OpGetK       Opcode = 0x0c
	OpGetKQ      Opcode = 0x0d
	OpAppend     Opcode = 0x0e
	OpPrepend    Opcode = 0x0f
	OpStat       Opcode = 0x10
	OpSetQ       Opcode = 0x11
	OpAddQ       Opcode = 0x12
	OpReplaceQ   Opcode = 0x13
	OpDeleteQ    Opcode = 0x14
	OpIncrementQ Opcode = 0x15
	OpDecrementQ Opcode = 0x16
	OpQuitQ      Opcode = 0x17
	OpFlushQ     Opcode = 0x18
	OpAppendQ    Opcode = 0x19
	OpPrependQ   Opcode = 0x1a
	OpVerbosity  Opcode = 0x1b
	OpTouch      Opcode = 0x1c
	OpGAT        Opcode = 0x1d
	OpGATQ       Opcode = 0x1e
	OpGATK       Opcode = 0x23
	OpGATKQ      Opcode = 0x24
)

var opcodeNames = map[Opcode]string{
	OpGet: "GET", OpSet: "SET", OpAdd: "ADD", OpReplace: "REPLACE",
	OpDelete: "DELETE", OpIncrement: "INCREMENT", OpDecrement: "DECREMENT",
	OpQuit: "QUIT", OpFlush: "FLUSH", OpGetQ: "GETQ", OpNoop: "NOOP",
	OpVersion: "VERSION", OpGetK: "GETK", OpGetKQ: "GETKQ", OpAppend: "APPEND",
	OpPrepend: "PREPEND", OpStat: "STAT", OpSetQ: "SETQ", OpAddQ: "ADDQ",
	OpReplaceQ: "REPLACEQ", OpDeleteQ: "DELETEQ", OpIncrementQ: "INCREMENTQ",
	OpDecrementQ: "DECREMENTQ", OpQuitQ: "QUITQ", OpFlushQ: "FLUSHQ",
	OpAppendQ: "APPENDQ", OpPrependQ: "PREPENDQ", OpVerbosity: "VERBOSITY",
	OpTouch: "TOUCH", OpGAT: "GAT", OpGATQ: "GATQ", OpGATK: "GATK", OpGATKQ: "GATKQ",
}

// String returns the protocol name of the opcode, or "OP(0xNN)" if unknown.
func (o Opcode) String() string {
	if s, ok := opcodeNames[o]; ok {
		return s
	}
	return "OP(0x" + hex2(uint8(o)) + ")"
}

// Status is the status field of a response.
type Status uint16

// Response statuses sent by memcached.
const (
	StatusOK               Status = 0x0000
	StatusKeyNotFound      Status = 0x0001
	StatusKeyExists        Status = 0x0002
	StatusValueTooLarge    Status = 0x0003
	StatusInvalidArgs      Status = 0x0004
	StatusNotStored        Status = 0x0005
	StatusDeltaBadValue    Status = 0x0006
	StatusVBucketElsewhere Status = 0x0007
	StatusAuthError        Status = 0x0020
	StatusAuthContinue     Status = 0x0021
	StatusUnknownCommand   Status = 0x0081
	StatusOutOfMemory      Status = 0x0082
	StatusNotSupported     Status = 0x0083
	StatusInternalError    Status = 0x0084
	StatusBusy             Status = 0x0085
	StatusTemporaryFailure Status = 0x0086
)

var statusNames = map[Status]string{
	StatusOK: "OK", StatusKeyNotFound: "key not found", StatusKeyExists: "key exists",
	StatusValueTooLarge: "value too large", StatusInvalidArgs: "invalid arguments",
	StatusNotStored: "item not stored", StatusDeltaBadValue: "incr/decr on non-numeric value",
	StatusVBucketElsewhere: "vbucket belongs to another server",
	StatusAuthError:        "authentication error", StatusAuthContinue: "authentication continue",
	StatusUnknownCommand: "unknown command", StatusOutOfMemory: "out of memory",
	StatusNotSupported: "not supported", StatusInternalError: "internal error",
	StatusBusy: "busy", StatusTemporaryFailure: "temporary failure",
}

// String returns a short description of the status, or "status 0xNNNN".
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "status 0x" + hex2(uint8(s>>8)) + hex2(uint8(s))
}

func hex2(b uint8) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xf]})
}

package binprot

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error the decoder returns: the bytes are
// not a valid response packet and the stream they came from cannot be
// trusted any more.
var ErrMalformed = errors.New("binprot: malformed response")

// Header is the fixed 24-byte header of a packet.
type Header struct {
	Magic     uint8
	Opcode    Opcode
	KeyLen    uint16
	ExtrasLen uint8
	DataType  uint8
	Status    Status // the vbucket id in requests
	BodyLen   uint32
	Opaque    uint32
	CAS       uint64
}

// DecodeHeader decodes the header at the start of b, which must hold at
// least HeaderLen bytes (it returns an ErrMalformed error otherwise). It does
// not validate the fields; ParseResponse does.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: header needs %d bytes, have %d", ErrMalformed, HeaderLen, len(b))
	}
	return Header{
		Magic:     b[0],
		Opcode:    Opcode(b[1]),
		KeyLen:    binary.BigEndian.Uint16(b[2:4]),
		ExtrasLen: b[4],
		DataType:  b[5],
		Status:    Status(binary.BigEndian.Uint16(b[6:8])),
		BodyLen:   binary.BigEndian.Uint32(b[8:12]),
		Opaque:    binary.BigEndian.Uint32(b[12:16]),
		CAS:       binary.BigEndian.Uint64(b[16:24]),
	}, nil
}

// Response is one decoded response. Extras, Key and Value alias the buffer
// that was parsed: copy them before that buffer is reused.
type Response struct {
	Header
	Extras []byte
	Key    []byte
	Value  []byte
}

// Flags returns the item flags carried in the extras of a GET-family
// response, and false if the extras do not hold them.
func (r *Response) Flags() (uint32, bool) {
	if len(r.Extras) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(r.Extras), true
}

// Uint64Value returns the 8-byte big-endian counter an INCREMENT or
// DECREMENT response carries as its value, and false if the value is not 8
// bytes long.
func (r *Response) Uint64Value() (uint64, bool) {
	if len(r.Value) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(r.Value), true
}

// ParseResponse parses the response at the start of buf. It has three
// outcomes:
//
//   - n > 0: a whole response was decoded from buf[:n].
//   - n == 0 and err == nil: buf holds only part of a response. If the header
//     is already there (len(buf) >= HeaderLen), r.Header is filled in, so the
//     caller knows the whole packet needs HeaderLen+r.BodyLen bytes;
//     otherwise r is zero and at least HeaderLen bytes are needed.
//   - err != nil (wrapping ErrMalformed): the bytes are not a response.
//
// maxBody caps BodyLen: a header announcing a bigger body is rejected before
// anything waits for or allocates that many bytes.
func ParseResponse(buf []byte, maxBody uint32) (r Response, n int, err error) {
	if len(buf) < HeaderLen {
		return Response{}, 0, nil
	}
	h, _ := DecodeHeader(buf)
	if err := h.validate(maxBody); err != nil {
		return Response{}, 0, err
	}
	total := HeaderLen + int(h.BodyLen)
	if len(buf) < total {
		return Response{Header: h}, 0, nil
	}
	ext := HeaderLen + int(h.ExtrasLen)
	key := ext + int(h.KeyLen)
	r = Response{
		Header: h,
		Extras: buf[HeaderLen:ext:ext],
		Key:    buf[ext:key:key],
		Value:  buf[key:total:total],
	}
	return r, total, nil
}

func (h *Header) validate(maxBody uint32) error {
	if h.Magic != MagicResponse {
		return fmt.Errorf("%w: bad magic 0x%02x", ErrMalformed, h.Magic)
	}
	if h.DataType != 0 {
		// Only raw bytes (0) are defined; anything else means we are not
		// reading what we think we are.
		return fmt.Errorf("%w: unknown data type 0x%02x", ErrMalformed, h.DataType)
	}
	if h.BodyLen > maxBody {
		return fmt.Errorf("%w: body length %d over the limit %d", ErrMalformed, h.BodyLen, maxBody)
	}
	if uint64(h.ExtrasLen)+uint64(h.KeyLen) > uint64(h.BodyLen) {
		return fmt.Errorf("%w: extras (%d) and key (%d) longer than body (%d)",
			ErrMalformed, h.ExtrasLen, h.KeyLen, h.BodyLen)
	}
	return nil
}

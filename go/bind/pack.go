package bind

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// packer builds the packed results that cross the boundary as one []byte:
// little-endian integers and length-prefixed byte strings after a status byte.
type packer struct{ buf []byte }

func newPacker(status int, capacity int) *packer {
	p := &packer{buf: make([]byte, 1, 1+capacity)}
	p.buf[0] = byte(status)
	return p
}

func (p *packer) u8(v int)     { p.buf = append(p.buf, byte(v)) }
func (p *packer) u32(v uint32) { p.buf = binary.LittleEndian.AppendUint32(p.buf, v) }
func (p *packer) u64(v uint64) { p.buf = binary.LittleEndian.AppendUint64(p.buf, v) }
func (p *packer) bytes(b []byte) {
	p.u32(uint32(len(b)))
	p.buf = append(p.buf, b...)
}
func (p *packer) str(s string) {
	p.u32(uint32(len(s)))
	p.buf = append(p.buf, s...)
}

// errRecord appends status and message of err (status OK and "" for nil).
func (p *packer) errRecord(err error) {
	p.u8(statusOf(err))
	if err == nil {
		p.u32(0)
		return
	}
	p.str(cleanMessage(err.Error()))
}

// unpacker reads the packed arguments Python sends (lists of keys, items).
type unpacker struct {
	buf []byte
	err error
}

func (u *unpacker) u32() uint32 {
	if u.err != nil {
		return 0
	}
	if len(u.buf) < 4 {
		u.err = fmt.Errorf("%w: packed argument truncated", errInternal)
		return 0
	}
	v := binary.LittleEndian.Uint32(u.buf)
	u.buf = u.buf[4:]
	return v
}

func (u *unpacker) take(n uint32) []byte {
	if u.err != nil {
		return nil
	}
	if uint64(len(u.buf)) < uint64(n) {
		u.err = fmt.Errorf("%w: packed argument truncated", errInternal)
		return nil
	}
	b := u.buf[:n:n]
	u.buf = u.buf[n:]
	return b
}

// appendKeyList decodes Python's packed key list (u32 count, count u32
// lengths, then the keys back to back) and appends the keys to dst (reused
// memory). The keys alias the argument's memory.
func appendKeyList(dst [][]byte, b []byte) ([][]byte, error) {
	if len(b) < 4 {
		return dst, fmt.Errorf("%w: packed argument truncated", errInternal)
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n*4 > uint64(len(b)-4) {
		return dst, fmt.Errorf("%w: packed key list claims %d keys", errInternal, n)
	}
	lens, data := b[4:4+4*n], b[4+4*n:]
	for i := uint64(0); i < n; i++ {
		l := uint64(binary.LittleEndian.Uint32(lens[4*i:]))
		if l > uint64(len(data)) {
			return dst, fmt.Errorf("%w: packed argument truncated", errInternal)
		}
		dst = append(dst, data[:l:l])
		data = data[l:]
	}
	if len(data) != 0 {
		return dst, fmt.Errorf("%w: %d trailing bytes in packed key list", errInternal, len(data))
	}
	return dst, nil
}

// appendKeyLines appends the n keys of b, joined by '\n', to dst.
func appendKeyLines(dst [][]byte, b []byte, n int64) ([][]byte, error) {
	for i := int64(1); i < n; i++ {
		j := bytes.IndexByte(b, '\n')
		if j < 0 {
			return dst, fmt.Errorf("%w: joined key list has fewer than %d keys", errInternal, n)
		}
		dst = append(dst, b[:j:j])
		b = b[j+1:]
	}
	if n <= 0 {
		if len(b) != 0 {
			return dst, fmt.Errorf("%w: joined key list of no keys has %d bytes", errInternal, len(b))
		}
		return dst, nil
	}
	if bytes.IndexByte(b, '\n') >= 0 {
		return dst, fmt.Errorf("%w: joined key list has more than %d keys", errInternal, n)
	}
	return append(dst, b[:len(b):len(b)]), nil
}

package binprot

import "encoding/binary"

// appendHeader appends a request header. bodyLen must equal
// extrasLen+len(key)+valueLen; the callers below guarantee it.
func appendHeader(buf []byte, op Opcode, keyLen int, extrasLen uint8, bodyLen int, opaque uint32, cas uint64) []byte {
	var h [HeaderLen]byte
	h[0] = MagicRequest
	h[1] = byte(op)
	binary.BigEndian.PutUint16(h[2:4], uint16(keyLen))
	h[4] = extrasLen
	// h[5] data type and h[6:8] vbucket stay zero.
	binary.BigEndian.PutUint32(h[8:12], uint32(bodyLen))
	binary.BigEndian.PutUint32(h[12:16], opaque)
	binary.BigEndian.PutUint64(h[16:24], cas)
	return append(buf, h[:]...)
}

// AppendKeyOnly appends a request whose body is just a key: GET, GETQ, GETK,
// GETKQ, DELETE, DELETEQ (cas 0 = unconditional), or a request with an empty
// key and no extras such as NOOP, VERSION, QUIT and STAT (key = stats group).
func AppendKeyOnly(buf []byte, op Opcode, key []byte, cas uint64, opaque uint32) []byte {
	buf = appendHeader(buf, op, len(key), 0, len(key), opaque, cas)
	return append(buf, key...)
}

// AppendStore appends a SET, ADD, REPLACE (or their quiet variants) request:
// extras are the 4-byte flags and 4-byte expiration. A nonzero cas makes the
// store conditional on the item's current CAS.
func AppendStore(buf []byte, op Opcode, key, value []byte, flags, exp uint32, cas uint64, opaque uint32) []byte {
	return append(AppendStoreHeader(buf, op, key, len(value), flags, exp, cas, opaque), value...)
}

// AppendStoreHeader appends the start of the request AppendStore would
// append, everything up to and including the key, for a value of valueLen
// bytes that the caller sends right after it (with writev, say, so that a
// big value goes out from the caller's memory instead of being copied into
// the request buffer).
func AppendStoreHeader(buf []byte, op Opcode, key []byte, valueLen int, flags, exp uint32, cas uint64, opaque uint32) []byte {
	buf = appendHeader(buf, op, len(key), 8, 8+len(key)+valueLen, opaque, cas)
	var ex [8]byte
	binary.BigEndian.PutUint32(ex[0:4], flags)
	binary.BigEndian.PutUint32(ex[4:8], exp)
	buf = append(buf, ex[:]...)
	return append(buf, key...)
}

// AppendConcat appends an APPEND or PREPEND (or quiet variant) request: no
// extras, the value is added to the existing one.
func AppendConcat(buf []byte, op Opcode, key, value []byte, cas uint64, opaque uint32) []byte {
	return append(AppendConcatHeader(buf, op, key, len(value), cas, opaque), value...)
}

// AppendConcatHeader is AppendConcat without the value, which the caller
// sends right after it (see AppendStoreHeader).
func AppendConcatHeader(buf []byte, op Opcode, key []byte, valueLen int, cas uint64, opaque uint32) []byte {
	buf = appendHeader(buf, op, len(key), 0, len(key)+valueLen, opaque, cas)
	return append(buf, key...)
}

// AppendDelta appends an INCREMENT or DECREMENT (or quiet variant) request.
// initial is stored if the key is missing, unless exp is NoCreate.
func AppendDelta(buf []byte, op Opcode, key []byte, delta, initial uint64, exp uint32, cas uint64, opaque uint32) []byte {
	buf = appendHeader(buf, op, len(key), 20, 20+len(key), opaque, cas)
	var ex [20]byte
	binary.BigEndian.PutUint64(ex[0:8], delta)
	binary.BigEndian.PutUint64(ex[8:16], initial)
	binary.BigEndian.PutUint32(ex[16:20], exp)
	buf = append(buf, ex[:]...)
	return append(buf, key...)
}

// AppendTouch appends a TOUCH, GAT, GATQ, GATK or GATKQ request: the 4-byte
// extras carry the new expiration.
func AppendTouch(buf []byte, op Opcode, key []byte, exp uint32, opaque uint32) []byte {
	buf = appendHeader(buf, op, len(key), 4, 4+len(key), opaque, 0)
	var ex [4]byte
	binary.BigEndian.PutUint32(ex[:], exp)
	buf = append(buf, ex[:]...)
	return append(buf, key...)
}

// AppendFlush appends a FLUSH or FLUSHQ request. A delay of 0 flushes now;
// the delay extras are optional in the protocol, so they are sent only when
// nonzero.
func AppendFlush(buf []byte, op Opcode, delay uint32, opaque uint32) []byte {
	if delay == 0 {
		return appendHeader(buf, op, 0, 0, 0, opaque, 0)
	}
	buf = appendHeader(buf, op, 0, 4, 4, opaque, 0)
	var ex [4]byte
	binary.BigEndian.PutUint32(ex[:], delay)
	return append(buf, ex[:]...)
}

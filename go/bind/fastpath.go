package bind

/*
#include "fastpath.h"
*/
import "C"

import (
	"encoding/binary"
	"unsafe"
)

// FastPathTable returns the address of this engine's table of hot-path
// entry points (struct omcache_fastpath in fastpath.h): get, store, delta
// and asyncio's start and collect, callable from C without a generated
// wrapper. Each loaded copy of
// the engine (one per process after fork) has its own table.
func FastPathTable() int64 {
	return int64(uintptr(unsafe.Pointer(C.omcache_fastpath_table())))
}

// FastPathVersion is the OMCACHE_FASTPATH_VERSION this engine was built
// with: a caller checks it before using the table.
func FastPathVersion() int64 { return C.OMCACHE_FASTPATH_VERSION }

//export omcacheFastGet
func omcacheFastGet(h, keyAddr, keyLen, bufAddr, bufCap, gat, exptime int64) int64 {
	return GetInto(h, keyAddr, keyLen, bufAddr, bufCap, gat != 0, exptime)
}

//export omcacheFastStore
func omcacheFastStore(h, op, keyAddr, keyLen, valueAddr, valueLen, flags, exptime, cas int64) int64 {
	return Store(h, op, keyAddr, keyLen, valueAddr, valueLen, flags, exptime, cas)
}

//export omcacheFastDelta
func omcacheFastDelta(h, keyAddr, keyLen, decr, delta, initial, create, exptime, bufAddr, bufCap int64) int64 {
	return DeltaInto(h, keyAddr, keyLen, decr != 0, delta, initial, create != 0, exptime, bufAddr, bufCap)
}

//export omcacheFastAsyncStart
func omcacheFastAsyncStart(q, h, op, aAddr, aLen, bAddr, bLen, cAddr, cLen, i1, i2, i3, i4 int64) int64 {
	return AsyncStart(q, h, op, aAddr, aLen, bAddr, bLen, cAddr, cLen, i1, i2, i3, i4)
}

//export omcacheFastAsyncCollect
func omcacheFastAsyncCollect(q, bufAddr, bufCap int64) int64 {
	return AsyncCollectInto(q, bufAddr, bufCap)
}

// DeltaInto is Delta writing its packed result into the caller's buffer
// (bufCap bytes at bufAddr): StatusOK and the new value (u64 little
// endian), StatusMiss, or a packed error. It returns the result's length,
// or -token when it does not fit (TakeResult(token) returns it).
func DeltaInto(h, keyAddr, keyLen int64, decr bool, delta, initial int64, create bool, exptime, bufAddr, bufCap int64) (ret int64) {
	defer func() {
		if r := recover(); r != nil {
			ret = -stashResult([]byte{StatusInternal})
		}
	}()
	buf := bytesAt(bufAddr, bufCap)
	v, err := runDelta(h, bytesAt(keyAddr, keyLen), decr, delta, initial, create, exptime)
	var out []byte
	switch {
	case err == nil:
		if len(buf) >= 9 {
			buf[0] = StatusOK
			binary.LittleEndian.PutUint64(buf[1:], v)
			return 9
		}
		p := newPacker(StatusOK, 8)
		p.u64(v)
		out = p.buf
	case statusOf(err) == StatusMiss:
		out = []byte{StatusMiss}
	default:
		out = packedError(err)
	}
	if len(out) > len(buf) {
		return -stashResult(out)
	}
	return int64(copy(buf, out))
}

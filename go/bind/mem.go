package bind

import "unsafe"

// bytesAt returns the n bytes at address p without copying. Python passes the
// address of an immutable bytes object's data that it keeps alive for the
// duration of the call; the slice must not be retained after the call
// returns. The uintptr is reinterpreted, not converted, because the memory is
// Python's, not Go's: the garbage collector neither owns nor moves it.
func bytesAt(p, n int64) []byte {
	if n <= 0 || p == 0 {
		return []byte{}
	}
	ptr := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	return unsafe.Slice((*byte)(ptr), int(n))
}

// isU32 reports whether an int64 argument fits the uint32 the protocol
// carries (flags, expiration times, delays).
func isU32(v int64) bool { return v >= 0 && v <= 0xffffffff }

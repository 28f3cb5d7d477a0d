package conn

import "sync"

// Large values are read into buffers of their own (see parse). Allocating
// one per value means zeroing it and, at a megabyte a value, a garbage
// collection every few values (measured: a 1 MiB set+get loop spent a fifth
// of its CPU in the collector's background sweep). A caller that is done
// with such a value, having copied it elsewhere, gives its buffer back with
// ReleaseValue, and a later large value is read into it.

// largeFree holds released buffers.
var largeFree struct {
	sync.Mutex
	bufs  [][]byte
	bytes int
}

const (
	// largeFreeMax and largeFreeBytes bound what largeFree keeps.
	largeFreeMax   = 8
	largeFreeBytes = 32 << 20
)

// largeBuffer returns a buffer of length n: the smallest released one with
// room for n bytes and at most twice that, else a new one.
func largeBuffer(n int) []byte {
	largeFree.Lock()
	best := -1
	for i, b := range largeFree.bufs {
		if cap(b) >= n && cap(b) <= 2*n && (best < 0 || cap(b) < cap(largeFree.bufs[best])) {
			best = i
		}
	}
	if best < 0 {
		largeFree.Unlock()
		return make([]byte, n)
	}
	b := largeFree.bufs[best]
	last := len(largeFree.bufs) - 1
	largeFree.bufs[best] = largeFree.bufs[last]
	largeFree.bufs[last] = nil
	largeFree.bufs = largeFree.bufs[:last]
	largeFree.bytes -= cap(b)
	largeFree.Unlock()
	return b[:n]
}

// ReleaseValue gives back the buffer of v, the Value of a response of
// LargeValue bytes or more (which arrives in a buffer of its own, see
// OwnValue), so that a later large value is read into it instead of a new
// buffer. The caller must not use v, nor anything sliced from it, after the
// call. Smaller values are ignored.
func ReleaseValue(v []byte) {
	if cap(v) < LargeValue {
		return
	}
	largeFree.Lock()
	defer largeFree.Unlock()
	if len(largeFree.bufs) >= largeFreeMax || largeFree.bytes+cap(v) > largeFreeBytes {
		return
	}
	largeFree.bufs = append(largeFree.bufs, v[:0])
	largeFree.bytes += cap(v)
}

// releasedBuffers reports the buffers ReleaseValue keeps (for tests).
func releasedBuffers() (n, bytes int) {
	largeFree.Lock()
	defer largeFree.Unlock()
	return len(largeFree.bufs), largeFree.bytes
}

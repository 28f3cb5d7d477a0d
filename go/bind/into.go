package bind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/omcache/omcache/go/client"
)

// Results that do not fit the caller's buffer wait here for TakeResult
// (packed results) or TakeValueInto (large values).
var stash struct {
	sync.Mutex
	next   int64
	m      map[int64][]byte
	values map[int64][]byte
}

func stashResult(b []byte) int64 {
	stash.Lock()
	defer stash.Unlock()
	if stash.m == nil {
		stash.m = make(map[int64][]byte)
	}
	stash.next++
	stash.m[stash.next] = b
	return stash.next
}

func stashValue(v []byte) int64 {
	stash.Lock()
	defer stash.Unlock()
	if stash.values == nil {
		stash.values = make(map[int64][]byte)
	}
	stash.next++
	stash.values[stash.next] = v
	return stash.next
}

// TakeValueInto copies (and forgets) a large value that GetInto left for
// the caller into n bytes at addr: memory of exactly the value's length
// that the caller allocated after reading it from GetInto's header. It
// returns StatusOK, or StatusInternal for an unknown token or a wrong length.
func TakeValueInto(token, addr, n int64) (ret int64) {
	defer recoverInt(&ret)
	stash.Lock()
	v, ok := stash.values[token]
	delete(stash.values, token)
	stash.Unlock()
	if !ok || int64(len(v)) != n {
		if ok {
			client.ReleaseValue(v)
		}
		return result(fmt.Errorf("%w: no pending value %d of %d bytes", errInternal, token, n))
	}
	copy(bytesAt(addr, n), v)
	// The value was read into a buffer of its own, held by nothing else
	// now: the next large value reuses it.
	client.ReleaseValue(v)
	return 0
}

// TakeResult returns (and forgets) a result that GetInto could not fit in
// the caller's buffer; a single StatusInternal byte for an unknown token.
func TakeResult(token int64) (ret []byte) {
	defer recoverPacked(&ret)
	stash.Lock()
	b, ok := stash.m[token]
	delete(stash.m, token)
	stash.Unlock()
	if !ok {
		return []byte{StatusInternal}
	}
	return b
}

// PendingResults returns how many results wait for TakeResult (for tests).
func PendingResults() (ret int64) {
	defer recoverInt(&ret)
	stash.Lock()
	defer stash.Unlock()
	return int64(len(stash.m) + len(stash.values))
}

// writeItem writes the packed single-key result (see Get) into buf, or, if
// it does not fit, stashes it and returns -token.
func writeItem(buf []byte, it *client.Item, err error) int64 {
	if err != nil {
		if errors.Is(err, client.ErrCacheMiss) {
			if len(buf) < 1 {
				return -stashResult([]byte{StatusMiss})
			}
			buf[0] = StatusMiss
			return 1
		}
		msg := packedError(err)
		if len(msg) > len(buf) {
			return -stashResult(msg)
		}
		return int64(copy(buf, msg))
	}
	n := getHeaderLen + len(it.Value)
	if n > len(buf) {
		// A large value goes to the caller in one more copy, straight into
		// the object it returns: the header, with the value's length where
		// the value would start, says how much to allocate.
		if len(buf) < getHeaderLen+8 {
			return -stashResult(packItem(it, nil))
		}
		buf[0] = StatusOK
		binary.LittleEndian.PutUint32(buf[1:], it.Flags)
		binary.LittleEndian.PutUint64(buf[5:], it.CAS)
		binary.LittleEndian.PutUint64(buf[getHeaderLen:], uint64(len(it.Value)))
		return -stashValue(it.Value)
	}
	buf[0] = StatusOK
	binary.LittleEndian.PutUint32(buf[1:], it.Flags)
	binary.LittleEndian.PutUint64(buf[5:], it.CAS)
	copy(buf[getHeaderLen:], it.Value)
	return int64(n)
}

// GetInto is Get writing its packed result into the caller's buffer (bufCap
// bytes at bufAddr, memory the caller owns and does not touch during the
// call), which saves the allocation and handle bookkeeping of a returned
// []byte. It returns the result's length, or -token when the result does
// not fit: then, if the buffer holds a StatusOK header (status, flags, cas)
// followed by the value's length (u64), TakeValueInto(token, ...) copies the
// value into memory of that length; otherwise TakeResult(token) returns the
// packed result. With gat set it is Gat with expiration exptime.
func GetInto(h, keyAddr, keyLen, bufAddr, bufCap int64, gat bool, exptime int64) (ret int64) {
	buf := bytesAt(bufAddr, bufCap)
	defer func() {
		if r := recover(); r != nil {
			ret = -stashResult([]byte{StatusInternal})
		}
	}()
	c, err := lookup(h)
	if err != nil {
		return writeItem(buf, nil, err)
	}
	if gat && !isU32(exptime) {
		return writeItem(buf, nil, client.ErrInvalidArguments)
	}
	// A value that fits lands in the buffer where writeItem puts it (its
	// copy is then a no-op): no allocation for the common get.
	var dst []byte
	if len(buf) > getHeaderLen {
		dst = buf[getHeaderLen:]
	}
	it, err := c.GetTo(dst, bytesAt(keyAddr, keyLen), gat, uint32(exptime))
	return writeItem(buf, &it, err)
}

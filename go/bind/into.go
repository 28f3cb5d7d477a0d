package bind

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/omcache/omcache/go/client"
)

// Results that do not fit the caller's buffer wait here for TakeResult.
var stash struct {
	sync.Mutex
	next int64
	m    map[int64][]byte
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
	return int64(len(stash.m))
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
		return -stashResult(packItem(it, nil))
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
// not fit: TakeResult(token) then returns it. With gat set it is Gat with
// expiration exptime.
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
	key := bytesAt(keyAddr, keyLen)
	if gat {
		if exptime < 0 || exptime > 0xffffffff {
			return writeItem(buf, nil, client.ErrInvalidArguments)
		}
		it, err := c.Gat(key, uint32(exptime))
		return writeItem(buf, it, err)
	}
	it, err := c.Get(key)
	return writeItem(buf, it, err)
}

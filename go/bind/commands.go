package bind

import (
	"encoding/binary"
	"errors"

	"github.com/omcache/omcache/go/client"
)

// Store operations for Store's op argument.
const (
	OpSet     = 0
	OpAdd     = 1
	OpReplace = 2
	OpAppend  = 3
	OpPrepend = 4
)

// getHeaderLen is the size of Get's packed header: status, flags, cas.
const getHeaderLen = 1 + 4 + 8

// Get fetches one key. It returns a packed result: on a hit StatusOK,
// flags (uint32 LE), cas (uint64 LE) and the value; on a miss the single
// byte StatusMiss; otherwise an error status and message.
func Get(h, keyAddr, keyLen int64) (ret []byte) {
	defer recoverPacked(&ret)
	return getKey(h, bytesAt(keyAddr, keyLen))
}

// getKey is Get on a key in Go memory (omcache.aio runs it later, on a copy).
func getKey(h int64, key []byte) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	return packItem(c.Get(key))
}

// packItem packs a single-key get result: see Get.
func packItem(it *client.Item, err error) []byte {
	if err != nil {
		if errors.Is(err, client.ErrCacheMiss) {
			return []byte{StatusMiss}
		}
		return packedError(err)
	}
	out := make([]byte, getHeaderLen+len(it.Value))
	binary.LittleEndian.PutUint32(out[1:], it.Flags)
	binary.LittleEndian.PutUint64(out[5:], it.CAS)
	copy(out[getHeaderLen:], it.Value)
	return out
}

// Store runs set/add/replace/append/prepend (op is one of the Op constants)
// with the given flags, expiration and cas (0 for none). It returns a status
// result (see result).
func Store(h, op, keyAddr, keyLen, valueAddr, valueLen, flags, exptime, cas int64) (ret int64) {
	defer recoverInt(&ret)
	if valueLen < 0 {
		return result(client.ErrInvalidArguments)
	}
	return storeKey(h, op, bytesAt(keyAddr, keyLen), bytesAt(valueAddr, valueLen), flags, exptime, cas)
}

// storeKey is Store on a key in Go memory (omcache.aio runs it later, on a copy).
func storeKey(h, op int64, key, value []byte, flags, exptime, cas int64) (ret int64) {
	defer recoverInt(&ret)
	c, err := lookup(h)
	if err != nil {
		return result(err)
	}
	if !isU32(flags) || !isU32(exptime) {
		return result(client.ErrInvalidArguments)
	}
	it := &client.Item{
		Key:        key,
		Value:      value,
		Flags:      uint32(flags),
		Expiration: uint32(exptime),
		CAS:        uint64(cas),
	}
	switch op {
	case OpSet:
		err = c.Set(it)
	case OpAdd:
		err = c.Add(it)
	case OpReplace:
		err = c.Replace(it)
	case OpAppend:
		err = c.Append(it)
	case OpPrepend:
		err = c.Prepend(it)
	default:
		err = client.ErrInvalidArguments
	}
	return result(err)
}

// Delete removes one key: StatusOK if it existed, StatusMiss if not.
func Delete(h, keyAddr, keyLen int64) (ret int64) {
	defer recoverInt(&ret)
	return deleteKey(h, bytesAt(keyAddr, keyLen))
}

// deleteKey is Delete on a key in Go memory (omcache.aio runs it later, on a copy).
func deleteKey(h int64, key []byte) (ret int64) {
	defer recoverInt(&ret)
	c, err := lookup(h)
	if err != nil {
		return result(err)
	}
	return missOrResult(c.Delete(key))
}

// missOrResult is result, but a miss is a plain StatusMiss with no detail.
func missOrResult(err error) int64 {
	if errors.Is(err, client.ErrCacheMiss) {
		return StatusMiss
	}
	return result(err)
}

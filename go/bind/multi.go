package bind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/omcache/omcache/go/client"
)

// packItems encodes aligned multi-get results in columns, so that Python
// decodes them with a few C-level calls instead of a loop per key:
//
//	StatusOK, u32 hits, u32 errors, u32 format length, u32 errors offset,
//	a Python struct format for the values ("<5s100s..."; ASCII),
//	hits x u32 index, hits x u32 flags, hits x u64 cas,
//	the hits' values back to back,
//	then, at the errors offset, per error: u32 index, error record
//	(status, u32 length, message).
//
// Misses are left out; hits keep the order of the keys.
func packItems(items []*client.Item, errs []error) []byte {
	hits, size := 0, 0
	format := []byte{'<'}
	for i, it := range items {
		if errs[i] == nil && it != nil {
			hits++
			size += 16 + len(it.Value)
			format = strconv.AppendInt(format, int64(len(it.Value)), 10)
			format = append(format, 's')
		}
	}
	p := newPacker(StatusOK, 16+len(format)+size)
	p.u32(uint32(hits))
	head := len(p.buf)
	p.u32(0) // errors, filled in below
	p.u32(uint32(len(format)))
	p.u32(0) // errors offset, filled in below
	p.buf = append(p.buf, format...)
	for i, it := range items {
		if errs[i] == nil && it != nil {
			p.u32(uint32(i))
		}
	}
	for i, it := range items {
		if errs[i] == nil && it != nil {
			p.u32(it.Flags)
		}
	}
	for i, it := range items {
		if errs[i] == nil && it != nil {
			p.u64(it.CAS)
		}
	}
	for i, it := range items {
		if errs[i] == nil && it != nil {
			p.buf = append(p.buf, it.Value...)
		}
	}
	errPos, n := len(p.buf), 0
	for i, err := range errs {
		if err != nil && !errors.Is(err, client.ErrCacheMiss) {
			p.u32(uint32(i))
			p.errRecord(err)
			n++
		}
	}
	binary.LittleEndian.PutUint32(p.buf[head:], uint32(n))
	binary.LittleEndian.PutUint32(p.buf[head+8:], uint32(errPos))
	return p.buf
}

// packErrs encodes aligned per-key results of SetMulti/DeleteMulti: a record
// of index (u32) and error record for every key that did not succeed.
func packErrs(errs []error) []byte {
	p := newPacker(StatusOK, 0)
	for i, err := range errs {
		if err != nil {
			p.u32(uint32(i))
			p.errRecord(err)
		}
	}
	return p.buf
}

// GetMulti fetches many keys (a packed key list: u32 count, count u32
// lengths, the keys) in one pipelined exchange per server, all servers
// concurrently. With gat set, every item found also gets expiration exptime.
// See packItems for the result.
func GetMulti(h, keysAddr, keysLen int64, gat bool, exptime int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	if !isU32(exptime) {
		return packedError(client.ErrInvalidArguments)
	}
	keys, err := keyList(bytesAt(keysAddr, keysLen))
	if err != nil {
		return packedError(err)
	}
	var items []*client.Item
	var errs []error
	if gat {
		items, errs = c.GatMulti(keys, uint32(exptime))
	} else {
		items, errs = c.GetMulti(keys)
	}
	return packItems(items, errs)
}

// SetMulti stores many items with quiet SETs and one NOOP per server. The
// packed argument is: u32 count, u32 expiration, count u32 key lengths, count
// u32 value lengths, count u32 flags, then the keys back to back, then the
// values back to back. See packErrs for the result.
func SetMulti(h, itemsAddr, itemsLen int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	u := unpacker{buf: bytesAt(itemsAddr, itemsLen)}
	n := u.u32()
	exp := u.u32()
	if u.err == nil && uint64(n)*12 > uint64(len(u.buf)) {
		return packedError(fmt.Errorf("%w: packed item list claims %d items", errInternal, n))
	}
	lens := make([]uint32, 3*n)
	for i := range lens {
		lens[i] = u.u32()
	}
	items := make([]client.Item, n)
	ptrs := make([]*client.Item, n)
	for i := range items {
		items[i].Key = u.take(lens[i])
		items[i].Flags = lens[2*int(n)+i]
		items[i].Expiration = exp
		ptrs[i] = &items[i]
	}
	for i := range items {
		items[i].Value = u.take(lens[int(n)+i])
	}
	if u.err == nil && len(u.buf) != 0 {
		u.err = fmt.Errorf("%w: %d trailing bytes in packed item list", errInternal, len(u.buf))
	}
	if u.err != nil {
		return packedError(u.err)
	}
	return packErrs(c.SetMulti(ptrs))
}

// DeleteMulti deletes many keys (a packed key list as for GetMulti). See
// packErrs for the result; a key that was absent has StatusMiss.
func DeleteMulti(h, keysAddr, keysLen int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	keys, err := keyList(bytesAt(keysAddr, keysLen))
	if err != nil {
		return packedError(err)
	}
	return packErrs(c.DeleteMulti(keys))
}

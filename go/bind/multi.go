package bind

import (
	"errors"

	"github.com/omcache/omcache/go/client"
)

// packItems encodes aligned multi-get results: for every key that hit or
// failed (misses are left out) a record of index (u32), status (u8), then for
// a hit flags (u32), cas (u64) and the value, for an error the message.
func packItems(items []*client.Item, errs []error) []byte {
	size := 0
	for _, it := range items {
		if it != nil {
			size += 4 + 1 + 4 + 8 + 4 + len(it.Value)
		}
	}
	p := newPacker(StatusOK, size)
	for i, it := range items {
		err := errs[i]
		switch {
		case err == nil && it != nil:
			p.u32(uint32(i))
			p.u8(StatusOK)
			p.u32(it.Flags)
			p.u64(it.CAS)
			p.bytes(it.Value)
		case err != nil && !errors.Is(err, client.ErrCacheMiss):
			p.u32(uint32(i))
			p.errRecord(err)
		}
	}
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
	if exptime < 0 || exptime > 0xffffffff {
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

// SetMulti stores many items (u32 count, then per item u32 key length, u32
// value length, u32 flags, u32 expiration, then all keys and values back to
// back, key before value) with quiet SETs and one NOOP per server. See
// packErrs for the result.
func SetMulti(h, itemsAddr, itemsLen int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	u := unpacker{buf: bytesAt(itemsAddr, itemsLen)}
	n := u.u32()
	if u.err == nil && uint64(n)*16 > uint64(len(u.buf)) {
		return packedError(errInternal)
	}
	items := make([]client.Item, n)
	lens := make([]uint32, 2*n)
	for i := range items {
		lens[2*i], lens[2*i+1] = u.u32(), u.u32()
		items[i].Flags = u.u32()
		items[i].Expiration = u.u32()
	}
	ptrs := make([]*client.Item, n)
	for i := range items {
		items[i].Key = u.take(lens[2*i])
		items[i].Value = u.take(lens[2*i+1])
		ptrs[i] = &items[i]
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

package bind

import (
	"errors"

	"github.com/omcache/omcache/go/client"
)

// Touch sets a new expiration on key: StatusOK, or StatusMiss if absent.
func Touch(h, keyAddr, keyLen, exptime int64) (ret int64) {
	defer recoverInt(&ret)
	return touchKey(h, bytesAt(keyAddr, keyLen), exptime)
}

// touchKey is Touch on a key in Go memory (omcache.aio runs it later, on a copy).
func touchKey(h int64, key []byte, exptime int64) (ret int64) {
	defer recoverInt(&ret)
	c, err := lookup(h)
	if err != nil {
		return result(err)
	}
	if !isU32(exptime) {
		return result(client.ErrInvalidArguments)
	}
	return missOrResult(c.Touch(key, uint32(exptime)))
}

// Gat gets key and sets its expiration (get-and-touch); the result is
// packed as for Get.
func Gat(h, keyAddr, keyLen, exptime int64) (ret []byte) {
	defer recoverPacked(&ret)
	return gatKey(h, bytesAt(keyAddr, keyLen), exptime)
}

// gatKey is Gat on a key in Go memory (omcache.aio runs it later, on a copy).
func gatKey(h int64, key []byte, exptime int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	if !isU32(exptime) {
		return packedError(client.ErrInvalidArguments)
	}
	return packItem(c.Gat(key, uint32(exptime)))
}

// Delta increments (decr false) or decrements (decr true) key by delta.
// With create set, a missing key is created with initial; otherwise a miss
// is StatusMiss. Packed result: status, then the new value as u64.
// delta and initial are uint64 bit patterns carried in int64.
func Delta(h, keyAddr, keyLen int64, decr bool, delta, initial int64, create bool, exptime int64) (ret []byte) {
	defer recoverPacked(&ret)
	return deltaKey(h, bytesAt(keyAddr, keyLen), decr, delta, initial, create, exptime)
}

// deltaKey is Delta on a key in Go memory (omcache.aio runs it later, on a copy).
func deltaKey(h int64, key []byte, decr bool, delta, initial int64, create bool, exptime int64) (ret []byte) {
	defer recoverPacked(&ret)
	v, err := runDelta(h, key, decr, delta, initial, create, exptime)
	if err != nil {
		if statusOf(err) == StatusMiss {
			return []byte{StatusMiss}
		}
		return packedError(err)
	}
	p := newPacker(StatusOK, 8)
	p.u64(v)
	return p.buf
}

// runDelta runs incr (or decr) on client h.
func runDelta(h int64, key []byte, decr bool, delta, initial int64, create bool, exptime int64) (uint64, error) {
	c, err := lookup(h)
	if err != nil {
		return 0, err
	}
	if !isU32(exptime) {
		return 0, client.ErrInvalidArguments
	}
	if decr {
		return c.Decr(key, uint64(delta), uint64(initial), uint32(exptime), create)
	}
	return c.Incr(key, uint64(delta), uint64(initial), uint32(exptime), create)
}

// packServerErrs encodes per-server results: u32 count, then an error record
// per server in Servers() order.
func packServerErrs(errs []error) []byte {
	p := newPacker(StatusOK, 0)
	p.u32(uint32(len(errs)))
	for _, err := range errs {
		p.errRecord(err)
	}
	return p.buf
}

// FlushAll invalidates all items on every server after delay seconds (0:
// now). Packed per-server results (see packServerErrs).
func FlushAll(h, delay int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	if !isU32(delay) {
		return packedError(client.ErrInvalidArguments)
	}
	return packServerErrs(c.FlushAll(uint32(delay)))
}

// Noop pings every server. Packed per-server results (see packServerErrs).
func Noop(h int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	return packServerErrs(c.Noop())
}

// ServerVersions returns every server's version: u32 count, then per server an
// error record followed by the version string.
func ServerVersions(h int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	versions, errs := c.Version()
	p := newPacker(StatusOK, 0)
	p.u32(uint32(len(errs)))
	for i, err := range errs {
		p.errRecord(err)
		p.str(versions[i])
	}
	return p.buf
}

// Stats returns every server's statistics for group: u32 count, then per
// server an error record, u32 number of stats and that many name/value
// string pairs.
func Stats(h int64, group string) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	stats, errs := c.StatsInOrder(group)
	p := newPacker(StatusOK, 0)
	p.u32(uint32(len(errs)))
	for i, err := range errs {
		p.errRecord(err)
		p.u32(uint32(len(stats[i])))
		for _, st := range stats[i] {
			p.str(st.Name)
			p.str(st.Value)
		}
	}
	return p.buf
}

// Servers returns the client's server addresses: u32 count, then strings.
func Servers(h int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	addrs := c.Servers()
	p := newPacker(StatusOK, 0)
	p.u32(uint32(len(addrs)))
	for _, a := range addrs {
		p.str(a)
	}
	return p.buf
}

// Verbosity sets every server's logging level. Packed per-server results
// (see packServerErrs).
func Verbosity(h, level int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	if !isU32(level) {
		return packedError(client.ErrInvalidArguments)
	}
	return packServerErrs(c.Verbosity(uint32(level)))
}

// getMetaHeaderLen is the size of GetMeta's packed header: status, flags,
// cas, ttl, last access, fetched, size.
const getMetaHeaderLen = 1 + 4 + 8 + 8 + 8 + 1 + 8

// GetMeta fetches one key with its metadata (meta protocol only); with bump
// false the read leaves its LRU position and access time alone. It returns
// a packed result: on a hit StatusOK, flags (u32), cas, ttl (i64, -1:
// never expires), seconds since last access (i64), fetched before (u8),
// size (i64), then the value; on a miss the single byte StatusMiss;
// otherwise an error status and message.
func GetMeta(h, keyAddr, keyLen int64, bump bool) (ret []byte) {
	defer recoverPacked(&ret)
	return getMetaKey(h, bytesAt(keyAddr, keyLen), bump)
}

// getMetaKey is GetMeta on a key in Go memory (omcache.aio runs it later, on a copy).
func getMetaKey(h int64, key []byte, bump bool) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	it, m, err := c.GetMeta(key, bump)
	if err != nil {
		if errors.Is(err, client.ErrCacheMiss) {
			return []byte{StatusMiss}
		}
		return packedError(err)
	}
	p := newPacker(StatusOK, getMetaHeaderLen+len(it.Value))
	p.u32(it.Flags)
	p.u64(it.CAS)
	p.u64(uint64(m.TTL))
	p.u64(uint64(m.LastAccess))
	fetched := 0
	if m.Fetched {
		fetched = 1
	}
	p.u8(fetched)
	p.u64(uint64(m.Size))
	p.buf = append(p.buf, it.Value...)
	return p.buf
}

package bind

import (
	"errors"

	"github.com/omcache/omcache/go/client"
)

// leaseHeaderLen is the size of GetLease's packed header after the status:
// state, has value, stale (one byte each), flags, cas, ttl.
const leaseHeaderLen = 3 + 4 + 8 + 8

// Lease states in GetLease's packed result (client.LeaseState).
const (
	LeaseHit  = int(client.LeaseHit)
	LeaseWon  = int(client.LeaseWon)
	LeaseBusy = int(client.LeaseBusy)
)

// GetLease gets key taking part in memcached's leases (client.GetLease):
// a missing key is leased for lockTTL seconds, an item with less than
// recacheBefore seconds left (0: never) hands out an early refresh. It
// returns a packed result: StatusOK, the lease state (LeaseHit, LeaseWon,
// LeaseBusy), whether a value follows, whether it is stale, flags (uint32
// LE), cas (uint64 LE, the placeholder's on a miss), ttl (int64 LE) and the
// value; otherwise an error status and message.
func GetLease(h, keyAddr, keyLen, lockTTL, recacheBefore int64) (ret []byte) {
	defer recoverPacked(&ret)
	return getLeaseKey(h, bytesAt(keyAddr, keyLen), lockTTL, recacheBefore)
}

// getLeaseKey is GetLease on a key in Go memory (omcache.aio runs it later, on a copy).
func getLeaseKey(h int64, key []byte, lockTTL, recacheBefore int64) (ret []byte) {
	defer recoverPacked(&ret)
	c, err := lookup(h)
	if err != nil {
		return packedError(err)
	}
	if !isU32(lockTTL) || !isU32(recacheBefore) {
		return packedError(client.ErrInvalidArguments)
	}
	l, err := c.GetLease(key, uint32(lockTTL), uint32(recacheBefore))
	if err != nil {
		return packedError(err)
	}
	var value []byte
	var flags uint32
	hasValue := 0
	if l.Item != nil {
		value, flags, hasValue = l.Item.Value, l.Item.Flags, 1
	}
	stale := 0
	if l.Stale {
		stale = 1
	}
	p := newPacker(StatusOK, leaseHeaderLen+len(value))
	p.u8(int(l.State))
	p.u8(hasValue)
	p.u8(stale)
	p.u32(flags)
	p.u64(l.CAS)
	p.u64(uint64(l.TTL))
	p.buf = append(p.buf, value...)
	return p.buf
}

// ReleaseLease gives back a lease GetLease handed out (LeaseWon) without a
// store (client.ReleaseLease); hasValue, stale, cas and ttl are what
// GetLease returned. It returns a status result (see result).
func ReleaseLease(h, keyAddr, keyLen int64, hasValue, stale bool, cas, ttl int64) (ret int64) {
	defer recoverInt(&ret)
	return releaseLeaseKey(h, bytesAt(keyAddr, keyLen), hasValue, stale, cas, ttl)
}

// releaseLeaseKey is ReleaseLease on a key in Go memory (omcache.aio runs it later, on a copy).
func releaseLeaseKey(h int64, key []byte, hasValue, stale bool, cas, ttl int64) (ret int64) {
	defer recoverInt(&ret)
	c, err := lookup(h)
	if err != nil {
		return result(err)
	}
	l := &client.Lease{State: client.LeaseWon, Stale: stale, CAS: uint64(cas), TTL: ttl}
	if hasValue {
		l.Item = &client.Item{}
	}
	return result(c.ReleaseLease(key, l))
}

// Invalidate marks key stale for at most staleTTL seconds
// (client.Invalidate): StatusOK if it existed, StatusMiss if not.
func Invalidate(h, keyAddr, keyLen, staleTTL int64) (ret int64) {
	defer recoverInt(&ret)
	return invalidateKey(h, bytesAt(keyAddr, keyLen), staleTTL)
}

// invalidateKey is Invalidate on a key in Go memory (omcache.aio runs it later, on a copy).
func invalidateKey(h int64, key []byte, staleTTL int64) (ret int64) {
	defer recoverInt(&ret)
	c, err := lookup(h)
	if err != nil {
		return result(err)
	}
	if !isU32(staleTTL) {
		return result(client.ErrInvalidArguments)
	}
	err = c.Invalidate(key, uint32(staleTTL))
	if errors.Is(err, client.ErrCacheMiss) {
		return StatusMiss
	}
	return result(err)
}

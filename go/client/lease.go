package client

import (
	"errors"
	"fmt"

	"github.com/omcache/omcache/go/proto"
)

// LeaseState is what GetLease tells its caller to do.
type LeaseState uint8

// Lease states.
const (
	// LeaseHit: the key holds a fresh value (Lease.Item); nothing to do.
	LeaseHit LeaseState = iota
	// LeaseWon: this caller holds the key's lease and must store its next
	// value (Set), or give the lease back with ReleaseLease if it cannot.
	// Lease.Item is nil when the key held no value (a miss), else the
	// current value: stale (Lease.Stale, after Invalidate) or close to
	// its expiry (under the recacheBefore threshold).
	LeaseWon
	// LeaseBusy: another caller holds the lease. Lease.Item is nil when
	// the key holds no value yet (wait and ask again), else the current
	// value, stale or close to expiry, to be served meanwhile.
	LeaseBusy
)

// String names the state.
func (s LeaseState) String() string {
	switch s {
	case LeaseHit:
		return "hit"
	case LeaseWon:
		return "won"
	case LeaseBusy:
		return "busy"
	}
	return fmt.Sprintf("LeaseState(%d)", uint8(s))
}

// Lease is the answer of GetLease.
type Lease struct {
	// State tells what to do.
	State LeaseState
	// Item is the stored value, nil when the key holds none (a miss, or
	// the empty placeholder memcached keeps while a lease on a missing key
	// is held).
	Item *Item
	// Stale reports that Item was marked stale by Invalidate.
	Stale bool
	// TTL is the number of seconds the item (or the placeholder) has left,
	// -1 if it never expires or memcached did not say.
	TTL int64
	// CAS is the CAS of what the key holds (the placeholder's for a miss):
	// ReleaseLease uses it so that it never undoes another caller's store.
	CAS uint64
}

// GetLease gets the item under key and takes part in memcached's leases
// (the meta protocol's mg N and R flags), the server-side answer to cache
// stampedes: of all the callers that find key missing, stale (marked by
// Invalidate) or, with recacheBefore nonzero, with less than recacheBefore
// seconds to live, memcached hands exactly one the lease (LeaseWon); the
// others get LeaseBusy with the current value if there is one.
//
// On a miss memcached creates an empty placeholder item that lives lockTTL
// seconds (at least 1): the winner should store the value before then (a
// Set replaces the placeholder and ends the lease); if it dies, the
// placeholder expires and the next caller wins. A winner that cannot load
// the value calls ReleaseLease so that another caller wins at once.
//
// It needs the meta protocol: other protocols give ErrNotSupported.
func (c *Client) GetLease(key []byte, lockTTL, recacheBefore uint32) (*Lease, error) {
	if err := c.needMeta("leases"); err != nil {
		return nil, err
	}
	if lockTTL == 0 {
		lockTTL = 1
	}
	req, err := c.newRequest(proto.OpGet, key)
	if err != nil {
		return nil, err
	}
	req.Meta, req.Vivify, req.Recache = true, lockTTL, recacheBefore
	var res result
	if err := c.do(&req, &res); err != nil {
		return nil, err
	}
	if res.err != nil {
		// memcached vivifies every miss: a miss here means a server that
		// ignored N.
		if errors.Is(res.err, ErrCacheMiss) {
			return nil, protocolError(c.addrFor(key), "a get with a lease (N) answered by a miss")
		}
		return nil, res.err
	}
	l := &Lease{Stale: res.stale, TTL: -1, CAS: res.cas}
	if res.meta != nil {
		l.TTL = res.meta.TTL
	}
	placeholder := (res.win || res.alreadyWon) && len(res.value) == 0 && res.flags == 0
	if !placeholder {
		l.Item = &Item{Key: key, Value: res.value, Flags: res.flags, CAS: res.cas}
	}
	switch {
	case res.win:
		l.State = LeaseWon
	case res.alreadyWon:
		l.State = LeaseBusy
	default:
		l.State = LeaseHit
	}
	return l, nil
}

// ReleaseLease gives back a lease that GetLease handed this caller
// (LeaseWon) without a Set, typically because loading the value failed:
//   - on a miss it deletes memcached's placeholder (only if the key still
//     holds it: CAS-checked), so that the next caller wins at once;
//   - on a stale item it marks the item stale again for the time it had
//     left, so that the next caller wins the refresh;
//   - on an item close to expiry it does nothing: memcached cannot hand the
//     early refresh out twice, the item stays served until it expires and
//     the first caller after that wins.
//
// It is a no-op for other states, and when the key changed meanwhile.
func (c *Client) ReleaseLease(key []byte, l *Lease) error {
	if l == nil || l.State != LeaseWon || (l.Item != nil && !l.Stale) {
		return nil
	}
	if err := c.needMeta("leases"); err != nil {
		return err
	}
	req, err := c.newRequest(proto.OpDelete, key)
	if err != nil {
		return err
	}
	req.CAS = l.CAS
	if l.Item != nil {
		req.Invalidate = true
		req.Exp = uint32(max(l.TTL, 1))
	}
	err = c.simple(&req)
	if errors.Is(err, ErrCacheMiss) || errors.Is(err, ErrKeyExists) {
		// Gone or replaced meanwhile: the lease is over anyway.
		return nil
	}
	return err
}

// Invalidate marks the item under key stale for at most staleTTL seconds
// (meta md I T): it stays readable, GetLease hands one caller the lease to
// refresh it (LeaseWon, Lease.Stale) and serves it to the others
// (LeaseBusy). A plain get still returns the stale value. staleTTL 0 keeps
// the item's expiration. It returns ErrCacheMiss if there is no such item.
// It needs the meta protocol: other protocols give ErrNotSupported.
func (c *Client) Invalidate(key []byte, staleTTL uint32) error {
	if err := c.needMeta("invalidation"); err != nil {
		return err
	}
	req, err := c.newRequest(proto.OpDelete, key)
	if err != nil {
		return err
	}
	req.Invalidate, req.Exp = true, staleTTL
	return c.simple(&req)
}

// needMeta returns ErrNotSupported, naming what, unless the client speaks
// the meta protocol.
func (c *Client) needMeta(what string) error {
	if c.codec.Name() != "meta" {
		return fmt.Errorf("%w: %s need the meta protocol, this client speaks %s",
			ErrNotSupported, what, c.codec.Name())
	}
	return nil
}

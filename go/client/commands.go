package client

import (
	"errors"
	"fmt"

	"github.com/omcache/omcache/go/proto"
)

// Get returns the item stored under key, with its flags and CAS, or
// ErrCacheMiss if there is none.
func (c *Client) Get(key []byte) (*Item, error) {
	return c.getItem(proto.OpGet, key, 0)
}

// Gets is Get; it exists for symmetry with memcached's "gets". Get already
// fills Item.CAS in every protocol.
func (c *Client) Gets(key []byte) (*Item, error) {
	return c.getItem(proto.OpGet, key, 0)
}

// Gat gets the item under key and sets its expiration to exp in the same
// request (get-and-touch). It returns ErrCacheMiss if there is none.
func (c *Client) Gat(key []byte, exp uint32) (*Item, error) {
	return c.getItem(proto.OpGat, key, exp)
}

// Meta is what the meta protocol tells about an item besides its value.
type Meta struct {
	// TTL is the number of seconds the item has left, -1 if it never
	// expires.
	TTL int64
	// LastAccess is the number of seconds since the item was last read or
	// written.
	LastAccess int64
	// Fetched reports whether the item was read before this request.
	Fetched bool
	// Size is the length of the item's value.
	Size int64
}

// GetMeta returns the item under key with its metadata (time to live
// left, last access, whether it was fetched before, size), or ErrCacheMiss.
// With bump false the read leaves the item's LRU position and last access
// time as they were. It needs the meta protocol: other protocols give
// ErrNotSupported.
func (c *Client) GetMeta(key []byte, bump bool) (*Item, *Meta, error) {
	if c.codec.Name() != "meta" {
		return nil, nil, fmt.Errorf("%w: item metadata needs the meta protocol, this client speaks %s",
			ErrNotSupported, c.codec.Name())
	}
	req, err := c.newRequest(proto.OpGet, key)
	if err != nil {
		return nil, nil, err
	}
	req.Meta, req.NoBump = true, !bump
	var res result
	if err := c.do(&req, &res); err != nil {
		return nil, nil, err
	}
	if res.err != nil {
		return nil, nil, res.err
	}
	if res.meta == nil {
		return nil, nil, protocolError(c.addrFor(key), "a meta get answered without the metadata asked for")
	}
	return &Item{Key: key, Value: res.value, Flags: res.flags, CAS: res.cas}, res.meta, nil
}

// addrFor names the server a command for key went to, for an error
// message about its answer.
func (c *Client) addrFor(key []byte) string {
	if si, err := c.route(key); err == nil {
		return c.addrs[si]
	}
	return "the key's server"
}

// newRequest starts a request for op on key, checking the key.
func (c *Client) newRequest(op proto.Op, key []byte) (request, error) {
	b64, err := c.checkKey(key)
	if err != nil {
		return request{}, err
	}
	return request{Request: proto.Request{Op: op, Key: key, Base64Key: b64}}, nil
}

// GetTo is Get (Gat with expiration exp when gat is set) that copies a
// value of up to len(dst) bytes into dst instead of allocating it: the
// returned Item's Value then aliases dst. A larger value comes in memory
// of its own. Nothing is allocated for a hit that fits, a miss or a
// server's error answer.
func (c *Client) GetTo(dst, key []byte, gat bool, exp uint32) (Item, error) {
	op := proto.OpGet
	if gat {
		op = proto.OpGat
	} else {
		exp = 0
	}
	req, err := c.newRequest(op, key)
	if err != nil {
		return Item{}, err
	}
	req.Exp = exp
	res := result{dst: dst}
	if err := c.do(&req, &res); err != nil {
		return Item{}, err
	}
	if res.err != nil {
		return Item{}, res.err
	}
	return Item{Key: key, Value: res.value, Flags: res.flags, CAS: res.cas}, nil
}

func (c *Client) getItem(op proto.Op, key []byte, exp uint32) (*Item, error) {
	req, err := c.newRequest(op, key)
	if err != nil {
		return nil, err
	}
	req.Exp = exp
	var res result
	if err := c.do(&req, &res); err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, res.err
	}
	return &Item{Key: key, Value: res.value, Flags: res.flags, CAS: res.cas}, nil
}

// Touch sets the expiration of the item under key to exp. It returns
// ErrCacheMiss if there is no such item.
func (c *Client) Touch(key []byte, exp uint32) error {
	req, err := c.newRequest(proto.OpTouch, key)
	if err != nil {
		return err
	}
	req.Exp = exp
	return c.simple(&req)
}

// Set stores item unconditionally, or, if item.CAS is nonzero, only if the
// stored item still has that CAS: then a changed item gives ErrKeyExists
// and a missing one ErrCacheMiss. A value over the server's item size limit
// gives ErrTooLarge, and memcached then also drops the key's old value.
func (c *Client) Set(item *Item) error {
	return c.store(proto.OpSet, item)
}

// Add stores item only if the key holds nothing; otherwise it returns
// ErrNotStored.
func (c *Client) Add(item *Item) error {
	return c.store(proto.OpAdd, item)
}

// Replace stores item only if the key already holds an item; otherwise it
// returns ErrNotStored. A nonzero item.CAS adds the CAS condition of Set.
func (c *Client) Replace(item *Item) error {
	return c.store(proto.OpReplace, item)
}

// Append adds item.Value at the end of the stored value, keeping its flags
// and expiration. It returns ErrNotStored if the key holds nothing, and also
// if the combined value would exceed the item size limit (memcached answers
// NOT_STORED then, not E2BIG). A nonzero item.CAS adds the CAS condition of
// Set (not in the text protocol: ErrNotSupported).
func (c *Client) Append(item *Item) error {
	return c.store(proto.OpAppend, item)
}

// Prepend adds item.Value at the start of the stored value; see Append.
func (c *Client) Prepend(item *Item) error {
	return c.store(proto.OpPrepend, item)
}

func (c *Client) store(op proto.Op, item *Item) error {
	if item == nil {
		return ErrInvalidArguments
	}
	req, err := c.newRequest(op, item.Key)
	if err != nil {
		return err
	}
	req.Flags, req.Exp, req.CAS, req.value = item.Flags, item.Expiration, item.CAS, item.Value
	var res result
	if err := c.do(&req, &res); err != nil {
		return err
	}
	return storeError(op, item.CAS, res.err)
}

// storeError turns memcached's answer to a store into the documented error.
// memcached reports a failed condition through different statuses per
// command and protocol (binary ADD on an existing key: KEY_EEXISTS; binary
// REPLACE on a missing key: KEY_ENOENT; text "cas" on a missing key:
// NOT_FOUND, meta: EX); callers only care that the condition failed, except
// for CAS stores, where "changed" and "gone" are different answers.
func storeError(op proto.Op, cas uint64, err error) error {
	switch {
	case err == nil:
		return nil
	case op == proto.OpAdd && errors.Is(err, ErrKeyExists):
		return ErrNotStored
	case op == proto.OpReplace && cas == 0 && errors.Is(err, ErrCacheMiss):
		return ErrNotStored
	case cas != 0 && errors.Is(err, ErrNotStored) && (op == proto.OpSet || op == proto.OpReplace):
		// text "cas" of a missing key answers NOT_FOUND, but some
		// servers say NOT_STORED: the item is gone either way.
		return ErrCacheMiss
	}
	return err
}

// Delete removes the item under key. It returns ErrCacheMiss if there was
// none.
func (c *Client) Delete(key []byte) error {
	req, err := c.newRequest(proto.OpDelete, key)
	if err != nil {
		return err
	}
	return c.simple(&req)
}

// Incr adds delta to the decimal number stored under key and returns the
// result, wrapping around at 2^64. If the key is missing and create is true,
// initial is stored (and returned) with expiration exp; if create is false it
// returns ErrCacheMiss. A value that is not a number gives ErrDeltaBadValue.
func (c *Client) Incr(key []byte, delta, initial uint64, exp uint32, create bool) (uint64, error) {
	return c.delta(proto.OpIncr, key, delta, initial, exp, create)
}

// Decr subtracts delta from the number stored under key, stopping at 0
// (memcached never goes negative); otherwise it behaves like Incr.
func (c *Client) Decr(key []byte, delta, initial uint64, exp uint32, create bool) (uint64, error) {
	return c.delta(proto.OpDecr, key, delta, initial, exp, create)
}

// delta runs incr/decr. A protocol that cannot create a missing key in the
// same request (text) gets the usual emulation: on a miss, add the initial
// value; if another client created the key meanwhile (the add fails), apply
// the delta to what it stored.
func (c *Client) delta(op proto.Op, key []byte, delta, initial uint64, exp uint32, create bool) (uint64, error) {
	req, err := c.newRequest(op, key)
	if err != nil {
		return 0, err
	}
	req.Delta, req.Initial, req.Exp = delta, initial, exp
	req.Create = create && c.codec.CreateOnDelta()
	for attempt := 0; ; attempt++ {
		var res result
		if err := c.do(&req, &res); err != nil {
			return 0, err
		}
		if res.err == nil {
			return res.counter, nil
		}
		if !create || req.Create || attempt > 0 || !errors.Is(res.err, ErrCacheMiss) {
			return 0, res.err
		}
		err := c.Add(&Item{Key: key, Value: proto.AppendUint(nil, initial), Expiration: exp})
		if err == nil {
			return initial, nil
		}
		if !errors.Is(err, ErrNotStored) {
			return 0, err
		}
	}
}

func (c *Client) simple(req *request) error {
	var res result
	if err := c.do(req, &res); err != nil {
		return err
	}
	return res.err
}

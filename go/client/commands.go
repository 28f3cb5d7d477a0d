package client

import (
	"errors"

	"github.com/omcache/omcache/go/binprot"
)

// Get returns the item stored under key, with its flags and CAS, or
// ErrCacheMiss if there is none.
func (c *Client) Get(key []byte) (*Item, error) {
	return c.getItem(binprot.OpGet, key, 0)
}

// Gets is Get; it exists for symmetry with memcached's "gets". Get already
// fills Item.CAS, since the binary protocol always returns it.
func (c *Client) Gets(key []byte) (*Item, error) {
	return c.getItem(binprot.OpGet, key, 0)
}

// Gat gets the item under key and sets its expiration to exp in the same
// request (get-and-touch). It returns ErrCacheMiss if there is none.
func (c *Client) Gat(key []byte, exp uint32) (*Item, error) {
	return c.getItem(binprot.OpGAT, key, exp)
}

func (c *Client) getItem(op binprot.Opcode, key []byte, exp uint32) (*Item, error) {
	if !c.keyOK(key) {
		return nil, ErrMalformedKey
	}
	req := request{op: op, key: key, exp: exp}
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
	if !c.keyOK(key) {
		return ErrMalformedKey
	}
	return c.simple(&request{op: binprot.OpTouch, key: key, exp: exp})
}

// Set stores item unconditionally, or, if item.CAS is nonzero, only if the
// stored item still has that CAS: then a changed item gives ErrKeyExists
// and a missing one ErrCacheMiss. A value over the server's item size limit
// gives ErrTooLarge, and memcached then also drops the key's old value.
func (c *Client) Set(item *Item) error {
	return c.store(binprot.OpSet, item)
}

// Add stores item only if the key holds nothing; otherwise it returns
// ErrNotStored.
func (c *Client) Add(item *Item) error {
	return c.store(binprot.OpAdd, item)
}

// Replace stores item only if the key already holds an item; otherwise it
// returns ErrNotStored. A nonzero item.CAS adds the CAS condition of Set.
func (c *Client) Replace(item *Item) error {
	return c.store(binprot.OpReplace, item)
}

// Append adds item.Value at the end of the stored value, keeping its flags
// and expiration. It returns ErrNotStored if the key holds nothing, and also
// if the combined value would exceed the item size limit (memcached answers
// NOT_STORED then, not E2BIG). A nonzero item.CAS adds the CAS condition of
// Set.
func (c *Client) Append(item *Item) error {
	return c.store(binprot.OpAppend, item)
}

// Prepend adds item.Value at the start of the stored value; see Append.
func (c *Client) Prepend(item *Item) error {
	return c.store(binprot.OpPrepend, item)
}

func (c *Client) store(op binprot.Opcode, item *Item) error {
	if item == nil {
		return ErrInvalidArguments
	}
	if !c.keyOK(item.Key) {
		return ErrMalformedKey
	}
	req := request{op: op, key: item.Key, value: item.Value, flags: item.Flags, exp: item.Expiration, cas: item.CAS}
	var res result
	if err := c.do(&req, &res); err != nil {
		return err
	}
	return storeError(op, item.CAS, res.err)
}

// storeError turns memcached's answer to a store into the documented error.
// memcached reports a failed condition through different statuses per
// command (ADD on an existing key: KEY_EEXISTS; REPLACE on a missing key:
// KEY_ENOENT; APPEND/PREPEND on a missing key: NOT_STORED); callers only
// care that the condition failed, except for CAS stores, where "changed"
// and "gone" are different answers.
func storeError(op binprot.Opcode, cas uint64, err error) error {
	switch {
	case err == nil:
		return nil
	case op == binprot.OpAdd && errors.Is(err, ErrKeyExists):
		return ErrNotStored
	case op == binprot.OpReplace && cas == 0 && errors.Is(err, ErrCacheMiss):
		return ErrNotStored
	}
	return err
}

// Delete removes the item under key. It returns ErrCacheMiss if there was
// none.
func (c *Client) Delete(key []byte) error {
	if !c.keyOK(key) {
		return ErrMalformedKey
	}
	return c.simple(&request{op: binprot.OpDelete, key: key})
}

// Incr adds delta to the decimal number stored under key and returns the
// result, wrapping around at 2^64. If the key is missing and create is true,
// initial is stored (and returned) with expiration exp; if create is false it
// returns ErrCacheMiss. A value that is not a number gives ErrDeltaBadValue.
func (c *Client) Incr(key []byte, delta, initial uint64, exp uint32, create bool) (uint64, error) {
	return c.delta(binprot.OpIncrement, key, delta, initial, exp, create)
}

// Decr subtracts delta from the number stored under key, stopping at 0
// (memcached never goes negative); otherwise it behaves like Incr.
func (c *Client) Decr(key []byte, delta, initial uint64, exp uint32, create bool) (uint64, error) {
	return c.delta(binprot.OpDecrement, key, delta, initial, exp, create)
}

func (c *Client) delta(op binprot.Opcode, key []byte, delta, initial uint64, exp uint32, create bool) (uint64, error) {
	if !c.keyOK(key) {
		return 0, ErrMalformedKey
	}
	if !create {
		exp = binprot.NoCreate
	} else if exp == binprot.NoCreate {
		// The one expiration the protocol reserves: clamp rather than
		// silently turn "create" into "do not create".
		exp = binprot.NoCreate - 1
	}
	req := request{op: op, key: key, delta: delta, initial: initial, exp: exp}
	var res result
	if err := c.do(&req, &res); err != nil {
		return 0, err
	}
	if res.err != nil {
		return 0, res.err
	}
	return res.counter, nil
}

func (c *Client) simple(req *request) error {
	var res result
	if err := c.do(req, &res); err != nil {
		return err
	}
	return res.err
}

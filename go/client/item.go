package client

import (
	"fmt"

	"github.com/omcache/omcache/go/proto"
)

// Item is a value stored under a key.
type Item struct {
	// Key is at most 250 bytes with no byte <= 0x20 or 0x7f. Items returned
	// by Get-family calls carry the key slice that was passed in.
	Key []byte
	// Value is the item's data; it may be empty.
	Value []byte
	// Flags are opaque to the server; clients use them for the value's type
	// or encoding.
	Flags uint32
	// Expiration is in seconds: 0 never expires, up to 30 days is relative
	// to now, above that it is a unix timestamp.
	Expiration uint32
	// CAS is the item's compare-and-swap id. Get-family calls fill it in;
	// a nonzero CAS makes Set/Replace/Append/Prepend conditional on it.
	CAS uint64
}

// checkKey returns ErrMalformedKey, with the reason, if key cannot be used
// by this client; else whether it travels base64-encoded (the meta
// protocol's way to carry a key the text tokenizer cannot). Without
// Options.BinaryKeys a key must be valid in the text protocol, so that every
// client sharing the servers (pylibmc, python-memcached...) can use it;
// with it, any 1 to 250 bytes the client's protocol can carry.
func (c *Client) checkKey(key []byte) (b64 bool, err error) {
	ok, why := proto.TextKeyOK(key)
	if ok {
		return false, nil
	}
	if c.binaryKeys && len(key) > 0 && len(key) <= proto.MaxKeyLen {
		if ok, why2 := c.codec.KeyOK(key, true); ok {
			return true, nil
		} else {
			why = why2
		}
	}
	return false, fmt.Errorf("%w: %s", ErrMalformedKey, why)
}

// keyOK reports whether checkKey accepts key.
func (c *Client) keyOK(key []byte) bool {
	_, err := c.checkKey(key)
	return err == nil
}

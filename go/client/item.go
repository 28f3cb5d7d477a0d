package client

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

// legalKey reports whether key is a key memcached's text protocol would
// accept. The binary protocol takes any bytes, but keys must stay usable by
// every client sharing the servers (pylibmc, python-memcached...).
func legalKey(key []byte) bool {
	if len(key) == 0 || len(key) > 250 {
		return false
	}
	for _, b := range key {
		if b <= ' ' || b == 0x7f {
			return false
		}
	}
	return true
}

// keyOK reports whether key is legal for this client: any 1 to 250 bytes with
// Options.BinaryKeys, else legalKey's text-protocol rule.
func (c *Client) keyOK(key []byte) bool {
	if c.binaryKeys {
		return len(key) > 0 && len(key) <= 250
	}
	return legalKey(key)
}

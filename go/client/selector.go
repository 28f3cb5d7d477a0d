package client

import "hash/crc32"

// Selector picks the server that owns a key.
type Selector interface {
	// Pick returns an index into the server list passed to New. An index
	// out of range (e.g. -1 when every server is marked dead) makes the
	// command fail with ErrNoServers.
	Pick(key []byte) int
}

// Modula is the default Selector: the CRC-32 (IEEE) of the key modulo the
// number of servers. It is NOT libmemcached's placement; package dist has
// the compatible distributions.
type Modula struct {
	// N is the number of servers.
	N int
}

// Pick returns crc32(key) % N, or -1 if N is not positive.
func (m Modula) Pick(key []byte) int {
	if m.N <= 0 {
		return -1
	}
	if m.N == 1 {
		return 0
	}
	return int(crc32.ChecksumIEEE(key) % uint32(m.N))
}

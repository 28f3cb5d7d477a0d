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

// PickLive implements LiveSelector: crc32(key) modulo the number of live
// servers, over the live servers in order.
func (m Modula) PickLive(key []byte, alive func(server int) bool) int {
	n := 0
	for i := 0; i < m.N; i++ {
		if alive(i) {
			n++
		}
	}
	if n == 0 {
		return -1
	}
	want := int(crc32.ChecksumIEEE(key) % uint32(n))
	for i := 0; i < m.N; i++ {
		if alive(i) {
			if want == 0 {
				return i
			}
			want--
		}
	}
	return -1
}

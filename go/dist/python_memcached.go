package dist

import (
	"strconv"

	"github.com/omcache/omcache/go/hashkit"
)

// pythonMemcacheRetries is python-memcached's Client._SERVER_RETRIES.
const pythonMemcacheRetries = 10

// PythonMemcacheSelector is python-memcached 1.62's placement: every server
// is repeated Weight times in a bucket list, and a key goes to
// buckets[crc(key) % len(buckets)], where crc is
// ((crc32(key) & 0xffffffff) >> 16) & 0x7fff (hashkit.CRC).
//
// PickLive reproduces python-memcached's way around a dead server: up to ten
// tries, each rehashing the decimal text of the previous hash followed by
// the try number (crc(str(hash) + str(i))), after which python-memcached
// gives up and the key is stored nowhere (-1).
type PythonMemcacheSelector struct {
	base
	buckets []int // server index per bucket
}

func newPythonMemcache(b base) *PythonMemcacheSelector {
	p := &PythonMemcacheSelector{base: b}
	for _, i := range b.members {
		for range b.servers[i].Weight {
			p.buckets = append(p.buckets, i)
		}
	}
	return p
}

// Pick implements Selector.
func (p *PythonMemcacheSelector) Pick(key []byte) int {
	if len(p.buckets) == 0 {
		return -1
	}
	return p.buckets[hashkit.CRC(key)%uint32(len(p.buckets))]
}

// PickLive implements Selector with python-memcached's rehashing.
func (p *PythonMemcacheSelector) PickLive(key []byte, alive func(int) bool) int {
	return p.PickHash(int64(hashkit.CRC(key)), alive)
}

// PickHash places by a hash value the caller supplies, as python-memcached
// does for a (hash, key) tuple key, rehashing around servers for which alive
// returns false (nil: all alive). Negative hashes are reduced with Python's
// modulo, which is never negative.
func (p *PythonMemcacheSelector) PickHash(hash int64, alive func(int) bool) int {
	if len(p.buckets) == 0 {
		return -1
	}
	n := int64(len(p.buckets))
	for i := range pythonMemcacheRetries {
		s := p.buckets[(hash%n+n)%n]
		if alive == nil || alive(s) {
			return s
		}
		next := strconv.AppendInt(nil, hash, 10)
		next = strconv.AppendInt(next, int64(i), 10)
		hash = int64(hashkit.CRC(next))
	}
	return -1
}

// Explain implements Selector.
func (p *PythonMemcacheSelector) Explain(key []byte) Explanation {
	h := hashkit.CRC(key)
	e := p.base.explanation(key, h, p.Pick(key))
	e.Modulus = len(p.buckets)
	if len(p.buckets) > 0 {
		e.Bucket = int(h % uint32(len(p.buckets)))
	}
	return e
}

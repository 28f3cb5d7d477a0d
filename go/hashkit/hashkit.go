// Package hashkit implements the key hash functions of libmemcached's
// libhashkit (version 1.1.4, as Debian builds it) bit for bit, so that a Go
// client places keys on the same servers as libmemcached and pylibmc.
//
// The functions keep libhashkit's quirks on purpose; "fixing" any of them
// would move keys to other servers than the ones libmemcached picks:
//
//   - one-at-a-time, fnv1_32, fnv1a_32, fnv1_64 and fnv1a_64 read the key as
//     C "char", which is signed on x86 (where the reference data comes
//     from): bytes >= 0x80 are sign-extended before they are mixed in, so
//     UTF-8 keys hash differently from textbook implementations. (On arm64
//     Linux char is unsigned, so a libmemcached built there would hash such
//     keys differently; this package follows the x86-64 build, which is the
//     one the reference vectors were taken from.)
//   - crc is not a CRC-32 but ((crc32(key) >> 16) & 0x7fff), 15 bits.
//   - fnv1a_64 is computed with 32-bit arithmetic (the 64-bit offset basis and
//     prime truncated to 32 bits), so it is neither FNV-1a/64 nor FNV-1a/32.
//   - fnv1_64 is real FNV-1/64 truncated to its low 32 bits.
//   - md5 is the first four digest bytes read little-endian.
//   - murmur is MurmurHash2 seeded with 0xdeadbeef*len.
//   - jenkins is Bob Jenkins' lookup3 hashlittle with initval 13.
//   - hsieh is compiled out of Debian's libhashkit: libmemcached refuses it
//     as a key hash, and so does this package (ErrUnsupported).
package hashkit

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Hasher names one of libhashkit's hash algorithms. The numeric values are
// libmemcached's memcached_hash_t values, which is what pylibmc's hashers
// dict maps the names to, so a numeric behavior value converts directly.
type Hasher int

// The hash algorithms pylibmc exposes, in libmemcached's numbering.
const (
	HashDefault Hasher = 0 // one-at-a-time over signed char
	HashMD5     Hasher = 1
	HashCRC     Hasher = 2
	HashFNV64   Hasher = 3 // libmemcached's fnv1_64
	HashFNV64a  Hasher = 4 // libmemcached's fnv1a_64 (32-bit arithmetic)
	HashFNV32   Hasher = 5 // fnv1_32
	HashFNV32a  Hasher = 6 // fnv1a_32
	HashHsieh   Hasher = 7 // not available: Debian's libhashkit lacks it
	HashMurmur  Hasher = 8
	HashJenkins Hasher = 9
)

// ErrUnknownHash means that a hash name or number is not one of pylibmc's
// hashers.
var ErrUnknownHash = errors.New("omcache: unknown hash algorithm")

// ErrUnsupported means that the algorithm exists in libhashkit's interface
// but not in the libhashkit this package reproduces (hsieh: Debian builds
// libhashkit without it and libmemcached refuses to select it).
var ErrUnsupported = errors.New("omcache: hash algorithm not supported")

// names are pylibmc's keys of its hashers dict, indexed by Hasher.
var names = [...]string{
	HashDefault: "default",
	HashMD5:     "md5",
	HashCRC:     "crc",
	HashFNV64:   "fnv1_64",
	HashFNV64a:  "fnv1a_64",
	HashFNV32:   "fnv1_32",
	HashFNV32a:  "fnv1a_32",
	HashHsieh:   "hsieh",
	HashMurmur:  "murmur",
	HashJenkins: "jenkins",
}

// funcs holds the implementation of every supported Hasher; nil marks a
// Hasher that has a name but no implementation.
var funcs = [...]Func{
	HashDefault: OneAtATime,
	HashMD5:     MD5,
	HashCRC:     CRC,
	HashFNV64:   FNV64,
	HashFNV64a:  FNV64a,
	HashFNV32:   FNV32,
	HashFNV32a:  FNV32a,
	HashHsieh:   nil,
	HashMurmur:  Murmur,
	HashJenkins: Jenkins,
}

// Func is a hash function over a key.
type Func func(key []byte) uint32

// Names returns pylibmc's hasher names in libmemcached's numeric order,
// including "hsieh", which ByName refuses.
func Names() []string {
	out := make([]string, len(names))
	copy(out, names[:])
	return out
}

// ByName returns the Hasher that pylibmc calls name ("default", "md5",
// "crc", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "murmur",
// "jenkins"). A decimal number is accepted too, as pylibmc accepts the
// numeric constant. It returns an error wrapping ErrUnsupported for "hsieh"
// and ErrUnknownHash for anything else.
func ByName(name string) (Hasher, error) {
	h := Hasher(-1)
	for i, n := range names {
		if n == name {
			h = Hasher(i)
			break
		}
	}
	if h < 0 {
		n, err := strconv.Atoi(name)
		if err != nil || n < 0 || n >= len(names) {
			return 0, fmt.Errorf("%w %q (known: %s)", ErrUnknownHash, name, strings.Join(supportedNames(), ", "))
		}
		h = Hasher(n)
	}
	if _, err := h.Func(); err != nil {
		return 0, err
	}
	return h, nil
}

func supportedNames() []string {
	var out []string
	for i, n := range names {
		if funcs[i] != nil {
			out = append(out, n)
		}
	}
	return out
}

// String returns pylibmc's name for h, or "hash(N)" for a value that is not
// a pylibmc hasher.
func (h Hasher) String() string {
	if h >= 0 && int(h) < len(names) {
		return names[h]
	}
	return "hash(" + strconv.Itoa(int(h)) + ")"
}

// Func returns the hash function of h, or an error wrapping ErrUnsupported
// (hsieh) or ErrUnknownHash (a value outside pylibmc's hashers).
func (h Hasher) Func() (Func, error) {
	if h < 0 || int(h) >= len(funcs) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownHash, h)
	}
	if funcs[h] == nil {
		return nil, fmt.Errorf("%w: %q is not built into Debian's libhashkit 1.1.4, "+
			"libmemcached rejects it as a key hash (pylibmc raises for it too)", ErrUnsupported, h.String())
	}
	return funcs[h], nil
}

// Hash returns h's hash of key. For a Hasher without an implementation it
// returns 1, which is what libhashkit_digest returns for an algorithm that is
// compiled out; selectors never see such a Hasher because they are built
// through Func.
func (h Hasher) Hash(key []byte) uint32 {
	f, err := h.Func()
	if err != nil {
		return 1
	}
	return f(key)
}

// OneAtATime is libmemcached's default hash: Bob Jenkins' one-at-a-time
// over the key read as signed char.
func OneAtATime(key []byte) uint32 {
	var v uint32
	for _, b := range key {
		v += uint32(int8(b)) // sign extension: libhashkit reads const char
		v += v << 10
		v ^= v >> 6
	}
	v += v << 3
	v ^= v >> 11
	v += v << 15
	return v
}

// MD5 is libhashkit's md5 hash: the first four bytes of the MD5 digest of key,
// little-endian.
func MD5(key []byte) uint32 {
	d := md5.Sum(key)
	return binary.LittleEndian.Uint32(d[:4])
}

// crcTable is the reflected CRC-32 (IEEE 802.3) table, built once.
var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i)
		for range 8 {
			if c&1 != 0 {
				c = 0xedb88320 ^ c>>1
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// CRC is libhashkit's crc hash: bits 16..30 of the CRC-32 of key, so its
// values lie in [0, 32767]. python-memcached's default server hash is the same
// function.
func CRC(key []byte) uint32 {
	crc := ^uint32(0)
	for _, b := range key {
		crc = crc>>8 ^ crcTable[(crc^uint32(b))&0xff]
	}
	return (^crc >> 16) & 0x7fff
}

const (
	fnv32Init  uint32 = 2166136261
	fnv32Prime uint32 = 16777619
	fnv64Init  uint64 = 0xcbf29ce484222325
	fnv64Prime uint64 = 0x100000001b3
)

// FNV64 is libhashkit's fnv1_64: FNV-1 over 64 bits with sign-extended key
// bytes, truncated to the low 32 bits.
func FNV64(key []byte) uint32 {
	h := fnv64Init
	for _, b := range key {
		h *= fnv64Prime
		h ^= uint64(int8(b))
	}
	return uint32(h)
}

// FNV64a is libhashkit's fnv1a_64, which truncates the 64-bit offset basis
// and prime to 32 bits and then runs FNV-1a in 32-bit arithmetic over
// sign-extended key bytes.
func FNV64a(key []byte) uint32 {
	h := uint32(fnv64Init & 0xffffffff)
	for _, b := range key {
		h ^= uint32(int8(b))
		h *= uint32(fnv64Prime & 0xffffffff)
	}
	return h
}

// FNV32 is libhashkit's fnv1_32: FNV-1/32 over sign-extended key bytes.
func FNV32(key []byte) uint32 {
	h := fnv32Init
	for _, b := range key {
		h *= fnv32Prime
		h ^= uint32(int8(b))
	}
	return h
}

// FNV32a is libhashkit's fnv1a_32: FNV-1a/32 over sign-extended key bytes.
func FNV32a(key []byte) uint32 {
	h := fnv32Init
	for _, b := range key {
		h ^= uint32(int8(b))
		h *= fnv32Prime
	}
	return h
}

// Murmur is libhashkit's murmur: MurmurHash2 (32 bits, little-endian reads)
// seeded with 0xdeadbeef*len(key), where the multiplication wraps at 32 bits.
func Murmur(key []byte) uint32 {
	const m = 0x5bd1e995
	n := uint32(len(key))
	h := (0xdeadbeef * n) ^ n
	for len(key) >= 4 {
		k := binary.LittleEndian.Uint32(key)
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
		key = key[4:]
	}
	if len(key) > 0 {
		var k uint32
		for i, b := range key {
			k |= uint32(b) << (8 * i)
		}
		h ^= k
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

func rotl(x uint32, k uint) uint32 { return x<<k | x>>(32-k) }

// Jenkins is libhashkit's jenkins: lookup3's hashlittle with initval 13.
// libhashkit picks word, half-word or byte reads by the key's alignment; on a
// little-endian machine all three give this result.
func Jenkins(key []byte) uint32 {
	a := 0xdeadbeef + uint32(len(key)) + 13
	b, c := a, a
	for len(key) > 12 {
		a += binary.LittleEndian.Uint32(key[0:])
		b += binary.LittleEndian.Uint32(key[4:])
		c += binary.LittleEndian.Uint32(key[8:])
		a -= c
		a ^= rotl(c, 4)
		c += b
		b -= a
		b ^= rotl(a, 6)
		a += c
		c -= b
		c ^= rotl(b, 8)
		b += a
		a -= c
		a ^= rotl(c, 16)
		c += b
		b -= a
		b ^= rotl(a, 19)
		a += c
		c -= b
		c ^= rotl(b, 4)
		b += a
		key = key[12:]
	}
	if len(key) == 0 {
		// lookup3 returns c unmixed for an empty tail: for the empty key
		// and, since the loop above stops at 12, never otherwise.
		return c
	}
	var tail [12]byte
	copy(tail[:], key)
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	c ^= b
	c -= rotl(b, 14)
	a ^= c
	a -= rotl(c, 11)
	b ^= a
	b -= rotl(a, 25)
	c ^= b
	c -= rotl(b, 16)
	a ^= c
	a -= rotl(c, 4)
	b ^= a
	b -= rotl(a, 14)
	c ^= b
	c -= rotl(b, 24)
	return c
}

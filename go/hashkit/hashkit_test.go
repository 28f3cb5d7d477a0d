package hashkit

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/crc32"
	"hash/fnv"
	"os"
	"testing"
)

// libhashkitVectors is testdata/libhashkit.json, written by
// tools/distvectors/gen.py from the libhashkit.so.2 of Debian's
// libmemcached 1.1.4 through ctypes (libhashkit_digest).
type libhashkitVectors struct {
	KeysHex []string            `json:"keys_hex"`
	Values  map[string][]uint32 `json:"values"`
	Missing []string            `json:"missing"`
}

func loadVectors(t *testing.T) ([][]byte, libhashkitVectors) {
	t.Helper()
	raw, err := os.ReadFile("testdata/libhashkit.json")
	if err != nil {
		t.Fatal(err)
	}
	var v libhashkitVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	keys := make([][]byte, len(v.KeysHex))
	for i, h := range v.KeysHex {
		if keys[i], err = hex.DecodeString(h); err != nil {
			t.Fatal(err)
		}
	}
	return keys, v
}

func TestMatchesLibhashkitForEveryKey(t *testing.T) {
	keys, v := loadVectors(t)
	if len(keys) < 1000 {
		t.Fatalf("only %d keys in the vectors", len(keys))
	}
	for _, name := range Names() {
		want, ok := v.Values[name]
		h, err := ByName(name)
		if name == "hsieh" {
			if ok || err == nil {
				t.Errorf("hsieh: vectors present=%v, ByName error=%v; want absent and refused", ok, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !ok || len(want) != len(keys) {
			t.Fatalf("%s: %d vectors for %d keys", name, len(want), len(keys))
		}
		f, err := h.Func()
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i, k := range keys {
			if got := f(k); got != want[i] {
				if bad < 5 {
					t.Errorf("%s(%x) = %d, libhashkit says %d", name, k, got, want[i])
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d keys differ", name, bad, len(keys))
		}
	}
	if len(v.Missing) != 1 || v.Missing[0] != "hsieh" {
		t.Errorf("libhashkit lacked %v; this package assumes exactly [hsieh]", v.Missing)
	}
}

// The first inputs of libmemcached's own test fixture
// (test/fixtures/hashes.hpp), one row per algorithm.
func TestLibmemcachedPublishedVectors(t *testing.T) {
	inputs := []string{"apple", "beat", "carrot", "The quick brown fox jumps over the lazy dog"}
	tests := []struct {
		h    Hasher
		want []uint32
	}{
		{HashDefault, []uint32{2297466611, 3902465932, 469785835, 1369346549}},
		{HashMD5, []uint32{3195025439, 2556848621, 3724893440, 2642219166}},
		{HashCRC, []uint32{10542, 22009, 14526, 16719}},
		{HashFNV64, []uint32{473199127, 4148981457, 3971873300, 2112060110}},
		{HashFNV64a, []uint32{1488911807, 2500855813, 1510099634, 3890508048}},
		{HashFNV32, []uint32{67176023, 1190179409, 2043204404, 3922226286}},
		{HashFNV32a, []uint32{280767167, 2421315013, 3072375666, 76545936}},
	}
	for _, tt := range tests {
		for i, in := range inputs {
			if got := tt.h.Hash([]byte(in)); got != tt.want[i] {
				t.Errorf("%s(%q) = %d, want %d", tt.h, in, got, tt.want[i])
			}
		}
	}
}

func TestByName(t *testing.T) {
	tests := []struct {
		name    string
		want    Hasher
		wantErr error
	}{
		{"default", HashDefault, nil},
		{"md5", HashMD5, nil},
		{"crc", HashCRC, nil},
		{"fnv1_64", HashFNV64, nil},
		{"fnv1a_64", HashFNV64a, nil},
		{"fnv1_32", HashFNV32, nil},
		{"fnv1a_32", HashFNV32a, nil},
		{"murmur", HashMurmur, nil},
		{"jenkins", HashJenkins, nil},
		{"1", HashMD5, nil},
		{"9", HashJenkins, nil},
		{"hsieh", 0, ErrUnsupported},
		{"7", 0, ErrUnsupported},
		{"murmur3", 0, ErrUnknownHash},
		{"MD5", 0, ErrUnknownHash},
		{"", 0, ErrUnknownHash},
		{"10", 0, ErrUnknownHash},
		{"-1", 0, ErrUnknownHash},
	}
	for _, tt := range tests {
		got, err := ByName(tt.name)
		if !errors.Is(err, tt.wantErr) || (err == nil && got != tt.want) {
			t.Errorf("ByName(%q) = %v, %v; want %v, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != Names()[got] {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func TestUnsupportedHasherHashesToOneLikeLibhashkitDigest(t *testing.T) {
	for _, h := range []Hasher{HashHsieh, Hasher(42), Hasher(-3)} {
		if _, err := h.Func(); err == nil {
			t.Errorf("%v.Func() succeeded", h)
		}
		if got := h.Hash([]byte("apple")); got != 1 {
			t.Errorf("%v.Hash = %d, want 1", h, got)
		}
	}
	if s := Hasher(42).String(); s != "hash(42)" {
		t.Errorf("String() = %q", s)
	}
}

// stdlibAgrees checks the functions that are textbook algorithms on some
// inputs against the standard library; it returns a description of the first
// disagreement.
func stdlibAgrees(key []byte) string {
	if got, want := CRC(key), (crc32.ChecksumIEEE(key)>>16)&0x7fff; got != want {
		return "crc"
	}
	d := md5.Sum(key)
	if MD5(key) != binary.LittleEndian.Uint32(d[:]) {
		return "md5"
	}
	ascii := true
	for _, b := range key {
		if b >= 0x80 {
			ascii = false
		}
	}
	if !ascii {
		return ""
	}
	// Without bytes >= 0x80 sign extension changes nothing, so libhashkit's
	// FNV variants are the textbook ones (fnv1_64 truncated to 32 bits).
	h32, h32a, h64 := fnv.New32(), fnv.New32a(), fnv.New64()
	h32.Write(key)
	h32a.Write(key)
	h64.Write(key)
	switch {
	case FNV32(key) != h32.Sum32():
		return "fnv1_32"
	case FNV32a(key) != h32a.Sum32():
		return "fnv1a_32"
	case FNV64(key) != uint32(h64.Sum64()):
		return "fnv1_64"
	}
	return ""
}

func TestTextbookAlgorithmsWhereLibhashkitIsTextbook(t *testing.T) {
	keys, _ := loadVectors(t)
	for _, k := range keys {
		if bad := stdlibAgrees(k); bad != "" {
			t.Errorf("%s(%x) differs from the standard library", bad, k)
		}
	}
}

func TestHighBytesAreSignExtended(t *testing.T) {
	key := []byte("é") // 0xc3 0xa9
	h := fnv.New32()
	h.Write(key)
	if FNV32(key) == h.Sum32() {
		t.Error("fnv1_32 of a UTF-8 key equals textbook FNV-1/32; libhashkit sign-extends")
	}
	// One-at-a-time over signed char: the first byte adds 0xffffffc3.
	var v uint32 = 0xffffffc3
	v += v << 10
	v ^= v >> 6
	if got := OneAtATime([]byte{0xc3}); got == OneAtATime([]byte{0x43}) {
		t.Errorf("one-at-a-time ignores the high bit: %d", got)
	}
	v += v << 3
	v ^= v >> 11
	v += v << 15
	if got := OneAtATime([]byte{0xc3}); got != v {
		t.Errorf("OneAtATime(c3) = %d, want %d", got, v)
	}
}

func FuzzHashers(f *testing.F) {
	for _, s := range []string{"", "a", "apple", "日本語", "\xff\xfe\x80", "0123456789ab", "0123456789abc"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		for _, name := range Names() {
			h, err := ByName(name)
			if err != nil {
				continue
			}
			fn, _ := h.Func()
			a, b := fn(key), fn(append([]byte(nil), key...))
			if a != b {
				t.Fatalf("%s is not deterministic on %x", name, key)
			}
		}
		if CRC(key) > 0x7fff {
			t.Fatalf("crc(%x) = %d, above 15 bits", key, CRC(key))
		}
		if bad := stdlibAgrees(key); bad != "" {
			t.Fatalf("%s(%x) differs from the standard library", bad, key)
		}
	})
}

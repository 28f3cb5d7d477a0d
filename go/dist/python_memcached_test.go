package dist

import (
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
)

func pyServers(t *testing.T, weights ...int) []Server {
	t.Helper()
	out := make([]Server, len(weights))
	for i, w := range weights {
		s, err := ParsePythonMemcacheSpec(fmt.Sprintf("127.0.0.1:%d", 30000+i), w)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

// cmemcacheHash is python-memcached's serverHashFunction, written from the
// standard library's CRC-32 to check hashkit.CRC's use here independently.
func cmemcacheHash(b []byte) int64 { return int64((crc32.ChecksumIEEE(b) >> 16) & 0x7fff) }

func TestPythonMemcacheBuckets(t *testing.T) {
	s, err := New(pyServers(t, 1, 3, 0, 2), Config{Distribution: PythonMemcached})
	if err != nil {
		t.Fatal(err)
	}
	buckets := []int{0, 1, 1, 1, 3, 3} // a weight-0 server has no bucket
	for i := range 1000 {
		key := fmt.Appendf(nil, "py%d", i)
		want := buckets[cmemcacheHash(key)%6]
		if got := s.Pick(key); got != want {
			t.Fatalf("Pick(%s) = %d, want %d", key, got, want)
		}
		e := s.Explain(key)
		if e.Modulus != 6 || e.Bucket != int(cmemcacheHash(key)%6) || e.Server != want ||
			!strings.Contains(e.String(), "bucket") {
			t.Fatalf("Explain = %+v", e)
		}
	}
	if none, _ := New(pyServers(t, 0, 0), Config{Distribution: PythonMemcached}); none.Pick([]byte("k")) != -1 {
		t.Error("servers without buckets still got a key")
	}
}

func TestPythonMemcacheRehashesAroundDeadServers(t *testing.T) {
	s, _ := New(pyServers(t, 1, 1, 1), Config{Distribution: PythonMemcached})
	p := s.(*PythonMemcacheSelector)
	dead := func(i int) bool { return i != 0 }
	for i := range 300 {
		key := fmt.Appendf(nil, "r%d", i)
		// python-memcached's loop, spelt out for a single dead server.
		h := cmemcacheHash(key)
		want := -1
		for try := range 10 {
			if srv := int(h % 3); srv != 0 {
				want = srv
				break
			}
			h = cmemcacheHash(fmt.Appendf(nil, "%d%d", h, try))
		}
		if got := p.PickLive(key, dead); got != want {
			t.Fatalf("PickLive(%s) = %d, want %d", key, got, want)
		}
	}
}

func TestPythonMemcachePickHash(t *testing.T) {
	s, _ := New(pyServers(t, 1, 1, 1, 1), Config{Distribution: PythonMemcached})
	p := s.(*PythonMemcacheSelector)
	tests := []struct {
		hash int64
		want int
	}{
		{0, 0}, {5, 1}, {-1, 3}, {-4, 0}, {-6, 2}, // Python's -1 % 4 == 3
	}
	for _, tt := range tests {
		if got := p.PickHash(tt.hash, nil); got != tt.want {
			t.Errorf("PickHash(%d) = %d, want %d", tt.hash, got, tt.want)
		}
	}
	// A negative hash is rehashed through its decimal text, minus sign
	// included, as python-memcached's str() writes it.
	want := int(cmemcacheHash([]byte("-10")) % 4)
	if got := p.PickHash(-1, func(i int) bool { return i != 3 }); want != 3 && got != want {
		t.Errorf("PickHash(-1) with server 3 dead = %d, want %d", got, want)
	}
	if got := p.PickHash(7, func(int) bool { return false }); got != -1 {
		t.Errorf("PickHash with every server dead = %d", got)
	}
}

package client

import (
	"fmt"
	"testing"

	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/proto/codecs"
)

func benchClient(b *testing.B, servers int) *Client {
	return benchClientProto(b, servers, "")
}

func benchClientProto(b *testing.B, servers int, protocol string) *Client {
	b.Helper()
	var addrs []string
	for i := 0; i < servers; i++ {
		addrs = append(addrs, mctest.Start(b, mctest.Options{}).Addr)
	}
	c, err := New(addrs, Options{Protocol: protocol, TextMultiGet: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func BenchmarkGet(b *testing.B) {
	c := benchClient(b, 1)
	key := []byte("bench-key")
	if err := c.Set(&Item{Key: key, Value: make([]byte, 100)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Get(key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetMiss(b *testing.B) {
	c := benchClient(b, 1)
	key := []byte("bench-missing")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Get(key); err != ErrCacheMiss {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	c := benchClient(b, 1)
	item := &Item{Key: []byte("bench-key"), Value: make([]byte, 100)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Set(item); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	c := benchClient(b, 1)
	key := []byte("bench-key")
	if err := c.Set(&Item{Key: key, Value: make([]byte, 100)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Get(key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchGetMulti(b *testing.B, servers, n int) {
	for _, p := range codecs.Names() {
		b.Run(p, func(b *testing.B) { benchGetMultiProto(b, servers, n, p) })
	}
}

func benchGetMultiProto(b *testing.B, servers, n int, protocol string) {
	c := benchClientProto(b, servers, protocol)
	keys := make([][]byte, n)
	items := make([]*Item, n)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("bench-key-%d", i))
		items[i] = &Item{Key: keys[i], Value: make([]byte, 100)}
	}
	for _, err := range c.SetMulti(items) {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, errs := c.GetMulti(keys)
		if errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
}

func BenchmarkGetMulti100OneServer(b *testing.B)    { benchGetMulti(b, 1, 100) }
func BenchmarkGetMulti100ThreeServers(b *testing.B) { benchGetMulti(b, 3, 100) }

func BenchmarkSetMulti100ThreeServers(b *testing.B) {
	c := benchClient(b, 3)
	items := make([]*Item, 100)
	for i := range items {
		items[i] = &Item{Key: []byte(fmt.Sprintf("bench-key-%d", i)), Value: make([]byte, 100)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if errs := c.SetMulti(items); errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
}

// BenchmarkSetGet1MiB is the benchmark harness's "set+get 1 MB" workload: a
// Set then a Get of a 1 MiB value on a server started with -I 2m.
func BenchmarkSetGet1MiB(b *testing.B) {
	srv := mctest.Start(b, mctest.Options{Args: []string{"-I", "2m"}})
	c, err := New([]string{srv.Addr}, Options{MaxItemSize: 2 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	item := &Item{Key: []byte("bench-big"), Value: make([]byte, 1<<20)}
	for i := range item.Value {
		item.Value[i] = byte(i * 7)
	}
	b.SetBytes(2 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Set(item); err != nil {
			b.Fatal(err)
		}
		it, err := c.Get(item.Key)
		if err != nil {
			b.Fatal(err)
		}
		if len(it.Value) != len(item.Value) {
			b.Fatalf("got %d bytes", len(it.Value))
		}
	}
}

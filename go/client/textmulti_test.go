package client

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
)

// With TextMultiGet, GetMulti gives what the binary pipeline gives: hits
// with flags and CAS, misses, invalid keys, duplicates, a large value, a
// dead server's keys failing alone; GatMulti and single-key commands keep
// the binary protocol on their own connections.
func TestTextMultiGetMatchesBinary(t *testing.T) {
	a := mctest.Start(t, mctest.Options{Args: []string{"-I", "2m"}})
	b := mctest.Start(t, mctest.Options{Args: []string{"-I", "2m"}})
	addrs := []string{a.Addr, b.Addr, mctest.RefusedAddr(t)}
	opts := Options{Protocol: "binary", MaxItemSize: 2 << 20}
	bin := newClientFor(t, addrs, opts)
	opts.TextMultiGet = true
	text := newClientFor(t, addrs, opts)

	var keys [][]byte
	var stored []*Item
	for i := 0; i < 60; i++ {
		k := []byte(fmt.Sprintf("text-%d", i))
		keys = append(keys, k)
		if i%3 != 0 && bin.selector.Pick(k) != 2 { // a third are misses
			v := bytes.Repeat([]byte{byte(i)}, i)
			if i == 7 {
				v = bytes.Repeat([]byte("big"), 400_000) // read apart by the connection
			}
			stored = append(stored, &Item{Key: k, Value: v, Flags: uint32(1000 + i)})
		}
	}
	for i, err := range text.SetMulti(stored) {
		if err != nil {
			t.Fatalf("store %q: %v", stored[i].Key, err)
		}
	}
	keys = append(keys, []byte("bad key"), keys[1], keys[4], bytes.Repeat([]byte("k"), 251))
	want, wantErrs := bin.GetMulti(keys)
	hits := 0
	for round := 0; round < 3; round++ { // pooled text connections are reused
		got, errs := text.GetMulti(keys)
		for i := range keys {
			if (want[i] == nil) != (got[i] == nil) || (want[i] != nil &&
				(!bytes.Equal(want[i].Value, got[i].Value) || want[i].Flags != got[i].Flags || want[i].CAS != got[i].CAS)) {
				t.Fatalf("round %d, key %q: text %+v, binary %+v", round, keys[i], got[i], want[i])
			}
			if (wantErrs[i] == nil) != (errs[i] == nil) ||
				errors.Is(wantErrs[i], ErrCacheMiss) != errors.Is(errs[i], ErrCacheMiss) ||
				errors.Is(wantErrs[i], ErrMalformedKey) != errors.Is(errs[i], ErrMalformedKey) ||
				errors.Is(wantErrs[i], ErrConnection) != errors.Is(errs[i], ErrConnection) {
				t.Fatalf("round %d, key %q: text error %v, binary %v", round, keys[i], errs[i], wantErrs[i])
			}
			if got[i] != nil {
				hits++
			}
		}
	}
	if hits < 3*(len(stored)+2) {
		t.Fatalf("%d hits in 3 rounds, want %d", hits, 3*(len(stored)+2))
	}
	var m MultiGet
	text.GetMultiReuse(&m, keys, false, 0)
	for i := range keys {
		if (m.Found[i] == nil) != (want[i] == nil) {
			t.Fatalf("GetMultiReuse, key %q: %+v, want %+v", keys[i], m.Found[i], want[i])
		}
	}
	// GatMulti stays binary; both pools hold connections.
	items, errs := text.GatMulti(keys[:3], 100)
	if errs[1] != nil || items[1] == nil || !errors.Is(errs[0], ErrCacheMiss) {
		t.Fatalf("GatMulti: %v %v", items, errs)
	}
	s := text.servers[text.selector.Pick(keys[1])]
	s.mu.Lock()
	nbin, ntext := len(s.idle), len(s.idleAlt)
	s.mu.Unlock()
	if nbin == 0 || ntext == 0 {
		t.Fatalf("idle connections: %d binary, %d text", nbin, ntext)
	}
	// With BinaryKeys there is no text multi-get: keys may hold spaces.
	opts.BinaryKeys = true
	bk := newClientFor(t, []string{a.Addr}, opts)
	if err := bk.Set(&Item{Key: []byte("with space"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if got, errs := bk.GetMulti([][]byte{[]byte("with space")}); errs[0] != nil || string(got[0].Value) != "v" {
		t.Fatalf("binary keys: %v %v", got[0], errs[0])
	}
}

// A server's error line fails its keys: SERVER_ERROR and CLIENT_ERROR as
// ErrServerError (not a health failure: the server answered), anything
// unexpected as ErrProtocol; the connection is not reused.
func TestTextMultiGetErrorLines(t *testing.T) {
	for _, tt := range []struct {
		answer string
		want   error
		hit    bool // k1's VALUE came whole before the error: it is kept
	}{
		{"VALUE k1 0 1 5\r\nx\r\nSERVER_ERROR out of memory writing get response\r\n", ErrServerError, true},
		{"CLIENT_ERROR bad command line format\r\n", ErrServerError, false},
		{"VALUE other 0 1 5\r\nx\r\nEND\r\n", ErrProtocol, false},
	} {
		t.Run(tt.want.Error(), func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			conns := make(chan int, 4)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					conns <- 1
					go func() {
						defer c.Close()
						c.SetDeadline(time.Now().Add(10 * time.Second))
						buf := make([]byte, 4096)
						for {
							if _, err := c.Read(buf); err != nil {
								return
							}
							c.Write([]byte(tt.answer))
						}
					}()
				}
			}()
			c := newClientFor(t, []string{l.Addr().String()}, Options{Protocol: "binary", TextMultiGet: true})
			for i := 0; i < 2; i++ {
				items, errs := c.GetMulti([][]byte{[]byte("k1"), []byte("k2")})
				if tt.hit && (errs[0] != nil || string(items[0].Value) != "x" || items[0].CAS != 5) {
					t.Fatalf("call %d: k1 %+v, %v", i, items[0], errs[0])
				}
				for j, err := range errs {
					if !errors.Is(err, tt.want) && !(tt.hit && j == 0) {
						t.Fatalf("call %d, key %d: %v, want %v", i, j, err, tt.want)
					}
				}
			}
			if n := len(conns); n != 2 {
				t.Fatalf("%d connections for 2 calls, want 2 (a failed one is not reused)", n)
			}
		})
	}
}

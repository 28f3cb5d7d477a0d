package client

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/proto/binprot"
)

func TestUnixSocket(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{Unix: true})
	c := newClientFor(t, []string{srv.Addr}, Options{})
	mustSet(t, c, "k", "over unix")
	if it, err := c.Get([]byte("k")); err != nil || string(it.Value) != "over unix" {
		t.Fatalf("Get: %v", err)
	}
}

func TestIPv6Loopback(t *testing.T) {
	if !mctest.HasIPv6Loopback() {
		t.Skip("no IPv6 loopback on this machine")
	}
	srv := mctest.Start(t, mctest.Options{Listen: "::1"})
	if srv.Addr[0] != '[' {
		t.Fatalf("address %q is not a bracketed IPv6 literal", srv.Addr)
	}
	c := newClientFor(t, []string{srv.Addr}, Options{})
	mustSet(t, c, "k", "over v6")
	if it, err := c.Get([]byte("k")); err != nil || string(it.Value) != "over v6" {
		t.Fatalf("Get: %v", err)
	}
}

func TestHostName(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{})
	_, port, _ := net.SplitHostPort(srv.Addr)
	c := newClientFor(t, []string{"localhost:" + port}, Options{})
	// localhost may resolve to ::1 first, where nothing listens: the client
	// must go on to 127.0.0.1.
	mustSet(t, c, "k", "by name")
}

func TestConnectionRefused(t *testing.T) {
	c := newClientFor(t, []string{mctest.RefusedAddr(t)}, Options{})
	_, err := c.Get([]byte("k"))
	if !errors.Is(err, ErrConnection) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("got %v", err)
	}
}

func TestBadAddresses(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:http", "no-such-host.invalid:11211", "/nonexistent/dir/sock"} {
		c := newClientFor(t, []string{addr}, Options{ConnectTimeout: 2 * time.Second})
		if _, err := c.Get([]byte("k")); !errors.Is(err, ErrConnection) && !errors.Is(err, ErrTimeout) {
			t.Errorf("%q: %v", addr, err)
		}
	}
	if _, err := New(nil, Options{}); !errors.Is(err, ErrNoServers) {
		t.Errorf("New(nil): %v", err)
	}
	if _, err := New([]string{""}, Options{}); !errors.Is(err, ErrInvalidArguments) {
		t.Errorf("New with an empty address: %v", err)
	}
}

// fakeServer accepts connections and hands each to serve; it stops when the
// test ends. It returns the address and a counter of accepted connections.
func fakeServer(t *testing.T, serve func(net.Conn)) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String(), &accepted
}

// readRequest reads one request packet.
func readRequest(c net.Conn) (binprot.Header, error) {
	var h [binprot.HeaderLen]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return binprot.Header{}, err
	}
	hdr, _ := binprot.DecodeHeader(h[:])
	_, err := io.CopyN(io.Discard, c, int64(hdr.BodyLen))
	return hdr, err
}

// response builds a response packet.
func response(op binprot.Opcode, status binprot.Status, opaque uint32, extras, key, value []byte) []byte {
	b := make([]byte, binprot.HeaderLen, binprot.HeaderLen+len(extras)+len(key)+len(value))
	b[0] = binprot.MagicResponse
	b[1] = byte(op)
	binary.BigEndian.PutUint16(b[2:], uint16(len(key)))
	b[4] = byte(len(extras))
	binary.BigEndian.PutUint16(b[6:], uint16(status))
	binary.BigEndian.PutUint32(b[8:], uint32(len(extras)+len(key)+len(value)))
	binary.BigEndian.PutUint32(b[12:], opaque)
	b = append(b, extras...)
	b = append(b, key...)
	return append(b, value...)
}

func TestIOTimeout(t *testing.T) {
	silent, _ := fakeServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	live := mctest.Start(t, mctest.Options{})
	c := newClientFor(t, []string{silent}, Options{IOTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := c.Get([]byte("k"))
	if elapsed := time.Since(start); !errors.Is(err, ErrTimeout) || elapsed < 190*time.Millisecond || elapsed > 1500*time.Millisecond {
		t.Fatalf("Get from a silent server: %v after %v", err, elapsed)
	}
	if _, err := c.Incr([]byte("k"), 1, 0, 0, true); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Incr from a silent server: %v", err)
	}

	// A multi-key call over a silent and a live server: the silent one's
	// keys time out, the live one's succeed, within about one timeout.
	both := newClientFor(t, []string{silent, live.Addr}, Options{IOTimeout: 200 * time.Millisecond})
	var keys [][]byte
	for i := 0; i < 20; i++ {
		keys = append(keys, []byte("key"+strconv.Itoa(i)))
	}
	start = time.Now()
	errs := both.SetMulti([]*Item{{Key: keys[0]}, {Key: keys[1]}, {Key: keys[2]}, {Key: keys[3]}, {Key: keys[4]},
		{Key: keys[5]}, {Key: keys[6]}, {Key: keys[7]}, {Key: keys[8]}, {Key: keys[9]}})
	_, gerrs := both.GetMulti(keys[:10])
	if elapsed := time.Since(start); elapsed > 1500*time.Millisecond {
		t.Errorf("two multi calls took %v with a 200 ms timeout", elapsed)
	}
	seen := [2]bool{}
	for i := range errs {
		si := both.selector.Pick(keys[i])
		seen[si] = true
		if si == 0 && (!errors.Is(errs[i], ErrTimeout) || !errors.Is(gerrs[i], ErrTimeout)) {
			t.Errorf("key on the silent server: %v / %v", errs[i], gerrs[i])
		}
		if si == 1 && (errs[i] != nil || gerrs[i] != nil) {
			t.Errorf("key on the live server: %v / %v", errs[i], gerrs[i])
		}
	}
	if !seen[0] || !seen[1] {
		t.Fatalf("keys did not cover both servers")
	}
}

func TestGarbageResponses(t *testing.T) {
	getHit := func(op binprot.Opcode) []byte {
		return response(op, 0, 0, []byte{0, 0, 0, 1}, nil, []byte("v"))
	}
	tests := []struct {
		name  string
		reply []byte
		want  error
	}{
		{"text protocol", []byte("ERROR\r\nERROR\r\nERROR\r\nERROR\r\n"), ErrProtocol},
		{"request magic", append([]byte{binprot.MagicRequest}, getHit(binprot.OpGet)[1:]...), ErrProtocol},
		{"wrong opcode", getHit(binprot.OpSet), ErrProtocol},
		{"get without flags", response(binprot.OpGet, 0, 0, nil, nil, []byte("v")), ErrProtocol},
		{"absurd body length", func() []byte {
			b := getHit(binprot.OpGet)
			binary.BigEndian.PutUint32(b[8:], 0x7fffffff)
			return b
		}(), ErrProtocol},
		{"extras longer than body", func() []byte {
			b := getHit(binprot.OpGet)
			b[4] = 200
			return b
		}(), ErrProtocol},
		{"truncated then closed", getHit(binprot.OpGet)[:26], ErrConnection},
		{"closed without a reply", nil, ErrConnection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := fakeServer(t, func(c net.Conn) {
				if _, err := readRequest(c); err == nil {
					c.Write(tt.reply)
				}
				c.Close()
			})
			c := newClientFor(t, []string{addr}, Options{Protocol: "binary", IOTimeout: 2 * time.Second})
			if _, err := c.Get([]byte("k")); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if _, errs := c.GetMulti([][]byte{[]byte("k")}); !errors.Is(errs[0], tt.want) {
				t.Fatalf("GetMulti: got %v, want %v", errs[0], tt.want)
			}
		})
	}
}

func TestMultiRejectsForeignOpaque(t *testing.T) {
	// A GETKQ hit with an opaque the client never sent must not land on a
	// random entry.
	addr, _ := fakeServer(t, func(c net.Conn) {
		for {
			h, err := readRequest(c)
			if err != nil {
				return
			}
			if h.Opcode == binprot.OpNoop {
				c.Write(response(binprot.OpGetKQ, 0, 999, []byte{0, 0, 0, 0}, []byte("k"), []byte("v")))
				c.Write(response(binprot.OpNoop, 0, h.Opaque, nil, nil, nil))
			}
		}
	})
	c := newClientFor(t, []string{addr}, Options{Protocol: "binary"})
	items, errs := c.GetMulti([][]byte{[]byte("k"), []byte("j")})
	if !errors.Is(errs[0], ErrProtocol) || !errors.Is(errs[1], ErrProtocol) || items[0] != nil {
		t.Fatalf("got %v %v", items, errs)
	}
}

func TestStalePooledConnectionIsReplaced(t *testing.T) {
	// This server answers one request per connection and then hangs up,
	// as a restarted memcached leaves every pooled connection dead.
	hungUp := make(chan struct{}, 10)
	addr, accepted := fakeServer(t, func(c net.Conn) {
		h, err := readRequest(c)
		if err != nil {
			return
		}
		switch h.Opcode {
		case binprot.OpIncrement:
			c.Write(response(h.Opcode, 0, h.Opaque, nil, nil, []byte{0, 0, 0, 0, 0, 0, 0, 42}))
		default:
			c.Write(response(h.Opcode, binprot.StatusKeyNotFound, h.Opaque, nil, nil, []byte("Not found")))
		}
		c.Close()
		hungUp <- struct{}{}
	})
	c := newClientFor(t, []string{addr}, Options{Protocol: "binary"})
	waitHangUp := func() {
		<-hungUp
		time.Sleep(5 * time.Millisecond) // for the FIN to reach the client's socket
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Get([]byte("k")); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Get %d: %v", i, err)
		}
		waitHangUp()
	}
	// Incr is not retried (it could count twice), so the dead pooled
	// connection must be noticed before sending.
	for i := 0; i < 2; i++ {
		if v, err := c.Incr([]byte("k"), 1, 0, 0, true); err != nil || v != 42 {
			t.Fatalf("Incr %d: %d %v", i, v, err)
		}
		waitHangUp()
	}
	if n := accepted.Load(); n != 5 {
		t.Fatalf("%d connections for 5 requests", n)
	}
}

func TestClosedClient(t *testing.T) {
	c, _ := newTestClient(t)
	mustSet(t, c, "k", "v")
	c.Close()
	if _, err := c.Get([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, errs := c.GetMulti([][]byte{[]byte("k")}); !errors.Is(errs[0], ErrClosed) {
		t.Errorf("GetMulti after Close: %v", errs[0])
	}
	if errs := c.Noop(); !errors.Is(errs[0], ErrClosed) {
		t.Errorf("Noop after Close: %v", errs[0])
	}
}

type fixedSelector int

func (f fixedSelector) Pick([]byte) int { return int(f) }

func TestCustomSelector(t *testing.T) {
	a := mctest.Start(t, mctest.Options{})
	b := mctest.Start(t, mctest.Options{})
	c := newClientFor(t, []string{a.Addr, b.Addr}, Options{Selector: fixedSelector(1)})
	mustSet(t, c, "k", "v")
	onB := newClientFor(t, []string{b.Addr}, Options{})
	if _, err := onB.Get([]byte("k")); err != nil {
		t.Fatalf("key not on the selected server: %v", err)
	}
	out := newClientFor(t, []string{a.Addr}, Options{Selector: fixedSelector(-1)})
	if _, err := out.Get([]byte("k")); !errors.Is(err, ErrNoServers) {
		t.Fatalf("selector out of range: %v", err)
	}
	if _, errs := out.GetMulti([][]byte{[]byte("k")}); !errors.Is(errs[0], ErrNoServers) {
		t.Fatalf("GetMulti with selector out of range: %v", errs[0])
	}
}

func TestModula(t *testing.T) {
	tests := []struct {
		n    int
		key  string
		want int
	}{
		{0, "a", -1},
		{1, "anything", 0},
		// crc32("foo") = 0x8c736521 = 2356372769.
		{3, "foo", 2356372769 % 3},
		{7, "foo", 2356372769 % 7},
	}
	for _, tt := range tests {
		if got := (Modula{N: tt.n}).Pick([]byte(tt.key)); got != tt.want {
			t.Errorf("Modula{%d}.Pick(%q) = %d, want %d", tt.n, tt.key, got, tt.want)
		}
	}
}

package conn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/omcache/omcache/go/binprot"
	"github.com/omcache/omcache/go/internal/mctest"
)

var testOpts = Options{ConnectTimeout: 2 * time.Second, IOTimeout: 2 * time.Second}

// inBothReadModes runs f with reads blocking in recv(2) (the default) and
// with every read non-blocking plus poll(2).
func inBothReadModes(t *testing.T, f func(t *testing.T)) {
	for _, mode := range []bool{true, false} {
		name := "poll"
		if mode {
			name = "blocking-reads"
		}
		t.Run(name, func(t *testing.T) {
			defer func(old bool) { blockingRead = old }(blockingRead)
			blockingRead = mode
			f(t)
		})
	}
}

func dial(t testing.TB, addr string, opts Options) *Conn {
	t.Helper()
	c, err := Dial(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRoundTripsOverEveryTransport(t *testing.T) {
	tests := []struct {
		name string
		opts mctest.Options
		skip bool
	}{
		{"tcp4", mctest.Options{}, false},
		{"tcp6", mctest.Options{Listen: "::1"}, !mctest.HasIPv6Loopback()},
		{"unix", mctest.Options{Unix: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inBothReadModes(t, func(t *testing.T) {
				if tt.skip {
					t.Skip("no IPv6 loopback here")
				}
				srv := mctest.Start(t, tt.opts)
				c := dial(t, srv.Addr, testOpts)
				// A pipeline: SET, GETK, NOOP in one Send; three answers in order.
				buf := c.Buffer()
				buf = binprot.AppendStore(buf, binprot.OpSet, []byte("k"), []byte("value"), 9, 0, 0, 1)
				buf = binprot.AppendKeyOnly(buf, binprot.OpGetK, []byte("k"), 0, 2)
				buf = binprot.AppendKeyOnly(buf, binprot.OpNoop, nil, 0, 3)
				if err := c.Send(buf); err != nil {
					t.Fatal(err)
				}
				for _, want := range []binprot.Opcode{binprot.OpSet, binprot.OpGetK, binprot.OpNoop} {
					r, err := c.Recv()
					if err != nil || r.Opcode != want || r.Status != binprot.StatusOK {
						t.Fatalf("want %v: got %+v %v", want, r.Header, err)
					}
					if want == binprot.OpGetK && (string(r.Value) != "value" || string(r.Key) != "k") {
						t.Fatalf("GETK: %+v", r)
					}
				}
				if !c.Alive() {
					t.Fatal("idle healthy connection reported dead")
				}
			})
		})
	}
}

func TestLargeValueGrowsAndShrinksBuffer(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{Args: []string{"-I", "4m"}})
	c := dial(t, srv.Addr, Options{MaxBody: 4 << 20})
	value := bytes.Repeat([]byte("0123456789"), 300<<10)
	if err := c.Send(binprot.AppendStore(c.Buffer(), binprot.OpSet, []byte("big"), value, 0, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Recv(); err != nil || r.Status != binprot.StatusOK {
		t.Fatalf("set: %+v %v", r.Header, err)
	}
	if err := c.Send(binprot.AppendKeyOnly(c.Buffer(), binprot.OpGet, []byte("big"), 0, 0)); err != nil {
		t.Fatal(err)
	}
	r, err := c.Recv()
	if err != nil || !bytes.Equal(r.Value, value) {
		t.Fatalf("get: %v", err)
	}
	if cap(c.wbuf) > keepBufCap {
		t.Errorf("write buffer of %d bytes kept after a big request", cap(c.wbuf))
	}
	if err := c.Send(binprot.AppendKeyOnly(c.Buffer(), binprot.OpNoop, nil, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if cap(c.rbuf) > keepBufCap {
		t.Errorf("read buffer of %d bytes kept after a big response", cap(c.rbuf))
	}
	if _, err := c.Recv(); err != nil {
		t.Fatal(err)
	}
}

// fake accepts one connection and runs serve on it.
func fake(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		serve(c)
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

func TestSendReadsWhileWriting(t *testing.T) { inBothReadModes(t, testSendReadsWhileWriting) }

func testSendReadsWhileWriting(t *testing.T) {
	// The server answers 8 MiB before reading anything, like memcached
	// does once its output is blocked. A client that only writes until its
	// 8 MiB request is out would wait on the server forever.
	const n = 8 << 20 / binprot.HeaderLen
	noop := binprot.AppendKeyOnly(nil, binprot.OpNoop, nil, 0, 0)
	noop[0] = binprot.MagicResponse
	addr := fake(t, func(c net.Conn) {
		if _, err := c.Write(bytes.Repeat(noop, n)); err != nil {
			return
		}
		io.CopyN(io.Discard, c, n*binprot.HeaderLen)
	})
	c := dial(t, addr, Options{IOTimeout: 10 * time.Second})
	buf := c.Buffer()
	for i := 0; i < n; i++ {
		buf = binprot.AppendKeyOnly(buf, binprot.OpNoop, nil, 0, 0)
	}
	if err := c.Send(buf); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if r, err := c.Recv(); err != nil || r.Opcode != binprot.OpNoop {
			t.Fatalf("response %d: %v", i, err)
		}
	}
}

func TestFailuresCloseTheConnection(t *testing.T) {
	tests := []struct {
		name  string
		serve func(net.Conn)
		want  error
	}{
		{"timeout", func(c net.Conn) { io.Copy(io.Discard, c) }, ErrTimeout},
		{"eof", func(c net.Conn) { c.Read(make([]byte, 24)) }, io.ErrUnexpectedEOF},
		{"dribble", func(c net.Conn) {
			// A byte of a response every 20 ms: each read gets something,
			// but the whole response never comes, and blocking reads must
			// not stretch the exchange past its timeout.
			c.Read(make([]byte, 24))
			noop := binprot.AppendKeyOnly(nil, binprot.OpNoop, nil, 0, 0)
			noop[0] = binprot.MagicResponse
			binary.BigEndian.PutUint32(noop[8:], 1000)
			for _, b := range noop {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			io.Copy(io.Discard, c)
		}, ErrTimeout},
		{"garbage", func(c net.Conn) {
			c.Read(make([]byte, 24))
			c.Write([]byte("SERVER_ERROR out of memory\r\n"))
			io.Copy(io.Discard, c) // until the client hangs up
		}, binprot.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inBothReadModes(t, func(t *testing.T) {
				c := dial(t, fake(t, tt.serve), Options{IOTimeout: 300 * time.Millisecond})
				if err := c.Send(binprot.AppendKeyOnly(c.Buffer(), binprot.OpNoop, nil, 0, 0)); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				_, err := c.Recv()
				if !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				if d := time.Since(start); d > 300*time.Millisecond+150*time.Millisecond {
					t.Errorf("failure took %v with an I/O timeout of 300 ms", d)
				}
				if c.Err() == nil || c.fd != -1 {
					t.Fatal("connection still open after a failure")
				}
				if err2 := c.Send(c.Buffer()); !errors.Is(err2, tt.want) {
					t.Errorf("Send after failure: %v", err2)
				}
			})
		})
	}
}

func TestAliveDetectsHangUp(t *testing.T) {
	addr := fake(t, func(c net.Conn) {})
	c := dial(t, addr, testOpts)
	deadline := time.Now().Add(2 * time.Second)
	for c.Alive() {
		if time.Now().After(deadline) {
			t.Fatal("closed connection still alive")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDialErrors(t *testing.T) {
	refused := mctest.RefusedAddr(t)
	tests := []struct {
		addr string
		want error
	}{
		{refused, syscall.ECONNREFUSED},
		{"/nonexistent/omcache.sock", syscall.ENOENT},
		{"127.0.0.1:0", nil},
		{"127.0.0.1", nil},
		{"[::1", nil},
		{"/" + string(bytes.Repeat([]byte("x"), 200)), nil},
	}
	for _, tt := range tests {
		c, err := Dial(tt.addr, testOpts)
		if err == nil {
			c.Close()
			t.Errorf("Dial(%q) succeeded", tt.addr)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("Dial(%q): %v, want %v", tt.addr, err, tt.want)
		}
	}
}

func TestDialHostName(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{})
	_, port, _ := net.SplitHostPort(srv.Addr)
	c := dial(t, "localhost:"+port, testOpts)
	if err := c.Send(binprot.AppendKeyOnly(c.Buffer(), binprot.OpVersion, nil, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Recv(); err != nil || len(r.Value) == 0 {
		t.Fatalf("version: %v", err)
	}
}

// BenchmarkGetRoundTrip is one GET of a 100-byte value on loopback against
// a real memcached, at the connection level, in both read modes.
func BenchmarkGetRoundTrip(b *testing.B) {
	srv := mctest.Start(b, mctest.Options{})
	for _, mode := range []bool{true, false} {
		name := "poll"
		if mode {
			name = "blocking-reads"
		}
		b.Run(name, func(b *testing.B) {
			defer func(old bool) { blockingRead = old }(blockingRead)
			blockingRead = mode
			benchGetRoundTrip(b, srv.Addr)
		})
	}
}

func benchGetRoundTrip(b *testing.B, addr string) {
	c := dial(b, addr, testOpts)
	if err := c.Send(binprot.AppendStore(c.Buffer(), binprot.OpSet, []byte("k"), make([]byte, 100), 0, 0, 0, 0)); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Recv(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Send(binprot.AppendKeyOnly(c.Buffer(), binprot.OpGet, []byte("k"), 0, 0)); err != nil {
			b.Fatal(err)
		}
		if r, err := c.Recv(); err != nil || len(r.Value) != 100 {
			b.Fatal(err)
		}
	}
}

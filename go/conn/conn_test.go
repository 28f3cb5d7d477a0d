package conn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/proto"
	"github.com/omcache/omcache/go/proto/binprot"
	"github.com/omcache/omcache/go/proto/text"
)

var testOpts = Options{ConnectTimeout: 2 * time.Second, IOTimeout: 2 * time.Second, Codec: binprot.Codec{}}

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
	if opts.Codec == nil {
		opts.Codec = binprot.Codec{}
	}
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
			if tt.skip {
				t.Skip("no IPv6 loopback here")
			}
			srv := mctest.Start(t, tt.opts)
			eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
				inBothReadModes(t, func(t *testing.T) {
					c := dial(t, srv.Addr, withCodec(testOpts, cd))
					// A pipeline: set, get, noop in one Send; their
					// answers in order.
					seq := c.NextSeqs(3)
					buf := c.Buffer()
					buf = appendReq(t, c, buf, proto.Request{Op: proto.OpSet, Key: []byte("k"), Flags: 9, Seq: seq}, []byte("value"))
					buf = appendReq(t, c, buf, proto.Request{Op: proto.OpGet, Key: []byte("k"), WithKey: true, Seq: seq + 1}, nil)
					buf = appendNoop(t, c, buf, seq+2)
					if err := c.Send(buf); err != nil {
						t.Fatal(err)
					}
					if r := recvOK(t, c); r.Kind != proto.KindStatus || r.Status != proto.StatusOK || r.HasSeq && r.Seq != seq {
						t.Fatalf("set: %+v", r)
					}
					r := recvOK(t, c)
					if r.Kind != proto.KindValue || string(r.Value) != "value" || string(r.Key) != "k" || r.Flags != 9 || r.CAS == 0 ||
						r.HasSeq && r.Seq != seq+1 {
						t.Fatalf("get: %+v", r)
					}
					if r.More {
						if end := recvOK(t, c); end.Kind != proto.KindEnd {
							t.Fatalf("after the text VALUE: %+v", end)
						}
					}
					if r := recvOK(t, c); !isNoopReply(c, r) || r.HasSeq && cd.Name() == "binary" && r.Seq != seq+2 {
						t.Fatalf("noop: %+v", r)
					}
					if c.Pending() {
						t.Fatal("bytes left after the last answer")
					}
					if !c.Alive() {
						t.Fatal("idle healthy connection reported dead")
					}
				})
			})
		})
	}
}

func TestDialNeedsACodec(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{})
	if c, err := Dial(srv.Addr, Options{}); err == nil {
		c.Close()
		t.Fatal("Dial without a codec succeeded")
	}
}

func TestNextSeqNeverRepeatsRecently(t *testing.T) {
	var c Conn
	a := c.NextSeq()
	first := c.NextSeqs(10)
	b := c.NextSeq()
	if first != a+1 || b != first+10 {
		t.Fatalf("NextSeq %d, NextSeqs(10) %d, then NextSeq %d", a, first, b)
	}
}

func TestLargeValueGrowsAndShrinksBuffer(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{Args: []string{"-I", "4m"}})
	eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
		c := dial(t, srv.Addr, Options{MaxValue: 4 << 20, Codec: cd})
		value := bytes.Repeat([]byte("0123456789"), 300<<10)
		if err := c.Send(appendReq(t, c, c.Buffer(), proto.Request{Op: proto.OpSet, Key: []byte("big"), Seq: c.NextSeq()}, value)); err != nil {
			t.Fatal(err)
		}
		if r := recvOK(t, c); r.Kind != proto.KindStatus || r.Status != proto.StatusOK {
			t.Fatalf("set: %+v", r)
		}
		if _, v := getValue(t, c, "big"); !bytes.Equal(v, value) {
			t.Fatalf("get: %d bytes, differ", len(v))
		}
		if cap(c.wbuf) > keepBufCap {
			t.Errorf("write buffer of %d bytes kept after a big request", cap(c.wbuf))
		}
		if err := c.Send(appendNoop(t, c, c.Buffer(), c.NextSeq())); err != nil {
			t.Fatal(err)
		}
		if cap(c.rbuf) > keepBufCap {
			t.Errorf("read buffer of %d bytes kept after a big response", cap(c.rbuf))
		}
		if r := recvOK(t, c); !isNoopReply(c, r) {
			t.Fatalf("noop: %+v", r)
		}
	})
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

// noopWire is, per protocol, a request that ends a batch and its answer.
func noopWire(cd proto.Codec) (req, reply []byte) {
	switch cd.Name() {
	case "meta":
		return []byte("mn\r\n"), []byte("MN\r\n")
	case "text":
		return []byte("version\r\n"), []byte("VERSION 1.6.18\r\n")
	}
	req = binprot.AppendKeyOnly(nil, binprot.OpNoop, nil, 0, 0)
	reply = append([]byte(nil), req...)
	reply[0] = binprot.MagicResponse
	return req, reply
}

func TestSendReadsWhileWriting(t *testing.T) {
	eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
		inBothReadModes(t, func(t *testing.T) { testSendReadsWhileWriting(t, cd) })
	})
}

func testSendReadsWhileWriting(t *testing.T, cd proto.Codec) {
	// The server answers 8 MiB before reading anything, like memcached
	// does once its output is blocked. A client that only writes until its
	// 8 MiB request is out would wait on the server forever.
	req, reply := noopWire(cd)
	n := 8 << 20 / len(reply)
	addr := fake(t, func(c net.Conn) {
		if _, err := c.Write(bytes.Repeat(reply, n)); err != nil {
			return
		}
		io.CopyN(io.Discard, c, int64(n*len(req)))
	})
	c := dial(t, addr, Options{IOTimeout: 10 * time.Second, Codec: cd})
	buf := c.Buffer()
	for i := 0; i < n; i++ {
		buf = appendNoop(t, c, buf, 0)
	}
	if !bytes.Equal(buf[:len(req)], req) {
		t.Fatalf("noop request %q, want %q", buf[:len(req)], req)
	}
	if err := c.Send(buf); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if r, err := c.Recv(); err != nil || !isNoopReply(c, r) {
			t.Fatalf("response %d: %+v %v", i, r, err)
		}
	}
}

func TestFailuresCloseTheConnection(t *testing.T) {
	// garbage is, per protocol, bytes that cannot start a reply in it.
	garbage := map[string][]byte{
		"meta":   func() []byte { _, r := noopWire(binprot.Codec{}); return r }(),
		"text":   func() []byte { _, r := noopWire(binprot.Codec{}); return r }(),
		"binary": []byte("SERVER_ERROR out of memory\r\n"),
	}
	// partial is, per protocol, a reply that announces more than comes.
	partial := map[string][]byte{
		"meta":   []byte("VA 1000 O1\r\nxyz"),
		"text":   []byte("VALUE k 0 1000 1\r\nxyz"),
		"binary": getResponse(binprot.OpGet, 0, nil, make([]byte, 1000))[:binprot.HeaderLen+7],
	}
	eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
		tests := []struct {
			name  string
			serve func(net.Conn)
			want  error
		}{
			{"timeout", func(c net.Conn) { io.Copy(io.Discard, c) }, ErrTimeout},
			{"eof", func(c net.Conn) { c.Read(make([]byte, 24)) }, io.ErrUnexpectedEOF},
			{"eof mid-reply", func(c net.Conn) {
				c.Read(make([]byte, 24))
				c.Write(partial[cd.Name()])
			}, io.ErrUnexpectedEOF},
			{"dribble", func(c net.Conn) {
				// A byte of a reply every 20 ms: each read gets
				// something, but the whole reply never comes, and
				// blocking reads must not stretch the exchange past its
				// timeout.
				c.Read(make([]byte, 24))
				for _, b := range partial[cd.Name()] {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				io.Copy(io.Discard, c)
			}, ErrTimeout},
			{"garbage", func(c net.Conn) {
				c.Read(make([]byte, 24))
				c.Write(garbage[cd.Name()])
				io.Copy(io.Discard, c) // until the client hangs up
			}, proto.ErrWrongProtocol},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				inBothReadModes(t, func(t *testing.T) {
					c := dial(t, fake(t, tt.serve), Options{IOTimeout: 300 * time.Millisecond, Codec: cd})
					if err := c.Send(appendNoop(t, c, c.Buffer(), 0)); err != nil {
						t.Fatal(err)
					}
					start := time.Now()
					var err error
					for err == nil {
						_, err = c.Recv()
					}
					if !errors.Is(err, tt.want) {
						t.Fatalf("got %v, want %v", err, tt.want)
					}
					// Room for a loaded machine (seen: 512 ms with a load
					// average of 6 on 2 cores): the bound is what matters,
					// not its tightness.
					if d := time.Since(start); d > 300*time.Millisecond+700*time.Millisecond {
						t.Errorf("failure took %v with an I/O timeout of 300 ms", d)
					}
					if c.Err() == nil || c.fd != -1 || c.Pending() {
						t.Fatal("connection still open after a failure")
					}
					if err2 := c.Send(c.Buffer()); !errors.Is(err2, tt.want) {
						t.Errorf("Send after failure: %v", err2)
					}
					if _, err2 := c.Recv(); !errors.Is(err2, tt.want) {
						t.Errorf("Recv after failure: %v", err2)
					}
				})
			})
		}
	})
}

// Bytes nobody asked for stay visible through Pending, and a text
// connection's Alive sees them.
func TestPendingSeesUnsolicitedBytes(t *testing.T) {
	eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
		req, reply := noopWire(cd)
		addr := fake(t, func(c net.Conn) {
			io.ReadFull(c, make([]byte, len(req)))
			c.Write(append(append([]byte(nil), reply...), reply...))
			io.Copy(io.Discard, c)
		})
		c := dial(t, addr, Options{IOTimeout: 2 * time.Second, Codec: cd})
		if err := c.Send(appendNoop(t, c, c.Buffer(), 0)); err != nil {
			t.Fatal(err)
		}
		if r := recvOK(t, c); !isNoopReply(c, r) {
			t.Fatalf("noop: %+v", r)
		}
		// The second reply may still be on its way: Alive sees it in the
		// buffer or in the socket.
		deadline := time.Now().Add(2 * time.Second)
		for c.Alive() {
			if time.Now().After(deadline) {
				t.Fatal("a connection with an unsolicited reply reported alive")
			}
			time.Sleep(time.Millisecond)
		}
		if !c.Pending() {
			// Not buffered yet: it is in the socket.
			r, ok, err := c.TryRecv()
			if err != nil || !ok || !isNoopReply(c, r) {
				t.Fatalf("the unsolicited reply: %+v %v %v", r, ok, err)
			}
		}
	})
}

// Reusable trusts a connection used less than reuseWindow ago without a
// system call, and checks the socket after that: bytes that arrived while
// it sat idle longer make it unusable.
func TestReusableChecksAfterTheWindow(t *testing.T) {
	req, reply := noopWire(text.Codec{})
	stray := make(chan struct{})
	addr := fake(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, len(req)))
		c.Write(reply)
		<-stray
		c.Write(reply)
		io.Copy(io.Discard, c)
	})
	c := dial(t, addr, Options{IOTimeout: 2 * time.Second, Codec: text.Codec{}})
	if err := c.Send(appendNoop(t, c, c.Buffer(), 0)); err != nil {
		t.Fatal(err)
	}
	if r := recvOK(t, c); !isNoopReply(c, r) {
		t.Fatalf("noop: %+v", r)
	}
	time.Sleep(2 * reuseWindow)
	if !c.Reusable() {
		t.Fatal("an idle connection with nothing to read is not reusable")
	}
	close(stray)
	deadline := time.Now().Add(2 * time.Second)
	for c.Reusable() {
		if time.Now().After(deadline) {
			t.Fatal("a connection with an unsolicited reply stayed reusable")
		}
		time.Sleep(2 * reuseWindow)
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
		{"/" + strings.Repeat("x", 200), nil},
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
	eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
		c := dial(t, "localhost:"+port, withCodec(testOpts, cd))
		if err := c.Send(appendReq(t, c, c.Buffer(), proto.Request{Op: proto.OpVersion}, nil)); err != nil {
			t.Fatal(err)
		}
		if r := recvOK(t, c); r.Kind != proto.KindStatus || len(r.Value) == 0 {
			t.Fatalf("version: %+v", r)
		}
	})
}

// BenchmarkGetRoundTrip is one get of a 100-byte value on loopback against
// a real memcached, at the connection level, per protocol and in both read
// modes.
func BenchmarkGetRoundTrip(b *testing.B) {
	srv := mctest.Start(b, mctest.Options{})
	for _, cd := range allCodecs {
		for _, mode := range []bool{true, false} {
			name := "poll"
			if mode {
				name = "blocking-reads"
			}
			b.Run(cd.Name()+"/"+name, func(b *testing.B) {
				defer func(old bool) { blockingRead = old }(blockingRead)
				blockingRead = mode
				benchGetRoundTrip(b, srv.Addr, cd)
			})
		}
	}
}

func benchGetRoundTrip(b *testing.B, addr string, cd proto.Codec) {
	c := dial(b, addr, withCodec(testOpts, cd))
	if err := c.Send(appendReq(b, c, c.Buffer(), proto.Request{Op: proto.OpSet, Key: []byte("k")}, make([]byte, 100))); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Recv(); err != nil {
		b.Fatal(err)
	}
	req := proto.Request{Op: proto.OpGet, Key: []byte("k")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, err := c.AppendRequest(c.Buffer(), &req, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Send(buf); err != nil {
			b.Fatal(err)
		}
		r, err := c.Recv()
		if err != nil || len(r.Value) != 100 {
			b.Fatal(err)
		}
		if r.More {
			if _, err := c.Recv(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

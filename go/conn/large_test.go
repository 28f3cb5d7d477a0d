package conn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/proto"
	"github.com/omcache/omcache/go/proto/binprot"
	"github.com/omcache/omcache/go/proto/meta"
)

// pattern returns n bytes that differ from their neighbours, so a piece
// written twice, skipped or out of order is seen.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>8) ^ seed
	}
	return b
}

func TestLargeValuesGoOutFromTheCallersMemory(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{Args: []string{"-I", "4m"}})
	eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
		inBothReadModes(t, func(t *testing.T) {
			c := dial(t, srv.Addr, Options{IOTimeout: 5 * time.Second, MaxValue: 4 << 20, Codec: cd})
			// Three values in one pipeline: two large ones around a small
			// one, so the request is head, value, head, copied value,
			// head, value, noop. 3 MiB is more than the socket takes at
			// once: the pieces are resumed after partial writes.
			values := [][]byte{pattern(2<<20, 1), pattern(100, 2), pattern(LargeValue, 3)}
			quiet := cd.Pipelined()
			seq := c.NextSeqs(len(values) + 1)
			buf := c.Buffer()
			for i, v := range values {
				buf = appendReq(t, c, buf, proto.Request{Op: proto.OpSet, Key: []byte{'k', byte('0' + i)}, Flags: uint32(i),
					Quiet: quiet, Seq: seq + uint32(i)}, v)
			}
			buf = appendNoop(t, c, buf, seq+uint32(len(values)))
			if len(buf) > 1024 {
				t.Fatalf("large values were copied into the request buffer (%d bytes)", len(buf))
			}
			if err := c.Send(buf); err != nil {
				t.Fatal(err)
			}
			if !quiet {
				for i := range values {
					if r := recvOK(t, c); r.Kind != proto.KindStatus || r.Status != proto.StatusOK {
						t.Fatalf("set %d: %+v", i, r)
					}
				}
			}
			if r := recvOK(t, c); !isNoopReply(c, r) {
				t.Fatalf("after the sets: %+v", r)
			}
			if c.iov != nil && len(c.iov) != 0 || len(c.ext) != 0 {
				t.Errorf("the connection still references the values: %d iovecs, %d extents", len(c.iov), len(c.ext))
			}
			for i, v := range values {
				if err := c.Send(appendReq(t, c, c.Buffer(), proto.Request{Op: proto.OpGet, Key: []byte{'k', byte('0' + i)}, Seq: c.NextSeq()}, nil)); err != nil {
					t.Fatal(err)
				}
				r := recvOK(t, c)
				if r.Kind != proto.KindValue || r.Flags != uint32(i) || !bytes.Equal(r.Value, v) {
					t.Fatalf("value %d: kind %d, flags %d, %d bytes, differs from what was set", i, r.Kind, r.Flags, len(r.Value))
				}
				own := c.OwnValue(r.Value)
				if !bytes.Equal(own, v) {
					t.Fatalf("OwnValue %d differs", i)
				}
				// A large value was read into its own buffer and is
				// handed over as it is; a small one aliases the read
				// buffer and must be copied.
				if same := &own[0] == &r.Value[0]; same != (len(v) >= LargeValue) {
					t.Errorf("value of %d bytes: OwnValue returned the received slice: %v", len(v), same)
				}
				if r.More {
					if end := recvOK(t, c); end.Kind != proto.KindEnd {
						t.Fatalf("END: %+v", end)
					}
				}
			}
			if cap(c.rbuf) >= LargeValue*2 || cap(c.wbuf) >= LargeValue {
				t.Errorf("buffers grew for large values: read %d, write %d bytes", cap(c.rbuf), cap(c.wbuf))
			}
		})
	})
}

func TestOwnValueCopiesOnlyOnce(t *testing.T) {
	var c Conn
	small := []byte("abc")
	if got := c.OwnValue(small); &got[0] == &small[0] || string(got) != "abc" {
		t.Fatal("a value the connection does not own was not copied")
	}
	if got := c.OwnValue(nil); got == nil || len(got) != 0 {
		t.Fatalf("empty value: %v", got)
	}
	big := make([]byte, LargeValue)
	c.owned = big
	if got := c.OwnValue(big); &got[0] != &big[0] {
		t.Fatal("owned value copied")
	}
	if got := c.OwnValue(big); &got[0] == &big[0] {
		t.Fatal("owned value handed over twice")
	}
}

func TestMoreThanIovMaxPieces(t *testing.T) {
	eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
		// 600 large values need 1200 iovecs, more than one sendmsg takes.
		const n = 600
		values := make([][]byte, n)
		var want []byte
		for i := range values {
			values[i] = pattern(LargeValue, byte(i))
			req := proto.Request{Op: proto.OpSet, Key: []byte("k"), Seq: uint32(i), ValueLen: LargeValue}
			var err error
			if want, err = cd.AppendRequest(want, &req); err != nil {
				t.Fatal(err)
			}
			want = cd.AppendValueEnd(append(want, values[i]...))
		}
		got := make(chan []byte, 1)
		addr := fake(t, func(c net.Conn) {
			b, _ := io.ReadAll(io.LimitReader(c, int64(len(want))))
			got <- b
		})
		cn := dial(t, addr, Options{IOTimeout: 10 * time.Second, Codec: cd})
		buf := cn.Buffer()
		for i, v := range values {
			buf = appendReq(t, cn, buf, proto.Request{Op: proto.OpSet, Key: []byte("k"), Seq: uint32(i)}, v)
		}
		if err := cn.Send(buf); err != nil {
			t.Fatal(err)
		}
		select {
		case b := <-got:
			if !bytes.Equal(b, want) {
				t.Fatalf("server received %d bytes that differ from the %d of the request", len(b), len(want))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("server did not receive the request")
		}
	})
}

// getResponse is a GET response packet with flags 5 and value v.
func getResponse(op binprot.Opcode, opaque uint32, key, v []byte) []byte {
	b := make([]byte, binprot.HeaderLen, binprot.HeaderLen+4+len(key)+len(v))
	b[0] = binprot.MagicResponse
	b[1] = byte(op)
	binary.BigEndian.PutUint16(b[2:], uint16(len(key)))
	b[4] = 4
	binary.BigEndian.PutUint32(b[8:], uint32(4+len(key)+len(v)))
	binary.BigEndian.PutUint32(b[12:], opaque)
	b = append(b, 0, 0, 0, 5)
	b = append(b, key...)
	return append(b, v...)
}

// hitWire is, per protocol, the answer to a get of key (with flags 5 and
// sequence seq where the protocol echoes one) followed by what ends it.
func hitWire(cd proto.Codec, seq uint32, key, v []byte) []byte {
	switch cd.Name() {
	case "meta":
		return append(fmt.Appendf(nil, "VA %d f5 k%s O%d\r\n", len(v), key, seq), append(v, "\r\n"...)...)
	case "text":
		return append(fmt.Appendf(nil, "VALUE %s 5 %d 0\r\n", key, len(v)), append(v, "\r\nEND\r\n"...)...)
	}
	return getResponse(binprot.OpGetK, seq, key, v)
}

// dribble writes b in pieces of size n with pauses, so the client sees a
// response arrive over many reads.
func dribble(c net.Conn, b []byte, n int) {
	for len(b) > 0 {
		k := min(n, len(b))
		if _, err := c.Write(b[:k]); err != nil {
			return
		}
		b = b[k:]
		time.Sleep(time.Millisecond)
	}
}

// recvHit reads the answer hitWire wrote: the value as the caller's memory.
func recvHit(t *testing.T, c *Conn) (proto.Reply, []byte) {
	t.Helper()
	r := recvOK(t, c)
	if r.Kind != proto.KindValue {
		t.Fatalf("not a value: %+v", r)
	}
	v := c.OwnValue(r.Value)
	r.Key = append([]byte(nil), r.Key...)
	if r.More {
		if end := recvOK(t, c); end.Kind != proto.KindEnd {
			t.Fatalf("END: %+v", end)
		}
	}
	return r, v
}

func TestLargeResponseArrivingInPieces(t *testing.T) {
	big := pattern(LargeValue*3+17, 9)
	eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
		stream := append(hitWire(cd, 1, []byte("big"), big), hitWire(cd, 2, []byte("small"), []byte("tail"))...)
		for _, piece := range []int{3000, LargeValue + 5} {
			inBothReadModes(t, func(t *testing.T) {
				addr := fake(t, func(c net.Conn) {
					c.Read(make([]byte, 64))
					// The head and part of the key first: the client must
					// wait for the whole head before reading apart.
					dribble(c, stream[:binprot.HeaderLen+5], 7)
					dribble(c, stream[binprot.HeaderLen+5:], piece)
				})
				c := dial(t, addr, Options{IOTimeout: 5 * time.Second, Codec: cd})
				if err := c.Send(appendNoop(t, c, c.Buffer(), 0)); err != nil {
					t.Fatal(err)
				}
				r, v := recvHit(t, c)
				if string(r.Key) != "big" || !bytes.Equal(v, big) || r.Flags != 5 || cd.Pipelined() && (!r.HasSeq || r.Seq != 1) {
					t.Fatalf("pieces of %d: got key %q, %d bytes, flags %d, seq %d", piece, r.Key, len(v), r.Flags, r.Seq)
				}
				if &v[0] != &r.Value[0] {
					t.Error("a large value was copied")
				}
				r, v = recvHit(t, c)
				if string(r.Key) != "small" || string(v) != "tail" {
					t.Fatalf("after the large response: %q %q", r.Key, v)
				}
				if c.Pending() {
					t.Fatal("bytes left")
				}
			})
		}
	})
}

// A large value whose trailer is not CRLF is an error, in the protocols
// that end values with one.
func TestLargeValueWithoutCRLF(t *testing.T) {
	big := pattern(LargeValue*2, 4)
	for _, cd := range allCodecs[:2] {
		t.Run(cd.Name(), func(t *testing.T) {
			stream := hitWire(cd, 1, []byte("big"), big)
			at := bytes.Index(stream, big) + len(big)
			stream[at] = 'x'
			addr := fake(t, func(c net.Conn) {
				c.Read(make([]byte, 64))
				c.Write(stream)
				io.Copy(io.Discard, c)
			})
			c := dial(t, addr, Options{IOTimeout: 2 * time.Second, Codec: cd})
			if err := c.Send(appendNoop(t, c, c.Buffer(), 0)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Recv(); !errors.Is(err, proto.ErrMalformed) || c.Err() == nil {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// recvAll drives conns with Start/TryRecv/PollSet until each has returned
// the reply that ends a batch or failed; it returns the replies (values
// and keys copied) and errors per connection.
func recvAll(t *testing.T, conns []*Conn, reqs [][]byte) ([][]proto.Reply, []error) {
	t.Helper()
	out := make([][]proto.Reply, len(conns))
	errs := make([]error, len(conns))
	active := make([]*Conn, len(conns))
	for i, c := range conns {
		if errs[i] = c.Start(reqs[i]); errs[i] == nil {
			active[i] = c
		}
	}
	var ps PollSet
	for left := len(conns); ; {
		left = 0
		var deadline time.Time
		for _, c := range active {
			if c != nil {
				left++
				if deadline.IsZero() || c.Deadline().Before(deadline) {
					deadline = c.Deadline()
				}
			}
		}
		if left == 0 {
			return out, errs
		}
		if _, err := ps.Wait(active, deadline); err != nil {
			t.Fatal(err)
		}
		for i, c := range active {
			if c == nil {
				continue
			}
			if !ps.Readable(i) && !ps.Writable(i) {
				if !time.Now().Before(c.Deadline()) {
					errs[i], active[i] = c.Expire(), nil
				}
				continue
			}
			if c.Writing() && ps.Writable(i) {
				if errs[i] = c.Flush(); errs[i] != nil {
					active[i] = nil
					continue
				}
			}
			for ps.Readable(i) {
				r, ok, err := c.TryRecv()
				if err != nil {
					errs[i], active[i] = err, nil
					break
				}
				if !ok {
					break
				}
				r.Value = c.OwnValue(r.Value)
				r.Key = append([]byte(nil), r.Key...)
				out[i] = append(out[i], r)
				if r.Kind == proto.KindEnd {
					active[i] = nil
					break
				}
			}
		}
	}
}

func TestDrivingSeveralConnectionsFromOneThread(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{Args: []string{"-I", "2m"}})
	eachCodec(t, pipelinedCodecs, func(t *testing.T, cd proto.Codec) {
		silent := fake(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		big := pattern(1<<20, 4)
		_, end := noopWire(cd)
		dribbled := append(hitWire(cd, 7, []byte("d"), big), end...)
		slow := fake(t, func(c net.Conn) {
			c.Read(make([]byte, 64))
			dribble(c, dribbled, 100<<10)
		})
		opts := Options{IOTimeout: 3 * time.Second, MaxValue: 2<<20 + 100, Codec: cd}
		real1, real2 := dial(t, srv.Addr, opts), dial(t, srv.Addr, opts)
		quiet := dial(t, silent, Options{IOTimeout: 300 * time.Millisecond, Codec: cd})
		dr := dial(t, slow, opts)

		// real1 stores a large value and a small one, real2 reads them
		// back afterwards; the silent server must time out without
		// holding the others up, the dribbling one delivers a large value
		// over many polls.
		set := real1.Buffer()
		set = appendReq(t, real1, set, proto.Request{Op: proto.OpSet, Key: []byte("big"), Flags: 1, Quiet: true, Seq: 1}, big)
		set = appendReq(t, real1, set, proto.Request{Op: proto.OpSet, Key: []byte("small"), Flags: 2, Quiet: true, Seq: 2}, []byte("v"))
		set = appendNoop(t, real1, set, 3)
		noop := appendNoop(t, quiet, nil, 0)
		start := time.Now()
		out, errs := recvAll(t, []*Conn{real1, quiet, dr}, [][]byte{set, noop, noop})
		if errs[0] != nil || len(out[0]) != 1 {
			t.Fatalf("sets: %v, %d responses", errs[0], len(out[0]))
		}
		if !errors.Is(errs[1], ErrTimeout) {
			t.Fatalf("silent server: %v", errs[1])
		}
		// Room for a loaded machine: the silent server's 300 ms must not
		// become the others' 3 s.
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v with a 300 ms timeout", d)
		}
		if errs[2] != nil || len(out[2]) != 2 || !bytes.Equal(out[2][0].Value, big) || string(out[2][0].Key) != "d" {
			t.Fatalf("dribbled: %v, %d responses", errs[2], len(out[2]))
		}

		get := real2.Buffer()
		for i, k := range []string{"big", "missing", "small"} {
			get = appendReq(t, real2, get, proto.Request{Op: proto.OpGet, Key: []byte(k), WithKey: true, Quiet: true, Seq: uint32(i + 1)}, nil)
		}
		get = appendNoop(t, real2, get, 4)
		out, errs = recvAll(t, []*Conn{real2}, [][]byte{get})
		if errs[0] != nil || len(out[0]) != 3 {
			t.Fatalf("gets: %v, %d responses", errs[0], len(out[0]))
		}
		if !bytes.Equal(out[0][0].Value, big) || out[0][0].Seq != 1 || string(out[0][1].Value) != "v" || out[0][1].Seq != 3 ||
			out[0][1].Flags != 2 || out[0][2].Kind != proto.KindEnd {
			t.Fatalf("gets returned %q/%d bytes, %q, %+v", out[0][0].Key, len(out[0][0].Value), out[0][1].Value, out[0][2])
		}
	})
}

// A large value whose reply names no key (a single get) after one that
// named its key (a multi-get) keeps no key: an empty copy of the earlier key
// would read as a key that does not match.
func TestLargeValueWithoutKeyAfterOneWithKey(t *testing.T) {
	for _, cd := range []proto.Codec{meta.Codec{}, binprot.Codec{}} {
		t.Run(cd.Name(), func(t *testing.T) {
			srv := mctest.Start(t, mctest.Options{})
			c := dial(t, srv.Addr, Options{IOTimeout: 5 * time.Second, MaxValue: 4 << 20, Codec: cd})
			big := make([]byte, LargeValue+100)
			roundTrip := func(req proto.Request, value []byte) proto.Reply {
				t.Helper()
				buf, err := c.AppendRequest(c.Buffer(), &req, value)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Send(buf); err != nil {
					t.Fatal(err)
				}
				r, err := c.Recv()
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			roundTrip(proto.Request{Op: proto.OpSet, Key: []byte("big"), Seq: 1}, big)
			if r := roundTrip(proto.Request{Op: proto.OpGet, Key: []byte("big"), WithKey: true, Seq: 2}, nil); string(r.Key) != "big" {
				t.Fatalf("key %q", r.Key)
			}
			if r := roundTrip(proto.Request{Op: proto.OpGet, Key: []byte("big"), Seq: 3}, nil); r.Key != nil || len(r.Value) != len(big) {
				t.Fatalf("a reply without a key came back with key %q (%d-byte value)", r.Key, len(r.Value))
			}
		})
	}
}

package conn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/omcache/omcache/go/binprot"
	"github.com/omcache/omcache/go/internal/mctest"
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
	inBothReadModes(t, func(t *testing.T) {
		srv := mctest.Start(t, mctest.Options{Args: []string{"-I", "4m"}})
		c := dial(t, srv.Addr, Options{IOTimeout: 5 * time.Second, MaxBody: 4 << 20})
		// Three values in one pipeline: two large ones around a small one,
		// so the request is header, value, header, copied value, header,
		// value, NOOP. 3 MiB is more than the socket takes at once: the
		// pieces are resumed after partial writes.
		values := [][]byte{pattern(2<<20, 1), pattern(100, 2), pattern(LargeValue, 3)}
		buf := c.Buffer()
		for i, v := range values {
			buf = binprot.AppendStoreHeader(buf, binprot.OpSetQ, []byte{'k', byte('0' + i)}, len(v), uint32(i), 0, 0, uint32(i))
			buf = c.AppendValue(buf, v)
		}
		buf = binprot.AppendKeyOnly(buf, binprot.OpNoop, nil, 0, 99)
		if len(buf) > 1024 {
			t.Fatalf("large values were copied into the request buffer (%d bytes)", len(buf))
		}
		if err := c.Send(buf); err != nil {
			t.Fatal(err)
		}
		if r, err := c.Recv(); err != nil || r.Opcode != binprot.OpNoop {
			t.Fatalf("after the quiet sets: %+v %v", r.Header, err)
		}
		if c.iov != nil && len(c.iov) != 0 || len(c.ext) != 0 {
			t.Errorf("the connection still references the values: %d iovecs, %d extents", len(c.iov), len(c.ext))
		}
		for i, v := range values {
			if err := c.Send(binprot.AppendKeyOnly(c.Buffer(), binprot.OpGet, []byte{'k', byte('0' + i)}, 0, 0)); err != nil {
				t.Fatal(err)
			}
			r, err := c.Recv()
			if err != nil || r.Status != binprot.StatusOK {
				t.Fatalf("get %d: %+v %v", i, r.Header, err)
			}
			if f, _ := r.Flags(); f != uint32(i) || !bytes.Equal(r.Value, v) {
				t.Fatalf("value %d: flags %d, %d bytes, differs from what was set", i, f, len(r.Value))
			}
			own := c.OwnValue(r.Value)
			if !bytes.Equal(own, v) {
				t.Fatalf("OwnValue %d differs", i)
			}
			// A large value was read into its own buffer and is handed
			// over as it is; a small one aliases the read buffer and
			// must be copied.
			if same := &own[0] == &r.Value[0]; same != (len(v) >= LargeValue) {
				t.Errorf("value of %d bytes: OwnValue returned the received slice: %v", len(v), same)
			}
		}
		if cap(c.rbuf) >= LargeValue*2 || cap(c.wbuf) >= LargeValue {
			t.Errorf("buffers grew for large values: read %d, write %d bytes", cap(c.rbuf), cap(c.wbuf))
		}
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
	// 600 large values need 1200 iovecs, more than one sendmsg takes.
	const n = 600
	values := make([][]byte, n)
	var want []byte
	for i := range values {
		values[i] = pattern(LargeValue, byte(i))
		want = binprot.AppendStore(want, binprot.OpSetQ, []byte("k"), values[i], 0, 0, 0, uint32(i))
	}
	got := make(chan []byte, 1)
	addr := fake(t, func(c net.Conn) {
		b, _ := io.ReadAll(io.LimitReader(c, int64(len(want))))
		got <- b
	})
	cn := dial(t, addr, Options{IOTimeout: 10 * time.Second})
	buf := cn.Buffer()
	for i, v := range values {
		buf = binprot.AppendStoreHeader(buf, binprot.OpSetQ, []byte("k"), len(v), 0, 0, 0, uint32(i))
		buf = cn.AppendValue(buf, v)
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

func TestLargeResponseArrivingInPieces(t *testing.T) {
	big := pattern(LargeValue*3+17, 9)
	stream := append(getResponse(binprot.OpGetK, 1, []byte("big"), big), getResponse(binprot.OpGetK, 2, []byte("small"), []byte("tail"))...)
	for _, piece := range []int{3000, LargeValue + 5} {
		inBothReadModes(t, func(t *testing.T) {
			addr := fake(t, func(c net.Conn) {
				c.Read(make([]byte, 64))
				// The header, extras and part of the key first: the
				// client must wait for the key before reading apart.
				dribble(c, stream[:binprot.HeaderLen+5], 7)
				dribble(c, stream[binprot.HeaderLen+5:], piece)
			})
			c := dial(t, addr, Options{IOTimeout: 5 * time.Second})
			if err := c.Send(binprot.AppendKeyOnly(c.Buffer(), binprot.OpNoop, nil, 0, 0)); err != nil {
				t.Fatal(err)
			}
			r, err := c.Recv()
			if err != nil || string(r.Key) != "big" || !bytes.Equal(r.Value, big) || r.Opaque != 1 {
				t.Fatalf("pieces of %d: got key %q, %d bytes, %v", piece, r.Key, len(r.Value), err)
			}
			if f, ok := r.Flags(); !ok || f != 5 {
				t.Fatalf("flags %d %v", f, ok)
			}
			r, err = c.Recv()
			if err != nil || string(r.Key) != "small" || string(r.Value) != "tail" {
				t.Fatalf("after the large response: %q %q %v", r.Key, r.Value, err)
			}
		})
	}
}

// recvAll drives conns with Start/TryRecv/PollSet until each has returned a
// NOOP response or failed; it returns the responses (values copied) and
// errors per connection.
func recvAll(t *testing.T, conns []*Conn, reqs [][]byte) ([][]binprot.Response, []error) {
	t.Helper()
	out := make([][]binprot.Response, len(conns))
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
				if r.Opcode == binprot.OpNoop {
					active[i] = nil
					break
				}
			}
		}
	}
}

func TestDrivingSeveralConnectionsFromOneThread(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{Args: []string{"-I", "2m"}})
	silent := fake(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	big := pattern(1<<20, 4)
	dribbled := append(getResponse(binprot.OpGetK, 7, []byte("d"), big), getResponse(binprot.OpNoop, 0, nil, nil)[:binprot.HeaderLen]...)
	dribbled[len(dribbled)-binprot.HeaderLen+4] = 0 // a NOOP has no extras
	binary.BigEndian.PutUint32(dribbled[len(dribbled)-binprot.HeaderLen+8:], 0)
	slow := fake(t, func(c net.Conn) {
		c.Read(make([]byte, 64))
		dribble(c, dribbled, 100<<10)
	})
	opts := Options{IOTimeout: 3 * time.Second, MaxBody: 2<<20 + 100}
	real1, real2 := dial(t, srv.Addr, opts), dial(t, srv.Addr, opts)
	quiet := dial(t, silent, Options{IOTimeout: 300 * time.Millisecond})
	dr := dial(t, slow, opts)

	// real1 stores a large value and a small one, real2 reads them back
	// afterwards; the silent server must time out without holding the
	// others up, the dribbling one delivers a large value over many polls.
	set := real1.Buffer()
	set = binprot.AppendStoreHeader(set, binprot.OpSetQ, []byte("big"), len(big), 1, 0, 0, 1)
	set = real1.AppendValue(set, big)
	set = binprot.AppendStore(set, binprot.OpSetQ, []byte("small"), []byte("v"), 2, 0, 0, 2)
	set = binprot.AppendKeyOnly(set, binprot.OpNoop, nil, 0, 3)
	noop := binprot.AppendKeyOnly(nil, binprot.OpNoop, nil, 0, 0)
	start := time.Now()
	out, errs := recvAll(t, []*Conn{real1, quiet, dr}, [][]byte{set, noop, noop})
	if errs[0] != nil || len(out[0]) != 1 {
		t.Fatalf("sets: %v, %d responses", errs[0], len(out[0]))
	}
	if !errors.Is(errs[1], ErrTimeout) {
		t.Fatalf("silent server: %v", errs[1])
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v with a 300 ms timeout", d)
	}
	if errs[2] != nil || len(out[2]) != 2 || !bytes.Equal(out[2][0].Value, big) || string(out[2][0].Key) != "d" {
		t.Fatalf("dribbled: %v, %d responses", errs[2], len(out[2]))
	}

	get := binprot.AppendKeyOnly(real2.Buffer(), binprot.OpGetKQ, []byte("big"), 0, 1)
	get = binprot.AppendKeyOnly(get, binprot.OpGetKQ, []byte("missing"), 0, 2)
	get = binprot.AppendKeyOnly(get, binprot.OpGetKQ, []byte("small"), 0, 3)
	get = binprot.AppendKeyOnly(get, binprot.OpNoop, nil, 0, 4)
	out, errs = recvAll(t, []*Conn{real2}, [][]byte{get})
	if errs[0] != nil || len(out[0]) != 3 {
		t.Fatalf("gets: %v, %d responses", errs[0], len(out[0]))
	}
	if !bytes.Equal(out[0][0].Value, big) || string(out[0][1].Value) != "v" || out[0][2].Opcode != binprot.OpNoop {
		t.Fatalf("gets returned %q/%d bytes, %q, %v", out[0][0].Key, len(out[0][0].Value), out[0][1].Value, out[0][2].Opcode)
	}
}

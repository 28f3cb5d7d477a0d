package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omcache/omcache/go/proto/binprot"
	"github.com/omcache/omcache/go/proto/codecs"
)

// fakeClient is a client of the scripted server at addr.
func fakeClient(t *testing.T, addr, protocol string) *Client {
	return newClientFor(t, []string{addr}, Options{Protocol: protocol, IOTimeout: 300 * time.Millisecond})
}

// checkGetValue checks that a Get of key either failed with want or
// returned key's own value: never another key's.
func checkGetValue(t *testing.T, c *Client, key string, want error) {
	t.Helper()
	it, err := c.Get([]byte(key))
	if err == nil {
		if !bytes.Equal(it.Value, valueFor([]byte(key))) {
			t.Fatalf("Get(%q) returned %q: a value for another request", key, it.Value)
		}
		if want != nil {
			t.Fatalf("Get(%q) succeeded, want %v", key, want)
		}
		return
	}
	if want == nil || !errors.Is(err, want) {
		t.Fatalf("Get(%q): %v, want %v", key, err, want)
	}
}

// checkMultiValues checks that GetMulti results are each key's own value
// or an error matching want (or, with misses, ErrCacheMiss for "miss"
// keys), never another key's value.
func checkMultiValues(t *testing.T, keys [][]byte, items []*Item, errs []error, want error) {
	t.Helper()
	for i, k := range keys {
		if items[i] != nil && !bytes.Equal(items[i].Value, valueFor(k)) {
			t.Fatalf("GetMulti %q returned %q: a value for another key", k, items[i].Value)
		}
		if errs[i] == nil {
			continue
		}
		if items[i] != nil {
			t.Fatalf("GetMulti %q: an item and an error %v", k, errs[i])
		}
		if !errors.Is(errs[i], want) && !(missing(k) && errors.Is(errs[i], ErrCacheMiss)) {
			t.Fatalf("GetMulti %q: %v, want %v", k, errs[i], want)
		}
	}
}

// checkRecovered checks that the client works again, on a new connection:
// the one that misbehaved was discarded.
func checkRecovered(t *testing.T, c *Client, accepted *atomic.Int32, before int32) {
	t.Helper()
	checkGetValue(t, c, "after", nil)
	if n := accepted.Load(); n <= before {
		t.Fatalf("%d connections: the one that misbehaved was reused", n)
	}
	items, errs := c.GetMulti([][]byte{[]byte("a1"), []byte("miss1"), []byte("a2")})
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrCacheMiss) {
		t.Fatalf("GetMulti after recovery: %v", errs)
	}
	checkMultiValues(t, [][]byte{[]byte("a1"), []byte("miss1"), []byte("a2")}, items, errs, nil)
}

// otherSeq is a sequence number that answers nothing the client asked.
func otherSeq(q wireReq) uint32 { return q.seq + 1000 }

// unsolicited is a complete hit for key "other" that no request asked for.
func unsolicited(protocol string, q wireReq) []byte {
	switch protocol {
	case "meta":
		return fmt.Appendf(nil, "VA 5 kother O%d\r\nwrong\r\n", otherSeq(q))
	case "text":
		return []byte("VALUE other 0 5 1\r\nwrong\r\nEND\r\n")
	}
	return binaryHit(otherSeq(q), []byte("other"), []byte("wrong"))
}

// wrongKeyHit answers q with a hit for key "other", with q's own sequence
// number.
func wrongKeyHit(protocol string, q wireReq) []byte {
	switch protocol {
	case "meta":
		return fmt.Appendf(nil, "VA 5 kother O%d\r\nwrong\r\n", q.seq)
	case "text":
		return []byte("VALUE other 0 5 1\r\nwrong\r\nEND\r\n")
	}
	return binaryHit(q.seq, []byte("other"), []byte("wrong"))
}

// isGet reports whether q is a get in any protocol.
func isGet(q wireReq) bool {
	switch q.cmd {
	case "mg", "get", "gets", "gat", "gats":
		return true
	}
	return q.binary && (q.op == binprot.OpGet || q.op == binprot.OpGetK || q.op == binprot.OpGetQ || q.op == binprot.OpGetKQ)
}

// isBatchEnd reports whether q ends a batch (meta mn, binary NOOP).
func isBatchEnd(q wireReq) bool { return q.cmd == "mn" || q.binary && q.op == binprot.OpNoop }

func TestFakeServerMisbehaviour(t *testing.T) {
	type scenario struct {
		name string
		// bad misbehaves for protocol; nil when the scenario does not
		// apply to it.
		bad  func(protocol string) misbehave
		want error
	}
	scenarios := []scenario{
		{"unsolicited reply before the answer", func(p string) misbehave {
			return func(w *wire, q wireReq) ([]byte, verdict) {
				if isGet(q) {
					return append(unsolicited(p, q), w.good(q)...), answer
				}
				return w.good(q), answer
			}
		}, ErrProtocol},
		{"wrong sequence number", func(p string) misbehave {
			if p == "text" {
				return nil // text replies carry none
			}
			return func(w *wire, q wireReq) ([]byte, verdict) {
				if isGet(q) {
					q.seq++
				}
				return w.good(q), answer
			}
		}, ErrProtocol},
		{"value for the wrong key", func(p string) misbehave {
			return func(w *wire, q wireReq) ([]byte, verdict) {
				if isGet(q) {
					return wrongKeyHit(p, q), answer
				}
				return w.good(q), answer
			}
		}, ErrProtocol},
		{"bytes left after the answer", func(p string) misbehave {
			return func(w *wire, q wireReq) ([]byte, verdict) {
				if isGet(q) && !q.quiet || isBatchEnd(q) {
					// The answer, then the same answer again.
					return append(w.good(q), w.good(q)...), answer
				}
				return w.good(q), answer
			}
		}, ErrProtocol},
		{"timeout in the middle of a reply", func(p string) misbehave {
			return func(w *wire, q wireReq) ([]byte, verdict) {
				if isGet(q) && !missing(q.keys[0]) {
					out := w.good(q)
					return out[:len(out)/2], stallUp
				}
				return w.good(q), answer
			}
		}, ErrTimeout},
		{"a reply in another protocol", func(p string) misbehave {
			return func(w *wire, q wireReq) ([]byte, verdict) {
				if p == "binary" {
					return []byte("ERROR\r\n"), answer
				}
				if len(q.keys) == 0 {
					return binResponse(binprot.OpNoop, 0, q.seq, nil, nil, nil), answer
				}
				return binResponse(binprot.OpGet, 0, q.seq, []byte{0, 0, 0, 0}, nil, valueFor(q.keys[0])), answer
			}
		}, ErrWrongProtocol},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for _, p := range codecs.Names() {
				bad := sc.bad(p)
				if bad == nil {
					continue
				}
				t.Run(p, func(t *testing.T) {
					t.Run("Get", func(t *testing.T) {
						addr, accepted := scriptServer(t, p, firstOnly(bad))
						c := fakeClient(t, addr, p)
						checkGetValue(t, c, "k", sc.want)
						checkRecovered(t, c, accepted, 1)
					})
					t.Run("GetMulti", func(t *testing.T) {
						addr, accepted := scriptServer(t, p, firstOnly(bad))
						c := fakeClient(t, addr, p)
						keys := [][]byte{[]byte("k1"), []byte("miss2"), []byte("k3")}
						items, errs := c.GetMulti(keys)
						checkMultiValues(t, keys, items, errs, sc.want)
						failed := 0
						for _, err := range errs {
							if err != nil && !errors.Is(err, ErrCacheMiss) {
								failed++
							}
						}
						if failed == 0 {
							t.Fatalf("GetMulti: no entry failed: %v", errs)
						}
						checkRecovered(t, c, accepted, 1)
					})
				})
			}
		})
	}
}

// A text multi-get answered with one more VALUE after its END: the value
// reaches nobody, and the connection is not used again.
func TestFakeTextExtraValueAfterEnd(t *testing.T) {
	addr, accepted := scriptServer(t, "text", firstOnly(func(w *wire, q wireReq) ([]byte, verdict) {
		out := w.good(q)
		if isGet(q) {
			out = append(out, "VALUE k2 0 5 1\r\nwrong\r\nEND\r\n"...)
		}
		return out, answer
	}))
	c := fakeClient(t, addr, "text")
	keys := [][]byte{[]byte("k1"), []byte("miss2")}
	items, errs := c.GetMulti(keys)
	checkMultiValues(t, keys, items, errs, ErrProtocol)
	if !errors.Is(errs[1], ErrProtocol) {
		t.Fatalf("the key without a VALUE before END: %v, want ErrProtocol", errs[1])
	}
	checkRecovered(t, c, accepted, 1)
}

// The meta protocol's SERVER_ERROR names no request: in a quiet batch of
// stores it must fail every entry without an answer, never report them
// stored. The binary and text protocols name the entry that failed.
func TestFakeServerErrorInQuietSetMulti(t *testing.T) {
	items := []*Item{{Key: []byte("s1"), Value: []byte("a")}, {Key: []byte("s2"), Value: []byte("b")}, {Key: []byte("s3"), Value: []byte("c")}}
	t.Run("meta", func(t *testing.T) {
		addr, accepted := scriptServer(t, "meta", firstOnly(func(w *wire, q wireReq) ([]byte, verdict) {
			if q.cmd == "ms" && string(q.keys[0]) == "s1" && q.quiet {
				// s1 stored (silently), s2 refused with an error
				// without O token, s3 stored: all the client can know is
				// that one of them failed.
				return nil, answer
			}
			if q.cmd == "ms" && string(q.keys[0]) == "s2" {
				return []byte("SERVER_ERROR out of memory storing object\r\n"), answer
			}
			return w.good(q), answer
		}))
		c := fakeClient(t, addr, "meta")
		for i, err := range c.SetMulti(items) {
			if !errors.Is(err, ErrServerError) {
				t.Errorf("entry %d: %v, want ErrServerError", i, err)
			}
		}
		// A status with the O token names its entry: only it fails.
		addr2, _ := scriptServer(t, "meta", func(int) misbehave {
			return func(w *wire, q wireReq) ([]byte, verdict) {
				if q.cmd == "ms" && string(q.keys[0]) == "s2" {
					return fmt.Appendf(nil, "NS O%d\r\n", q.seq), answer
				}
				return w.good(q), answer
			}
		})
		c2 := fakeClient(t, addr2, "meta")
		errs := c2.SetMulti(items)
		if errs[0] != nil || !errors.Is(errs[1], ErrNotStored) || errs[2] != nil {
			t.Errorf("NS for s2: %v", errs)
		}
		checkRecovered(t, c, accepted, 0)
	})
	t.Run("binary", func(t *testing.T) {
		addr, _ := scriptServer(t, "binary", func(int) misbehave {
			return func(w *wire, q wireReq) ([]byte, verdict) {
				if q.op == binprot.OpSetQ && len(q.keys) > 0 && string(q.keys[0]) == "s2" {
					return binResponse(binprot.OpSetQ, binprot.Status(0x82), q.seq, nil, nil, []byte("Out of memory")), answer
				}
				return w.good(q), answer
			}
		})
		c := fakeClient(t, addr, "binary")
		errs := c.SetMulti(items)
		if errs[0] != nil || !errors.Is(errs[1], ErrServerError) || errs[2] != nil {
			t.Errorf("binary SETQ failure for s2: %v", errs)
		}
	})
	t.Run("text", func(t *testing.T) {
		addr, _ := scriptServer(t, "text", func(int) misbehave {
			return func(w *wire, q wireReq) ([]byte, verdict) {
				if q.cmd == "set" && string(q.keys[0]) == "s2" {
					return []byte("SERVER_ERROR out of memory storing object\r\n"), answer
				}
				return w.good(q), answer
			}
		})
		c := fakeClient(t, addr, "text")
		errs := c.SetMulti(items)
		if errs[0] != nil || !errors.Is(errs[1], ErrServerError) || errs[2] != nil {
			t.Errorf("text SERVER_ERROR for s2: %v", errs)
		}
	})
}

// twemproxy speaks only the text protocol and closes a connection at the
// first meta or binary request without a word: the client must say the
// server does not speak its protocol, naming it.
func TestFakeProxyClosingOnForeignProtocol(t *testing.T) {
	proxy := func(int) misbehave {
		return func(w *wire, q wireReq) ([]byte, verdict) {
			if q.binary || strings.HasPrefix(q.cmd, "m") {
				return nil, hangUp
			}
			return w.good(q), answer
		}
	}
	for _, p := range []string{"meta", "binary"} {
		t.Run(p, func(t *testing.T) {
			addr, _ := scriptServer(t, p, proxy)
			c := fakeClient(t, addr, p)
			for i := 0; i < 2; i++ {
				_, err := c.Get([]byte("k"))
				if !errors.Is(err, ErrWrongProtocol) || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), addr) {
					t.Fatalf("Get %d: %v, want ErrWrongProtocol naming %s", i, err, addr)
				}
				if err := c.Set(&Item{Key: []byte("k"), Value: []byte("v")}); !errors.Is(err, ErrWrongProtocol) {
					t.Fatalf("Set %d: %v, want ErrWrongProtocol", i, err)
				}
				_, errs := c.GetMulti([][]byte{[]byte("k1"), []byte("k2")})
				for j, err := range errs {
					if !errors.Is(err, ErrWrongProtocol) || !strings.Contains(err.Error(), addr) {
						t.Fatalf("GetMulti %d, key %d: %v, want ErrWrongProtocol naming %s", i, j, err, addr)
					}
				}
			}
		})
	}
	t.Run("text", func(t *testing.T) {
		addr, _ := scriptServer(t, "text", proxy)
		c := fakeClient(t, addr, "text")
		checkGetValue(t, c, "k", nil)
		items, errs := c.GetMulti([][]byte{[]byte("k1"), []byte("k2")})
		if errs[0] != nil || errs[1] != nil || string(items[1].Value) != "value-of-k2" {
			t.Fatalf("text GetMulti through the proxy: %v", errs)
		}
	})
}

// memcached before 1.6 answers ERROR to every meta command (and to mn):
// the meta client must say the server does not speak the meta protocol,
// for single-key and multi-key calls alike, within its timeout.
func TestFakeOldMemcachedRefusesMeta(t *testing.T) {
	old := func(int) misbehave {
		return func(w *wire, q wireReq) ([]byte, verdict) {
			if strings.HasPrefix(q.cmd, "m") {
				return []byte("ERROR\r\n"), answer
			}
			return w.good(q), answer
		}
	}
	addr, _ := scriptServer(t, "meta", old)
	c := fakeClient(t, addr, "meta")
	if _, err := c.Get([]byte("k")); !errors.Is(err, ErrWrongProtocol) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Get: %v, want ErrWrongProtocol naming %s", err, addr)
	}
	if err := c.Set(&Item{Key: []byte("k"), Value: []byte("v")}); !errors.Is(err, ErrWrongProtocol) {
		t.Fatalf("Set: %v, want ErrWrongProtocol", err)
	}
	if _, err := c.Incr([]byte("k"), 1, 0, 0, true); !errors.Is(err, ErrWrongProtocol) {
		t.Fatalf("Incr: %v, want ErrWrongProtocol", err)
	}
	_, errs := c.GetMulti([][]byte{[]byte("k1"), []byte("k2")})
	for i, err := range errs {
		if !errors.Is(err, ErrWrongProtocol) {
			t.Errorf("GetMulti key %d: %v, want ErrWrongProtocol", i, err)
		}
	}
	for i, err := range c.SetMulti([]*Item{{Key: []byte("k1")}, {Key: []byte("k2")}}) {
		if !errors.Is(err, ErrWrongProtocol) {
			t.Errorf("SetMulti key %d: %v, want ErrWrongProtocol", i, err)
		}
	}
	// The text commands a meta client sends still work.
	if v, errs := c.Version(); errs[0] != nil || v[0] != "1.6.18" {
		t.Fatalf("Version: %q %v", v, errs)
	}
}

// A pooled connection the server closed while idle (a restart) is
// replaced, in every protocol; the request is not lost.
func TestFakeStalePooledConnection(t *testing.T) {
	for _, p := range codecs.Names() {
		t.Run(p, func(t *testing.T) {
			// Every connection answers one exchange (a request, or a
			// batch up to its end), then hangs up at the next request
			// without answering, as if it had closed while idle.
			addr, accepted := scriptServer(t, p, func(int) misbehave {
				served := false
				return func(w *wire, q wireReq) ([]byte, verdict) {
					if served {
						return nil, hangUp
					}
					if isBatchEnd(q) || !q.quiet {
						served = true
					}
					return w.good(q), answer
				}
			})
			c := fakeClient(t, addr, p)
			for i := 0; i < 3; i++ {
				checkGetValue(t, c, fmt.Sprintf("k%d", i), nil)
				items, errs := c.GetMulti([][]byte{[]byte("m1"), []byte("m2")})
				if errs[0] != nil || errs[1] != nil {
					t.Fatalf("round %d: GetMulti on a stale pooled connection: %v", i, errs)
				}
				checkMultiValues(t, [][]byte{[]byte("m1"), []byte("m2")}, items, errs, nil)
			}
			if n := accepted.Load(); n < 6 {
				t.Fatalf("%d connections for 6 calls each answered on its own connection", n)
			}
		})
	}
}

// An increment on a pooled connection whose server hangs up without an
// answer fails and is not sent again: the server may have applied it. The
// next one goes out on a new connection.
func TestIncrNotResentAfterHangUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var incrs, conns atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n := conns.Add(1)
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for served := 0; ; served++ {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					f := strings.Fields(line)
					if len(f) == 0 || f[0] != "ma" {
						return
					}
					incrs.Add(1)
					if n == 1 && served == 1 {
						return // the second increment of the first connection: hang up
					}
					var opaque string
					for _, a := range f[2:] {
						if strings.HasPrefix(a, "O") {
							opaque = " " + a
						}
					}
					fmt.Fprintf(c, "VA 1%s\r\n%d\r\n", opaque, incrs.Load())
				}
			}()
		}
	}()
	c := newClientFor(t, []string{l.Addr().String()}, Options{Protocol: "meta"})
	if v, err := c.Incr([]byte("n"), 1, 0, 0, false); err != nil || v != 1 {
		t.Fatalf("first Incr: %d %v", v, err)
	}
	if v, err := c.Incr([]byte("n"), 1, 0, 0, false); !errors.Is(err, ErrConnection) {
		t.Fatalf("Incr answered by a hang-up: %d %v, want ErrConnection", v, err)
	}
	if n := incrs.Load(); n != 2 {
		t.Fatalf("the server saw %d increments for 2 calls", n)
	}
	if v, err := c.Incr([]byte("n"), 1, 0, 0, false); err != nil || v != 3 {
		t.Fatalf("Incr after the hang-up: %d %v", v, err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

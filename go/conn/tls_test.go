package conn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/proto"
)

// testPKI is a CA and a server certificate for 127.0.0.1 and localhost,
// written as PEM files in a directory memcached (maybe running as nobody)
// can read.
type testPKI struct {
	dir, caFile, certFile, keyFile string
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newTestPKI(t *testing.T, notAfter time.Time) testPKI {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "omcache test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "memcached"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{dir: dir, caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server.key")}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", der)
	kder, _ := x509.MarshalECPrivateKey(key)
	writePEM(t, p.keyFile, "EC PRIVATE KEY", kder)
	return p
}

func startTLSMemcached(t *testing.T, p testPKI, extra ...string) *mctest.Server {
	args := append([]string{"-Z", "-o", "ssl_chain_cert=" + p.certFile + ",ssl_key=" + p.keyFile, "-I", "4m", "-m", "64"}, extra...)
	return mctest.Start(t, mctest.Options{Args: args})
}

func tlsOpts(t *testing.T, o TLSOptions) *TLSConfig {
	t.Helper()
	cfg, err := NewTLSConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTLSRoundTrips sets and gets small and large values and a pipelined
// batch over TLS in each protocol, in both read modes.
func TestTLSRoundTrips(t *testing.T) {
	p := newTestPKI(t, time.Now().Add(24*time.Hour))
	srv := startTLSMemcached(t, p)
	large := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	for _, blocking := range []bool{true, false} {
		old := blockingRead
		blockingRead = blocking
		eachCodec(t, allCodecs, func(t *testing.T, cd proto.Codec) {
			c, err := Dial(srv.Addr, Options{Codec: cd, MaxValue: 8 << 20, IOTimeout: 5 * time.Second, TLS: tlsOpts(t, TLSOptions{CAFile: p.caFile})})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !c.TLS() {
				t.Fatal("connection not encrypted")
			}
			for i, v := range [][]byte{[]byte("small"), large} {
				key := cd.Name() + string(rune('a'+i))
				if err := c.Send(appendReq(t, c, c.Buffer(), proto.Request{Op: proto.OpSet, Key: []byte(key), Seq: c.NextSeq()}, v)); err != nil {
					t.Fatal(err)
				}
				if r := recvOK(t, c); r.Status != proto.StatusOK {
					t.Fatalf("set: %+v", r)
				}
				if _, got := getValue(t, c, key); !bytes.Equal(got, v) {
					t.Fatalf("get %s: %d bytes back, want %d", key, len(got), len(v))
				}
			}
			if cd.Pipelined() {
				// A batch of 500 quiet gets and a noop: many records in
				// each direction.
				buf := c.Buffer()
				for i := 0; i < 500; i++ {
					buf = appendReq(t, c, buf, proto.Request{Op: proto.OpGet, Quiet: true, Key: []byte(cd.Name() + "a"), WithKey: true, Seq: c.NextSeq()}, nil)
				}
				buf = appendNoop(t, c, buf, c.NextSeq())
				if err := c.Send(buf); err != nil {
					t.Fatal(err)
				}
				hits := 0
				for {
					r := recvOK(t, c)
					if isNoopReply(c, r) {
						break
					}
					hits++
				}
				if hits != 500 || c.Pending() {
					t.Fatalf("%d hits of 500, pending %v", hits, c.Pending())
				}
			}
			if !c.Alive() {
				t.Fatalf("idle TLS connection not alive: %v", c.Err())
			}
		})
		blockingRead = old
	}
}

// TestTLSHandshakeFailures: an unknown CA, a wrong name, an expired
// certificate and a plaintext server are configuration errors at dial,
// within the connect timeout.
func TestTLSHandshakeFailures(t *testing.T) {
	p := newTestPKI(t, time.Now().Add(24*time.Hour))
	other := newTestPKI(t, time.Now().Add(24*time.Hour))
	expired := newTestPKI(t, time.Now().Add(-time.Hour))
	srv := startTLSMemcached(t, p)
	expSrv := startTLSMemcached(t, expired)
	plain := mctest.Start(t, mctest.Options{})
	cases := []struct {
		name, addr string
		o          TLSOptions
	}{
		{"unknown CA", srv.Addr, TLSOptions{CAFile: other.caFile}},
		{"wrong name", srv.Addr, TLSOptions{CAFile: p.caFile, ServerName: "cache.example.com"}},
		{"expired", expSrv.Addr, TLSOptions{CAFile: expired.caFile}},
		{"plaintext server", plain.Addr, TLSOptions{CAFile: p.caFile}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Dial(tc.addr, Options{Codec: allCodecs[0], ConnectTimeout: 2 * time.Second, TLS: tlsOpts(t, tc.o)})
			if !errors.Is(err, ErrTLSConfig) {
				t.Fatalf("got %v, want ErrTLSConfig", err)
			}
			// Room for a loaded machine; the bound is the connect timeout.
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	t.Run("no verify", func(t *testing.T) {
		c, err := Dial(srv.Addr, Options{Codec: allCodecs[0], TLS: tlsOpts(t, TLSOptions{NoVerify: true})})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

package memcachedtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ioTimeout bounds every test read and write.
const ioTimeout = 5 * time.Second

// startServer starts a server for one test and closes it at cleanup.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" && cfg.UnixPath == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// wire speaks the protocols byte by byte, with a deadline on everything.
type wire struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, network, addr string) *wire {
	t.Helper()
	c, err := net.DialTimeout(network, addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	return &wire{t: t, c: c, r: bufio.NewReader(c)}
}

func dialServer(t testing.TB, s *Server) *wire {
	t.Helper()
	return dial(t, "tcp", s.Addr())
}

func (w *wire) send(s string) {
	w.t.Helper()
	w.sendBytes([]byte(s))
}

func (w *wire) sendBytes(b []byte) {
	w.t.Helper()
	if _, err := w.c.Write(b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// line reads one response line without its CRLF.
func (w *wire) line() string {
	w.t.Helper()
	l, err := w.r.ReadString('\n')
	if err != nil {
		w.t.Fatalf("read line: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		w.t.Fatalf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads len(want) lines and compares them.
func (w *wire) expect(want ...string) {
	w.t.Helper()
	for i, wl := range want {
		if got := w.line(); got != wl {
			w.t.Fatalf("line %d: got %q, want %q", i, got, wl)
		}
	}
}

// do sends req and expects the given lines back.
func (w *wire) do(req string, want ...string) {
	w.t.Helper()
	w.send(req)
	w.expect(want...)
}

// expectClosed asserts the server closes the connection without sending
// anything more.
func (w *wire) expectClosed() {
	w.t.Helper()
	b, err := io.ReadAll(w.r)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		w.t.Fatalf("waiting for close: %v (read %q)", err, b)
	}
	if len(b) != 0 {
		w.t.Fatalf("got %q before close, want nothing", b)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// expectSilence asserts nothing arrives within d.
func (w *wire) expectSilence(d time.Duration) {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(d))
	defer w.c.SetDeadline(time.Now().Add(ioTimeout))
	b, err := w.r.ReadByte()
	if err == nil {
		w.t.Fatalf("got byte %q, want silence", b)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		w.t.Fatalf("want a timeout, got %v", err)
	}
}

// binReq is one binary request.
type binReq struct {
	opcode byte
	key    string
	extras []byte
	value  []byte
	opaque uint32
	cas    uint64
}

func (q binReq) bytes() []byte {
	var h [24]byte
	h[0] = 0x80
	h[1] = q.opcode
	binary.BigEndian.PutUint16(h[2:], uint16(len(q.key)))
	h[4] = byte(len(q.extras))
	binary.BigEndian.PutUint32(h[8:], uint32(len(q.extras)+len(q.key)+len(q.value)))
	binary.BigEndian.PutUint32(h[12:], q.opaque)
	binary.BigEndian.PutUint64(h[16:], q.cas)
	b := append(h[:], q.extras...)
	b = append(b, q.key...)
	return append(b, q.value...)
}

// binResp is one decoded binary response.
type binResp struct {
	magic, opcode byte
	status        uint16
	opaque        uint32
	cas           uint64
	extras        []byte
	key           string
	value         []byte
}

func (p binResp) String() string {
	return fmt.Sprintf("{op %#x status %#x opaque %d cas %d extras %x key %q value %q}",
		p.opcode, p.status, p.opaque, p.cas, p.extras, p.key, p.value)
}

func (w *wire) sendBin(reqs ...binReq) {
	w.t.Helper()
	var b []byte
	for _, q := range reqs {
		b = append(b, q.bytes()...)
	}
	w.sendBytes(b)
}

func (w *wire) readBin() binResp {
	w.t.Helper()
	p, err := readBinResp(w.r)
	if err != nil {
		w.t.Fatalf("read binary response: %v", err)
	}
	return p
}

func readBinResp(r io.Reader) (binResp, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return binResp{}, err
	}
	p := binResp{magic: h[0], opcode: h[1], status: binary.BigEndian.Uint16(h[6:]),
		opaque: binary.BigEndian.Uint32(h[12:]), cas: binary.BigEndian.Uint64(h[16:])}
	if p.magic != 0x81 {
		return p, fmt.Errorf("bad magic %#x", p.magic)
	}
	keyLen := int(binary.BigEndian.Uint16(h[2:]))
	extLen := int(h[4])
	body := make([]byte, binary.BigEndian.Uint32(h[8:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return p, err
	}
	if extLen+keyLen > len(body) {
		return p, fmt.Errorf("extras %d + key %d exceed body %d", extLen, keyLen, len(body))
	}
	p.extras = body[:extLen]
	p.key = string(body[extLen : extLen+keyLen])
	p.value = body[extLen+keyLen:]
	return p, nil
}

// binDo sends one request and reads one response, checking opcode and
// status.
func (w *wire) binDo(q binReq, status uint16) binResp {
	w.t.Helper()
	w.sendBin(q)
	p := w.readBin()
	if p.opcode != q.opcode || p.status != status || p.opaque != q.opaque {
		w.t.Fatalf("request op %#x: got %v, want status %#x", q.opcode, p, status)
	}
	return p
}

func setExtras(flags, exptime uint32) []byte {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:], flags)
	binary.BigEndian.PutUint32(b[4:], exptime)
	return b[:]
}

func deltaExtras(delta, initial uint64, exptime uint32) []byte {
	var b [20]byte
	binary.BigEndian.PutUint64(b[:], delta)
	binary.BigEndian.PutUint64(b[8:], initial)
	binary.BigEndian.PutUint32(b[16:], exptime)
	return b[:]
}

func u32(v uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return b[:]
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// requireTool finds an external program; without it a test fails when the
// CI environment variable is set and is skipped otherwise.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return path
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startMemcached runs the real memcached on a free loopback port for one
// test and kills it at cleanup.
func startMemcached(t testing.TB, args ...string) string {
	t.Helper()
	bin := requireTool(t, "memcached")
	port := freePort(t)
	argv := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}, args...)
	if os.Geteuid() == 0 {
		argv = append(argv, "-u", "nobody")
	}
	cmd := exec.Command(bin, argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start memcached: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(ioTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("memcached did not come up on %s: %v; stderr: %s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tempSocketPath returns a unix socket path in a fresh directory.
func tempSocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mct")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "mc.sock")
}

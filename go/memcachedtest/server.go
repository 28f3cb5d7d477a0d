package memcachedtest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults mirror memcached 1.6's -m 64, -I 1m, -c 1024 and -a 0700.
const (
	// DefaultMaxBytes is the memory limit when Config.MaxBytes is 0.
	DefaultMaxBytes = 64 << 20
	// DefaultItemSizeMax is the item size limit when Config.ItemSizeMax is 0.
	DefaultItemSizeMax = 1 << 20
	// DefaultMaxConns is the connection limit when Config.MaxConns is 0.
	DefaultMaxConns = 1024
	// DefaultVersion is what "version" reports when Config.Version is
	// empty; clients that parse it see memcached 1.6.18.
	DefaultVersion = "1.6.18-memcachedtest"
	// DefaultUnixPerm is the unix socket's mode when Config.UnixPerm is 0.
	DefaultUnixPerm = 0o700

	minItemSizeMax = 1024
)

// ErrServerClosed is returned by methods called after Close.
var ErrServerClosed = errors.New("embedded server: closed")

// Config describes one server. The zero value listens on a free loopback
// TCP port with memcached's default limits.
type Config struct {
	// Addr is the TCP address to listen on, e.g. "127.0.0.1:0" for a free
	// port. Empty means no TCP listener, unless UnixPath is empty too, in
	// which case "127.0.0.1:0" is used.
	Addr string
	// UnixPath, when set, also serves on a unix socket at this path (an
	// existing socket file there is replaced).
	UnixPath string
	// UnixPerm is the unix socket's file mode (memcached's -a); 0 means
	// DefaultUnixPerm.
	UnixPerm os.FileMode
	// MaxBytes is the memory limit for items (memcached's -m, in bytes);
	// 0 means DefaultMaxBytes. Items are charged memcached's per-item size.
	MaxBytes int64
	// ItemSizeMax is the largest item, header included (memcached's -I);
	// 0 means DefaultItemSizeMax.
	ItemSizeMax int
	// MaxConns caps simultaneous connections (memcached's -c); further
	// clients get "ERROR Too many open connections" and are closed.
	// 0 means DefaultMaxConns.
	MaxConns int
	// NoEvict makes a full cache refuse new items with an out-of-memory
	// error instead of evicting (memcached's -M).
	NoEvict bool
	// Version is what "version" reports; empty means DefaultVersion.
	Version string
	// Clock supplies the time; nil means the system clock. Use a
	// ManualClock (or Server.AdvanceClock) to test expiry without sleeping.
	Clock Clock
	// TLS, when set, makes the TCP listener speak TLS only (memcached -Z),
	// as a server for testing clients' TLS setups; the unix socket stays
	// plaintext.
	TLS *tls.Config
	// Users, when not empty, makes every connection authenticate first
	// (user name -> password): SASL PLAIN in the binary protocol, as
	// memcached -S; memcached's ASCII authentication in text and meta, as
	// memcached -Y.
	Users map[string]string
}

// Server is a running memcached-compatible server. Its methods are safe
// for concurrent use.
type Server struct {
	cfg     Config
	store   *store
	clock   Clock
	offset  atomic.Int64 // nanoseconds added to clock by AdvanceClock
	started int64        // unix second at Start
	pid     int

	mu       sync.Mutex
	tcp      net.Listener
	unix     *net.UnixListener
	tcpAddr  string // bound TCP address, kept to listen again after a refuse fault
	conns    map[*conn]struct{}
	closed   bool
	done     chan struct{}
	wg       sync.WaitGroup
	nextID   uint64
	refusing bool

	faultMu      sync.Mutex
	fault        Fault
	faultChanged chan struct{} // closed and replaced whenever the fault changes

	currConns     atomic.Int64
	totalConns    atomic.Int64
	rejectedConns atomic.Int64
	bytesRead     atomic.Int64
	bytesWritten  atomic.Int64
}

// Start listens on the configured addresses and serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" && cfg.UnixPath == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.ItemSizeMax == 0 {
		cfg.ItemSizeMax = DefaultItemSizeMax
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.UnixPerm == 0 {
		cfg.UnixPerm = DefaultUnixPerm
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	switch {
	case cfg.MaxBytes < 0:
		return nil, fmt.Errorf("embedded server: MaxBytes %d is negative", cfg.MaxBytes)
	case cfg.ItemSizeMax < minItemSizeMax:
		return nil, fmt.Errorf("embedded server: ItemSizeMax %d is below %d", cfg.ItemSizeMax, minItemSizeMax)
	case cfg.MaxConns < 0:
		return nil, fmt.Errorf("embedded server: MaxConns %d is negative", cfg.MaxConns)
	}
	s := &Server{
		cfg:          cfg,
		store:        newStore(cfg.MaxBytes, cfg.ItemSizeMax, !cfg.NoEvict),
		clock:        cfg.Clock,
		pid:          os.Getpid(),
		conns:        make(map[*conn]struct{}),
		done:         make(chan struct{}),
		faultChanged: make(chan struct{}),
	}
	s.started = s.now()
	if cfg.Addr != "" {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("embedded server: %w", err)
		}
		s.tcp = ln
		s.tcpAddr = ln.Addr().String()
	}
	if cfg.UnixPath != "" {
		ln, err := listenUnix(cfg.UnixPath, cfg.UnixPerm)
		if err != nil {
			if s.tcp != nil {
				s.tcp.Close()
			}
			return nil, err
		}
		s.unix = ln
	}
	s.mu.Lock()
	s.serveListenersLocked()
	s.mu.Unlock()
	return s, nil
}

// listenUnix replaces a stale socket file (memcached does the same) and
// applies the configured permissions.
func listenUnix(path string, perm os.FileMode) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	if err := os.Chmod(path, perm); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	return ln, nil
}

func (s *Server) serveListenersLocked() {
	if s.tcp != nil {
		s.wg.Add(1)
		go s.acceptLoop(s.tcp)
	}
	if s.unix != nil {
		s.wg.Add(1)
		go s.acceptLoop(s.unix)
	}
}

// Addr returns the TCP address the server listens on ("127.0.0.1:41234"),
// or "" when it serves only a unix socket.
func (s *Server) Addr() string {
	return s.tcpAddr
}

// Port returns the TCP port, or 0 when there is no TCP listener.
func (s *Server) Port() int {
	if s.tcpAddr == "" {
		return 0
	}
	_, p, err := net.SplitHostPort(s.tcpAddr)
	if err != nil {
		return 0
	}
	port, _ := strconv.Atoi(p)
	return port
}

// UnixPath returns the unix socket path, or "" when there is none.
func (s *Server) UnixPath() string {
	return s.cfg.UnixPath
}

// Close stops listening, closes every connection and waits for them to
// finish. It removes the unix socket file. Closing twice is harmless.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.closeListenersLocked(true)
	if s.refusing && s.cfg.UnixPath != "" {
		// A refuse fault left the socket file in place on purpose.
		os.Remove(s.cfg.UnixPath)
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// closeListenersLocked stops accepting. With unlink false a unix socket
// file stays behind, as a crashed memcached leaves it: connecting then
// fails with ECONNREFUSED rather than ENOENT.
func (s *Server) closeListenersLocked(unlink bool) {
	if s.tcp != nil {
		s.tcp.Close()
		s.tcp = nil
	}
	if s.unix != nil {
		s.unix.SetUnlinkOnClose(unlink)
		s.unix.Close()
		s.unix = nil
	}
}

// reopenListenersLocked listens again on the same addresses after a refuse
// fault is lifted.
func (s *Server) reopenListenersLocked() error {
	if s.tcpAddr != "" && s.tcp == nil {
		ln, err := net.Listen("tcp", s.tcpAddr)
		if err != nil {
			return fmt.Errorf("embedded server: listening again on %s: %w", s.tcpAddr, err)
		}
		s.tcp = ln
		s.wg.Add(1)
		go s.acceptLoop(ln)
	}
	if s.cfg.UnixPath != "" && s.unix == nil {
		ln, err := listenUnix(s.cfg.UnixPath, s.cfg.UnixPerm)
		if err != nil {
			return err
		}
		s.unix = ln
		s.wg.Add(1)
		go s.acceptLoop(ln)
	}
	return nil
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off like
			// net/http does rather than spin.
			select {
			case <-s.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		if s.cfg.TLS != nil && ln == s.tcp {
			// The handshake runs on the connection's first read.
			nc = tls.Server(nc, s.cfg.TLS)
		}
		s.startConn(nc)
	}
}

func (s *Server) startConn(nc net.Conn) {
	f := s.Fault()
	if f.Hangup {
		nc.Close()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if len(s.conns) >= s.cfg.MaxConns {
		s.mu.Unlock()
		s.rejectedConns.Add(1)
		// memcached (maxconns_fast) answers and hangs up.
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write([]byte(msgTooManyConns + "\r\n"))
		nc.Close()
		return
	}
	s.nextID++
	c := newConn(s, nc, s.nextID)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.currConns.Add(1)
	s.totalConns.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		nc.Close()
		s.currConns.Add(-1)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
}

// now is the server's clock in unix seconds.
func (s *Server) now() int64 {
	return s.clock.Now().Add(time.Duration(s.offset.Load())).Unix()
}

// AdvanceClock moves the server's notion of time forward by d (on top of
// the configured Clock): items expire and delayed flushes fire as if d had
// passed.
func (s *Server) AdvanceClock(d time.Duration) {
	s.offset.Add(int64(d))
}

// FlushAll empties the cache at once, like "flush_all".
func (s *Server) FlushAll() {
	s.store.mu.Lock()
	s.store.st.cmdFlush++
	s.store.flush(0, s.now())
	s.store.mu.Unlock()
}

// Len returns the number of items currently stored (expired items that
// were not looked at since they expired included, as memcached counts).
func (s *Server) Len() int {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	s.store.prepare(s.now())
	return len(s.store.items)
}

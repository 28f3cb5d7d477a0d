// Package mctest starts real memcached servers for tests.
//
// Each server runs on a free loopback TCP port or a unix socket in a
// temporary directory, is waited for until it accepts connections, and is
// killed (by PID) when the test ends. If memcached is not installed the test
// is skipped, or fails when the CI environment variable is set, so a CI run
// can never pass by silently testing nothing.
package mctest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Options choose how the server listens and what else it is told.
type Options struct {
	// Listen is the interface for TCP: "127.0.0.1" (the default) or "::1".
	Listen string
	// Unix makes the server listen on a unix socket instead of TCP.
	Unix bool
	// Args are extra memcached arguments, e.g. "-I", "2m" or "-m", "64".
	Args []string
}

// Server is a running memcached.
type Server struct {
	// Addr is "host:port" (IPv6 hosts in brackets) or the unix socket path.
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startupTimeout bounds how long a server may take to accept connections.
const startupTimeout = 5 * time.Second

// Binary returns the path of memcached, skipping the test (or failing it
// when CI is set) if it is not installed.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("memcached")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("memcached not found and CI is set: %v", err)
		}
		t.Skipf("memcached not installed: %v", err)
	}
	return path
}

// Start starts a memcached and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := Binary(t)
	var lastErr error
	// A free port found by listening and closing can be taken by someone
	// else before memcached binds it: retry a few times.
	for attempt := 0; attempt < 5; attempt++ {
		s, err := start(t, bin, opts)
		if err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting memcached: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string, opts Options) (*Server, error) {
	args := []string{"-U", "0", "-t", "2"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	s := &Server{done: make(chan struct{})}
	network := "tcp"
	if opts.Unix {
		dir, err := os.MkdirTemp("", "mctest")
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		// memcached drops privileges to nobody before creating the socket.
		if err := os.Chmod(dir, 0o777); err != nil {
			return nil, err
		}
		s.Addr = filepath.Join(dir, "mc.sock")
		network = "unix"
		args = append(args, "-s", s.Addr, "-a", "0777")
	} else {
		host := opts.Listen
		if host == "" {
			host = "127.0.0.1"
		}
		port, err := freePort(host)
		if err != nil {
			return nil, err
		}
		s.Addr = net.JoinHostPort(host, strconv.Itoa(port))
		args = append(args, "-l", host, "-p", strconv.Itoa(port))
	}
	args = append(args, opts.Args...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(startupTimeout)
	for {
		c, err := net.DialTimeout(network, s.Addr, 100*time.Millisecond)
		if err == nil {
			settle(c)
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("memcached %v exited: %v", args, s.cmd.ProcessState)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("memcached %v not accepting after %v: %w", args, startupTimeout, err)
		}
	}
}

// settle waits until memcached has taken in the probe connection c (it
// answers or closes it), then closes it. memcached counts a connection
// when a worker thread picks it up, which on a loaded machine can be after
// the test's own connection: without this wait, total_connections could
// still grow by the probe while a test watches it.
func settle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return
	}
	var b [64]byte
	c.Read(b[:])
}

// Stop kills the server and waits for it to exit. Tests call it to turn a
// live server into a dead one; it is also registered with t.Cleanup.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return
	}
	<-s.done
}

// PID returns the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RefusedAddr returns a loopback address where nothing listens, so connects
// to it are refused at once.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// HasIPv6Loopback reports whether ::1 can be listened on here.
func HasIPv6Loopback() bool {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

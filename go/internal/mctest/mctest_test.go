package mctest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestStartServesAndStopKills(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		net  string
	}{
		{"tcp", Options{Args: []string{"-m", "16"}}, "tcp"},
		{"unix", Options{Unix: true}, "unix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, tt.opts)
			c, err := net.DialTimeout(tt.net, s.Addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			// A binary NOOP must come back as a 24-byte response.
			req := make([]byte, 24)
			req[0], req[1] = 0x80, 0x0a
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			resp := make([]byte, 24)
			if _, err := c.Read(resp); err != nil || resp[0] != 0x81 || resp[1] != 0x0a {
				t.Fatalf("NOOP reply %x %v", resp, err)
			}
			c.Close()
			pid := s.PID()
			s.Stop()
			if err := syscall.Kill(pid, 0); err == nil {
				t.Fatalf("memcached %d still running after Stop", pid)
			}
			if _, err := net.DialTimeout(tt.net, s.Addr, time.Second); err == nil {
				t.Fatal("still accepting after Stop")
			}
			s.Stop() // idempotent, and Cleanup calls it again
		})
	}
}

func TestRefusedAddrRefuses(t *testing.T) {
	if _, err := net.DialTimeout("tcp", RefusedAddr(t), time.Second); err == nil {
		t.Fatal("connected to RefusedAddr")
	}
}

func TestMissingBinaryFailsUnderCI(t *testing.T) {
	if os.Getenv("MCTEST_CHILD") != "" {
		Binary(t)
		return
	}
	// Run this test again in a child with an empty PATH and CI set: it must
	// fail, not skip.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	cmd := exec.Command(exe, "-test.run", "^TestMissingBinaryFailsUnderCI$", "-test.v")
	cmd.Env = []string{"PATH=/nonexistent", "CI=1", "MCTEST_CHILD=1"}
	out, err = cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("child passed without memcached under CI:\n%s", out)
	}
	cmd = exec.Command(exe, "-test.run", "^TestMissingBinaryFailsUnderCI$", "-test.v")
	cmd.Env = []string{"PATH=/nonexistent", "MCTEST_CHILD=1"}
	out, err = cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("SKIP")) {
		t.Fatalf("child without CI should skip: %v\n%s", err, out)
	}
}

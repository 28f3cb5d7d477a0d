package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// When this variable is set the test binary runs main instead of the tests,
// so the command can be started as a real process without a go build.
const runMainEnv = "OMCACHE_SERVER_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) != "" {
		os.Args = append([]string{"omcache-server"}, strings.Fields(os.Getenv(runMainEnv))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"512k", 512 << 10, true},
		{"2m", 2 << 20, true},
		{"2M", 2 << 20, true},
		{"0", 0, false},
		{"-1m", 0, false},
		{"big", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-m", "0"},
		{"-I", "huge"},
		{"-listen", "", "-unix", ""},
		{"-fault", "explode", "-listen", "127.0.0.1:0"},
		{"extra"},
		{"-nosuchflag"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

// startCommand runs omcache-server as a child process and returns the
// addresses it printed.
func startCommand(t *testing.T, args string) (tcp, unix string, cmd *exec.Cmd) {
	t.Helper()
	cmd = exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runMainEnv+"="+args)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	want := 1
	if strings.Contains(args, "-unix") {
		want = 2
	}
	timeout := time.After(10 * time.Second)
	for range want {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("omcache-server exited before printing its addresses")
			}
			kind, addr, _ := strings.Cut(l, " ")
			switch kind {
			case "tcp":
				tcp = addr
			case "unix":
				unix = addr
			default:
				t.Fatalf("unexpected output %q", l)
			}
		case <-timeout:
			t.Fatal("omcache-server printed no address")
		}
	}
	return tcp, unix, cmd
}

func TestCommandServesAndStopsOnSIGTERM(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mc.sock")
	tcp, unix, cmd := startCommand(t, "-listen 127.0.0.1:0 -unix "+sock+" -m 1 -I 2m")
	if unix != sock {
		t.Fatalf("unix socket %q, want %q", unix, sock)
	}
	for _, target := range [][2]string{{"tcp", tcp}, {"unix", unix}} {
		c, err := net.DialTimeout(target[0], target[1], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("stats settings\r\nquit\r\n"))
		var sb strings.Builder
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			sb.WriteString(sc.Text() + "\n")
		}
		c.Close()
		// The scanner drops the CR of each CRLF.
		for _, want := range []string{"STAT maxbytes 1048576", "STAT item_size_max 2097152"} {
			if !strings.Contains(sb.String(), want+"\n") {
				t.Fatalf("%s stats settings lack %q:\n%s", target[0], want, sb.String())
			}
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still running 5s after SIGTERM")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

// TestMemccapableAgainstCommand runs libmemcached's conformance checker
// against the command; it fails rather than skips without memccapable when
// CI is set.
func TestMemccapableAgainstCommand(t *testing.T) {
	bin, err := exec.LookPath("memccapable")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("memccapable is required in CI: %v", err)
		}
		t.Skipf("memccapable not installed: %v", err)
	}
	tcp, _, _ := startCommand(t, "-listen 127.0.0.1:0")
	host, port, _ := net.SplitHostPort(tcp)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-t", "5").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "All tests passed") || strings.Contains(string(out), "[FAIL]") {
		t.Fatalf("memccapable: %v\n%s", err, out)
	}
}

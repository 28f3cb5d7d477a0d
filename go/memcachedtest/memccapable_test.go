package memcachedtest

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memccapableResult is what one memccapable run reported.
type memccapableResult struct {
	passed []string
	failed []string
	output string
	err    error
}

var memccapableLine = regexp.MustCompile(`(?m)^((?:ascii|binary) [a-z ]+?)\s+\[(pass|FAIL|skip)\]`)

// runMemccapable runs libmemcached's conformance checker (Debian calls it
// memccapable) against addr with extra flags (-a: ascii only, -b: binary
// only).
func runMemccapable(t *testing.T, bin, host string, port int, flags ...string) memccapableResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-h", host, "-p", strconv.Itoa(port), "-t", "5"}, flags...)
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	res := memccapableResult{output: string(out), err: err}
	for _, m := range memccapableLine.FindAllStringSubmatch(res.output, -1) {
		switch m[2] {
		case "pass":
			res.passed = append(res.passed, m[1])
		case "FAIL":
			res.failed = append(res.failed, m[1])
		}
	}
	return res
}

// TestMemccapable requires every memccapable check to pass, in ascii and
// binary mode. It fails rather than skips when memccapable is missing and
// the CI environment variable is set.
func TestMemccapable(t *testing.T) {
	bin := requireTool(t, "memccapable")
	tests := []struct {
		mode     string
		flags    []string
		minTests int // memccapable 1.1 runs 27 ascii and 27 binary checks
		prefixes []string
	}{
		{"ascii", []string{"-a"}, 27, []string{"ascii "}},
		{"binary", []string{"-b"}, 27, []string{"binary "}},
		{"both", nil, 54, []string{"ascii ", "binary "}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			// memccapable flushes the server and spends most of its ~5s
			// waiting, so each mode gets its own server and they overlap.
			t.Parallel()
			s := startServer(t, Config{})
			res := runMemccapable(t, bin, "127.0.0.1", s.Port(), tt.flags...)
			if len(res.failed) > 0 || res.err != nil || !strings.Contains(res.output, "All tests passed") {
				t.Fatalf("memccapable %v: failed %q, exit %v\n%s", tt.flags, res.failed, res.err, res.output)
			}
			if len(res.passed) < tt.minTests {
				t.Fatalf("memccapable ran only %d checks, want at least %d:\n%s", len(res.passed), tt.minTests, res.output)
			}
			for _, p := range tt.prefixes {
				n := 0
				for _, name := range res.passed {
					if strings.HasPrefix(name, p) {
						n++
					}
				}
				if n == 0 {
					t.Fatalf("no %q checks ran:\n%s", p, res.output)
				}
			}
		})
	}
}

// TestMemccapableDetectsABrokenServer shows the check above can fail: with
// corrupted answers memccapable reports failures and a non-zero exit.
func TestMemccapableDetectsABrokenServer(t *testing.T) {
	bin := requireTool(t, "memccapable")
	s := startServer(t, Config{})
	if err := s.SetFault(Fault{Corrupt: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port()), "-t", "1",
		"-a", "-T", "ascii version").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "[FAIL]") {
		t.Fatalf("memccapable passed a server that sends garbage: %v\n%s", err, out)
	}
}

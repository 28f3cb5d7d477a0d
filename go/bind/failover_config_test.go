package bind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/omcache/omcache/go/client"
	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/memcachedtest"
)

func TestParseConfigFailoverOptions(t *testing.T) {
	const srv = "server=127.0.0.1:11211\nserver=127.0.0.1:11212\n"
	tests := []struct {
		lines string
		check func(client.Options) bool
	}{
		{"", func(o client.Options) bool {
			return !o.Failover && o.FailureLimit == 0 && o.RetryTimeout == 0 && o.ReconnectTimeout == 0 && o.DeadTimeout == 0 && o.Ejector == nil
		}},
		{"failover=1", func(o client.Options) bool { return o.Failover }},
		{"failover=true\nfailover=0", func(o client.Options) bool { return !o.Failover }},
		{"failure_limit=5", func(o client.Options) bool { return o.FailureLimit == 5 }},
		{"retry_timeout_ms=1500", func(o client.Options) bool { return o.RetryTimeout == 1500*time.Millisecond }},
		{"reconnect_timeout_ms=250", func(o client.Options) bool { return o.ReconnectTimeout == 250*time.Millisecond }},
		{"dead_timeout_ms=10000", func(o client.Options) bool { return o.DeadTimeout == 10*time.Second }},
		{"auto_eject=1", func(o client.Options) bool { return o.Ejector != nil }},
		{"auto_eject=0", func(o client.Options) bool { return o.Ejector == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.lines, func(t *testing.T) {
			_, _, opts, err := parseConfig(srv + tt.lines)
			if err != nil || !tt.check(opts) {
				t.Fatalf("parseConfig: %+v, %v", opts, err)
			}
		})
	}
	for _, bad := range []string{
		"failover=2", "failover=", "auto_eject=yes", "failure_limit=-1", "failure_limit=x",
		"retry_timeout_ms=-5", "reconnect_timeout_ms=1e3", "dead_timeout_ms=4294967296", "failure_limit=",
	} {
		if _, _, _, err := parseConfig(srv + bad); !errors.Is(err, errBadConfig) {
			t.Errorf("%q: %v", bad, err)
		}
		if r := ClientNew(srv + bad); r[0] != StatusBadConfig {
			t.Errorf("ClientNew with %q: %d %s", bad, r[0], r[1:])
		}
	}
}

// auto_eject rebuilds placement over the live servers with the client's own
// distribution (weighted ketama here, where that differs from a walk).
func TestAutoEjectRebuildsWithTheConfiguredDistribution(t *testing.T) {
	servers, _, opts, err := parseConfig("server=10.0.0.1:11211:1\nserver=10.0.0.2:11211:2\nserver=10.0.0.3:11211:3\n" +
		"behavior.ketama_weighted=1\nauto_eject=1")
	if err != nil {
		t.Fatal(err)
	}
	sel, err := opts.Ejector([]bool{true, true, false})
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 3 {
		t.Fatal(servers)
	}
	for i := 0; i < 500; i++ {
		if si := sel.Pick([]byte(fmt.Sprintf("k%d", i))); si != 0 && si != 1 {
			t.Fatalf("ejected server %d picked", si)
		}
	}
}

// End to end through the boundary: with failover=1 and failure_limit=1 a dead
// server's first call fails with StatusConnection and the next ones fail
// over to the live server; with failover=0 they fail fast, also with
// StatusConnection and a message that says the server is marked dead.
func TestFailoverConfigThroughClientNew(t *testing.T) {
	live, err := memcachedtest.Start(memcachedtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	dead := mctest.RefusedAddr(t)
	for _, failover := range []bool{true, false} {
		t.Run(fmt.Sprintf("failover=%v", failover), func(t *testing.T) {
			cfg := fmt.Sprintf("server=%s\nserver=%s\ndistribution=consistent\nfailure_limit=1\nreconnect_timeout_ms=60000\nfailover=%d",
				live.Addr(), dead, map[bool]int{true: 1, false: 0}[failover])
			r := ClientNew(cfg)
			if r[0] != StatusOK {
				t.Fatalf("ClientNew: %s", r[1:])
			}
			h := int64(binary.LittleEndian.Uint64(r[1:]))
			defer ClientClose(h)
			var key []byte
			for i := 0; key == nil; i++ {
				k := []byte(fmt.Sprintf("k%d", i))
				ka, kn := pyMem(t, k)
				if ServerForKey(h, ka, kn) == 1 {
					key = k
				}
			}
			ka, kn := pyMem(t, key)
			if g := Get(h, ka, kn); g[0] != StatusConnection || !strings.Contains(string(g[1:]), "refused") {
				t.Fatalf("first Get: %d %s", g[0], g[1:])
			}
			start := time.Now()
			g := Get(h, ka, kn)
			// Fails fast: no connection attempt, so nowhere near the 1 s
			// connect timeout; 500 ms leaves room for -race on a loaded
			// machine.
			if time.Since(start) > 500*time.Millisecond {
				t.Errorf("second Get took %v", time.Since(start))
			}
			if failover {
				if g[0] != StatusMiss {
					t.Fatalf("failed-over Get: %d %s", g[0], g[1:])
				}
				va, vn := pyMem(t, []byte("v"))
				if st := Store(h, OpSet, ka, kn, va, vn, 0, 0, 0); st != StatusOK {
					t.Fatalf("failed-over Store: %d", st&0xff)
				}
				if live.Len() != 1 {
					t.Fatalf("the live server holds %d items", live.Len())
				}
				return
			}
			if g[0] != StatusServerDead || !strings.Contains(string(g[1:]), "marked dead") {
				t.Fatalf("Get of a dead server's key: %d %s", g[0], g[1:])
			}
		})
	}
}

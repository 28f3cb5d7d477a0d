package client

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/omcache/omcache/go/dist"
	"github.com/omcache/omcache/go/internal/mctest"
	"github.com/omcache/omcache/go/memcachedtest"
)

// fakeClock drives the health records' clock (not the sockets' timeouts),
// so back-off and dead intervals can be crossed without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// embedded starts n embedded servers, closed at the end of the test.
func embedded(t *testing.T, n int) []*memcachedtest.Server {
	t.Helper()
	var out []*memcachedtest.Server
	for i := 0; i < n; i++ {
		s, err := memcachedtest.Start(memcachedtest.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out
}

// restart starts an embedded server again on addr, as a restarted memcached
// would come back on its port.
func restart(t *testing.T, addr string) *memcachedtest.Server {
	t.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		var s *memcachedtest.Server
		if s, err = memcachedtest.Start(memcachedtest.Config{Addr: addr}); err == nil {
			t.Cleanup(func() { s.Close() })
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("restarting on %s: %v", addr, err)
	return nil
}

func addrsOf(servers []*memcachedtest.Server) []string {
	var a []string
	for _, s := range servers {
		a = append(a, s.Addr())
	}
	return a
}

// ketama returns libmemcached's ketama placement over addrs.
func ketama(t *testing.T, addrs []string, cfg dist.Config) (dist.Selector, []dist.Server) {
	t.Helper()
	specs, err := dist.ParseSpecs(addrs)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := dist.New(specs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sel, specs
}

// keysOn returns n keys that sel places on server si.
func keysOn(sel Selector, si, n int) [][]byte {
	var keys [][]byte
	for i := 0; len(keys) < n; i++ {
		k := []byte(fmt.Sprintf("key-%d", i))
		if sel.Pick(k) == si {
			keys = append(keys, k)
		}
	}
	return keys
}

// waitFor polls cond every 5 ms until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not after %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestFailoverOptionsAreChecked(t *testing.T) {
	type notLive struct{ Selector }
	tests := []struct {
		name string
		opts Options
	}{
		{"negative failure limit", Options{FailureLimit: -1}},
		{"negative retry timeout", Options{RetryTimeout: -time.Second}},
		{"negative reconnect timeout", Options{ReconnectTimeout: -1}},
		{"negative dead timeout", Options{DeadTimeout: -time.Millisecond}},
		{"failover without PickLive", Options{Failover: true, Selector: notLive{Modula{N: 1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New([]string{"127.0.0.1:1"}, tt.opts); !errors.Is(err, ErrInvalidArguments) {
				t.Fatalf("New: %v", err)
			}
		})
	}
	ej := func([]bool) (Selector, error) { return Modula{N: 1}, nil }
	if _, err := New([]string{"127.0.0.1:1"}, Options{Failover: true, Selector: notLive{Modula{N: 1}}, Ejector: ej}); err != nil {
		t.Fatalf("an Ejector is enough for failover: %v", err)
	}
}

// A server's record goes Healthy -> Failing (calls fail fast during
// RetryTimeout, then go to it again) -> Dead at FailureLimit; without
// failover a dead server's calls fail fast, and the background probe brings
// it back once it answers.
func TestFailingThenDeadThenProbedBack(t *testing.T) {
	srv := embedded(t, 1)[0]
	addr := srv.Addr()
	clk := newFakeClock()
	c := newClientFor(t, []string{addr}, Options{
		FailureLimit: 3, RetryTimeout: time.Second, ReconnectTimeout: 5 * time.Second,
		ConnectTimeout: 500 * time.Millisecond, IOTimeout: 500 * time.Millisecond,
	})
	c.now = clk.Now
	mustSet(t, c, "k", "v")
	srv.Close()
	key := []byte("k")

	state := func() ServerHealth { return c.Health()[0] }
	// Failure 1: the pooled connection is found closed, the new one refused.
	if _, err := c.Get(key); !errors.Is(err, ErrConnection) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("first Get: %v", err)
	}
	if h := state(); h.State != Failing || h.Failures != 1 || !h.RetryAt.Equal(clk.Now().Add(time.Second)) {
		t.Fatalf("after one failure: %+v", h)
	}
	// During the back-off nothing is sent.
	_, err := c.Get(key)
	var down *ServerDownError
	if !errors.As(err, &down) || !errors.Is(err, ErrServerDown) || errors.Is(err, ErrServerDead) ||
		!errors.Is(err, ErrConnection) || down.Addr != addr || down.Retry != time.Second || down.Failures != 1 {
		t.Fatalf("Get during the back-off: %#v", err)
	}
	if errs := c.Noop(); !errors.Is(errs[0], ErrServerDown) {
		t.Fatalf("Noop during the back-off: %v", errs[0])
	}
	clk.Advance(time.Second)
	if _, err := c.Get(key); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Get after the back-off: %v", err)
	}
	clk.Advance(time.Second)
	if err := c.Set(&Item{Key: key}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("third failure: %v", err)
	}
	if h := state(); h.State != Dead || h.Failures != 3 || !h.RetryAt.Equal(clk.Now().Add(5*time.Second)) {
		t.Fatalf("after FailureLimit failures: %+v", h)
	}
	clk.Advance(4 * time.Second)
	start := time.Now()
	_, err = c.Get(key)
	if !errors.Is(err, ErrServerDead) || !errors.Is(err, ErrConnection) || errors.Is(err, ErrNoServers) {
		t.Fatalf("Get of a dead server's key without failover: %v", err)
	}
	// No connection attempt: far under the 500 ms timeouts; 250 ms of
	// room for -race on a loaded machine.
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("failing fast took %v", d)
	}
	if _, err := c.ServerFor(key); !errors.Is(err, ErrServerDead) {
		t.Errorf("ServerFor: %v", err)
	}

	// Due: the next call starts a probe, which is refused; the call itself
	// fails fast without waiting for it.
	clk.Advance(time.Second)
	if _, err := c.Get(key); !errors.Is(err, ErrServerDead) {
		t.Fatalf("Get while probing: %v", err)
	}
	waitFor(t, 2*time.Second, "refused probe", func() bool {
		h := state()
		return !h.Probing && h.RetryAt.Equal(clk.Now().Add(5*time.Second))
	})
	if h := state(); h.State != Dead || !errors.Is(h.LastError, syscall.ECONNREFUSED) {
		t.Fatalf("after a refused probe: %+v", h)
	}

	restart(t, addr)
	clk.Advance(5 * time.Second)
	c.Get(key) // starts the probe
	waitFor(t, 2*time.Second, "probe of the restarted server", func() bool { return state().State == Healthy })
	if _, err := c.Get(key); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("Get from the restarted (empty) server: %v", err)
	}
	mustSet(t, c, "k", "back")
}

// With Failover a dead server's keys walk to the next live point of the
// ketama ring (and only they move); once the restarted server answers a
// probe they return to it.
func TestFailoverMovesOnlyTheDeadServersKeysAndTheyReturn(t *testing.T) {
	servers := embedded(t, 3)
	addrs := addrsOf(servers)
	sel, _ := ketama(t, addrs, dist.Config{Distribution: dist.Consistent})
	const reconnect = 300 * time.Millisecond
	c := newClientFor(t, addrs, Options{
		Selector: sel, Failover: true, FailureLimit: 1, ReconnectTimeout: reconnect,
		ConnectTimeout: 300 * time.Millisecond, IOTimeout: 300 * time.Millisecond,
	})
	var keys [][]byte
	for i := 0; i < 300; i++ {
		keys = append(keys, []byte(fmt.Sprintf("key-%d", i)))
	}
	for i, err := range c.SetMulti(itemsFor(keys, "before")) {
		if err != nil {
			t.Fatalf("SetMulti %q: %v", keys[i], err)
		}
	}
	const victim = 1
	servers[victim].Close()

	// The first batch finds the victim gone: its keys fail, the others not.
	// The server is marked dead during this call: the time before it is a
	// lower bound of that moment (one taken after the call could be late by
	// as long as a loaded machine makes the call take).
	deadAt := time.Now()
	for i, err := range c.SetMulti(itemsFor(keys, "during")) {
		if home := sel.Pick(keys[i]); (home == victim) != (err != nil) {
			t.Fatalf("key %q on server %d: %v", keys[i], home, err)
		}
	}
	h := c.Health()[victim]
	if h.State != Dead {
		t.Fatalf("victim after one failure with FailureLimit 1: %+v", h)
	}
	notVictim := func(i int) bool { return i != victim }
	moved := 0
	for _, k := range keys {
		home, want := sel.Pick(k), sel.PickLive(k, notVictim)
		if home != victim && want != home {
			t.Fatalf("PickLive moved %q from live server %d", k, home)
		}
		if got, err := c.ServerFor(k); err != nil || got != want {
			t.Fatalf("ServerFor(%q) = %d, %v; want %d", k, got, err, want)
		}
		if home == victim {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no key on the victim")
	}
	// Writes of moved keys land on their failover server, and reads find
	// them there.
	for i, err := range c.SetMulti(itemsFor(keys, "failover")) {
		if err != nil {
			t.Fatalf("SetMulti %q after failover: %v", keys[i], err)
		}
	}
	items, errs := c.GetMulti(keys)
	for i, it := range items {
		if errs[i] != nil || string(it.Value) != "failover" {
			t.Fatalf("GetMulti %q: %v %v", keys[i], it, errs[i])
		}
	}
	direct := func(si int) *Client { return newClientFor(t, []string{addrs[si]}, Options{}) }
	for _, k := range keysOn(sel, victim, 5) {
		alt := sel.PickLive(k, notVictim)
		if it, err := direct(alt).Get(k); err != nil || string(it.Value) != "failover" {
			t.Fatalf("%q not on its failover server %d: %v", k, alt, err)
		}
	}

	servers[victim] = restart(t, addrs[victim])
	back := waitFor(t, reconnect+2*time.Second, "keys back on the restarted server", func() bool {
		si, err := c.ServerFor(keysOn(sel, victim, 1)[0])
		return err == nil && si == victim
	})
	if since := time.Since(deadAt); since < reconnect {
		t.Fatalf("dead server revived after %v, before its ReconnectTimeout %v", since, reconnect)
	}
	t.Logf("keys returned %v after the restart (ReconnectTimeout %v)", back, reconnect)
	for _, k := range keys {
		if got, err := c.ServerFor(k); err != nil || got != sel.Pick(k) {
			t.Fatalf("ServerFor(%q) = %d, %v after recovery; want %d", k, got, err, sel.Pick(k))
		}
	}
	// The restarted server is empty: its keys miss, the others keep their
	// values.
	items, errs = c.GetMulti(keys)
	for i, k := range keys {
		if sel.Pick(k) == victim {
			if !errors.Is(errs[i], ErrCacheMiss) {
				t.Fatalf("%q back home: %v %v", k, items[i], errs[i])
			}
		} else if errs[i] != nil || string(items[i].Value) != "failover" {
			t.Fatalf("%q: %v %v", k, items[i], errs[i])
		}
	}
}

func itemsFor(keys [][]byte, value string) []*Item {
	items := make([]*Item, len(keys))
	for i, k := range keys {
		items[i] = &Item{Key: k, Value: []byte(value)}
	}
	return items
}

// When every server is dead, failover has nowhere to go: calls fail fast
// with an error that is both ErrServerDead and ErrNoServers.
func TestFailoverWithEveryServerDead(t *testing.T) {
	refused := []string{mctest.RefusedAddr(t), mctest.RefusedAddr(t)}
	c := newClientFor(t, refused, Options{Failover: true, FailureLimit: 1, ReconnectTimeout: time.Hour})
	for i := 0; i < 2; i++ {
		c.Get(keysOn(Modula{N: 2}, i, 1)[0])
	}
	start := time.Now()
	_, err := c.Get([]byte("k"))
	var down *ServerDownError
	if !errors.As(err, &down) || !down.NoLiveServer || !errors.Is(err, ErrNoServers) || !errors.Is(err, ErrServerDead) {
		t.Fatalf("Get with every server dead: %v", err)
	}
	// No connection attempt (the default timeouts are 1 s); 250 ms of room
	// for -race on a loaded machine.
	if time.Since(start) > 250*time.Millisecond {
		t.Errorf("took %v", time.Since(start))
	}
	if h := c.Health(); h[0].State != Dead || h[1].State != Dead {
		t.Fatalf("health: %+v", h)
	}
}

// DeadTimeout kills a server whose failures span that long, however few;
// before it, the server stays Failing and keeps its keys.
func TestDeadTimeoutBoundsHowLongAServerMayFail(t *testing.T) {
	servers := embedded(t, 2)
	addrs := addrsOf(servers)
	refused := mctest.RefusedAddr(t)
	addrs[1] = refused
	clk := newFakeClock()
	c := newClientFor(t, addrs, Options{Failover: true, DeadTimeout: 10 * time.Second})
	c.now = clk.Now
	key := keysOn(Modula{N: 2}, 1, 1)[0]
	for i := 0; i < 5; i++ {
		if _, err := c.Get(key); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("failure %d: %v", i, err)
		}
		clk.Advance(2 * time.Second)
	}
	if h := c.Health()[1]; h.State != Failing || h.Failures != 5 {
		t.Fatalf("after 8 s of failures: %+v", h)
	}
	// 10 s after the first failure: this one kills it.
	if _, err := c.Get(key); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("last failure: %v", err)
	}
	if h := c.Health()[1]; h.State != Dead {
		t.Fatalf("after 10 s of failures: %+v", h)
	}
	if si, err := c.ServerFor(key); err != nil || si != 0 {
		t.Fatalf("dead server's key goes to %d, %v", si, err)
	}
}

// A success in between resets the count: FailureLimit counts consecutive
// failures.
func TestSuccessResetsTheFailureCount(t *testing.T) {
	srv := embedded(t, 1)[0]
	c := newClientFor(t, []string{srv.Addr()}, Options{FailureLimit: 2, IOTimeout: 100 * time.Millisecond})
	for round := 0; round < 3; round++ {
		if err := srv.SetFaultString("corrupt"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get([]byte("k")); !errors.Is(err, ErrProtocol) {
			t.Fatalf("round %d: Get of garbage: %v", round, err)
		}
		if h := c.Health()[0]; h.State != Failing || h.Failures != 1 {
			t.Fatalf("round %d: %+v", round, h)
		}
		srv.ClearFaults()
		if _, err := c.Get([]byte("k")); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("round %d: Get after the fault: %v", round, err)
		}
		if h := c.Health()[0]; h.State != Healthy || h.Failures != 0 || h.LastError != nil {
			t.Fatalf("round %d after a success: %+v", round, h)
		}
	}
}

// Server answers that refuse a command are not failures.
func TestStatusErrorsAreNotFailures(t *testing.T) {
	srv := embedded(t, 1)[0]
	c := newClientFor(t, []string{srv.Addr()}, Options{FailureLimit: 1})
	key := []byte("k")
	if _, err := c.Get(key); !errors.Is(err, ErrCacheMiss) {
		t.Fatal(err)
	}
	if err := c.Replace(&Item{Key: key}); !errors.Is(err, ErrNotStored) {
		t.Fatal(err)
	}
	if err := c.Set(&Item{Key: key, Value: make([]byte, 2<<20)}); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if _, errs := c.Stats("no-such-group"); !errors.Is(errs[0], ErrServerError) {
		t.Fatal(errs[0])
	}
	if h := c.Health()[0]; h.State != Healthy {
		t.Fatalf("%+v", h)
	}
}

// A call admitted before the server died and failing after it came back
// must not count against the revived server.
func TestLateFailureOfAnEarlierEpochIsIgnored(t *testing.T) {
	c := newClientFor(t, []string{mctest.RefusedAddr(t)}, Options{FailureLimit: 1})
	epoch := c.servers[0].h.epoch.Load()
	c.record(0, epoch, ErrTimeout)
	if c.Health()[0].State != Dead {
		t.Fatal("not dead")
	}
	c.hmu.Lock()
	c.setHealthyLocked(0)
	c.hmu.Unlock()
	c.record(0, epoch, fmt.Errorf("%w: late", ErrTimeout))
	if h := c.Health()[0]; h.State != Healthy || c.troubled.Load() != 0 {
		t.Fatalf("a stale failure counted: %+v", h)
	}
	c.record(0, c.servers[0].h.epoch.Load(), fmt.Errorf("%w: fresh", ErrTimeout))
	if h := c.Health()[0]; h.State != Dead {
		t.Fatalf("a current failure did not count: %+v", h)
	}
}

// With an Ejector (libmemcached's auto_eject) the placement is rebuilt over
// the live servers; for weighted ketama that differs from walking the full
// ring, and the client must follow the rebuilt one.
func TestEjectorRebuildsPlacementOverLiveServers(t *testing.T) {
	servers := embedded(t, 3)
	addrs := addrsOf(servers)
	cfg := dist.Config{Distribution: dist.KetamaWeighted}
	// Unequal weights: with equal ones the rebuilt continuum gives every
	// live server the same points as before, and placement equals the walk.
	var weighted []string
	for i, a := range addrs {
		weighted = append(weighted, fmt.Sprintf("%s:%d", a, i+1))
	}
	sel, specs := ketama(t, weighted, cfg)
	ej := func(live []bool) (Selector, error) { return dist.NewLive(specs, cfg, live) }
	c := newClientFor(t, addrs, Options{Selector: sel, Ejector: ej, FailureLimit: 1, ReconnectTimeout: 200 * time.Millisecond})
	const victim = 2
	servers[victim].Close()
	c.Get(keysOn(sel, victim, 1)[0])
	if c.Health()[victim].State != Dead {
		t.Fatal("victim not dead")
	}
	rebuilt, err := dist.NewLive(specs, cfg, []bool{true, true, false})
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for i := 0; i < 2000; i++ {
		k := []byte(fmt.Sprintf("key-%d", i))
		want := rebuilt.Pick(k)
		if got, err := c.ServerFor(k); err != nil || got != want {
			t.Fatalf("ServerFor(%q) = %d, %v; want %d", k, got, err, want)
		}
		if want != sel.PickLive(k, func(i int) bool { return i != victim }) {
			differ++
		}
	}
	if differ == 0 {
		t.Error("rebuilt weighted placement never differed from the walk: the test proves nothing")
	}
	restart(t, addrs[victim])
	waitFor(t, 3*time.Second, "victim back", func() bool {
		c.Get([]byte("x"))
		return c.Health()[victim].State == Healthy
	})
	for i := 0; i < 500; i++ {
		k := []byte(fmt.Sprintf("key-%d", i))
		if got, _ := c.ServerFor(k); got != sel.Pick(k) {
			t.Fatalf("after recovery ServerFor(%q) = %d, want %d", k, got, sel.Pick(k))
		}
	}
}

// Every call returns within ConnectTimeout + IOTimeout whatever the server
// does, reports the failure with the right class, and the fault counts
// against the server.
func TestCallsAreBoundedUnderServerFaults(t *testing.T) {
	const connectTimeout, ioTimeout = 200 * time.Millisecond, 200 * time.Millisecond
	bound := connectTimeout + ioTimeout + 600*time.Millisecond // room for -race on a loaded machine
	tests := []struct {
		fault string
		want  error
	}{
		{"stall", ErrTimeout},
		{"blackhole", ErrTimeout},
		{"delay=600ms", ErrTimeout},
		{"close-mid-response", ErrConnection},
		{"corrupt", ErrProtocol},
		{"hangup", ErrConnection},
		{"refuse", ErrConnection},
		{"slow-read=400ms", ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			servers := embedded(t, 2)
			addrs := addrsOf(servers)
			c := newClientFor(t, addrs, Options{ConnectTimeout: connectTimeout, IOTimeout: ioTimeout, FailureLimit: 5, MaxIdleConnsPerServer: -1})
			bad := keysOn(Modula{N: 2}, 0, 3)
			good := keysOn(Modula{N: 2}, 1, 3)
			if err := servers[0].SetFaultString(tt.fault); err != nil {
				t.Fatal(err)
			}
			timed := func(name string, f func() error) error {
				start := time.Now()
				err := f()
				if d := time.Since(start); d > bound {
					t.Errorf("%s took %v, over %v", name, d, bound)
				}
				return err
			}
			err := timed("Get", func() error { _, err := c.Get(bad[0]); return err })
			if !errors.Is(err, tt.want) {
				t.Fatalf("Get: %v, want %v", err, tt.want)
			}
			if h := c.Health()[0]; h.State != Failing {
				t.Fatalf("health after the fault: %+v", h)
			}
			err = timed("Set", func() error { return c.Set(&Item{Key: bad[1], Value: []byte("v")}) })
			if !errors.Is(err, tt.want) {
				t.Fatalf("Set not acknowledged must fail: %v", err)
			}
			var errs []error
			timed("SetMulti", func() error { errs = c.SetMulti(itemsFor(append(bad, good...), "v")); return nil })
			for i, err := range errs {
				if (i < len(bad)) != (err != nil) {
					t.Fatalf("SetMulti entry %d: %v", i, err)
				}
			}
			var items []*Item
			timed("GetMulti", func() error { items, errs = c.GetMulti(append(bad, good...)); return nil })
			badErrs := 0
			for i := range errs {
				switch {
				case i >= len(bad):
					if errs[i] != nil || string(items[i].Value) != "v" {
						t.Fatalf("GetMulti entry %d on the good server: %v %v", i, items[i], errs[i])
					}
				case errors.Is(errs[i], tt.want):
					badErrs++
				case errs[i] != nil && !errors.Is(errs[i], ErrCacheMiss) || items[i] != nil && string(items[i].Value) != "v":
					// Hits that arrived before a close-mid-response are
					// real answers; anything else is wrong.
					t.Fatalf("GetMulti entry %d on the faulty server: %v %v", i, items[i], errs[i])
				}
			}
			if badErrs == 0 {
				t.Fatal("GetMulti reported no error for the faulty server")
			}
			timed("Stats", func() error { _, errs = c.Stats(""); return nil })
			if !errors.Is(errs[0], tt.want) || errs[1] != nil {
				t.Fatalf("Stats: %v", errs)
			}
		})
	}
}

// A probe of a black-holed dead server takes a full IOTimeout, but calls
// never wait for it: they keep failing over at once.
func TestProbesNeverDelayCalls(t *testing.T) {
	servers := embedded(t, 2)
	addrs := addrsOf(servers)
	c := newClientFor(t, addrs, Options{
		Failover: true, FailureLimit: 1, ReconnectTimeout: 50 * time.Millisecond,
		IOTimeout: 400 * time.Millisecond, ConnectTimeout: 400 * time.Millisecond,
	})
	key := keysOn(Modula{N: 2}, 0, 1)[0]
	servers[0].SetFaultString("blackhole")
	if _, err := c.Get(key); !errors.Is(err, ErrTimeout) {
		t.Fatalf("first Get: %v", err)
	}
	probed := false
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		start := time.Now()
		if _, err := c.Get(key); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("failed-over Get: %v", err)
		}
		// A call that waited for the probe would take its 400 ms
		// IOTimeout; 250 ms leaves room for -race on a loaded machine.
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Fatalf("a failed-over call took %v while a probe ran", d)
		}
		probed = probed || c.Health()[0].Probing
		time.Sleep(10 * time.Millisecond)
	}
	if !probed {
		t.Fatal("no probe was seen running")
	}
	servers[0].ClearFaults()
	waitFor(t, 2*time.Second, "server back", func() bool {
		c.Get(key)
		return c.Health()[0].State == Healthy
	})
}

// Many goroutines share a client while a server is killed and restarted:
// no deadlock, no panic, every call bounded, errors reported, and the
// server's keys end up home again. Run with -race.
func TestManyGoroutinesThroughAKillAndRestart(t *testing.T) {
	servers := embedded(t, 3)
	addrs := addrsOf(servers)
	sel, _ := ketama(t, addrs, dist.Config{Distribution: dist.Consistent})
	const ioTimeout = 200 * time.Millisecond
	c := newClientFor(t, addrs, Options{
		Selector: sel, Failover: true, FailureLimit: 2, ReconnectTimeout: 100 * time.Millisecond,
		ConnectTimeout: ioTimeout, IOTimeout: ioTimeout, MaxIdleConnsPerServer: 2,
	})
	bound := 2*ioTimeout + time.Second // room for -race on a loaded machine; a hung call never returns
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	halt := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	defer halt() // a failed wait must not leave the workers running
	var mu sync.Mutex
	var calls, failures int
	var slowest time.Duration
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; ; r++ {
				select {
				case <-stop:
					return
				default:
				}
				k := []byte(fmt.Sprintf("w%d-%d", w, r%40))
				start := time.Now()
				var err error
				switch r % 3 {
				case 0:
					err = c.Set(&Item{Key: k, Value: k})
				case 1:
					_, err = c.Get(k)
				default:
					_, errs := c.GetMulti([][]byte{k, []byte("other"), []byte("third")})
					for _, e := range errs {
						if !errors.Is(e, ErrCacheMiss) {
							err = errors.Join(err, e)
						}
					}
				}
				d := time.Since(start)
				mu.Lock()
				calls++
				if err != nil && !errors.Is(err, ErrCacheMiss) {
					failures++
				}
				slowest = max(slowest, d)
				mu.Unlock()
			}
		}()
	}
	counts := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return calls, failures
	}
	// Each step waits for what it needs instead of sleeping: on a loaded
	// machine the workers could sleep through a fixed down time and call
	// the server only after it was back, surfacing no error at all.
	waitFor(t, 5*time.Second, "workers running", func() bool { n, _ := counts(); return n >= 100 })
	servers[1].Close()
	// The workers' keys include server 1's, so calls reach it while it is
	// down: the first failures are returned to their callers and, at
	// FailureLimit, mark it dead. Only then does it come back.
	waitFor(t, 5*time.Second, "an error surfaced after killing a server", func() bool { _, f := counts(); return f > 0 })
	waitFor(t, 5*time.Second, "killed server marked dead", func() bool { return c.Health()[1].State == Dead })
	// Keep it down while its keys fail over and a probe of it fails.
	downCalls, _ := counts()
	firstProbe := c.Health()[1].RetryAt
	waitFor(t, 5*time.Second, "calls and a failed probe while the server is dead", func() bool {
		n, _ := counts()
		h := c.Health()[1]
		return n >= downCalls+100 && h.State == Dead && h.RetryAt.After(firstProbe)
	})
	restart(t, addrs[1])
	waitFor(t, 3*time.Second, "killed server back", func() bool { return c.Health()[1].State == Healthy })
	backCalls, _ := counts()
	waitFor(t, 5*time.Second, "calls after recovery", func() bool { n, _ := counts(); return n >= backCalls+100 })
	halt()
	t.Logf("%d calls, %d failed, slowest %v", calls, failures, slowest)
	if slowest > bound {
		t.Errorf("slowest call %v, over %v", slowest, bound)
	}
	for _, k := range keysOn(sel, 1, 20) {
		if si, err := c.ServerFor(k); err != nil || si != 1 {
			t.Fatalf("%q not home after recovery: %d %v", k, si, err)
		}
	}
}

func TestModulaPickLive(t *testing.T) {
	m := Modula{N: 4}
	all := func(int) bool { return true }
	none := func(int) bool { return false }
	for i := 0; i < 200; i++ {
		k := []byte(fmt.Sprintf("k%d", i))
		if m.PickLive(k, all) != m.Pick(k) {
			t.Fatalf("PickLive with every server alive differs for %q", k)
		}
		if got := m.PickLive(k, func(s int) bool { return s != 2 }); got == 2 || got < 0 {
			t.Fatalf("PickLive picked %d", got)
		}
		if m.PickLive(k, none) != -1 {
			t.Fatal("PickLive with no server alive")
		}
	}
	if (Modula{}).PickLive([]byte("k"), all) != -1 {
		t.Fatal("PickLive over no servers")
	}
}

func TestServerStateString(t *testing.T) {
	for s, want := range map[ServerState]string{Healthy: "healthy", Failing: "failing", Dead: "dead", 7: "ServerState(7)"} {
		if s.String() != want {
			t.Errorf("%d: %q", int(s), s.String())
		}
	}
}

// A dead server that comes back while the client makes no calls is revived
// by the timer-driven probe, before the next call: the first write after
// the idle time and the read after it use the same placement (the issue
// was a write routed around the server and the probe it started reviving
// the server before the read).
func TestDeadServerIsRevivedWhileTheClientIsIdle(t *testing.T) {
	servers := embedded(t, 3)
	addrs := addrsOf(servers)
	sel, _ := ketama(t, addrs, dist.Config{Distribution: dist.Consistent})
	const reconnect = 200 * time.Millisecond
	c := newClientFor(t, addrs, Options{
		Selector: sel, Failover: true, FailureLimit: 1, ReconnectTimeout: reconnect,
		ConnectTimeout: 300 * time.Millisecond, IOTimeout: 300 * time.Millisecond,
	})
	const victim = 2
	k := keysOn(sel, victim, 1)[0]
	mustSet(t, c, string(k), "v")
	servers[victim].Close()
	if _, err := c.Get(k); err == nil {
		t.Fatal("Get from a closed server succeeded")
	}
	if h := c.Health()[victim]; h.State != Dead {
		t.Fatalf("victim after a failure with FailureLimit 1: %+v", h)
	}
	servers[victim] = restart(t, addrs[victim])
	// Only Health (which starts nothing) is called while waiting.
	waitFor(t, reconnect+2*time.Second, "revival without calls", func() bool { return c.Health()[victim].State == Healthy })
	if si, err := c.ServerFor(k); err != nil || si != victim {
		t.Fatalf("ServerFor after the revival: %d, %v", si, err)
	}
	for i := 0; i < 300; i++ {
		key := fmt.Sprintf("idle-%d", i)
		mustSet(t, c, key, key)
		if it, err := c.Get([]byte(key)); err != nil || string(it.Value) != key {
			t.Fatalf("Get %q right after its Set: %v %v", key, it, err)
		}
	}
}

// Closing the client stops its probes: a dead server is not probed (or
// revived) after Close.
func TestNoProbeAfterClose(t *testing.T) {
	servers := embedded(t, 2)
	addrs := addrsOf(servers)
	sel, _ := ketama(t, addrs, dist.Config{Distribution: dist.Consistent})
	const reconnect = 50 * time.Millisecond
	c := newClientFor(t, addrs, Options{
		Selector: sel, Failover: true, FailureLimit: 1, ReconnectTimeout: reconnect,
		ConnectTimeout: 300 * time.Millisecond, IOTimeout: 300 * time.Millisecond,
	})
	k := keysOn(sel, 1, 1)[0]
	servers[1].Close()
	c.Get(k)
	if h := c.Health()[1]; h.State != Dead {
		t.Fatalf("after a failure with FailureLimit 1: %+v", h)
	}
	c.Close()
	servers[1] = restart(t, addrs[1])
	time.Sleep(6 * reconnect) // several probe intervals
	if h := c.Health()[1]; h.State != Dead || h.Probing {
		t.Fatalf("a closed client probed its dead server: %+v", h)
	}
}

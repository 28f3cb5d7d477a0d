package client

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/omcache/omcache/go/internal/mctest"
)

func TestPerServerCommands(t *testing.T) {
	a := mctest.Start(t, mctest.Options{})
	b := mctest.Start(t, mctest.Options{Args: []string{"-I", "2m"}})
	dead := mctest.RefusedAddr(t)
	c := newClientFor(t, []string{a.Addr, b.Addr, dead}, Options{})
	if got := c.Servers(); len(got) != 3 || got[0] != a.Addr || got[2] != dead || c.NumServers() != 3 {
		t.Fatalf("Servers() = %v", got)
	}
	versions, errs := c.Version()
	if versions[0] == "" || versions[0] != versions[1] || errs[0] != nil || errs[1] != nil {
		t.Errorf("Version: %q %v", versions, errs)
	}
	if versions[2] != "" || !errors.Is(errs[2], ErrConnection) {
		t.Errorf("Version of dead server: %q %v", versions[2], errs[2])
	}
	if errs := c.Noop(); errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrConnection) {
		t.Errorf("Noop: %v", errs)
	}

	stats, errs := c.Stats("")
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrConnection) || stats[2] != nil {
		t.Fatalf("Stats: %v", errs)
	}
	for i, srv := range []*mctest.Server{a, b} {
		if stats[i]["pid"] != strconv.Itoa(srv.PID()) || stats[i]["version"] != versions[i] {
			t.Errorf("server %d: stats pid %q version %q, want %d %q", i, stats[i]["pid"], stats[i]["version"], srv.PID(), versions[i])
		}
	}
	settings, _ := c.Stats("settings")
	if settings[0]["item_size_max"] != "1048576" || settings[1]["item_size_max"] != "2097152" {
		t.Errorf("settings item_size_max: %q %q", settings[0]["item_size_max"], settings[1]["item_size_max"])
	}
	for _, group := range []string{"items", "slabs", "sizes"} {
		if _, errs := c.Stats(group); errs[0] != nil || errs[1] != nil {
			t.Errorf("Stats(%q): %v", group, errs)
		}
	}
	if _, errs := c.Stats("no-such-group"); !errors.Is(errs[0], ErrServerError) {
		t.Errorf("Stats of an unknown group: %v", errs[0])
	}
	// A stored item shows in its server's items group.
	single := newClientFor(t, []string{a.Addr}, Options{})
	mustSet(t, single, "k", "v")
	items, _ := single.Stats("items")
	if items[0]["items:1:number"] != "1" {
		t.Errorf("items:1:number = %q in %v", items[0]["items:1:number"], items[0])
	}
}

func TestFlushAll(t *testing.T) {
	t.Parallel()
	a := mctest.Start(t, mctest.Options{})
	b := mctest.Start(t, mctest.Options{})
	c := newClientFor(t, []string{a.Addr, b.Addr}, Options{})
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e"), []byte("f")}
	set := func() {
		for _, k := range keys {
			mustSet(t, c, string(k), "v")
		}
	}
	present := func() int {
		_, errs := c.GetMulti(keys)
		n := 0
		for _, err := range errs {
			if err == nil {
				n++
			}
		}
		return n
	}
	set()
	if errs := c.FlushAll(0); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if n := present(); n != 0 {
		t.Fatalf("%d items survived flush_all", n)
	}
	if testing.Short() {
		return
	}
	set()
	// memcached invalidates items once its once-a-second clock reaches
	// now+delay-1: with a delay of 3 that is two ticks away, so the items
	// are certainly still there right now and gone within 2 s. Its clock
	// is a timer event, which a loaded machine delays (one run in ten
	// under -race and two busy loops found the items still there at
	// 2.1 s): poll until 3.5 s, 1.5 s of room.
	if errs := c.FlushAll(3); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	flushed := time.Now()
	if n := present(); n != len(keys) {
		t.Fatalf("delayed flush removed items at once: %d left", n)
	}
	for n := present(); n != 0; n = present() {
		if time.Since(flushed) > 3500*time.Millisecond {
			t.Fatalf("%d items survived a flush_all with a 3 s delay for %v", n, time.Since(flushed))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

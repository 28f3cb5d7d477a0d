package dist

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/omcache/omcache/go/hashkit"
)

func tcpServers(weights ...int) []Server {
	out := make([]Server, len(weights))
	for i, w := range weights {
		out[i] = Server{Host: "10.0.0.1", Port: 20000 + i, Weight: w}
	}
	return out
}

func TestPointNamesFollowLibmemcached(t *testing.T) {
	tests := []struct {
		s    Server
		n    uint32
		spy  bool
		want string
	}{
		{Server{Host: "10.0.0.1", Port: 11211}, 0, false, "10.0.0.1-0"},
		{Server{Host: "10.0.0.1", Port: 11212}, 99, false, "10.0.0.1:11212-99"},
		{Server{Host: "localhost", Port: 11211}, 7, false, "localhost-7"},
		{Server{Host: "::1", Port: 22122}, 3, false, "::1:22122-3"},
		{Server{Host: "/tmp/m.sock", Unix: true}, 5, false, "/tmp/m.sock:0-5"},
		{Server{Host: "10.0.0.1", Port: 11211}, 0, true, "/10.0.0.1:11211-0"},
		{Server{Host: "h", Port: 1}, 39, true, "/h:1-39"},
	}
	for _, tt := range tests {
		if got := string(pointName(tt.s, tt.n, tt.spy)); got != tt.want {
			t.Errorf("pointName(%+v, %d, %v) = %q, want %q", tt.s, tt.n, tt.spy, got, tt.want)
		}
	}
}

// The expectations were computed independently by emulating IEEE single
// precision in Python (struct.pack('f')); the golden placement tests confirm
// them against libmemcached.
func TestWeightedPointsUseFloat32(t *testing.T) {
	equal25 := make([]int, 25)
	want25 := make([]int, 25)
	for i := range equal25 {
		equal25[i], want25[i] = 1, 156
	}
	tests := []struct {
		weights []int
		want    []int
	}{
		{[]int{1, 1, 1}, []int{160, 160, 160}},
		{equal25, want25},
		{[]int{1, 9}, []int{32, 288}},
		{[]int{1, 3, 7, 7, 7}, []int{28, 92, 224, 224, 224}},
		{[]int{1, 2, 3}, []int{80, 160, 240}},
		{[]int{2, 1, 5, 1}, []int{140, 68, 352, 68}},
		{[]int{1, 100}, []int{0, 316}},
	}
	for _, tt := range tests {
		s, err := New(tcpServers(tt.weights...), Config{Distribution: ConsistentWeighted})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.(*KetamaSelector).PointCounts(); !slices.Equal(got, tt.want) {
			t.Errorf("weights %v: points %v, want %v", tt.weights, got, tt.want)
		}
	}
}

func TestUnweightedKetamaHas100KeyHashPointsPerServer(t *testing.T) {
	servers := tcpServers(1, 1, 1)
	for _, h := range []string{"default", "md5", "crc"} {
		s, err := New(servers, Config{Distribution: Ketama, Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		k := s.(*KetamaSelector)
		if got := k.PointCounts(); !slices.Equal(got, []int{100, 100, 100}) {
			t.Errorf("%s: points %v", h, got)
		}
		hasher, _ := hashkit.ByName(h)
		for _, p := range k.points {
			name := pointName(servers[k.order[p.pos]], p.num, false)
			if hasher.Hash(name) != p.value {
				t.Fatalf("%s: point %q has value %d, not its %s hash", h, name, p.value, h)
			}
		}
	}
}

func TestWeightedPointsAreTheFourMD5Words(t *testing.T) {
	servers := tcpServers(1, 2)
	s, _ := New(servers, Config{Distribution: ConsistentWeighted})
	k := s.(*KetamaSelector)
	for _, p := range k.points {
		d := md5.Sum(pointName(servers[k.order[p.pos]], p.num, false))
		if binary.LittleEndian.Uint32(d[4*p.word:]) != p.value {
			t.Fatalf("point %+v is not word %d of its digest", p, p.word)
		}
	}
}

func TestEqualPointsGoToTheServerFirstInTheList(t *testing.T) {
	// Two entries for one address make every point a tie.
	same := Server{Host: "10.0.0.9", Port: 11211, Weight: 1}
	other := Server{Host: "10.0.0.1", Port: 11211, Weight: 1}
	for _, tt := range []struct {
		servers []Server
		sort    bool
		first   int
	}{
		{[]Server{same, same}, false, 0},
		{[]Server{other, same, same}, false, 1},
		{[]Server{same, other, same}, true, 0}, // sorted: other, same(0), same(2)
	} {
		s, err := New(tt.servers, Config{Distribution: Ketama, SortHosts: tt.sort})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			k := fmt.Appendf(nil, "key%d", i)
			if got := s.Pick(k); got != tt.first && tt.servers[got] == same {
				t.Fatalf("%v: key %s went to %d, want the first duplicate %d", tt.servers, k, got, tt.first)
			}
		}
	}
}

func TestHashAboveEveryPointWrapsToTheFirst(t *testing.T) {
	s, _ := New(tcpServers(1, 1, 1), Config{Distribution: Ketama})
	k := s.(*KetamaSelector)
	last := k.points[len(k.points)-1].value
	for i := range 1000000 {
		key := fmt.Appendf(nil, "w%d", i)
		if hashkit.OneAtATime(key) <= last {
			continue
		}
		e := s.Explain(key)
		if !e.Wrapped || e.Point != 0 || e.Server != k.order[k.points[0].pos] || s.Pick(key) != e.Server {
			t.Fatalf("key %q above the last point: %+v", key, e)
		}
		return
	}
	t.Fatal("no key hashed above the last point")
}

// PickLive on the full ring and a ring rebuilt without the dead servers
// agree for unweighted ketama: removing a server's points is walking past
// them.
func TestPickLiveAgreesWithRebuildForUnweightedKetama(t *testing.T) {
	servers := tcpServers(1, 1, 1, 1, 1)
	for _, dist := range []string{Ketama, ConsistentKetamaSpy} {
		full, _ := New(servers, Config{Distribution: dist})
		for _, dead := range [][]int{{0}, {2}, {1, 3}, {0, 1, 2, 4}} {
			live := []bool{true, true, true, true, true}
			for _, d := range dead {
				live[d] = false
			}
			rebuilt, err := NewLive(servers, Config{Distribution: dist}, live)
			if err != nil {
				t.Fatal(err)
			}
			moved := 0
			for i := range 2000 {
				k := fmt.Appendf(nil, "key:%d", i)
				got := full.PickLive(k, func(s int) bool { return live[s] })
				if got != rebuilt.Pick(k) || !live[got] {
					t.Fatalf("%s dead %v key %s: PickLive %d, rebuilt ring %d", dist, dead, k, got, rebuilt.Pick(k))
				}
				if got != full.Pick(k) {
					moved++
					if live[full.Pick(k)] {
						t.Fatalf("key %s moved away from a live server", k)
					}
				}
			}
			if moved == 0 {
				t.Fatalf("dead %v moved no keys", dead)
			}
		}
	}
}

func TestNewLiveReweighsWeightedContinuum(t *testing.T) {
	servers := tcpServers(1, 3, 7, 7, 7)
	s, err := NewLive(servers, Config{Distribution: Ketama}, []bool{true, true, false, true, true})
	if err != nil {
		t.Fatal(err)
	}
	// Live weights 1, 3, 7, 7 of 18 with 4 live servers.
	if got, want := s.(*KetamaSelector).PointCounts(), []int{32, 104, 0, 248, 248}; !slices.Equal(got, want) {
		t.Errorf("points %v, want %v", got, want)
	}
}

func TestNoLiveServer(t *testing.T) {
	servers := tcpServers(1, 1)
	none := func(int) bool { return false }
	for _, cfg := range []Config{{}, {Distribution: Ketama}, {Distribution: ConsistentWeighted}, {Distribution: PythonMemcached}} {
		s, err := NewLive(servers, cfg, []bool{false, false})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Pick([]byte("k")); got != -1 {
			t.Errorf("%+v with no live server: Pick = %d", cfg, got)
		}
		full, _ := New(servers, cfg)
		if got := full.PickLive([]byte("k"), none); got != -1 {
			t.Errorf("%+v: PickLive with all dead = %d", cfg, got)
		}
		if e := s.Explain([]byte("k")); e.Server != -1 || !strings.Contains(e.String(), "no server") {
			t.Errorf("Explain with no live server: %v", e)
		}
	}
}

func TestExplainTellsHashAndPoint(t *testing.T) {
	servers := []Server{{Host: "10.0.0.1", Port: 11211, Weight: 1}, {Host: "10.0.0.2", Port: 11212, Weight: 2}}
	for _, cfg := range []Config{
		{Distribution: Ketama}, {Distribution: Ketama, Hash: "crc"}, {Distribution: ConsistentKetamaSpy},
		{Distribution: KetamaWeighted}, {Distribution: KetamaPre1010},
	} {
		s, err := New(servers, cfg)
		if err != nil {
			t.Fatal(err)
		}
		k := s.(*KetamaSelector)
		for i := range 200 {
			key := fmt.Appendf(nil, "ex%d", i)
			e := s.Explain(key)
			if e.Server != s.Pick(key) || e.HashValue != k.r.keyHash(key) || e.Points != len(k.points) {
				t.Fatalf("%+v: %+v", cfg, e)
			}
			if e.PointValue < e.HashValue && !e.Wrapped {
				t.Fatalf("%+v: point %d below hash %d", cfg, e.PointValue, e.HashValue)
			}
			var v uint32
			if k.r.weighted {
				d := md5.Sum([]byte(e.PointName))
				v = binary.LittleEndian.Uint32(d[4*e.PointWord:])
			} else {
				v = k.r.keyHash([]byte(e.PointName))
			}
			if v != e.PointValue {
				t.Fatalf("%+v: point name %q does not hash to %d", cfg, e.PointName, e.PointValue)
			}
			if !strings.Contains(e.String(), e.Addr) || !strings.Contains(e.String(), e.PointName) {
				t.Fatalf("String() = %q", e.String())
			}
		}
	}
	s, _ := New(servers, Config{Distribution: Ketama})
	if e := s.Explain([]byte("x")); e.Distribution != "consistent ketama (weighted)" {
		t.Errorf("a weight of 2 in the specs should show as weighted: %q", e.Distribution)
	}
}

func TestModulaAndItsLiveRehash(t *testing.T) {
	servers := tcpServers(1, 5, 1)
	s, err := New(servers, Config{Hash: "crc"})
	if err != nil {
		t.Fatal(err)
	}
	live := func(i int) bool { return i != 1 }
	liveOnly, _ := New([]Server{servers[0], servers[2]}, Config{Hash: "crc"})
	for i := range 500 {
		key := fmt.Appendf(nil, "m%d", i)
		h := hashkit.CRC(key)
		if got := s.Pick(key); got != int(h%3) {
			t.Fatalf("Pick(%s) = %d, want crc %% 3 = %d (weights are ignored)", key, got, h%3)
		}
		want := []int{0, 2}[liveOnly.Pick(key)]
		if got := s.PickLive(key, live); got != want {
			t.Fatalf("PickLive(%s) = %d, want %d", key, got, want)
		}
		e := s.Explain(key)
		if e.Modulus != 3 || e.Server != s.Pick(key) || !strings.Contains(e.String(), "% 3") {
			t.Fatalf("Explain = %+v", e)
		}
	}
}

func TestSelectorsAreSafeForConcurrentUse(t *testing.T) {
	servers := tcpServers(1, 2, 3)
	for _, cfg := range []Config{{}, {Distribution: Ketama}, {Distribution: PythonMemcached}} {
		s, _ := New(servers, cfg)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 500 {
					key := fmt.Appendf(nil, "%d-%d", g, i)
					if s.Pick(key) != s.PickLive(key, func(int) bool { return true }) {
						t.Errorf("%+v: Pick and PickLive with all alive differ for %s", cfg, key)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}

func TestServersReturnsACopy(t *testing.T) {
	servers := tcpServers(1, 1)
	s, _ := New(servers, Config{})
	got := s.Servers()
	got[0].Host = "changed"
	servers[1].Host = "changed too"
	if s.Servers()[0].Host != "10.0.0.1" || s.Servers()[1].Host != "10.0.0.1" {
		t.Error("the selector shares its server list with callers")
	}
}

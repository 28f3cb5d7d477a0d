package dist

import (
	"errors"
	"testing"

	"github.com/omcache/omcache/go/hashkit"
)

func TestSetBehaviorsCombineLikeLibmemcached(t *testing.T) {
	tests := []struct {
		name string
		b    map[string]string
		want Config
	}{
		{"defaults", map[string]string{}, Config{}},
		{"ketama only switches the continuum", map[string]string{"ketama": "1"},
			Config{Distribution: ConsistentKetama}},
		{"ketama false is modula", map[string]string{"ketama": "false"}, Config{Distribution: Modula}},
		{"ketama_weighted forces md5 even when hash is given", map[string]string{"ketama_weighted": "true", "hash": "crc"},
			Config{Distribution: ConsistentWeighted, Hash: "md5", KetamaHash: "md5", Weighted: true}},
		{"ketama_weighted false turns ketama on", map[string]string{"ketama_weighted": "0"},
			Config{Distribution: ConsistentKetama}},
		{"distribution comes last and drops weighting", map[string]string{"ketama_weighted": "1", "distribution": "consistent"},
			Config{Distribution: Consistent, Hash: "md5", KetamaHash: "md5"}},
		{"consistent weighted keeps the key hash", map[string]string{"distribution": "consistent weighted"},
			Config{Distribution: ConsistentWeighted, Weighted: true}},
		{"numeric values as pylibmc accepts them", map[string]string{"hash": "9", "distribution": "2"},
			Config{Distribution: ConsistentKetama, Hash: "jenkins"}},
		{"ketama_hash is stored", map[string]string{"ketama": "1", "ketama_hash": "fnv1a_32"},
			Config{Distribution: ConsistentKetama, KetamaHash: "fnv1a_32"}},
		{"sort hosts under both names", map[string]string{"sort_hosts": "1"}, Config{SortHosts: true}},
		{"_sort_hosts", map[string]string{"_sort_hosts": "True"}, Config{SortHosts: true}},
		{"placement-free behaviors are ignored", map[string]string{"tcp_nodelay": "1", "cas": "1", "_retry_timeout": "3"}, Config{}},
	}
	for _, tt := range tests {
		var c Config
		if err := c.SetBehaviors(tt.b); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if c != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, c, tt.want)
		}
	}
}

func TestSetBehaviorsRefusesAndLeavesConfigAlone(t *testing.T) {
	tests := []struct {
		b    map[string]string
		want error
	}{
		{map[string]string{"hash": "hsieh"}, hashkit.ErrUnsupported},
		{map[string]string{"hash": "sha1"}, hashkit.ErrUnknownHash},
		{map[string]string{"ketama_hash": "hsieh"}, hashkit.ErrUnsupported},
		{map[string]string{"ketama": "1", "distribution": "random"}, ErrUnsupportedDistribution},
		{map[string]string{"distribution": "virtual bucket"}, ErrUnsupportedDistribution},
		{map[string]string{"distribution": "python-memcached"}, ErrUnknownDistribution},
		{map[string]string{"distribution": "ring"}, ErrUnknownDistribution},
		{map[string]string{"ketama": "yes"}, ErrBadConfig},
		{map[string]string{"ketama": "1", "ketama_typo": "1"}, ErrUnknownBehavior},
	}
	for _, tt := range tests {
		c := Config{Distribution: Modula, Hash: "crc"}
		before := c
		if err := c.SetBehaviors(tt.b); !errors.Is(err, tt.want) {
			t.Errorf("SetBehaviors(%v) error %v, want %v", tt.b, err, tt.want)
		}
		if c != before {
			t.Errorf("SetBehaviors(%v) changed the config to %+v", tt.b, c)
		}
	}
	var c Config
	if err := c.SetBehavior("no_such", "1"); !errors.Is(err, ErrUnknownBehavior) {
		t.Errorf("SetBehavior(no_such) error %v", err)
	}
}

func TestNewRefusesBadConfigs(t *testing.T) {
	servers := []Server{{Host: "a", Port: 1, Weight: 1}, {Host: "b", Port: 1, Weight: 1}}
	tests := []struct {
		cfg  Config
		want error
	}{
		{Config{Distribution: "random"}, ErrUnsupportedDistribution},
		{Config{Distribution: "consistent max"}, ErrUnsupportedDistribution},
		{Config{Distribution: "9"}, ErrUnknownDistribution},
		{Config{Distribution: "Ketama"}, ErrUnknownDistribution},
		{Config{Hash: "hsieh"}, hashkit.ErrUnsupported},
		{Config{KetamaHash: "nope"}, hashkit.ErrUnknownHash},
		{Config{Distribution: KetamaWeighted, Hash: "crc"}, ErrBadConfig},
		{Config{Distribution: PythonMemcached, Hash: "md5"}, ErrBadConfig},
		{Config{Distribution: PythonMemcached, SortHosts: true}, ErrBadConfig},
	}
	for _, tt := range tests {
		if _, err := New(servers, tt.cfg); !errors.Is(err, tt.want) {
			t.Errorf("New(%+v) error %v, want %v", tt.cfg, err, tt.want)
		}
	}
	if _, err := New(nil, Config{}); !errors.Is(err, ErrNoServers) {
		t.Errorf("New(nil) error %v", err)
	}
	if _, err := NewLive(servers, Config{}, []bool{true}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("NewLive with a short mask: error %v", err)
	}
}

func TestSpecWeightsTurnWeightingOnOnlyForConsistent(t *testing.T) {
	weighted := []Server{{Host: "a", Port: 1, Weight: 1}, {Host: "b", Port: 1, Weight: 3}}
	tests := []struct {
		dist string
		want bool
	}{
		{Modula, false}, {Consistent, true}, {ConsistentKetama, true}, {Ketama, true},
		{ConsistentKetamaSpy, true}, {PythonMemcached, false},
	}
	for _, tt := range tests {
		c := Config{Distribution: tt.dist}
		c.AddServers(weighted)
		if c.Weighted != tt.want {
			t.Errorf("%s: Weighted = %v after adding weighted servers", tt.dist, c.Weighted)
		}
	}
	c := Config{Distribution: Ketama}
	c.AddServers([]Server{{Host: "a", Port: 1, Weight: 1}, {Host: "b", Port: 1}})
	if c.Weighted {
		t.Error("weights of 0 and 1 turned weighting on")
	}
}

func TestKetamaHashDoesNotMovePoints(t *testing.T) {
	servers := []Server{{Host: "a", Port: 1, Weight: 1}, {Host: "b", Port: 2, Weight: 1}, {Host: "c", Port: 3, Weight: 1}}
	plain, err := New(servers, Config{Distribution: Ketama})
	if err != nil {
		t.Fatal(err)
	}
	for _, kh := range []string{"md5", "crc", "murmur"} {
		s, err := New(servers, Config{Distribution: Ketama, KetamaHash: kh})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 500 {
			k := []byte{byte(i), byte(i >> 8), 'k'}
			if s.Pick(k) != plain.Pick(k) {
				t.Fatalf("ketama_hash %s moved key %q", kh, k)
			}
		}
	}
}

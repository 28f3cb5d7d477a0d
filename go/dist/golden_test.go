package dist

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// placementFile is testdata/placement.json, written by
// tools/distvectors/gen.py: keys stored through the real pylibmc 1.6.3
// (libmemcached 1.1.4) and python-memcached 1.62 into real memcached
// servers, then looked up on each server.
type placementFile struct {
	Versions      map[string]string `json:"versions"`
	IndexAlphabet string            `json:"index_alphabet"`
	KeysHex       []string          `json:"keys_hex"`
	Configs       []goldenConfig    `json:"configs"`
}

type goldenConfig struct {
	Name              string         `json:"name"`
	Client            string         `json:"client"`
	Specs             []string       `json:"specs"`
	Behaviors         map[string]any `json:"behaviors"`
	Weights           []int          `json:"weights"`
	Dead              []int          `json:"dead"`
	Error             string         `json:"error"`
	Placement         string         `json:"placement"`
	PylibmcHashAgrees *bool          `json:"pylibmc_hash_agrees"`
	LibmemcachedOrder []int          `json:"libmemcached_order"`
	// ExtraKeysHex are keys for this configuration only, placed after the
	// common keys (keys aimed at continuum points two servers share).
	ExtraKeysHex []string `json:"extra_keys_hex"`
	// LaterBehaviors were assigned to the pylibmc client after it was
	// constructed (after its servers were added).
	LaterBehaviors map[string]any `json:"later_behaviors"`
}

func loadPlacement(t testing.TB) (placementFile, [][]byte) {
	t.Helper()
	raw, err := os.ReadFile("testdata/placement.json")
	if err != nil {
		t.Fatal(err)
	}
	var f placementFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	keys := make([][]byte, len(f.KeysHex))
	for i, h := range f.KeysHex {
		if keys[i], err = hex.DecodeString(h); err != nil {
			t.Fatal(err)
		}
	}
	return f, keys
}

// behaviorText turns a JSON behavior value into SetBehavior's text form.
func behaviorText(v any) string {
	switch v := v.(type) {
	case bool:
		if v {
			return "1"
		}
		return "0"
	case float64:
		return fmt.Sprint(int64(v))
	case string:
		return v
	}
	panic(fmt.Sprintf("behavior value %v (%T)", v, v))
}

func behaviorTexts(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = behaviorText(v)
	}
	return out
}

// goldenSelector builds the selector a golden configuration describes; the
// live mask is nil unless the configuration has dead servers.
func goldenSelector(c goldenConfig) (Selector, []bool, error) {
	var live []bool
	if len(c.Dead) > 0 {
		live = make([]bool, len(c.Specs))
		for i := range live {
			live[i] = true
		}
		for _, d := range c.Dead {
			live[d] = false
		}
	}
	switch c.Client {
	case "pylibmc":
		servers, err := ParseSpecs(c.Specs)
		if err != nil {
			return nil, nil, err
		}
		var cfg Config
		if err := cfg.SetBehaviors(behaviorTexts(c.Behaviors)); err != nil {
			return nil, nil, err
		}
		if c.LaterBehaviors != nil {
			cfg.AddServers(servers)
			if err := cfg.SetBehaviors(behaviorTexts(c.LaterBehaviors)); err != nil {
				return nil, nil, err
			}
		}
		// pylibmc adds servers after applying behaviors; libmemcached
		// rebuilds over live servers once it has ejected the dead ones.
		s, err := NewLive(servers, cfg, live)
		return s, live, err
	case "python-memcached":
		servers := make([]Server, len(c.Specs))
		for i, spec := range c.Specs {
			w := 1
			if c.Weights != nil {
				w = c.Weights[i]
			}
			var err error
			if servers[i], err = ParsePythonMemcacheSpec(spec, w); err != nil {
				return nil, nil, err
			}
		}
		// python-memcached keeps dead servers in its buckets and
		// rehashes around them: that is PickLive over the full list.
		s, err := New(servers, Config{Distribution: PythonMemcached})
		return s, live, err
	}
	return nil, nil, fmt.Errorf("unknown client %q", c.Client)
}

func TestGoldenPlacementMatchesRealClients(t *testing.T) {
	f, keys := loadPlacement(t)
	if len(keys) < 1000 {
		t.Fatalf("only %d keys", len(keys))
	}
	if f.Versions["libmemcached"] != "1.1.4" || f.Versions["pylibmc"] != "1.6.3" || f.Versions["python-memcached"] != "1.62" {
		t.Fatalf("vectors come from %v", f.Versions)
	}
	if len(f.Configs) < 20 {
		t.Fatalf("only %d configurations", len(f.Configs))
	}
	for _, c := range f.Configs {
		t.Run(c.Name, func(t *testing.T) {
			sel, live, err := goldenSelector(c)
			if c.Error != "" {
				if err == nil {
					t.Fatalf("pylibmc refused this configuration (%s) but New accepted it", c.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			keys := keys
			for _, h := range c.ExtraKeysHex {
				k, err := hex.DecodeString(h)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys[:len(keys):len(keys)], k)
			}
			if len(c.Placement) != len(keys) {
				t.Fatalf("placement for %d keys, have %d keys", len(c.Placement), len(keys))
			}
			if c.PylibmcHashAgrees != nil && !*c.PylibmcHashAgrees {
				t.Fatal("the generator recorded that pylibmc's hash() disagreed with the servers")
			}
			alive := func(i int) bool { return live == nil || live[i] }
			bad := 0
			for i, k := range keys {
				want := strings.IndexByte(f.IndexAlphabet, c.Placement[i])
				var got int
				if c.Client == "python-memcached" && live != nil {
					got = sel.PickLive(k, alive)
				} else {
					got = sel.Pick(k)
				}
				if got != want {
					if bad < 5 {
						t.Errorf("key %q: server %d, real client used %d (%s)", k, got, want, sel.Explain(k))
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d keys placed differently", bad, len(keys))
			}
		})
	}
}

// TestGoldenSortOrderMatchesLibmemcached checks the server order that
// pylibmc's get_stats reported after sort_hosts.
func TestGoldenSortOrderMatchesLibmemcached(t *testing.T) {
	f, _ := loadPlacement(t)
	n := 0
	for _, c := range f.Configs {
		if c.LibmemcachedOrder == nil {
			continue
		}
		n++
		servers, err := ParseSpecs(c.Specs)
		if err != nil {
			t.Fatal(err)
		}
		got := listOrder(servers, true)
		if fmt.Sprint(got) != fmt.Sprint(c.LibmemcachedOrder) {
			t.Errorf("%s: order %v, libmemcached %v", c.Name, got, c.LibmemcachedOrder)
		}
	}
	if n < 2 {
		t.Fatalf("only %d configurations with a reported order", n)
	}
}

// TestGoldenPre1010IsConsistentWeighted places the keys of the golden
// "consistent weighted" configurations with KetamaPre1010: libmemcached
// before 1.0.10 always built the weighted continuum and kept the key hash.
func TestGoldenPre1010IsConsistentWeighted(t *testing.T) {
	f, keys := loadPlacement(t)
	n := 0
	for _, c := range f.Configs {
		if !strings.HasPrefix(c.Name, "consistent-weighted-") {
			continue
		}
		n++
		servers, err := ParseSpecs(c.Specs)
		if err != nil {
			t.Fatal(err)
		}
		sel, err := New(servers, Config{Distribution: KetamaPre1010})
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range keys {
			if want := strings.IndexByte(f.IndexAlphabet, c.Placement[i]); sel.Pick(k) != want {
				t.Fatalf("%s: key %q: pre-1.0.10 ketama picks %d, libmemcached %d", c.Name, k, sel.Pick(k), want)
			}
		}
	}
	if n < 2 {
		t.Fatalf("only %d consistent-weighted configurations", n)
	}
}

// Package dist decides which memcached server holds a key, byte for byte as
// libmemcached 1.1.4 (and so pylibmc 1.6) does, plus python-memcached 1.62's
// placement, so that omcache shares a cache with clients already running.
//
// Servers come from ParseSpec/ParseSpecs (pylibmc spec strings) or
// ParsePythonMemcacheSpec; a Config says which distribution to use, written
// directly or built from pylibmc behaviors with Config.SetBehaviors; New
// returns a Selector. Selectors do no I/O and are safe for concurrent use.
//
// Failover. A Selector supports two ways of avoiding dead servers, chosen
// by the caller:
//
//   - PickLive(key, alive) keeps the continuum and walks on: ketama takes the
//     next point on the ring whose server is alive (what OMcache's C library
//     does), modula reduces the hash over the live servers only, and
//     python-memcached rehashes the way python-memcached itself does.
//   - NewLive(servers, cfg, live) rebuilds the selector over the live subset,
//     which is what libmemcached does when it ejects a server (auto_eject):
//     for weighted ketama the points per server then change because they
//     depend on the number and weights of live servers.
//
// Both return indexes into the full server list, so connection tables keyed
// by index need no remapping.
package dist

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Selector maps keys to servers.
type Selector interface {
	// Pick returns the index, in the server list given to New, of the
	// server that holds key, or -1 when no server can (every server was
	// excluded by NewLive, or python-memcached buckets are all weight 0).
	// key is the key as sent to the server; with pylibmc's "namespace"
	// libmemcached hashes the key without the namespace unless
	// _hash_with_prefix_key is set, so pass what libmemcached would hash.
	Pick(key []byte) int
	// PickLive is Pick avoiding servers for which alive returns false; see
	// the package documentation for what each distribution does. It
	// returns -1 when it finds no live server.
	PickLive(key []byte, alive func(server int) bool) int
	// Explain returns how key was placed: its hash value and the
	// continuum point or bucket that chose the server.
	Explain(key []byte) Explanation
	// Servers returns a copy of the server list, in the order given to New.
	Servers() []Server
}

// New returns the Selector for cfg over servers. It fails for an empty
// server list, an unknown or unsupported distribution or hash, and for
// contradictory settings.
func New(servers []Server, cfg Config) (Selector, error) {
	return NewLive(servers, cfg, nil)
}

// NewLive is New over the servers whose live entry is true (all when live is
// nil), the way libmemcached rebuilds its distribution after ejecting dead
// servers: ketama builds the continuum from live servers only (weighted
// point counts use the live count and weights), modula reduces the hash over
// the live servers in list order, python-memcached builds its buckets from
// live servers. The weighted flag is still derived from all servers, as
// libmemcached derives it when they are added. Indexes returned by Pick
// refer to the full list.
func NewLive(servers []Server, cfg Config, live []bool) (Selector, error) {
	if len(servers) == 0 {
		return nil, ErrNoServers
	}
	if live != nil && len(live) != len(servers) {
		return nil, fmt.Errorf("%w: %d liveness flags for %d servers", ErrBadConfig, len(live), len(servers))
	}
	if !cfg.serversAdded {
		cfg.AddServers(servers)
	}
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	b := base{servers: append([]Server(nil), servers...), r: r, order: listOrder(servers, r.sort)}
	for _, i := range b.order {
		if live == nil || live[i] {
			b.members = append(b.members, i)
		}
	}
	switch r.kind {
	case kindKetama, kindKetamaSpy:
		return newKetama(b), nil
	case kindPythonMemcached:
		return newPythonMemcache(b), nil
	}
	return &ModulaSelector{base: b}, nil
}

// base is what every selector keeps.
type base struct {
	servers []Server
	r       resolved
	// order maps libmemcached's list positions to indexes in servers; it
	// is the identity unless hosts are sorted.
	order []int
	// members are the servers placed on, in list order: all of them, or
	// the live ones for NewLive.
	members []int
}

// Servers implements Selector.
func (b *base) Servers() []Server { return append([]Server(nil), b.servers...) }

func (b *base) explanation(key []byte, h uint32, server int) Explanation {
	e := Explanation{Key: append([]byte(nil), key...), Distribution: b.r.name, Hash: b.r.hash.String(),
		HashValue: h, Server: server, Point: -1, Bucket: -1}
	if server >= 0 {
		e.Addr = b.servers[server].Addr()
	}
	return e
}

// listOrder returns server indexes in libmemcached's list order: as given,
// or sorted like libmemcached's sort_hosts (strcmp on the host, then port).
// libmemcached uses qsort, which is not stable, but only identical
// host:port pairs compare equal and those are interchangeable.
func listOrder(servers []Server, sortHosts bool) []int {
	order := make([]int, len(servers))
	for i := range order {
		order[i] = i
	}
	if sortHosts {
		slices.SortStableFunc(order, func(a, b int) int {
			sa, sb := servers[a], servers[b]
			// strings.Compare orders bytes as unsigned, like strcmp.
			if c := strings.Compare(sa.Host, sb.Host); c != 0 {
				return c
			}
			return cmp.Compare(sa.Port, sb.Port)
		})
	}
	return order
}

// Explanation says how a key was placed, for tools such as a "where"
// command.
type Explanation struct {
	Key          []byte
	Distribution string // the resolved distribution name
	Hash         string // the key hash's name
	HashValue    uint32 // the key's hash
	Server       int    // the chosen server's index, -1 for none
	Addr         string // the chosen server's address

	// Modulus is what the hash was reduced by: the number of servers for
	// modula, of buckets for python-memcached; 0 for ketama.
	Modulus int
	// Bucket is the hash modulo Modulus for python-memcached, -1 otherwise.
	Bucket int

	// Points is the size of the ketama continuum; 0 for other distributions.
	Points int
	// Point is the index on the continuum of the first point at or after
	// HashValue, -1 when not ketama.
	Point int
	// PointValue is that point's value.
	PointValue uint32
	// PointName is the text that was hashed to make the point, such as
	// "10.0.0.1:11212-17".
	PointName string
	// PointWord is which 32-bit word of the name's md5 digest the point
	// is (weighted ketama has four points per digest); 0 otherwise.
	PointWord int
	// Wrapped means HashValue was above every point, so the ring wrapped
	// to its first point.
	Wrapped bool
}

// String renders e on one line.
func (e Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "key %q: %s hash %d", e.Key, e.Hash, e.HashValue)
	switch {
	case e.Point >= 0:
		fmt.Fprintf(&b, ", %s point %d/%d value %d from %q", e.Distribution, e.Point, e.Points, e.PointValue, e.PointName)
		if e.PointWord > 0 {
			fmt.Fprintf(&b, " word %d", e.PointWord)
		}
		if e.Wrapped {
			b.WriteString(" (wrapped)")
		}
	case e.Bucket >= 0:
		fmt.Fprintf(&b, ", %s bucket %d of %d", e.Distribution, e.Bucket, e.Modulus)
	case e.Modulus > 0:
		fmt.Fprintf(&b, ", %s %d %% %d = %d", e.Distribution, e.HashValue, e.Modulus, e.HashValue%uint32(e.Modulus))
	}
	if e.Server < 0 {
		b.WriteString(" -> no server")
	} else {
		fmt.Fprintf(&b, " -> server %d (%s)", e.Server, e.Addr)
	}
	return b.String()
}

// ModulaSelector is libmemcached's modula distribution: the key hash modulo
// the number of servers, over the server list in order (sorted with
// SortHosts). Server weights are ignored, as libmemcached ignores them.
type ModulaSelector struct {
	base
}

// Pick implements Selector.
func (m *ModulaSelector) Pick(key []byte) int {
	if len(m.members) == 0 {
		return -1
	}
	return m.members[m.r.keyHash(key)%uint32(len(m.members))]
}

// PickLive implements Selector: the hash modulo the number of live servers,
// over the live servers in list order.
func (m *ModulaSelector) PickLive(key []byte, alive func(int) bool) int {
	n := 0
	for _, s := range m.members {
		if alive(s) {
			n++
		}
	}
	if n == 0 {
		return -1
	}
	want := int(m.r.keyHash(key) % uint32(n))
	for _, s := range m.members {
		if alive(s) {
			if want == 0 {
				return s
			}
			want--
		}
	}
	return -1
}

// Explain implements Selector.
func (m *ModulaSelector) Explain(key []byte) Explanation {
	h := m.r.keyHash(key)
	e := m.base.explanation(key, h, m.Pick(key))
	e.Modulus = len(m.members)
	return e
}

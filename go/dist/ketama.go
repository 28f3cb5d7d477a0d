package dist

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"strconv"
)

// libmemcached's continuum sizes (libmemcached-1.0/defaults.h).
const (
	pointsPerServer         = 100 // MEMCACHED_POINTS_PER_SERVER
	pointsPerServerWeighted = 160 // MEMCACHED_POINTS_PER_SERVER_KETAMA
	pointsPerDigest         = 4   // weighted: four 32-bit words per md5 digest
)

// KetamaSelector is libmemcached's consistent hashing (the continuum of
// update_continuum in libmemcached 1.1.4's hosts.cc):
//
//   - unweighted: 100 points per server, each the KEY hash of "host-N" when
//     the port is 11211 or "host:port-N" otherwise (N = 0..99), so changing
//     the hash behavior moves the points too;
//   - weighted: floor(weight/total * 160/4 * live + 1e-10) * 4 points per
//     server, computed in float32 as libmemcached does (25 equal servers get
//     156 points, not 160), four per md5 digest of the same names;
//   - spy ("consistent ketama spy"): names "/host:port-N" from N = 0.
//
// Points are sorted by value, then by list position; a key goes to the
// first point at or above its hash, wrapping to the first point.
type KetamaSelector struct {
	base
	points []point
}

// point is one continuum point; its name is rebuilt for Explain only.
type point struct {
	value uint32
	pos   uint32 // libmemcached list position: ties go to the lower one
	num   uint32 // N in the point's name
	word  uint8  // which word of the md5 digest (weighted)
}

// weightedPoints is libmemcached's points-per-server formula, in float32
// arithmetic step by step. The explicit float32 conversions stop the Go
// compiler from fusing multiply and add, which on some architectures would
// round differently from libmemcached's x86-64 build.
func weightedPoints(weight, totalWeight uint64, live int) int {
	pct := float32(weight) / float32(totalWeight)
	x := float32(pct * pointsPerServerWeighted)
	x = float32(x / pointsPerDigest)
	x = float32(x * float32(live))
	x = float32(x + float32(0.0000000001))
	return int(math.Floor(float64(x))) * pointsPerDigest
}

func libmemcachedWeight(s Server) uint64 {
	if s.Weight < 1 {
		return 1
	}
	return uint64(s.Weight)
}

// pointName is the text libmemcached hashes for point n of s.
func pointName(s Server, n uint32, spy bool) []byte {
	var b []byte
	if spy {
		b = append(b, '/')
	}
	b = append(b, s.Host...)
	if spy || s.Port != DefaultPort {
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(uint16(s.Port)), 10)
	}
	b = append(b, '-')
	return strconv.AppendUint(b, uint64(n), 10)
}

func newKetama(b base) *KetamaSelector {
	k := &KetamaSelector{base: b}
	spy := b.r.kind == kindKetamaSpy
	var total uint64
	if b.r.weighted {
		for _, i := range b.members {
			total += libmemcachedWeight(b.servers[i])
		}
	}
	live := len(b.members)
	for _, i := range b.members {
		pos := uint32(slices.Index(b.order, i))
		s := b.servers[i]
		if b.r.weighted {
			n := weightedPoints(libmemcachedWeight(s), total, live)
			for num := range uint32(n / pointsPerDigest) {
				d := md5.Sum(pointName(s, num, spy))
				for w := range uint8(pointsPerDigest) {
					v := binary.LittleEndian.Uint32(d[4*w:])
					k.points = append(k.points, point{value: v, pos: pos, num: num, word: w})
				}
			}
			continue
		}
		for num := range uint32(pointsPerServer) {
			v := b.r.keyHash(pointName(s, num, spy))
			k.points = append(k.points, point{value: v, pos: pos, num: num})
		}
	}
	slices.SortFunc(k.points, func(a, b point) int {
		if c := cmp.Compare(a.value, b.value); c != 0 {
			return c
		}
		return cmp.Compare(a.pos, b.pos)
	})
	return k
}

// search returns the continuum index for hash h: the first point whose value
// is >= h, or 0 when h is above them all (and whether it wrapped).
func (k *KetamaSelector) search(h uint32) (int, bool) {
	i := sort.Search(len(k.points), func(i int) bool { return k.points[i].value >= h })
	if i == len(k.points) {
		return 0, true
	}
	return i, false
}

// Pick implements Selector.
func (k *KetamaSelector) Pick(key []byte) int {
	if len(k.points) == 0 {
		return -1
	}
	i, _ := k.search(k.r.keyHash(key))
	return k.order[k.points[i].pos]
}

// PickLive implements Selector: from the key's point it walks the ring
// forward to the first point of a live server.
func (k *KetamaSelector) PickLive(key []byte, alive func(int) bool) int {
	if len(k.points) == 0 {
		return -1
	}
	start, _ := k.search(k.r.keyHash(key))
	memo := make(map[int]bool, len(k.members))
	for j := range k.points {
		s := k.order[k.points[(start+j)%len(k.points)].pos]
		ok, seen := memo[s]
		if !seen {
			ok = alive(s)
			memo[s] = ok
		}
		if ok {
			return s
		}
		if len(memo) == len(k.members) {
			return -1 // every server asked, and a live one would have been returned
		}
	}
	return -1
}

// Explain implements Selector.
func (k *KetamaSelector) Explain(key []byte) Explanation {
	h := k.r.keyHash(key)
	e := k.base.explanation(key, h, k.Pick(key))
	e.Points = len(k.points)
	switch e.Distribution {
	case Consistent, ConsistentKetama, ConsistentKetamaSpy:
		if k.r.weighted {
			e.Distribution += " (weighted)"
		}
	}
	if len(k.points) == 0 {
		return e
	}
	i, wrapped := k.search(h)
	p := k.points[i]
	e.Point, e.PointValue, e.Wrapped, e.PointWord = i, p.value, wrapped, int(p.word)
	e.PointName = string(pointName(k.servers[k.order[p.pos]], p.num, k.r.kind == kindKetamaSpy))
	return e
}

// PointCounts returns how many continuum points each server has, indexed like
// the server list (0 for servers left out by NewLive or given no points by
// the weighted formula).
func (k *KetamaSelector) PointCounts() []int {
	out := make([]int, len(k.servers))
	for _, p := range k.points {
		out[k.order[p.pos]]++
	}
	return out
}

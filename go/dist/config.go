package dist

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/omcache/omcache/go/hashkit"
)

// Distribution names accepted in Config.Distribution. The first five are
// pylibmc's names for libmemcached's distributions.
const (
	Modula              = "modula"
	Consistent          = "consistent"
	ConsistentKetama    = "consistent ketama"
	ConsistentWeighted  = "consistent weighted"
	ConsistentKetamaSpy = "consistent ketama spy"
	// Ketama is shorthand for ConsistentKetama (pylibmc's {"ketama": True}).
	Ketama = "ketama"
	// KetamaWeighted is pylibmc's {"ketama_weighted": True}: the weighted
	// continuum and md5 as the key hash.
	KetamaWeighted = "ketama_weighted"
	// KetamaPre1010 is the continuum of libmemcached before 1.0.10, which
	// OMcache offers for clusters shared with old clients. A bug in those
	// versions set the weighted flag whatever distribution was chosen, so
	// old clients built the weighted continuum (md5 points, four per
	// digest) while keeping the key hash: exactly what libmemcached 1.1.4
	// does for "consistent weighted", which is how the golden vectors
	// check it. (OMcache's C library always gave 160 points per server; the
	// old libmemcached applied the float formula, which this follows.)
	KetamaPre1010 = "ketama_pre1010"
	// PythonMemcached is python-memcached 1.62's placement: crc hash, modulo
	// over weighted buckets, and its own rehashing around dead servers.
	PythonMemcached = "python-memcached"
)

// ErrUnknownDistribution means that Config.Distribution names no distribution
// this package knows.
var ErrUnknownDistribution = errors.New("omcache: unknown distribution")

// ErrUnsupportedDistribution means a libmemcached distribution that cannot be
// reproduced ("random" is random per process; "virtual bucket" needs a bucket
// table pylibmc cannot set).
var ErrUnsupportedDistribution = errors.New("omcache: distribution not supported")

// ErrUnknownBehavior means a behavior name that pylibmc does not have.
var ErrUnknownBehavior = errors.New("omcache: unknown behavior")

// ErrBadConfig means settings that contradict each other or a bad value.
var ErrBadConfig = errors.New("omcache: bad configuration")

// Config selects a distribution. Its fields mirror the placement state of a
// libmemcached client (memcached_st): the zero Config is libmemcached's
// default, modula over one-at-a-time.
//
// A Config can be written directly, or built from pylibmc behaviors with
// SetBehaviors/SetBehavior, which change it the way memcached_behavior_set
// changes a libmemcached client (side effects included: "ketama_weighted"
// forces the md5 key hash; "ketama" and "consistent" turn weighting off).
type Config struct {
	// Distribution is one of the constants above; "" means Modula.
	Distribution string
	// Hash is the key hash, a hashkit name ("default", "md5", "crc", ...);
	// "" means "default". For unweighted ketama it also hashes the
	// continuum points, as in libmemcached.
	Hash string
	// KetamaHash is pylibmc's ketama_hash. libmemcached 1.1.4 validates and
	// stores it but never uses it for placement, and neither does this
	// package; it is kept so a client can report it back.
	KetamaHash string
	// Weighted is libmemcached's weighted-ketama flag: for a consistent
	// distribution, use 160 md5 points per server (four per digest) scaled
	// by weight instead of 100 key-hash points.
	Weighted bool
	// SortHosts sorts the servers by (host, port) before placing, as
	// libmemcached's sort_hosts does (pylibmc: "_sort_hosts").
	SortHosts bool

	// serversAdded records that AddServers already applied the weight
	// rule, so New must not apply it again.
	serversAdded bool
}

// kind is a resolved distribution.
type kind int

const (
	kindModula kind = iota
	kindKetama
	kindKetamaSpy
	kindPythonMemcached
)

// resolved is a Config checked and reduced to what placement needs.
type resolved struct {
	kind     kind
	name     string // Config.Distribution after aliases, for Explain
	hash     hashkit.Hasher
	keyHash  hashkit.Func
	weighted bool
	sort     bool
}

func canonicalDistribution(d string) (string, error) {
	switch d {
	case "", Modula:
		return Modula, nil
	case Consistent, ConsistentKetama, ConsistentWeighted, ConsistentKetamaSpy, KetamaWeighted, KetamaPre1010, PythonMemcached:
		return d, nil
	case Ketama:
		return ConsistentKetama, nil
	case "random", "virtual bucket", "consistent max":
		return "", fmt.Errorf("%w: %q", ErrUnsupportedDistribution, d)
	}
	if n, err := strconv.Atoi(d); err == nil {
		// libmemcached's memcached_server_distribution_t numbers, which
		// pylibmc's distributions dict maps its names to.
		names := []string{Modula, Consistent, ConsistentKetama, "random", ConsistentKetamaSpy, ConsistentWeighted, "virtual bucket", "consistent max"}
		if n >= 0 && n < len(names) {
			return canonicalDistribution(names[n])
		}
	}
	return "", fmt.Errorf("%w %q", ErrUnknownDistribution, d)
}

func isConsistent(d string) bool {
	switch d {
	case Consistent, ConsistentKetama, ConsistentWeighted, ConsistentKetamaSpy, Ketama, KetamaWeighted, KetamaPre1010:
		return true
	}
	return false
}

func hasherOf(name string) (hashkit.Hasher, error) {
	if name == "" {
		return hashkit.HashDefault, nil
	}
	return hashkit.ByName(name)
}

// resolve checks c and reduces it to what placement needs.
func (c Config) resolve() (resolved, error) {
	d, err := canonicalDistribution(c.Distribution)
	if err != nil {
		return resolved{}, err
	}
	h, err := hasherOf(c.Hash)
	if err != nil {
		return resolved{}, err
	}
	if _, err := hasherOf(c.KetamaHash); err != nil {
		return resolved{}, fmt.Errorf("ketama hash: %w", err)
	}
	r := resolved{name: d, hash: h, weighted: c.Weighted, sort: c.SortHosts}
	switch d {
	case Modula:
		r.kind = kindModula
	case Consistent, ConsistentKetama:
		r.kind = kindKetama
	case ConsistentWeighted, KetamaPre1010:
		r.kind, r.weighted = kindKetama, true
	case KetamaWeighted:
		if c.Hash != "" && h != hashkit.HashMD5 {
			return resolved{}, fmt.Errorf("%w: ketama_weighted hashes keys with md5, not %s (use %q to combine another key hash with the weighted continuum)",
				ErrBadConfig, h, ConsistentWeighted)
		}
		r.kind, r.weighted, r.hash = kindKetama, true, hashkit.HashMD5
	case ConsistentKetamaSpy:
		r.kind = kindKetamaSpy
	case PythonMemcached:
		if h != hashkit.HashDefault && h != hashkit.HashCRC {
			return resolved{}, fmt.Errorf("%w: python-memcached always hashes keys with crc, not %s", ErrBadConfig, h)
		}
		if c.SortHosts {
			return resolved{}, fmt.Errorf("%w: python-memcached does not sort hosts", ErrBadConfig)
		}
		r.kind, r.hash, r.weighted = kindPythonMemcached, hashkit.HashCRC, false
	}
	if r.kind == kindModula {
		r.weighted = false
	}
	if r.keyHash, err = r.hash.Func(); err != nil {
		return resolved{}, err
	}
	return r, nil
}

// AddServers applies to c what libmemcached does when servers are added to a
// client: if the distribution is consistent at that moment and any server has
// a weight above 1, weighting is turned on (the key hash is left alone).
//
// pylibmc's constructor applies the behaviors first and adds the servers
// after, and New does the same for a Config that has not been through
// AddServers. Call AddServers yourself to reproduce a client whose
// behaviors change later: assigning {"ketama": True} to such a pylibmc
// client turns weighting off again even though the specs carry weights,
// and a Config that went through AddServers keeps that.
func (c *Config) AddServers(servers []Server) {
	c.serversAdded = true
	if !isConsistent(c.Distribution) {
		return
	}
	for _, s := range servers {
		if s.Weight > 1 {
			c.Weighted = true
			return
		}
	}
}

// pylibmcBehaviors lists pylibmc 1.6.3's behavior names in the order its
// set_behaviors applies them, which decides how they combine ("hash" before
// "ketama_weighted", "distribution" last of the placement ones).
var pylibmcBehaviors = []string{
	"no_block", "tcp_nodelay", "tcp_keepalive", "hash", "ketama_hash", "ketama",
	"ketama_weighted", "distribution", "cas", "buffer_requests", "verify_keys",
	"connect_timeout", "send_timeout", "receive_timeout", "num_replicas",
	"auto_eject", "retry_timeout", "remove_failed", "failure_limit",
	"_io_msg_watermark", "_io_bytes_watermark", "_io_key_prefetch",
	"_hash_with_prefix_key", "_noreply", "_sort_hosts", "_poll_timeout",
	"_socket_send_size", "_socket_recv_size", "dead_timeout", "pickle_protocol",
}

// behaviorAliases are names pylibmc's Python layer or users commonly use for
// the same setting.
var behaviorAliases = map[string]string{
	"sort_hosts":     "_sort_hosts",
	"_retry_timeout": "retry_timeout",
}

// SetBehaviors applies pylibmc behaviors to c in the order pylibmc applies
// them, whatever the map's order. Behaviors that do not affect placement
// (timeouts, "cas", ...) are accepted and ignored; a name pylibmc does not
// know gives an error wrapping ErrUnknownBehavior, and nothing is changed.
// Values are written as for SetBehavior.
func (c *Config) SetBehaviors(b map[string]string) error {
	norm := make(map[string]string, len(b))
	known := make(map[string]bool, len(pylibmcBehaviors))
	for _, n := range pylibmcBehaviors {
		known[n] = true
	}
	for name, v := range b {
		if a, ok := behaviorAliases[name]; ok {
			name = a
		}
		if !known[name] {
			return fmt.Errorf("%w %q", ErrUnknownBehavior, name)
		}
		norm[name] = v
	}
	next := *c
	for _, name := range pylibmcBehaviors {
		v, ok := norm[name]
		if !ok {
			continue
		}
		if err := next.SetBehavior(name, v); err != nil {
			return err
		}
	}
	*c = next
	return nil
}

// SetBehavior applies one pylibmc behavior the way memcached_behavior_set
// does; behaviors that do not affect placement are ignored. value is the
// text of the behavior value: a hasher name or number for "hash" and
// "ketama_hash", a pylibmc distribution name or number for "distribution",
// and "1"/"0", "true"/"false" (or any integer) for flags. On error c is left
// unchanged.
//
// The libmemcached side effects are kept: "ketama" true selects consistent
// ketama and turns weighting off, false selects modula; "ketama_weighted"
// true sets the md5 key hash, the weighted continuum and weighting on, while
// false selects ketama (sic); "distribution" "consistent"/"consistent
// ketama" turn weighting off and "consistent weighted" turns it on.
func (c *Config) SetBehavior(name, value string) error {
	if a, ok := behaviorAliases[name]; ok {
		name = a
	}
	flag := func() (bool, error) {
		switch strings.ToLower(value) {
		case "true":
			return true, nil
		case "false", "":
			return false, nil
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false, fmt.Errorf("%w: behavior %s: %q is not a number", ErrBadConfig, name, value)
		}
		return n != 0, nil
	}
	switch name {
	case "hash":
		h, err := hasherOf(value)
		if err != nil {
			return fmt.Errorf("behavior hash: %w", err)
		}
		c.Hash = h.String()
	case "ketama_hash":
		h, err := hasherOf(value)
		if err != nil {
			return fmt.Errorf("behavior ketama_hash: %w", err)
		}
		c.KetamaHash = h.String()
	case "ketama":
		on, err := flag()
		if err != nil {
			return err
		}
		if on {
			c.setDistribution(ConsistentKetama)
		} else {
			c.setDistribution(Modula)
		}
	case "ketama_weighted":
		on, err := flag()
		if err != nil {
			return err
		}
		if !on {
			c.setDistribution(ConsistentKetama)
			return nil
		}
		c.Hash, c.KetamaHash = "md5", "md5"
		c.setDistribution(ConsistentWeighted)
	case "distribution":
		d, err := canonicalDistribution(value)
		if err != nil {
			return fmt.Errorf("behavior distribution: %w", err)
		}
		switch d {
		case Modula, Consistent, ConsistentKetama, ConsistentWeighted, ConsistentKetamaSpy:
		default:
			return fmt.Errorf("%w: %q is not a pylibmc distribution", ErrUnknownDistribution, value)
		}
		c.setDistribution(d)
	case "_sort_hosts":
		on, err := flag()
		if err != nil {
			return err
		}
		c.SortHosts = on
	default:
		for _, n := range pylibmcBehaviors {
			if n == name {
				return nil
			}
		}
		return fmt.Errorf("%w %q", ErrUnknownBehavior, name)
	}
	return nil
}

// setDistribution is memcached_behavior_set_distribution.
func (c *Config) setDistribution(d string) {
	switch d {
	case Consistent, ConsistentKetama:
		c.Weighted = false
	case ConsistentWeighted:
		c.Weighted = true
	}
	c.Distribution = d
}

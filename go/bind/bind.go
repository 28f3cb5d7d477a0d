// Package bind is the boundary between omcache's Go core and Python: the only
// package gopy wraps. Everything here is flat and boundary-safe:
//
//   - keys and values come in as (address, length) pairs of Python bytes
//     objects and are read in place, never retained after the call;
//   - results are int64 status codes (see status.go) or one packed []byte
//     whose first byte is the status (a returned slice is never empty, since
//     gopy's bytes() of an empty slice panics);
//   - no function returns only an error (gopy leaks the message string of
//     error-only returns on every call);
//   - every exported function recovers panics: a Go panic that reaches the
//     cgo boundary aborts the whole Python process.
//
// Clients are kept in a registry and named by int64 handles, so a handle held
// by Python after fork() is just a number that the child's fresh engine does
// not know.
package bind

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/omcache/omcache/go/client"
	"github.com/omcache/omcache/go/conn"
	"github.com/omcache/omcache/go/dist"
)

// Version is the engine's version, reported by EngineVersion.
const Version = "0.1.0"

// EngineVersion returns the engine's version string.
// entry is one registered client with the selector that places its keys.
type entry struct {
	c   *client.Client
	sel dist.Selector
}

var registry struct {
	sync.RWMutex
	next    int64
	clients map[int64]*entry
}

func lookupEntry(h int64) (*entry, error) {
	registry.RLock()
	e := registry.clients[h]
	registry.RUnlock()
	if e == nil {
		return nil, fmt.Errorf("%w: %d", errBadHandle, h)
	}
	return e, nil
}

func lookup(h int64) (*client.Client, error) {
	e, err := lookupEntry(h)
	if err != nil {
		return nil, err
	}
	return e.c, nil
}

// ClientNew creates a client from a configuration of "name=value" lines:
//
//	server=SPEC            repeated; pylibmc syntax: host, host:port,
//	                       [v6]:port, host:port:weight, /unix/path
//	weights=W,W,...        python-memcached bucket weights, one per server
//	                       (servers are then parsed the python-memcached way)
//	distribution=NAME      dist.Config.Distribution (default modula)
//	hash=NAME              key hash (default "default", one-at-a-time)
//	ketama_hash=NAME       stored, reported back (libmemcached ignores it)
//	weighted=0|1           weighted ketama
//	sort_hosts=0|1         sort servers before placing
//	behavior.NAME=VALUE    a pylibmc behavior; all are applied after the
//	                       fields above, in pylibmc's order, with
//	                       libmemcached's side effects, then the servers added
//	connect_timeout_ms=N, io_timeout_ms=N, max_idle_conns=N
//	max_item_size=N        the largest value accepted from a server
//	protocol=NAME          meta (default), text or binary (client.Options.Protocol)
//	binary_keys=0|1        keys may hold any bytes (client.Options.BinaryKeys)
//	text_multiget=0|1      multi-gets in the text protocol (client.Options.TextMultiGet)
//	tls=0|1                encrypt connections (client.Options.TLS), with
//	tls_ca_file=PATH, tls_cert_file=PATH, tls_key_file=PATH,
//	tls_server_name=NAME, tls_verify=0|1 (default 1), tls_min_version=1.2
//	username=NAME, password=SECRET  authenticate new connections (never
//	                       echoed in an error)
//
// It returns a packed result: StatusOK followed by the handle as 8
// little-endian bytes, or an error status and message.
func ClientNew(config string) (ret []byte) {
	defer recoverPacked(&ret)
	servers, cfg, opts, err := parseConfig(config)
	if err != nil {
		return packedError(err)
	}
	sel, err := dist.New(servers, cfg)
	if err != nil {
		return packedError(fmt.Errorf("%w: %w", errBadConfig, err))
	}
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr()
	}
	opts.Selector = sel
	c, err := client.New(addrs, opts)
	if err != nil {
		return packedError(fmt.Errorf("%w: %w", errBadConfig, err))
	}
	registry.Lock()
	if registry.clients == nil {
		registry.clients = make(map[int64]*entry)
	}
	registry.next++
	h := registry.next
	registry.clients[h] = &entry{c: c, sel: sel}
	registry.Unlock()
	out := make([]byte, 9)
	binary.LittleEndian.PutUint64(out[1:], uint64(h))
	return out
}

func badConfig(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadConfig}, args...)...)
}

func parseFlag(name, value string) (bool, error) {
	switch value {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, badConfig("%s must be 0 or 1, got %q", name, value)
}

// parseConfig reads ClientNew's configuration.
func parseConfig(config string) ([]dist.Server, dist.Config, client.Options, error) {
	var specs []string
	var weights []int
	var cfg dist.Config
	var opts client.Options
	behaviors := map[string]string{}
	var autoEject, tlsOn bool
	tlsOpts := conn.TLSOptions{}
	fail := func(err error) ([]dist.Server, dist.Config, client.Options, error) {
		return nil, cfg, opts, err
	}
	for _, line := range strings.Split(config, "\n") {
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return fail(badConfig("line %q is not name=value", line))
		}
		switch name {
		case "server":
			specs = append(specs, value)
		case "weights":
			for _, w := range strings.Split(value, ",") {
				n, err := strconv.Atoi(w)
				if err != nil || n < 0 || n > 1<<20 {
					return fail(badConfig("bad weight %q", w))
				}
				weights = append(weights, n)
			}
		case "distribution":
			cfg.Distribution = value
		case "hash":
			cfg.Hash = value
		case "ketama_hash":
			cfg.KetamaHash = value
		case "protocol":
			opts.Protocol = value
		case "binary_keys", "text_multiget":
			b, err := parseFlag(name, value)
			if err != nil {
				return fail(err)
			}
			if name == "binary_keys" {
				opts.BinaryKeys = b
			} else {
				opts.TextMultiGet = b
			}
		case "tls", "tls_verify":
			b, err := parseFlag(name, value)
			if err != nil {
				return fail(err)
			}
			if name == "tls" {
				tlsOn = b
			} else {
				tlsOpts.NoVerify = !b
			}
		case "tls_ca_file":
			tlsOpts.CAFile = value
		case "tls_cert_file":
			tlsOpts.CertFile = value
		case "tls_key_file":
			tlsOpts.KeyFile = value
		case "tls_server_name":
			tlsOpts.ServerName = value
		case "tls_min_version":
			tlsOpts.MinVersion = value
		case "username":
			opts.Username = value
		case "password":
			opts.Password = value
		case "weighted", "sort_hosts":
			b, err := parseFlag(name, value)
			if err != nil {
				return fail(err)
			}
			if name == "weighted" {
				cfg.Weighted = b
			} else {
				cfg.SortHosts = b
			}
		case "connect_timeout_ms", "io_timeout_ms", "max_idle_conns", "max_item_size":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || n > 1<<31 {
				return fail(badConfig("%s must be an integer from 0 to 2**31, got %q", name, value))
			}
			switch name {
			case "connect_timeout_ms":
				opts.ConnectTimeout = time.Duration(n) * time.Millisecond
			case "io_timeout_ms":
				opts.IOTimeout = time.Duration(n) * time.Millisecond
			case "max_idle_conns":
				opts.MaxIdleConnsPerServer = int(n)
			case "max_item_size":
				opts.MaxItemSize = int(n)
			}
		// Failure handling (client.Options): failover=0|1, auto_eject=0|1
		// (rebuild placement over live servers, as libmemcached's
		// auto_eject_hosts; implies failover), failure_limit=N (0: no
		// count), retry_timeout_ms, reconnect_timeout_ms, dead_timeout_ms.
		case "failover", "auto_eject":
			b, err := parseFlag(name, value)
			if err != nil {
				return fail(err)
			}
			if name == "failover" {
				opts.Failover = b
			} else {
				autoEject = b
			}
		case "failure_limit", "retry_timeout_ms", "reconnect_timeout_ms", "dead_timeout_ms":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || n > 1<<31 {
				return fail(badConfig("%s must be an integer from 0 to 2**31, got %q", name, value))
			}
			switch name {
			case "failure_limit":
				opts.FailureLimit = int(n)
			case "retry_timeout_ms":
				opts.RetryTimeout = time.Duration(n) * time.Millisecond
			case "reconnect_timeout_ms":
				opts.ReconnectTimeout = time.Duration(n) * time.Millisecond
			case "dead_timeout_ms":
				opts.DeadTimeout = time.Duration(n) * time.Millisecond
			}
		default:
			b, ok := strings.CutPrefix(name, "behavior.")
			if !ok {
				return fail(badConfig("unknown option %q", name))
			}
			behaviors[b] = value
		}
	}
	if len(specs) == 0 {
		return fail(badConfig("no servers given"))
	}
	if tlsOn {
		t, err := conn.NewTLSConfig(tlsOpts)
		if err != nil {
			return fail(fmt.Errorf("%w: %w", errBadConfig, err))
		}
		opts.TLS = t
	}
	if weights != nil && len(weights) != len(specs) {
		return fail(badConfig("%d weights for %d servers", len(weights), len(specs)))
	}
	servers := make([]dist.Server, len(specs))
	for i, spec := range specs {
		var err error
		if weights != nil {
			servers[i], err = dist.ParsePythonMemcacheSpec(spec, weights[i])
		} else {
			servers[i], err = dist.ParseSpec(spec)
		}
		if err != nil {
			return fail(fmt.Errorf("%w: %w", errBadConfig, err))
		}
	}
	// As pylibmc's Client: behaviors first, in pylibmc's fixed order (not
	// the caller's), then the servers, whose weights turn weighting on only
	// if the distribution is consistent by then.
	if err := cfg.SetBehaviors(behaviors); err != nil {
		return fail(fmt.Errorf("%w: %w", errBadConfig, err))
	}
	cfg.AddServers(servers)
	if autoEject {
		ejectCfg := cfg
		opts.Ejector = func(live []bool) (client.Selector, error) {
			return dist.NewLive(servers, ejectCfg, live)
		}
	}
	return servers, cfg, opts, nil
}

// ServerForKey returns the index of the server key maps to (in the order the
// servers were given), -1 when none, or -2 for a bad handle.
func ServerForKey(h, keyAddr, keyLen int64) (ret int64) {
	defer func() {
		if recover() != nil {
			ret = -2
		}
	}()
	e, err := lookupEntry(h)
	if err != nil {
		return -2
	}
	return int64(e.sel.Pick(bytesAt(keyAddr, keyLen)))
}

// ExplainKey says how key was placed: hash, continuum point or bucket, and
// the server (see dist.Explanation).
func ExplainKey(h, keyAddr, keyLen int64) (ret string) {
	defer func() {
		if r := recover(); r != nil {
			ret = "internal engine error"
		}
	}()
	e, err := lookupEntry(h)
	if err != nil {
		return cleanMessage(err.Error())
	}
	return cleanMessage(e.sel.Explain(bytesAt(keyAddr, keyLen)).String())
}

// ClientClose closes the client's connections and forgets the handle.
func ClientClose(h int64) (ret int64) {
	defer recoverInt(&ret)
	registry.Lock()
	e := registry.clients[h]
	delete(registry.clients, h)
	registry.Unlock()
	if e == nil {
		return result(fmt.Errorf("%w: %d", errBadHandle, h))
	}
	e.c.Close()
	return 0
}

// ClientCount returns the number of open clients (for leak tests).
func ClientCount() (ret int64) {
	defer recoverInt(&ret)
	registry.RLock()
	defer registry.RUnlock()
	return int64(len(registry.clients))
}

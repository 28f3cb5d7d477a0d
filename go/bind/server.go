package bind

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/omcache/omcache/go/memcachedtest"
)

var servers struct {
	sync.Mutex
	next int64
	m    map[int64]*memcachedtest.Server
}

func lookupServer(h int64) (*memcachedtest.Server, error) {
	servers.Lock()
	defer servers.Unlock()
	s := servers.m[h]
	if s == nil {
		return nil, fmt.Errorf("%w: embedded server %d", errBadHandle, h)
	}
	return s, nil
}

// ServerStart starts an embedded memcached-compatible server from
// "name=value" lines (addr=HOST:PORT, unix=PATH, max_bytes=N,
// item_size_max=N, version=S, tls_cert_file=PEM and tls_key_file=PEM to
// serve TLS on TCP, auth_user=NAME PASSWORD to require authentication).
// Packed result: StatusOK, the handle (u64 LE),
// then the TCP address and the unix path as length-prefixed strings.
func ServerStart(config string) (ret []byte) {
	defer recoverPacked(&ret)
	var cfg memcachedtest.Config
	var certFile, keyFile string
	for _, line := range strings.Split(config, "\n") {
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return packedError(fmt.Errorf("%w: line %q is not name=value", errBadConfig, line))
		}
		switch name {
		case "addr":
			cfg.Addr = value
		case "unix":
			cfg.UnixPath = value
		case "version":
			cfg.Version = value
		case "auth_user":
			// "auth_user=NAME PASSWORD" (never echoed in an error).
			user, pass, ok := strings.Cut(value, " ")
			if !ok || user == "" {
				return packedError(fmt.Errorf("%w: auth_user must be a user name, a space and a password", errBadConfig))
			}
			if cfg.Users == nil {
				cfg.Users = map[string]string{}
			}
			cfg.Users[user] = pass
		case "tls_cert_file":
			certFile = value
		case "tls_key_file":
			keyFile = value
		case "max_bytes", "item_size_max":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n <= 0 || n > 1<<40 {
				return packedError(fmt.Errorf("%w: %s must be a positive integer, got %q", errBadConfig, name, value))
			}
			if name == "max_bytes" {
				cfg.MaxBytes = n
			} else {
				cfg.ItemSizeMax = int(n)
			}
		default:
			return packedError(fmt.Errorf("%w: unknown server option %q", errBadConfig, name))
		}
	}
	if (certFile == "") != (keyFile == "") {
		return packedError(fmt.Errorf("%w: serving TLS needs both a certificate file and a key file", errBadConfig))
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return packedError(fmt.Errorf("%w: TLS certificate %s / key %s: %w", errBadConfig, certFile, keyFile, err))
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s, err := memcachedtest.Start(cfg)
	if err != nil {
		return packedError(fmt.Errorf("%w: %w", errBadConfig, err))
	}
	servers.Lock()
	if servers.m == nil {
		servers.m = make(map[int64]*memcachedtest.Server)
	}
	servers.next++
	h := servers.next
	servers.m[h] = s
	servers.Unlock()
	p := newPacker(StatusOK, 64)
	p.buf = binary.LittleEndian.AppendUint64(p.buf, uint64(h))
	p.str(s.Addr())
	p.str(s.UnixPath())
	return p.buf
}

// ServerStop stops an embedded server and forgets its handle.
func ServerStop(h int64) (ret int64) {
	defer recoverInt(&ret)
	servers.Lock()
	s := servers.m[h]
	delete(servers.m, h)
	servers.Unlock()
	if s == nil {
		return result(fmt.Errorf("%w: embedded server %d", errBadHandle, h))
	}
	return result(s.Close())
}

// ServerSetFault injects a fault ("delay=200ms", "stall", "close-mid-response",
// "corrupt", "refuse", "blackhole"; see memcachedtest.ParseFault), or clears
// all faults when spec is empty.
func ServerSetFault(h int64, spec string) (ret int64) {
	defer recoverInt(&ret)
	s, err := lookupServer(h)
	if err != nil {
		return result(err)
	}
	if spec == "" {
		return result(s.ClearFaults())
	}
	if err := s.SetFaultString(spec); err != nil {
		return result(fmt.Errorf("%w: %w", errBadConfig, err))
	}
	return 0
}

// ServerAdvanceClock moves the server's clock forward by ms milliseconds,
// so tests can expire items without sleeping.
func ServerAdvanceClock(h, ms int64) (ret int64) {
	defer recoverInt(&ret)
	s, err := lookupServer(h)
	if err != nil {
		return result(err)
	}
	if ms < 0 {
		return result(fmt.Errorf("%w: negative clock advance", errBadConfig))
	}
	s.AdvanceClock(time.Duration(ms) * time.Millisecond)
	return 0
}

// ServerItemCount returns the number of items the embedded server holds,
// or -1 for an unknown handle.
func ServerItemCount(h int64) (ret int64) {
	defer recoverInt(&ret)
	s, err := lookupServer(h)
	if err != nil {
		return -1
	}
	return int64(s.Len())
}

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
)

// Version is the engine's version, reported by EngineVersion.
const Version = "0.1.0"

// EngineVersion returns the engine's version string.
func EngineVersion() string { return Version }

var registry struct {
	sync.RWMutex
	next    int64
	clients map[int64]*client.Client
}

func lookup(h int64) (*client.Client, error) {
	registry.RLock()
	c := registry.clients[h]
	registry.RUnlock()
	if c == nil {
		return nil, fmt.Errorf("%w: %d", errBadHandle, h)
	}
	return c, nil
}

// ClientNew creates a client from a configuration of "name=value" lines
// (server=ADDR, repeated; connect_timeout_ms=N; io_timeout_ms=N;
// max_idle_conns=N). It returns a packed result: StatusOK followed by the
// handle as 8 little-endian bytes, or an error status and message.
func ClientNew(config string) (ret []byte) {
	defer recoverPacked(&ret)
	addrs, opts, err := parseConfig(config)
	if err != nil {
		return packedError(err)
	}
	c, err := client.New(addrs, opts)
	if err != nil {
		return packedError(fmt.Errorf("%w: %w", errBadConfig, err))
	}
	registry.Lock()
	if registry.clients == nil {
		registry.clients = make(map[int64]*client.Client)
	}
	registry.next++
	h := registry.next
	registry.clients[h] = c
	registry.Unlock()
	out := make([]byte, 9)
	binary.LittleEndian.PutUint64(out[1:], uint64(h))
	return out
}

func parseConfig(config string) ([]string, client.Options, error) {
	var addrs []string
	var opts client.Options
	for _, line := range strings.Split(config, "\n") {
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, opts, fmt.Errorf("%w: line %q is not name=value", errBadConfig, line)
		}
		switch name {
		case "server":
			addr, err := normalizeAddr(value)
			if err != nil {
				return nil, opts, err
			}
			addrs = append(addrs, addr)
		case "connect_timeout_ms", "io_timeout_ms", "max_idle_conns":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || n > 1<<31 {
				return nil, opts, fmt.Errorf("%w: %s must be an integer from 0 to 2**31, got %q", errBadConfig, name, value)
			}
			switch name {
			case "connect_timeout_ms":
				opts.ConnectTimeout = time.Duration(n) * time.Millisecond
			case "io_timeout_ms":
				opts.IOTimeout = time.Duration(n) * time.Millisecond
			case "max_idle_conns":
				opts.MaxIdleConnsPerServer = int(n)
			}
		default:
			return nil, opts, fmt.Errorf("%w: unknown option %q", errBadConfig, name)
		}
	}
	if len(addrs) == 0 {
		return nil, opts, fmt.Errorf("%w: no servers given", errBadConfig)
	}
	return addrs, opts, nil
}

// normalizeAddr accepts "host", "host:port", "[v6]:port" and "/unix/path",
// returning the form client.New expects.
func normalizeAddr(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fmt.Errorf("%w: empty server address", errBadConfig)
	case strings.HasPrefix(s, "/"):
		return s, nil
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return "", fmt.Errorf("%w: server %q: missing ]", errBadConfig, s)
		}
		rest := s[end+1:]
		if rest == "" {
			return s + ":11211", nil
		}
		if !strings.HasPrefix(rest, ":") {
			return "", fmt.Errorf("%w: server %q: expected :port after ]", errBadConfig, s)
		}
		if err := checkPort(s, rest[1:]); err != nil {
			return "", err
		}
		return s, nil
	}
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return s + ":11211", nil
	}
	if host == "" || strings.ContainsAny(host, " \t") {
		return "", fmt.Errorf("%w: server %q: bad host", errBadConfig, s)
	}
	if err := checkPort(s, port); err != nil {
		return "", err
	}
	return host + ":" + port, nil
}

func checkPort(spec, port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%w: server %q: port must be 1-65535", errBadConfig, spec)
	}
	return nil
}

// ClientClose closes the client's connections and forgets the handle.
func ClientClose(h int64) (ret int64) {
	defer recoverInt(&ret)
	registry.Lock()
	c := registry.clients[h]
	delete(registry.clients, h)
	registry.Unlock()
	if c == nil {
		return result(fmt.Errorf("%w: %d", errBadHandle, h))
	}
	c.Close()
	return 0
}

// ClientCount returns the number of open clients (for leak tests).
func ClientCount() (ret int64) {
	defer recoverInt(&ret)
	registry.RLock()
	defer registry.RUnlock()
	return int64(len(registry.clients))
}

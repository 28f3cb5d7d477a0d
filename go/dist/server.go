package dist

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultPort is memcached's port, used when a spec names none. libmemcached
// also leaves it out of ketama point names.
const DefaultPort = 11211

// maxWeight bounds weights: pylibmc passes them to libmemcached as an
// unsigned short, and python-memcached makes one bucket per unit of weight.
const maxWeight = 65535

// ErrBadSpec means that a server spec string could not be parsed; the error
// text says why.
var ErrBadSpec = errors.New("omcache: bad server spec")

// ErrNoServers means that a selector was asked for with an empty server list.
var ErrNoServers = errors.New("omcache: no servers")

// Server is one memcached server as the distribution sees it.
type Server struct {
	// Host is the host name or address exactly as given (an IPv6 address
	// without its brackets), or the socket path when Unix is set. Ketama
	// hashes this text: "localhost" and "127.0.0.1" place keys differently.
	Host string
	// Port is the TCP port; 0 for a unix socket, as in libmemcached.
	Port int
	// Weight is the server's relative weight. libmemcached treats anything
	// below 1 as 1; python-memcached gives a server Weight buckets.
	Weight int
	// Unix marks a unix domain socket.
	Unix bool
}

// Addr returns the address in the form go/client dials: "host:port",
// "[v6addr]:port", or the socket path.
func (s Server) Addr() string {
	if s.Unix {
		return s.Host
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// String returns the server as a pylibmc spec that ParseSpec reads back:
// the address, with ":weight" appended when the weight is not 1 (unix
// sockets cannot carry a weight in pylibmc's syntax, so theirs is left out;
// a host named "udp" is bracketed so that it does not read as a UDP spec).
func (s Server) String() string {
	addr := s.Addr()
	if !s.Unix && s.Host == "udp" {
		// "udp:11211" would read as a UDP spec; pylibmc takes brackets
		// around any host.
		addr = "[udp]:" + strconv.Itoa(s.Port)
	}
	if s.Unix || s.Weight == 1 {
		return addr
	}
	return addr + ":" + strconv.Itoa(s.Weight)
}

// ParseSpec parses one server spec the way pylibmc 1.6 does:
//
//	host                  port 11211, weight 1
//	host:port
//	host:port:weight
//	[v6addr]              also [v6addr]:port and [v6addr]:port:weight
//	/path/to/socket       a unix socket (anything starting with "/")
//
// Unlike pylibmc it refuses, with an error wrapping ErrBadSpec, what would
// otherwise connect somewhere unintended: an empty host, a bare IPv6 address,
// port 0 (libmemcached would silently use 11211) or above 65535 (pylibmc
// would wrap it), white space or control characters, and "udp:" specs
// (libmemcached 1.1.4 no longer supports UDP). Socket paths may contain
// spaces. A weight of 0 becomes 1, as libmemcached does.
func ParseSpec(spec string) (Server, error) {
	bad := func(why string) (Server, error) {
		return Server{}, fmt.Errorf("%w %q: %s", ErrBadSpec, spec, why)
	}
	if spec == "" {
		return bad("empty")
	}
	unix := strings.HasPrefix(spec, "/")
	for _, r := range spec {
		if r < ' ' || r == 0x7f || (r == ' ' && !unix) {
			return bad("white space or control character")
		}
	}
	if unix {
		return Server{Host: spec, Weight: 1, Unix: true}, nil
	}
	if strings.HasPrefix(spec, "udp:") {
		return bad("UDP is not supported (libmemcached 1.1.4 dropped it)")
	}
	host, rest := spec, ""
	if strings.HasPrefix(spec, "[") {
		end := strings.Index(spec, "]")
		if end < 0 {
			return bad("missing ']' after IPv6 address")
		}
		host, rest = spec[1:end], spec[end+1:]
		if rest != "" && !strings.HasPrefix(rest, ":") {
			return bad("expected ':port' after ']'")
		}
		if strings.ContainsAny(host, "[]") || host == "" {
			return bad("bad bracketed address")
		}
		rest = strings.TrimPrefix(rest, ":")
		if rest == "" && strings.HasSuffix(spec, ":") {
			return bad("empty port")
		}
	} else if i := strings.IndexByte(spec, ':'); i >= 0 {
		host, rest = spec[:i], spec[i+1:]
		if host == "" {
			return bad("empty host (IPv6 addresses must be written in brackets: [::1]:11211)")
		}
		if rest == "" {
			return bad("empty port")
		}
	}
	if strings.ContainsAny(host, "/[]") {
		return bad("bad character in host")
	}
	srv := Server{Host: host, Port: DefaultPort, Weight: 1}
	if rest == "" {
		return srv, nil
	}
	portText, weightText, hasWeight := strings.Cut(rest, ":")
	port, err := parseDecimal(portText, 1, 65535)
	if err != nil {
		return bad("port " + err.Error())
	}
	srv.Port = port
	if hasWeight {
		w, err := parseDecimal(weightText, 0, maxWeight)
		if err != nil {
			return bad("weight " + err.Error())
		}
		srv.Weight = max(w, 1)
	}
	return srv, nil
}

// ParseSpecs parses a list of pylibmc server specs (see ParseSpec). The error
// names the first bad spec and its position; an empty list gives ErrNoServers.
func ParseSpecs(specs []string) ([]Server, error) {
	if len(specs) == 0 {
		return nil, ErrNoServers
	}
	out := make([]Server, len(specs))
	for i, s := range specs {
		srv, err := ParseSpec(s)
		if err != nil {
			return nil, fmt.Errorf("server %d: %w", i, err)
		}
		out[i] = srv
	}
	return out, nil
}

// ParsePythonMemcacheSpec parses a server string the way python-memcached
// 1.62 does ("host", "host:port", "inet:host:port", "inet6:[v6addr]:port",
// "unix:/path"), with the weight that python-memcached takes from a
// (spec, weight) tuple. The weight may be 0: python-memcached then gives the
// server no buckets, so no key goes to it.
func ParsePythonMemcacheSpec(spec string, weight int) (Server, error) {
	bad := func(why string) (Server, error) {
		return Server{}, fmt.Errorf("%w %q: %s", ErrBadSpec, spec, why)
	}
	if weight < 0 || weight > maxWeight {
		return bad("weight out of range")
	}
	if path, ok := strings.CutPrefix(spec, "unix:"); ok {
		if path == "" {
			return bad("empty socket path")
		}
		return Server{Host: path, Weight: weight, Unix: true}, nil
	}
	host, port := "", ""
	if rest, ok := strings.CutPrefix(spec, "inet6:"); ok {
		if !strings.HasPrefix(rest, "[") {
			return bad("inet6 address must be in brackets")
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("missing ']'")
		}
		host, port = rest[1:end], rest[end+1:]
		if strings.ContainsAny(host, "[]") || host == "" {
			return bad("bad bracketed address")
		}
		if port != "" {
			var ok bool
			if port, ok = strings.CutPrefix(port, ":"); !ok {
				return bad("expected ':port' after ']'")
			}
		}
	} else {
		rest := strings.TrimPrefix(spec, "inet:")
		var hasPort bool
		host, port, hasPort = strings.Cut(rest, ":")
		if hasPort && port == "" {
			return bad("empty port")
		}
		if host == "" || strings.Contains(port, ":") {
			return bad("expected host or host:port")
		}
	}
	for _, r := range host {
		if r <= ' ' || r == 0x7f {
			return bad("white space or control character in host")
		}
	}
	srv := Server{Host: host, Port: DefaultPort, Weight: weight}
	if port != "" {
		p, err := parseDecimal(port, 1, 65535)
		if err != nil {
			return bad("port " + err.Error())
		}
		srv.Port = p
	}
	return srv, nil
}

// parseDecimal accepts only ASCII digits, so "+1", " 1" and "1_0" (which
// Python's int() takes) are refused rather than guessed at.
func parseDecimal(s string, lo, hi int) (int, error) {
	if s == "" {
		return 0, errors.New("is empty")
	}
	if len(s) > 9 {
		return 0, fmt.Errorf("%q is out of range %d..%d", s, lo, hi)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
		n = n*10 + int(c-'0')
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range %d..%d", n, lo, hi)
	}
	return n, nil
}

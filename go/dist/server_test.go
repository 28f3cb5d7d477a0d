package dist

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSpecAcceptsPylibmcForms(t *testing.T) {
	tests := []struct {
		spec string
		want Server
		addr string
	}{
		{"127.0.0.1", Server{Host: "127.0.0.1", Port: 11211, Weight: 1}, "127.0.0.1:11211"},
		{"cache1", Server{Host: "cache1", Port: 11211, Weight: 1}, "cache1:11211"},
		{"localhost:22122", Server{Host: "localhost", Port: 22122, Weight: 1}, "localhost:22122"},
		{"127.0.0.1:1234:2", Server{Host: "127.0.0.1", Port: 1234, Weight: 2}, "127.0.0.1:1234"},
		{"h:1:0", Server{Host: "h", Port: 1, Weight: 1}, "h:1"},
		{"h:65535:65535", Server{Host: "h", Port: 65535, Weight: 65535}, "h:65535"},
		{"[::1]", Server{Host: "::1", Port: 11211, Weight: 1}, "[::1]:11211"},
		{"[::1]:22122", Server{Host: "::1", Port: 22122, Weight: 1}, "[::1]:22122"},
		{"[fe80::1%lo]:22122:3", Server{Host: "fe80::1%lo", Port: 22122, Weight: 3}, "[fe80::1%lo]:22122"},
		{"/var/run/memcached.sock", Server{Host: "/var/run/memcached.sock", Weight: 1, Unix: true}, "/var/run/memcached.sock"},
		{"/tmp/with space/m.sock", Server{Host: "/tmp/with space/m.sock", Weight: 1, Unix: true}, "/tmp/with space/m.sock"},
		{"/tmp/m.sock:2", Server{Host: "/tmp/m.sock:2", Weight: 1, Unix: true}, "/tmp/m.sock:2"},
		{"héllo.example:11212", Server{Host: "héllo.example", Port: 11212, Weight: 1}, "héllo.example:11212"},
		{"unix:/run/mc.sock", Server{Host: "/run/mc.sock", Weight: 1, Unix: true}, "/run/mc.sock"},
		{"unix:///run/mc.sock", Server{Host: "/run/mc.sock", Weight: 1, Unix: true}, "/run/mc.sock"},
		{"unix:11212", Server{Host: "unix", Port: 11212, Weight: 1}, "unix:11212"},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.spec)
		if err != nil || got != tt.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
			continue
		}
		if got.Addr() != tt.addr {
			t.Errorf("ParseSpec(%q).Addr() = %q, want %q", tt.spec, got.Addr(), tt.addr)
		}
		back, err := ParseSpec(got.String())
		if err != nil || back != got {
			t.Errorf("ParseSpec(%q.String() = %q) = %+v, %v", tt.spec, got.String(), back, err)
		}
	}
}

func TestParseSpecRejectsBadSpecsClearly(t *testing.T) {
	tests := []struct{ spec, why string }{
		{"", "empty"},
		{"unix:/", "needs a path"},
		{"unix:///", "needs a path"},
		{"unix:relative.sock", "not a decimal"},
		{"::1", "brackets"},
		{":11211", "empty host"},
		{"host:", "empty port"},
		{"host:0", "out of range"},
		{"host:65536", "out of range"},
		{"host:99999999999999", "out of range"},
		{"host:+1", "not a decimal"},
		{"host:12a", "not a decimal"},
		{"host:1:-1", "weight"},
		{"host:1:65536", "weight"},
		{"host:1:2:3", "weight"},
		{"host:1:", "weight"},
		{" host", "white space"},
		{"host :1", "white space"},
		{"host\n", "control"},
		{"/sock\x00", "control"},
		{"udp:127.0.0.1", "UDP"},
		{"[::1", "missing ']'"},
		{"[::1]x", "expected ':port'"},
		{"[::1]:", "empty port"},
		{"[]:1", "bracketed"},
		{"[a[b]:1", "bracketed"},
		{"a]b:1", "bad character"},
		{"a/b:1", "bad character"},
	}
	for _, tt := range tests {
		_, err := ParseSpec(tt.spec)
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("ParseSpec(%q) error %v, want ErrBadSpec mentioning %q", tt.spec, err, tt.why)
		}
	}
}

func TestParseSpecsNamesTheBadOne(t *testing.T) {
	if _, err := ParseSpecs(nil); !errors.Is(err, ErrNoServers) {
		t.Errorf("ParseSpecs(nil) error %v", err)
	}
	_, err := ParseSpecs([]string{"a:1", "b:x", "c"})
	if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), "server 1") {
		t.Errorf("error %v does not name server 1", err)
	}
	got, err := ParseSpecs([]string{"a:1", "[::1]:2:3", "/s"})
	if err != nil || len(got) != 3 || got[1].Weight != 3 || !got[2].Unix {
		t.Errorf("ParseSpecs = %+v, %v", got, err)
	}
}

func TestParsePythonMemcacheSpec(t *testing.T) {
	tests := []struct {
		spec   string
		weight int
		want   Server
		bad    string
	}{
		{"127.0.0.1:11212", 1, Server{Host: "127.0.0.1", Port: 11212, Weight: 1}, ""},
		{"cache", 3, Server{Host: "cache", Port: 11211, Weight: 3}, ""},
		{"inet:cache:1", 1, Server{Host: "cache", Port: 1, Weight: 1}, ""},
		{"inet6:[::1]:22", 2, Server{Host: "::1", Port: 22, Weight: 2}, ""},
		{"inet6:[::1]", 1, Server{Host: "::1", Port: 11211, Weight: 1}, ""},
		{"unix:/tmp/m.sock", 0, Server{Host: "/tmp/m.sock", Weight: 0, Unix: true}, ""},
		{"unix:", 1, Server{}, "empty socket path"},
		{"::1", 1, Server{}, "host or host:port"},
		{"inet6:::1", 1, Server{}, "brackets"},
		{"inet6:[::1]x", 1, Server{}, "':port'"},
		{"h:x", 1, Server{}, "not a decimal"},
		{"h:", 1, Server{}, "empty port"},
		{"h", -1, Server{}, "weight"},
		{"a b", 1, Server{}, "white space"},
	}
	for _, tt := range tests {
		got, err := ParsePythonMemcacheSpec(tt.spec, tt.weight)
		if tt.bad != "" {
			if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("ParsePythonMemcacheSpec(%q) error %v, want one mentioning %q", tt.spec, err, tt.bad)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePythonMemcacheSpec(%q, %d) = %+v, %v; want %+v", tt.spec, tt.weight, got, err, tt.want)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"h", "h:1", "h:1:2", "[::1]:3:4", "/s", "unix:/s", "unix:x", "udp:x", ":", "[", "[]", "a:b:c:d", "h:0012"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSpec(spec)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("ParseSpec(%q): error %v is not ErrBadSpec", spec, err)
			}
			return
		}
		if s.Host == "" || s.Weight < 1 || (!s.Unix && (s.Port < 1 || s.Port > 65535)) {
			t.Fatalf("ParseSpec(%q) = %+v", spec, s)
		}
		back, err := ParseSpec(s.String())
		if err != nil || back != s {
			t.Fatalf("ParseSpec(%q) = %+v; its String %q parses as %+v, %v", spec, s, s.String(), back, err)
		}
		if _, err := New([]Server{s, s}, Config{Distribution: Ketama}); err != nil {
			t.Fatalf("New over %+v: %v", s, err)
		}
	})
}

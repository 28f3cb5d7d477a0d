package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/omcache/omcache/go/proto/codecs"
)

// TestBinaryKeysAcceptAnyBytes checks that Options.BinaryKeys lets every
// command carry keys with spaces, control characters and NULs (as pylibmc's
// binary mode does), still bounded to 1..250 bytes, in the protocols that
// can carry them: binary as they are, meta base64-encoded (where memcached
// takes at most 250 bytes of base64, so 186 bytes of key); the text
// protocol refuses them with ErrMalformedKey before sending anything. The
// default client refuses them in every protocol.
func TestBinaryKeysAcceptAnyBytes(t *testing.T) {
	srv, _ := newTestClient(t)
	addr := srv.Servers()[0]
	for _, proto := range codecs.Names() {
		t.Run(proto, func(t *testing.T) {
			bin := newClientFor(t, []string{addr}, Options{Protocol: proto, BinaryKeys: true})
			deflt := newClientFor(t, []string{addr}, Options{Protocol: proto})
			tests := []struct {
				key    string
				binary map[string]bool // accepted with BinaryKeys, per protocol
				deflt  bool
			}{
				{"plain", map[string]bool{"meta": true, "text": true, "binary": true}, true},
				{"a b", map[string]bool{"meta": true, "binary": true}, false},
				{"\x00\x01", map[string]bool{"meta": true, "binary": true}, false},
				{"line\r\nbreak", map[string]bool{"meta": true, "binary": true}, false},
				{"\x7f", map[string]bool{"meta": true, "binary": true}, false},
				{"utf8 \xc3\xa9 and \xff", map[string]bool{"meta": true, "binary": true}, false},
				{strings.Repeat("k", 250), map[string]bool{"meta": true, "text": true, "binary": true}, true},
				{strings.Repeat(" ", 186), map[string]bool{"meta": true, "binary": true}, false},
				// 187 bytes are 252 of base64: over memcached's key limit.
				{strings.Repeat(" ", 187), map[string]bool{"binary": true}, false},
				{strings.Repeat(" ", 250), map[string]bool{"binary": true}, false},
				{strings.Repeat("k", 251), nil, false},
				{"", nil, false},
			}
			for _, tt := range tests {
				key := []byte(tt.key)
				want := tt.binary[proto]
				err := bin.Set(&Item{Key: key, Value: []byte("v")})
				if ok := err == nil; ok != want {
					t.Errorf("BinaryKeys Set(%q): %v", tt.key, err)
				}
				if !want && !errors.Is(err, ErrMalformedKey) {
					t.Errorf("BinaryKeys Set(%q) = %v, want ErrMalformedKey", tt.key, err)
				}
				if want {
					it, err := bin.Get(key)
					if err != nil || string(it.Value) != "v" {
						t.Errorf("BinaryKeys Get(%q) = %v, %v", tt.key, it, err)
					}
					items, errs := bin.GetMulti([][]byte{key, []byte("other")})
					if errs[0] != nil || string(items[0].Value) != "v" {
						t.Errorf("BinaryKeys GetMulti(%q) = %v, %v", tt.key, items[0], errs[0])
					}
					if err := bin.Touch(key, 100); err != nil {
						t.Errorf("BinaryKeys Touch(%q): %v", tt.key, err)
					}
					if n, err := bin.Incr(key, 1, 0, 0, false); !errors.Is(err, ErrDeltaBadValue) {
						t.Errorf("BinaryKeys Incr(%q) of a non-number: %d, %v", tt.key, n, err)
					}
					if errs := bin.DeleteMulti([][]byte{key}); errs[0] != nil {
						t.Errorf("BinaryKeys DeleteMulti(%q): %v", tt.key, errs[0])
					}
					if err := bin.Delete(key); !errors.Is(err, ErrCacheMiss) {
						t.Errorf("BinaryKeys Delete(%q) after DeleteMulti: %v", tt.key, err)
					}
				} else if _, err := bin.Get(key); !errors.Is(err, ErrMalformedKey) {
					t.Errorf("BinaryKeys Get(%q) = %v, want ErrMalformedKey", tt.key, err)
				}
				err = deflt.Set(&Item{Key: key, Value: []byte("v")})
				if ok := err == nil; ok != tt.deflt || !ok && !errors.Is(err, ErrMalformedKey) {
					t.Errorf("default Set(%q): %v", tt.key, err)
				}
			}
			// The connection is still good: nothing above broke it.
			if err := bin.Set(&Item{Key: []byte("after"), Value: []byte("v")}); err != nil {
				t.Fatalf("after the keys: %v", err)
			}
		})
	}
}

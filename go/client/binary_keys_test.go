package client

import (
	"errors"
	"strings"
	"testing"
)

// TestBinaryKeysAcceptAnyBytes checks that Options.BinaryKeys lets every
// command carry keys with spaces, control characters and NULs (as pylibmc's
// binary mode does), still bounded to 1..250 bytes, while the default
// client refuses them.
func TestBinaryKeysAcceptAnyBytes(t *testing.T) {
	srv, _ := newTestClient(t)
	addr := srv.Servers()[0]
	bin := newClientFor(t, []string{addr}, Options{BinaryKeys: true})
	tests := []struct {
		key    string
		binary bool // accepted with BinaryKeys
		deflt  bool
	}{
		{"plain", true, true},
		{"a b", true, false},
		{"\x00\x01", true, false},
		{"line\r\nbreak", true, false},
		{"\x7f", true, false},
		{strings.Repeat("k", 250), true, true},
		{strings.Repeat(" ", 250), true, false},
		{strings.Repeat("k", 251), false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		key := []byte(tt.key)
		err := bin.Set(&Item{Key: key, Value: []byte("v")})
		if ok := err == nil; ok != tt.binary {
			t.Errorf("BinaryKeys Set(%q): %v", tt.key, err)
		}
		if !tt.binary && !errors.Is(err, ErrMalformedKey) {
			t.Errorf("BinaryKeys Set(%q) = %v, want ErrMalformedKey", tt.key, err)
		}
		if tt.binary {
			it, err := bin.Get(key)
			if err != nil || string(it.Value) != "v" {
				t.Errorf("BinaryKeys Get(%q) = %v, %v", tt.key, it, err)
			}
			items, errs := bin.GetMulti([][]byte{key})
			if errs[0] != nil || string(items[0].Value) != "v" {
				t.Errorf("BinaryKeys GetMulti(%q) = %v, %v", tt.key, items[0], errs[0])
			}
			if err := bin.Touch(key, 100); err != nil {
				t.Errorf("BinaryKeys Touch(%q): %v", tt.key, err)
			}
			if err := bin.Delete(key); err != nil {
				t.Errorf("BinaryKeys Delete(%q): %v", tt.key, err)
			}
		}
		err = srv.Set(&Item{Key: key, Value: []byte("v")})
		if ok := err == nil; ok != tt.deflt {
			t.Errorf("default Set(%q): %v", tt.key, err)
		}
	}
}

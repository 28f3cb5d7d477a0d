package client

import (
	"errors"
	"testing"
)

func TestSetGetDelete(t *testing.T) {
	c, _ := newTestClient(t)
	if _, err := c.Get([]byte("k")); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("Get missing: %v", err)
	}
	if err := c.Set(&Item{Key: []byte("k"), Value: []byte("v1"), Flags: 0xdeadbeef}); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get([]byte("k"))
	if err != nil || string(it.Value) != "v1" || it.Flags != 0xdeadbeef || it.CAS == 0 || string(it.Key) != "k" {
		t.Fatalf("Get: %+v %v", it, err)
	}
	if err := c.Delete([]byte("k")); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete([]byte("k")); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := c.Get([]byte("k")); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("Get deleted: %v", err)
	}
}

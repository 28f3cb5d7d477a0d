package conn

import (
	"net"
	"sync"
	"testing"
)

type recorder struct {
	mu   sync.Mutex
	open map[int]bool
	log  []string
}

func (r *recorder) SocketOpened(fd int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open[fd] = true
}

func (r *recorder) SocketClosed(fd int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open[fd] {
		r.log = append(r.log, "closed a socket never reported open")
	}
	delete(r.open, fd)
}

func TestSocketObserverSeesOpenAndClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	rec := &recorder{open: map[int]bool{}}
	SetSocketObserver(rec)
	defer SetSocketObserver(nil)

	c, err := Dial(ln.Addr().String(), testOpts)
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	n := len(rec.open)
	rec.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d sockets reported open after Dial, want 1", n)
	}
	c.Close()
	// a refused connect opens and closes its socket too
	refused, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := refused.Addr().String()
	refused.Close()
	if _, err := Dial(addr, testOpts); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.open) != 0 || len(rec.log) != 0 {
		t.Fatalf("open after close: %v, log %v", rec.open, rec.log)
	}
}

package memcachedtest

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestConcurrentClients runs text, meta and binary clients against one
// counter and their own keys at once (run with -race), while another
// goroutine reads statistics and flips a harmless fault.
func TestConcurrentClients(t *testing.T) {
	s := startServer(t, Config{MaxBytes: 1 << 20})
	dialServer(t, s).do("set ctr 0 0 1\r\n0\r\n", "STORED")
	const workers, rounds = 6, 150
	var wg sync.WaitGroup
	errs := make(chan error, workers*3)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text, bin := dialServer(t, s), dialServer(t, s)
			for r := range rounds {
				key := fmt.Sprintf("w%d-%d", i, r%10)
				val := strconv.Itoa(r)
				text.send("incr ctr 1\r\nset " + key + " 0 0 " + strconv.Itoa(len(val)) + "\r\n" + val + "\r\n" +
					"ma ctr\r\nmg " + key + " v\r\n")
				if _, err := strconv.ParseUint(text.line(), 10, 64); err != nil {
					errs <- fmt.Errorf("incr: %v", err)
					return
				}
				if l := text.line(); l != "STORED" {
					errs <- fmt.Errorf("set: %q", l)
					return
				}
				if l := text.line(); l != "HD" {
					errs <- fmt.Errorf("ma: %q", l)
					return
				}
				// The key may have been evicted by other workers, never changed.
				switch l := text.line(); l {
				case "EN":
				case "VA " + strconv.Itoa(len(val)):
					if got := text.line(); got != val {
						errs <- fmt.Errorf("mg %s = %q, want %q", key, got, val)
						return
					}
				default:
					errs <- fmt.Errorf("mg: %q", l)
					return
				}
				bin.sendBin(binReq{opcode: opIncrement, key: "ctr", extras: deltaExtras(1, 0, 0xffffffff), opaque: uint32(r)})
				if p := bin.readBin(); p.status != statusOK || p.opaque != uint32(r) {
					errs <- fmt.Errorf("binary incr: %v", p)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var side sync.WaitGroup
	side.Add(1)
	go func() {
		defer side.Done()
		w := dialServer(t, s)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Stats()
			s.SetFault(Fault{Delay: time.Nanosecond})
			s.ClearFaults()
			w.send("stats items\r\n")
			for w.line() != "END" {
			}
		}
	}()
	wg.Wait()
	close(stop)
	side.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	w := dialServer(t, s)
	w.send("get ctr\r\n")
	w.line()
	v, _ := strconv.Atoi(w.line())
	if want := workers * rounds * 3; v != want {
		t.Fatalf("counter %d after %d increments", v, want)
	}
}

func TestConcurrentStoresKeepAccounting(t *testing.T) {
	s := startServer(t, Config{MaxBytes: 64 << 10})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := dialServer(t, s)
			var reqs []binReq
			for r := range 300 {
				reqs = append(reqs, binReq{opcode: opSetQ, key: fmt.Sprintf("k%d-%d", i, r),
					value: make([]byte, 100+r), extras: setExtras(uint32(r), 0)})
			}
			w.sendBin(append(reqs, binReq{opcode: opNoop})...)
			if p := w.readBin(); p.opcode != opNoop {
				t.Errorf("quiet sets answered: %v", p)
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	var sum int64
	s.store.mu.Lock()
	for it := s.store.head; it != nil; it = it.next {
		sum += it.size
	}
	n := len(s.store.items)
	s.store.mu.Unlock()
	if st.Bytes != sum || st.Bytes > 64<<10 || int64(n) != st.CurrItems || st.TotalItems != 1200 ||
		st.Evictions != 1200-st.CurrItems {
		t.Fatalf("stats %+v; items sum to %d bytes in %d items", st, sum, n)
	}
}

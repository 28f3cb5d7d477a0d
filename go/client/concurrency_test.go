package client

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/omcache/omcache/go/internal/mctest"
)

// Many goroutines share one client over two servers, mixing single and
// multi-key commands with a small idle pool, so connections are constantly
// borrowed, returned, dialled and dropped. Run with -race.
func TestManyGoroutinesShareOneClient(t *testing.T) {
	a := mctest.Start(t, mctest.Options{})
	b := mctest.Start(t, mctest.Options{})
	c := newClientFor(t, []string{a.Addr, b.Addr}, Options{MaxIdleConnsPerServer: 3})
	const workers, rounds = 24, 60
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := []byte(fmt.Sprintf("own-%d", w))
			for r := 0; r < rounds; r++ {
				v := []byte(strconv.Itoa(r))
				if err := c.Set(&Item{Key: own, Value: v, Flags: uint32(w)}); err != nil {
					errc <- err
					return
				}
				it, err := c.Get(own)
				if err != nil || string(it.Value) != string(v) || it.Flags != uint32(w) {
					errc <- fmt.Errorf("worker %d round %d: Get %+v %v", w, r, it, err)
					return
				}
				if _, err := c.Incr([]byte("shared-counter"), 1, 1, 0, true); err != nil {
					errc <- err
					return
				}
				keys := [][]byte{own, []byte("shared-counter"), []byte("missing")}
				items, errs := c.GetMulti(keys)
				if errs[0] != nil || string(items[0].Value) != string(v) || errs[1] != nil || !errors.Is(errs[2], ErrCacheMiss) {
					errc <- fmt.Errorf("worker %d round %d: GetMulti %v", w, r, errs)
					return
				}
				if r%10 == 0 {
					if errs := c.SetMulti([]*Item{{Key: []byte("m" + strconv.Itoa(w)), Value: v}}); errs[0] != nil {
						errc <- errs[0]
						return
					}
					c.Noop()
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	v, err := c.Incr([]byte("shared-counter"), 0, 0, 0, false)
	// The first Incr creates the counter at 1 instead of adding.
	if want := uint64(workers * rounds); err != nil || v != want {
		t.Fatalf("shared counter %d, %v; want %d", v, err, want)
	}
}

package client

import (
	"fmt"
	"sync"

	"github.com/omcache/omcache/go/proto"
)

// eachServer runs f for every server concurrently and returns its errors
// aligned with Servers(). A server the client is avoiding (dead, or in the
// back-off after a failure) gets its *ServerDownError without f running.
func (c *Client) eachServer(f func(si int) error) []error {
	errs := make([]error, len(c.servers))
	var wg sync.WaitGroup
	for si := range c.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				// See runGroup: a panic must not escape a goroutine.
				if p := recover(); p != nil {
					errs[si] = fmt.Errorf("%w: internal error: %v", ErrProtocol, p)
				}
			}()
			if errs[si] = c.admit(si); errs[si] == nil {
				errs[si] = f(si)
			}
		}()
	}
	wg.Wait()
	return errs
}

// onEach runs req on every server concurrently (see eachServer); res, if
// not nil, receives each server's result.
func (c *Client) onEach(op proto.Op, key []byte, arg uint64, res []result) []error {
	return c.eachServer(func(si int) error {
		req := request{Request: proto.Request{Op: op, Key: key, Exp: uint32(arg), Delta: arg}}
		var r result
		err := c.doOn(si, &req, &r)
		if res != nil {
			res[si] = r
		}
		if err != nil {
			return err
		}
		return r.err
	})
}

// FlushAll invalidates every item on every server, after delay seconds if
// delay is nonzero. The result is aligned with Servers().
func (c *Client) FlushAll(delay uint32) []error {
	return c.onEach(proto.OpFlush, nil, uint64(delay), nil)
}

// Noop asks every server for the cheapest answer its protocol has (a NOOP,
// a meta mn, a text version): a check that each is reachable and
// answering. The result is aligned with Servers().
func (c *Client) Noop() []error {
	return c.onEach(proto.OpNoop, nil, 0, nil)
}

// Verbosity sets every server's logging level. The result is aligned with
// Servers().
func (c *Client) Verbosity(level uint32) []error {
	return c.onEach(proto.OpVerbosity, nil, uint64(level), nil)
}

// Version returns each server's version string ("1.6.18"), aligned with
// Servers(); a server that failed has "" and its error.
func (c *Client) Version() ([]string, []error) {
	res := make([]result, len(c.servers))
	errs := c.onEach(proto.OpVersion, nil, 0, res)
	versions := make([]string, len(c.servers))
	for i, r := range res {
		versions[i] = string(r.value)
	}
	return versions, errs
}

// Stats returns each server's statistics for group ("" for the general
// ones, or "items", "slabs", "settings", "sizes", "conns"...), aligned with
// Servers(). An unknown group gives a *ServerError (ErrServerError). An
// answer of more than 65536 statistics or 8 MiB is cut with ErrProtocol.
func (c *Client) Stats(group string) ([]map[string]string, []error) {
	ordered, errs := c.StatsInOrder(group)
	stats := make([]map[string]string, len(ordered))
	for i, list := range ordered {
		if list == nil {
			continue
		}
		m := make(map[string]string, len(list))
		for _, st := range list {
			m[st.Name] = st.Value
		}
		stats[i] = m
	}
	return stats, errs
}

// Stat is one statistic as a server sent it.
type Stat struct {
	Name, Value string
}

// StatsInOrder is Stats with each server's statistics in the order the
// server sent them (memcached's own order), for output that people read.
func (c *Client) StatsInOrder(group string) ([][]Stat, []error) {
	res := make([]result, len(c.servers))
	errs := c.onEach(proto.OpStats, []byte(group), 0, res)
	stats := make([][]Stat, len(c.servers))
	for i, r := range res {
		stats[i] = r.stats
	}
	return stats, errs
}

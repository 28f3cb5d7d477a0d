package client

import (
	"errors"
	"fmt"
	"sync"

	"github.com/omcache/omcache/go/binprot"
	"github.com/omcache/omcache/go/conn"
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

// FlushAll invalidates every item on every server, after delay seconds if
// delay is nonzero. The result is aligned with Servers().
func (c *Client) FlushAll(delay uint32) []error {
	return c.eachServer(func(si int) error {
		var res result
		if err := c.doOn(si, &request{op: binprot.OpFlush, exp: delay}, &res); err != nil {
			return err
		}
		return res.err
	})
}

// Noop sends a NOOP to every server: a cheap check that each is reachable
// and answering. The result is aligned with Servers().
func (c *Client) Noop() []error {
	return c.eachServer(func(si int) error {
		var res result
		if err := c.doOn(si, &request{op: binprot.OpNoop}, &res); err != nil {
			return err
		}
		return res.err
	})
}

// Version returns each server's version string ("1.6.18"), aligned with
// Servers(); a server that failed has "" and its error.
func (c *Client) Version() ([]string, []error) {
	versions := make([]string, len(c.servers))
	errs := c.eachServer(func(si int) error {
		var res result
		if err := c.doOn(si, &request{op: binprot.OpVersion}, &res); err != nil {
			return err
		}
		versions[si] = string(res.value)
		return res.err
	})
	return versions, errs
}

// Stats returns each server's statistics for group ("" for the general
// ones, or "items", "slabs", "settings", "sizes", "conns"...), aligned with
// Servers(). An unknown group gives a *ServerError (ErrServerError).
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
	stats := make([][]Stat, len(c.servers))
	errs := c.eachServer(func(si int) error {
		s := c.servers[si]
		epoch := s.h.epoch.Load()
		for attempt := 0; ; attempt++ {
			cn, pooled, err := c.get(s, false)
			if err != nil {
				c.record(si, epoch, err)
				return err
			}
			m, err := statsExchange(cn, group)
			s.put(cn)
			if err != nil && pooled && attempt == 0 && !cn.Received() && staleConnError(err) {
				s.dropIdle()
				continue
			}
			var se *ServerError
			if errors.As(err, &se) {
				c.record(si, epoch, nil) // the server answered
			} else {
				c.record(si, epoch, err)
			}
			stats[si] = m
			return err
		}
	})
	return stats, errs
}

// statsExchange sends STAT and collects the key/value responses that follow
// until the one with an empty key that ends them.
func statsExchange(cn *conn.Conn, group string) ([]Stat, error) {
	if err := cn.Send(binprot.AppendKeyOnly(cn.Buffer(), binprot.OpStat, []byte(group), 0, 0)); err != nil {
		return nil, transportError(err)
	}
	m := []Stat{}
	for {
		r, err := cn.Recv()
		if err != nil {
			return nil, transportError(err)
		}
		if r.Opcode != binprot.OpStat {
			cn.Close()
			return nil, protocolError(cn.Addr(), "%v response to STAT", r.Opcode)
		}
		if r.Status != binprot.StatusOK {
			// An error ends the stream too. Its status says little more
			// than "no such group" (memcached answers KEY_ENOENT), so it
			// is reported as the server's refusal, not as a cache miss.
			return nil, &ServerError{Status: r.Status, Message: string(r.Value)}
		}
		if len(r.Key) == 0 {
			return m, nil
		}
		m = append(m, Stat{string(r.Key), string(r.Value)})
	}
}

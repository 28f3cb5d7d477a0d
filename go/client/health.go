package client

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omcache/omcache/go/proto"
)

// Failure detection and failover.
//
// A failure is an exchange with a server that did not complete: the
// connect was refused or timed out, the connection was reset or closed, the
// I/O timed out, or the server sent bytes that are not a valid answer
// (ErrConnection, ErrTimeout, ErrProtocol). A status the server answered (a
// miss, NOT_STORED, E2BIG, out of memory...) is not a failure: the server is
// working.
//
// Each server has a health record. Its first failure makes it Failing; after
// each failure below FailureLimit the server is left alone for RetryTimeout
// (calls for it fail fast with ErrServerDown), then calls go to it again and
// one success makes it Healthy. FailureLimit consecutive failures, or a
// failure DeadTimeout or more after the first one of the streak, make it
// Dead: its keys then go to live servers (Failover) or fail fast
// (ErrServerDead). A dead server is probed in the background (connect and
// NOOP) every ReconnectTimeout, started by a timer, so also while the client
// makes no calls; the first probe that succeeds makes it Healthy and its
// keys return. No call ever waits for a probe. The timer runs only while a
// server is dead and stops at Close (a Client dropped without Close keeps
// probing its dead servers, and stays reachable from the timer, until they
// return).
//
// The placement of a key changes at two moments only, both documented
// (docs/failover.md): when its server is declared dead (its keys move to
// live servers) and when a probe of it succeeds (they move back).  A write
// and a later read of the same key therefore go to the same server unless
// one of those happened in between.  In particular a server that came back
// while the client was idle is revived by its timer-driven probe before the
// next call, instead of by the first call after it (which used to be routed
// the old way while the probe it started revived the server, so that the
// next call for the same key went elsewhere).

// ServerState is how the client treats a server.
type ServerState int

const (
	// Healthy means the server's last exchange succeeded, or it was never
	// used.
	Healthy ServerState = iota
	// Failing means the server's last exchanges failed, fewer than
	// FailureLimit of them. Calls for its keys still go to it, except
	// during the RetryTimeout after each failure, when they fail fast.
	Failing
	// Dead means FailureLimit consecutive failures, or failures for
	// DeadTimeout. Its keys fail over to live servers (Failover) or fail
	// fast; it is probed every ReconnectTimeout.
	Dead
)

// String returns "healthy", "failing" or "dead".
func (s ServerState) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Failing:
		return "failing"
	case Dead:
		return "dead"
	}
	return fmt.Sprintf("ServerState(%d)", int(s))
}

// LiveSelector is a Selector that can place keys while some servers are
// dead. Failover needs one (without an Ejector); the selectors of package
// dist and Modula are LiveSelectors. As libmemcached's distributions do, a
// LiveSelector places every key on the only server of a one-server client:
// such a client does not call Pick.
type LiveSelector interface {
	Selector
	// PickLive is Pick avoiding the servers for which alive returns false:
	// the next live point on a ketama ring, the hash modulo the live
	// servers for modula. It returns -1 when no server is alive.
	PickLive(key []byte, alive func(server int) bool) int
}

// Ejector rebuilds the placement over the live servers (live[i] is false for
// dead ones); the Selector it returns must still return indexes into the
// full server list. dist.NewLive is one.
type Ejector func(live []bool) (Selector, error)

// ServerDownError is the error of a call that was not sent because the
// client is avoiding its server. It matches ErrConnection with errors.Is,
// and also ErrServerDown (State Failing), ErrServerDead (State Dead) and
// ErrNoServers (NoLiveServer).
type ServerDownError struct {
	// Addr is the server the key belongs to.
	Addr string
	// State is Failing (in the RetryTimeout after a failure) or Dead.
	State ServerState
	// Failures is the number of consecutive failures.
	Failures int
	// Retry is how long after the error the server is tried (Failing) or
	// probed (Dead) again; 0 when a probe is under way.
	Retry time.Duration
	// Last is the failure that put the server in this state.
	Last error
	// NoLiveServer means failover is on but every server is dead.
	NoLiveServer bool
}

func (e *ServerDownError) Error() string {
	what := "is down after a failure"
	if e.State == Dead {
		what = "is marked dead"
	}
	msg := fmt.Sprintf("omcache: server %s %s (%d consecutive failures", e.Addr, what, e.Failures)
	if e.Retry > 0 {
		msg += fmt.Sprintf(", retried in %v", e.Retry.Round(time.Millisecond))
	} else if e.State == Dead {
		msg += ", being probed"
	}
	msg += ")"
	if e.NoLiveServer {
		msg += " and no live server is left to fail over to"
	}
	if e.Last != nil {
		msg += "; last error: " + e.Last.Error()
	}
	return msg
}

// Is makes errors.Is match ErrConnection and the sentinel of the state.
func (e *ServerDownError) Is(target error) bool {
	switch target {
	case ErrConnection:
		return true
	case ErrServerDown:
		return e.State == Failing
	case ErrServerDead:
		return e.State == Dead
	case ErrNoServers:
		return e.NoLiveServer
	}
	return false
}

// ServerHealth is a snapshot of one server's health record.
type ServerHealth struct {
	Addr     string
	State    ServerState
	Failures int // consecutive failures
	// Since is the time of the first failure of the current streak.
	Since time.Time
	// RetryAt is when a Failing server is tried again (zero: calls go to it
	// now) or a Dead one is probed next.
	RetryAt time.Time
	// Probing means a probe of the dead server is under way.
	Probing bool
	// LastError is the last failure, nil when Healthy.
	LastError error
}

// policy is the failover part of Options, checked and with defaults.
type policy struct {
	failover     bool
	failureLimit int
	retry        time.Duration
	reconnect    time.Duration
	dead         time.Duration
	ejector      Ejector
}

// tracking reports whether failures have any effect; when they have none the
// client keeps no health records at all.
func (p *policy) tracking() bool {
	return p.failureLimit > 0 || p.dead > 0 || p.retry > 0
}

func newPolicy(opts *Options) (policy, error) {
	p := policy{
		failover:     opts.Failover || opts.Ejector != nil,
		failureLimit: opts.FailureLimit,
		retry:        opts.RetryTimeout,
		reconnect:    opts.ReconnectTimeout,
		dead:         opts.DeadTimeout,
		ejector:      opts.Ejector,
	}
	switch {
	case p.failureLimit < 0:
		return p, fmt.Errorf("%w: negative FailureLimit %d", ErrInvalidArguments, p.failureLimit)
	case p.retry < 0 || p.reconnect < 0 || p.dead < 0:
		return p, fmt.Errorf("%w: negative RetryTimeout, ReconnectTimeout or DeadTimeout", ErrInvalidArguments)
	}
	if p.reconnect == 0 {
		p.reconnect = DefaultReconnectTimeout
	}
	if p.failover && p.ejector == nil {
		if _, ok := opts.Selector.(LiveSelector); !ok {
			return p, fmt.Errorf("%w: Failover needs a Selector with PickLive or an Ejector", ErrInvalidArguments)
		}
	}
	return p, nil
}

// health is one server's record. Every field but epoch is guarded by the
// client's hmu.
type health struct {
	state    ServerState
	failures int
	since    time.Time
	until    time.Time // Failing: end of the back-off; Dead: next probe
	probing  bool
	last     error
	// epoch changes when the server recovers, so that calls admitted before
	// it died and failing after it came back do not count against it.
	epoch atomic.Uint64
	// st mirrors state for the lock-free checks of calls to healthy
	// servers while another one is down.
	st atomic.Int32
}

func (h *health) setState(s ServerState) {
	h.state = s
	h.st.Store(int32(s))
}

// ejected is the placement rebuilt over the live servers by the Ejector.
type ejected struct{ sel Selector }

// noProbe is probeAt's value when no probe is scheduled.
const noProbe = math.MaxInt64

// isFailure reports whether err, returned by an exchange or a dial, counts
// against the server.
func isFailure(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) {
		return false
	}
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrConnection) || errors.Is(err, ErrProtocol)
}

// route returns the server a command for key goes to now.
func (c *Client) route(key []byte) (int, error) {
	var si int
	if e := c.ejected.Load(); e != nil {
		si = e.sel.Pick(key)
	} else if c.oneServer {
		// As libmemcached: with one server there is nothing to hash.
		si = 0
	} else {
		si = c.selector.Pick(key)
	}
	if c.troubled.Load() == 0 {
		if si < 0 || si >= len(c.servers) {
			return 0, ErrNoServers
		}
		return si, nil
	}
	return c.routeTroubled(key, si)
}

// routeTroubled is route while some server is not healthy.
func (c *Client) routeTroubled(key []byte, si int) (int, error) {
	now := c.now()
	c.startDueProbes(now)
	if si >= 0 && si < len(c.servers) && ServerState(c.servers[si].h.st.Load()) == Healthy {
		return si, nil
	}
	c.hmu.Lock()
	defer c.hmu.Unlock()
	if si < 0 || si >= len(c.servers) {
		if c.ejected.Load() != nil {
			// The Ejector's placement has no member left: every server
			// is dead. Report one of them.
			return 0, c.downErrorLocked(0, now, true)
		}
		return 0, ErrNoServers
	}
	h := &c.servers[si].h
	switch h.state {
	case Failing:
		if now.Before(h.until) {
			return 0, c.downErrorLocked(si, now, false)
		}
	case Dead:
		if !c.policy.failover || c.live == nil {
			return 0, c.downErrorLocked(si, now, false)
		}
		alt := c.live.PickLive(key, c.aliveLocked)
		if alt < 0 || alt >= len(c.servers) {
			return 0, c.downErrorLocked(si, now, true)
		}
		if ah := &c.servers[alt].h; ah.state == Failing && now.Before(ah.until) {
			return 0, c.downErrorLocked(alt, now, false)
		}
		return alt, nil
	}
	return si, nil
}

func (c *Client) aliveLocked(si int) bool { return c.servers[si].h.state != Dead }

// admit says whether a per-server command may go to server si now.
func (c *Client) admit(si int) error {
	if c.troubled.Load() == 0 {
		return nil
	}
	now := c.now()
	c.startDueProbes(now)
	c.hmu.Lock()
	defer c.hmu.Unlock()
	h := &c.servers[si].h
	if h.state == Dead || h.state == Failing && now.Before(h.until) {
		return c.downErrorLocked(si, now, false)
	}
	return nil
}

func (c *Client) downErrorLocked(si int, now time.Time, noLive bool) error {
	h := &c.servers[si].h
	e := &ServerDownError{Addr: c.servers[si].addr, State: h.state, Failures: h.failures, Last: h.last, NoLiveServer: noLive}
	if !h.probing && h.until.After(now) {
		e.Retry = h.until.Sub(now)
	}
	return e
}

// record notes the outcome of an exchange with server si admitted at epoch:
// err nil for success, or what the exchange or dial returned.
func (c *Client) record(si int, epoch uint64, err error) {
	if !c.policy.tracking() || errors.Is(err, ErrClosed) {
		return
	}
	if !isFailure(err) {
		if ServerState(c.servers[si].h.st.Load()) != Failing {
			return
		}
		c.hmu.Lock()
		h := &c.servers[si].h
		// A dead server comes back through its probe only: a late success
		// of a call sent before it died says little about it now.
		if h.state == Failing && h.epoch.Load() == epoch {
			c.setHealthyLocked(si)
		}
		c.hmu.Unlock()
		return
	}
	now := c.now()
	c.hmu.Lock()
	h := &c.servers[si].h
	if h.epoch.Load() != epoch || h.state == Dead {
		c.hmu.Unlock()
		return
	}
	if h.state == Healthy {
		h.setState(Failing)
		h.failures = 0
		h.since = now
		c.troubled.Add(1)
	}
	h.failures++
	h.last = err
	if c.policy.failureLimit > 0 && h.failures >= c.policy.failureLimit ||
		c.policy.dead > 0 && now.Sub(h.since) >= c.policy.dead {
		h.setState(Dead)
		h.until = now.Add(c.policy.reconnect)
		c.rescheduleLocked()
		c.ejectLocked()
	} else {
		h.until = now.Add(c.policy.retry)
	}
	c.hmu.Unlock()
	// The other idle connections to a failing server are most likely
	// broken too (a restart, a network cut): do not hand them out.
	c.servers[si].dropIdle()
}

func (c *Client) setHealthyLocked(si int) {
	h := &c.servers[si].h
	wasDead := h.state == Dead
	h.setState(Healthy)
	h.failures = 0
	h.last = nil
	h.until = time.Time{}
	h.epoch.Add(1)
	c.troubled.Add(-1)
	if wasDead {
		c.ejectLocked()
	}
}

// rescheduleLocked sets probeAt to the earliest due probe and arms the
// probe timer for it.
func (c *Client) rescheduleLocked() {
	next := int64(noProbe)
	for _, s := range c.servers {
		if s.h.state == Dead && !s.h.probing {
			next = min(next, s.h.until.UnixNano())
		}
	}
	c.probeAt.Store(next)
	c.armProbeTimerLocked(next)
}

// minProbeTimer is the shortest wait of the probe timer, so that a probe
// that is due at once is started without spinning.
const minProbeTimer = time.Millisecond

// armProbeTimerLocked makes the probe timer fire when the probe due at next
// (unix ns, or noProbe) is due, or stops it.
func (c *Client) armProbeTimerLocked(next int64) {
	if next == noProbe {
		if c.probeTimer != nil {
			c.probeTimer.Stop()
		}
		return
	}
	d := max(time.Duration(next-c.now().UnixNano()), minProbeTimer)
	if c.probeTimer == nil {
		c.probeTimer = time.AfterFunc(d, c.probeTimerFired)
		return
	}
	c.probeTimer.Reset(d)
}

// probeTimerFired starts the probes that are due (and re-arms the timer for
// the next ones), unless the client was closed.  It runs in the timer's own
// goroutine: a panic is recovered and the timer re-armed, never let out.
func (c *Client) probeTimerFired() {
	defer func() {
		if p := recover(); p != nil {
			c.hmu.Lock()
			if c.probeTimer != nil {
				c.probeTimer.Reset(c.policy.reconnect)
			}
			c.hmu.Unlock()
		}
	}()
	if c.closed() {
		return
	}
	c.hmu.Lock()
	defer c.hmu.Unlock()
	c.startDueProbesLocked(c.now())
}

// closed reports whether Close was called (it marks every server closed).
func (c *Client) closed() bool {
	if len(c.servers) == 0 {
		return true
	}
	s := c.servers[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// ejectLocked rebuilds the Ejector's placement after a server died or came
// back.
func (c *Client) ejectLocked() {
	if c.policy.ejector == nil {
		return
	}
	live := make([]bool, len(c.servers))
	anyDead := false
	for i, s := range c.servers {
		live[i] = s.h.state != Dead
		anyDead = anyDead || !live[i]
	}
	if !anyDead {
		c.ejected.Store(nil)
		return
	}
	sel, err := c.policy.ejector(live)
	if err != nil || sel == nil {
		// Keep walking past dead servers with the full placement.
		c.ejected.Store(nil)
		return
	}
	c.ejected.Store(&ejected{sel: sel})
}

// startDueProbes starts a background probe of every dead server whose
// ReconnectTimeout has passed.
func (c *Client) startDueProbes(now time.Time) {
	if now.UnixNano() < c.probeAt.Load() {
		return
	}
	c.hmu.Lock()
	defer c.hmu.Unlock()
	c.startDueProbesLocked(now)
}

func (c *Client) startDueProbesLocked(now time.Time) {
	for si, s := range c.servers {
		if s.h.state == Dead && !s.h.probing && !now.Before(s.h.until) {
			s.h.probing = true
			go c.probe(si)
		}
	}
	c.rescheduleLocked()
}

// probe connects to dead server si and sends a NOOP; success revives it.
func (c *Client) probe(si int) {
	s := c.servers[si]
	err := ErrClosed
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: internal error: %v", ErrProtocol, p)
		}
		c.hmu.Lock()
		defer c.hmu.Unlock()
		h := &s.h
		h.probing = false
		if err == nil {
			c.setHealthyLocked(si)
		} else {
			if !errors.Is(err, ErrClosed) {
				h.last = err
			}
			h.until = c.now().Add(c.policy.reconnect)
		}
		c.rescheduleLocked()
	}()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	cn, err := c.dial(s, c.codec)
	if err != nil {
		return
	}
	var res result
	if err = c.exchange(cn, &request{Request: proto.Request{Op: proto.OpNoop}}, &res); err == nil {
		err = res.err
	}
	if err != nil {
		cn.Close()
		return
	}
	c.put(s, cn)
}

// Health returns each server's health record, aligned with Servers(). All
// servers are Healthy when Options enable no failure handling.
func (c *Client) Health() []ServerHealth {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	out := make([]ServerHealth, len(c.servers))
	for i, s := range c.servers {
		h := &s.h
		out[i] = ServerHealth{Addr: s.addr, State: h.state, Failures: h.failures, Probing: h.probing, LastError: h.last}
		if h.state != Healthy {
			out[i].Since = h.since
			out[i].RetryAt = h.until
		}
	}
	return out
}

// ServerFor returns the index (into Servers()) of the server a command for
// key would go to now, after failover; or the error such a command would
// get without sending anything (ErrMalformedKey, a *ServerDownError,
// ErrNoServers).
func (c *Client) ServerFor(key []byte) (int, error) {
	if !c.keyOK(key) {
		return -1, ErrMalformedKey
	}
	si, err := c.route(key)
	if err != nil {
		return -1, err
	}
	return si, nil
}

// healthFields are the Client fields of failure handling, embedded so that
// client.go stays about connections.
type healthFields struct {
	policy   policy
	live     LiveSelector // the Selector, if it can fail over
	hmu      sync.Mutex   // guards every server's health record
	troubled atomic.Int32 // servers not Healthy: 0 is the fast path
	probeAt  atomic.Int64 // unix ns of the earliest due probe, noProbe if none
	ejected  atomic.Pointer[ejected]
	now      func() time.Time
	// probeTimer fires when the earliest probe is due, so dead servers are
	// probed while the client is idle too; guarded by hmu, nil until a
	// server first dies.
	probeTimer *time.Timer
}

package memcachedtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Fault is a set of misbehaviours a test can switch on at run time to see
// how a client copes with a server that a real memcached cannot imitate.
// The zero value is a well-behaved server. Faults that act on responses
// apply to each write batch: the responses to the requests that arrived
// together (one response for a client that waits for each answer).
//
// The one-line text form (ParseFault, String) is a comma-separated list:
//
//	delay=200ms           wait this long before sending each response batch
//	stall                 read and discard requests, never answer (commands
//	                      are not executed)
//	close-mid-response    send half of a response batch, then close
//	close-mid-response=N  send the first N bytes (at most all but one), then close
//	corrupt               send garbage of the same length instead of responses
//	refuse                stop listening: connects fail with ECONNREFUSED
//	hangup                accept connections and close them at once
//	blackhole             accept connections but never read from them
//	slow-read=D           wait D before each read of at most 4 KiB
//	none                  no fault (also the empty string)
type Fault struct {
	// Delay holds back each response batch.
	Delay time.Duration
	// Stall reads and drops requests without executing or answering them.
	Stall bool
	// CloseMidResponse sends only part of a response batch and closes the
	// connection; never the whole batch.
	CloseMidResponse bool
	// CloseAfterBytes is how much CloseMidResponse lets through; 0 means
	// half the batch.
	CloseAfterBytes int
	// Corrupt replaces each response batch with the same number of garbage
	// bytes: a text connection still sees CRLF-terminated lines, a binary
	// one gets a header with a bad magic byte.
	Corrupt bool
	// Refuse closes the listeners until the fault is cleared; connecting
	// fails as it does against a stopped memcached. Established
	// connections stay up.
	Refuse bool
	// Hangup accepts new connections and closes them immediately.
	Hangup bool
	// Blackhole stops reading: new connections are accepted but never read,
	// established ones stop after their current request.
	Blackhole bool
	// SlowRead throttles reading: before each read of at most 4 KiB the
	// server sleeps this long, so clients' writes back up. A read already
	// waiting for data when the fault is set is not slowed.
	SlowRead time.Duration
}

const slowReadChunk = 4096

// ParseFault parses the text form described on Fault.
func ParseFault(spec string) (Fault, error) {
	var f Fault
	fields := strings.FieldsFunc(spec, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t'
	})
	for _, field := range fields {
		name, arg, hasArg := strings.Cut(field, "=")
		needDuration := func() (time.Duration, error) {
			if !hasArg {
				return 0, fmt.Errorf("embedded server: fault %q needs a duration, e.g. %s=100ms", name, name)
			}
			d, err := time.ParseDuration(arg)
			if err != nil || d < 0 {
				return 0, fmt.Errorf("embedded server: fault %q: bad duration %q", name, arg)
			}
			return d, nil
		}
		noArg := func() error {
			if hasArg {
				return fmt.Errorf("embedded server: fault %q takes no argument", name)
			}
			return nil
		}
		var err error
		switch name {
		case "none", "clear":
			err = noArg()
		case "delay":
			f.Delay, err = needDuration()
		case "slow-read":
			f.SlowRead, err = needDuration()
		case "stall":
			f.Stall, err = true, noArg()
		case "close-mid-response":
			f.CloseMidResponse = true
			if hasArg {
				n, perr := strconv.Atoi(arg)
				if perr != nil || n < 1 {
					err = fmt.Errorf("embedded server: fault %q: bad byte count %q", name, arg)
				}
				f.CloseAfterBytes = n
			}
		case "corrupt":
			f.Corrupt, err = true, noArg()
		case "refuse":
			f.Refuse, err = true, noArg()
		case "hangup":
			f.Hangup, err = true, noArg()
		case "blackhole":
			f.Blackhole, err = true, noArg()
		default:
			err = fmt.Errorf("embedded server: unknown fault %q (want delay=D, stall, close-mid-response[=N], corrupt, refuse, hangup, blackhole, slow-read=D or none)", name)
		}
		if err != nil {
			return Fault{}, err
		}
	}
	return f, nil
}

// String returns the text form of f, "none" for no fault; ParseFault
// reads it back.
func (f Fault) String() string {
	var parts []string
	if f.Delay > 0 {
		parts = append(parts, "delay="+f.Delay.String())
	}
	if f.Stall {
		parts = append(parts, "stall")
	}
	if f.CloseMidResponse {
		if f.CloseAfterBytes > 0 {
			parts = append(parts, "close-mid-response="+strconv.Itoa(f.CloseAfterBytes))
		} else {
			parts = append(parts, "close-mid-response")
		}
	}
	if f.Corrupt {
		parts = append(parts, "corrupt")
	}
	if f.Refuse {
		parts = append(parts, "refuse")
	}
	if f.Hangup {
		parts = append(parts, "hangup")
	}
	if f.Blackhole {
		parts = append(parts, "blackhole")
	}
	if f.SlowRead > 0 {
		parts = append(parts, "slow-read="+f.SlowRead.String())
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// SetFault replaces the server's faults with f. It fails if the server is
// closed, or if lifting a refuse fault cannot listen on the old address
// again (another process took the port).
func (s *Server) SetFault(f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	var err error
	switch {
	case f.Refuse && !s.refusing:
		s.closeListenersLocked(false)
		s.refusing = true
	case !f.Refuse && s.refusing:
		if err = s.reopenListenersLocked(); err == nil {
			s.refusing = false
		} else {
			f.Refuse = true
		}
	}
	s.faultMu.Lock()
	s.fault = f
	close(s.faultChanged)
	s.faultChanged = make(chan struct{})
	s.faultMu.Unlock()
	return err
}

// SetFaultString is SetFault with the text form, for bindings.
func (s *Server) SetFaultString(spec string) error {
	f, err := ParseFault(spec)
	if err != nil {
		return err
	}
	return s.SetFault(f)
}

// ClearFaults makes the server well-behaved again.
func (s *Server) ClearFaults() error {
	return s.SetFault(Fault{})
}

// Fault returns the faults in force.
func (s *Server) Fault() Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.fault
}

// waitWhile blocks while cond holds for the current fault. It returns false
// if the server closed meanwhile.
func (s *Server) waitWhile(cond func(Fault) bool) bool {
	for {
		s.faultMu.Lock()
		f, changed := s.fault, s.faultChanged
		s.faultMu.Unlock()
		if !cond(f) {
			return true
		}
		select {
		case <-changed:
		case <-s.done:
			return false
		}
	}
}

// sleep waits d unless the server closes first; it reports whether the full
// time passed.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

// corruptBytes turns a response batch into garbage of the same length.
// Every byte is flipped, which never leaves a valid binary magic (0x81)
// or an uppercase status word; text batches keep a trailing CRLF so a
// line-reading client gets a bad line rather than waiting for more.
func corruptBytes(b []byte, binary bool) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = c ^ 0xA5
	}
	if !binary && len(out) >= 2 {
		out[len(out)-2], out[len(out)-1] = '\r', '\n'
	}
	return out
}

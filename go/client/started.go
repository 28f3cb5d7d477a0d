package client

import (
	"time"

	"github.com/omcache/omcache/go/conn"
	"github.com/omcache/omcache/go/proto"
)

// Started is a single-key command whose request was written by Begin and
// whose answer has not been read yet. It lets an event loop wait for the
// answer on the connection's descriptor (Fd) instead of a thread waiting
// in the engine: when the descriptor is readable, Ready says whether the
// whole answer arrived, and Finish then completes the command without
// waiting. Wait completes it from any state, waiting as long as the I/O
// timeout allows. Exactly one of Finish and Wait must end a Started.
type Started struct {
	c      *Client
	si     int
	epoch  uint64
	s      *server
	cn     *conn.Conn
	pooled bool
	req    request
	res    result
	cas    uint64 // the store's CAS condition, for storeError
	err    error  // transport or protocol failure, set by Finish or Wait
	// Retry reports, after Finish or Wait, that the command failed on a
	// pooled connection the server had closed while it was idle, before
	// any byte of answer: the command was not applied and should be run
	// again the usual way (Get, Set, ...), which opens a new connection.
	Retry bool
}

// inlineMaxValue bounds the values Begin writes: a larger request is
// unlikely to fit in the socket at once and is better sent by a thread
// that may wait for the socket.
const inlineMaxValue = 16 << 10

// Begin writes a single-key command without waiting and returns it as a
// Started, or nil when it cannot be started that way: op not one of
// OpGet, OpTouch, OpSet, OpAdd, OpReplace, OpDelete; a protocol whose
// answer may take several replies (text); a TLS connection; no idle
// connection to the key's server; a server not healthy; a value over 16 KiB.
// The caller then runs the command the usual way. key and value are kept
// (not copied) until the Started ends. Errors are those of the command's
// own checks (an invalid key).
func (c *Client) Begin(op proto.Op, key, value []byte, flags, exp uint32, cas uint64) (*Started, error) {
	switch op {
	case proto.OpGet, proto.OpTouch, proto.OpSet, proto.OpAdd, proto.OpReplace, proto.OpDelete:
	default:
		return nil, nil
	}
	if c.codec.MultiKeyGet() || c.connOpts.TLS != nil || len(value) > inlineMaxValue ||
		c.troubled.Load() != 0 {
		return nil, nil
	}
	req, err := c.newRequest(op, key)
	if err != nil {
		return nil, err
	}
	req.Flags, req.Exp, req.CAS, req.value = flags, exp, cas, value
	si, err := c.route(key)
	if err != nil {
		return nil, nil
	}
	s := c.servers[si]
	cn, err := c.idle(s, c.codec)
	if cn == nil || err != nil {
		return nil, nil
	}
	// As exchangeOn for idempotent commands: no liveness check (a system
	// call); a connection the server closed while idle shows when the
	// answer is read, and Retry then sends the command again.
	st := &Started{c: c, si: si, epoch: s.h.epoch.Load(), s: s, cn: cn, pooled: true, req: req, cas: cas}
	st.req.Seq = cn.NextSeq()
	buf, err := cn.AppendRequest(cn.Buffer(), &st.req.Request, st.req.value)
	if err != nil {
		c.put(s, cn)
		return nil, nil
	}
	// Start never waits, so it does not yield the processor as Send does:
	// without this, an event loop calling Begin and Finish from one
	// thread never passes through Go's scheduler, and sysmon, taking it
	// for a hog, wakes every 20 us to take its processor away (see
	// conn.yieldEvery).
	cn.Yield()
	if err := cn.Start(buf); err != nil {
		// Finish reports it (or asks for a retry).
		st.err = transportError(err)
	}
	return st, nil
}

// Fd returns the descriptor of the connection the answer comes on. It is
// valid until Finish or Wait, which may close it.
func (st *Started) Fd() int { return st.cn.Fd() }

// ConnID returns the ID of the connection the answer comes on (conn.Conn.ID),
// which tells it apart from another that reuses its descriptor number.
func (st *Started) ConnID() uint64 { return st.cn.ID() }

// Deadline returns when the command times out.
func (st *Started) Deadline() time.Time { return st.cn.Deadline() }

// Ready reads what arrived without waiting and reports whether Finish can
// complete the command now (with its answer or a failure). It is false
// while the answer or the request is still in transit; large reports an
// answer with a large value (conn.LargeValue bytes or more), which only
// Wait completes: Ready stays false for it.
func (st *Started) Ready() (ready, large bool) {
	if st.err != nil || st.cn.Err() != nil {
		return true, false
	}
	if st.cn.Writing() {
		if err := st.cn.Flush(); err != nil {
			return true, false
		}
		if st.cn.Writing() {
			return false, false
		}
	}
	return st.cn.Buffered()
}

// Finish completes the command once Ready said so (it may otherwise wait,
// as Wait does): it reads the answer, returns the connection to the pool
// and records the outcome in the server's health.
func (st *Started) Finish() {
	if st.err == nil {
		st.read()
	}
	st.end()
}

// Wait completes the command from any state, waiting for the rest of the
// request to be written and for the answer until the I/O timeout.
func (st *Started) Wait() {
	if st.err == nil {
		var ps conn.PollSet
		cns := []*conn.Conn{st.cn}
		for st.cn.Writing() {
			n, err := ps.Wait(cns, st.cn.Deadline())
			if err == nil && n == 0 {
				err = st.cn.Expire()
			}
			if err == nil {
				err = st.cn.Flush()
			}
			if err != nil {
				st.err = transportError(err)
				break
			}
		}
	}
	st.Finish()
}

// Expired reports whether the command's deadline passed; Expire then fails
// its connection with ErrTimeout, and Finish completes it with that error.
func (st *Started) Expired() bool { return !time.Now().Before(st.cn.Deadline()) }

// Expire fails the command with ErrTimeout (see Expired).
func (st *Started) Expire() {
	if st.err == nil {
		st.err = transportError(st.cn.Expire())
	}
}

func (st *Started) read() {
	if err := st.c.readAnswer(st.cn, &st.req, &st.res); err != nil {
		st.err = err
		return
	}
	if st.cn.Pending() {
		st.cn.Close()
		st.err = protocolError(st.cn.Addr(), "bytes nobody asked for after the answer to %v", st.req.Op)
	}
}

// end returns the connection and records the outcome, as exchangeOn does.
func (st *Started) end() {
	c, cn := st.c, st.cn
	c.put(st.s, cn)
	err := st.err
	if err != nil && st.pooled && !cn.Received() && staleConnError(err) {
		st.s.dropIdle()
		st.Retry = true
		return
	}
	if err != nil {
		st.err = c.explainClose(st.s, cn, st.pooled, st.req.Op, err)
	}
	c.record(st.si, st.epoch, failure(st.err))
}

// Item returns the result of a started OpGet: as Get returns it.
func (st *Started) Item() (*Item, error) {
	if st.err != nil {
		return nil, st.err
	}
	if st.res.err != nil {
		return nil, st.res.err
	}
	return &Item{Key: st.req.Key, Value: st.res.value, Flags: st.res.flags, CAS: st.res.cas}, nil
}

// Err returns the result of a started command other than OpGet: as Set,
// Add, Replace, Touch or Delete return it.
func (st *Started) Err() error {
	if st.err != nil {
		return st.err
	}
	switch st.req.Op {
	case proto.OpSet, proto.OpAdd, proto.OpReplace:
		return storeError(st.req.Op, st.cas, st.res.err)
	}
	return st.res.err
}

package memcachedtest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync/atomic"
)

const (
	binaryRequestMagic  = 0x80
	binaryResponseMagic = 0x81

	readBufferSize = 16 << 10
	// flushThreshold bounds how much output a connection may have pending
	// (a long pipeline, a get of many keys) before it is written even though
	// more requests are waiting.  Writing blocks while the client does not
	// read, and the connection reads no more requests meanwhile: that is
	// the backpressure memcached applies (it stops reading a connection
	// whose output it cannot send).
	flushThreshold = 256 << 10
	// sharedValueMin is the value size from which a reply refers to the
	// stored value instead of copying it into the connection's output.
	// Stored values are never modified (append, incr... store a new slice),
	// so sharing is safe and costs neither memory nor time under the lock.
	sharedValueMin = 4 << 10
)

// errCloseConn ends a connection after its pending output is written
// (quit, protocol errors).
var errCloseConn = errors.New("close connection")

// errDropConn ends a connection without writing anything more (a fault
// already closed it, or the socket failed).
var errDropConn = errors.New("drop connection")

type conn struct {
	srv *Server
	nc  net.Conn
	id  uint64
	r   *bufio.Reader

	binary     bool
	negotiated bool
	authed     bool // authenticated, or no authentication required
	// The pending output is queued, in order, then out: queued holds
	// finished chunks of out and stored values referred to (not copied) by
	// replies; queuedLen counts its bytes.
	out       []byte
	queued    net.Buffers
	queuedLen int
	noreply   bool // the text command being handled asked for no reply

	lastCmd atomic.Int64 // unix second of the last command, for stats conns
}

func newConn(s *Server, nc net.Conn, id uint64) *conn {
	c := &conn{srv: s, nc: nc, id: id}
	c.r = bufio.NewReaderSize(&connReader{c: c}, readBufferSize)
	c.lastCmd.Store(s.now())
	return c
}

// connReader counts bytes and applies the slow-read fault.
type connReader struct{ c *conn }

func (cr *connReader) Read(p []byte) (int, error) {
	if f := cr.c.srv.Fault(); f.SlowRead > 0 {
		if !cr.c.srv.sleep(f.SlowRead) {
			return 0, net.ErrClosed
		}
		if len(p) > slowReadChunk {
			p = p[:slowReadChunk]
		}
	}
	n, err := cr.c.nc.Read(p)
	cr.c.srv.bytesRead.Add(int64(n))
	return n, err
}

// serve runs the connection until the client leaves, a protocol error or
// a fault ends it, or the server closes.
func (c *conn) serve() {
	blackholed := func(f Fault) bool { return f.Blackhole }
	for {
		// A blackholed connection must not even be read: the client's
		// writes should back up in the socket buffers.
		if !c.srv.waitWhile(blackholed) {
			return
		}
		if _, err := c.r.Peek(1); err != nil {
			c.flush()
			return
		}
		if !c.srv.waitWhile(blackholed) {
			return
		}
		if !c.negotiated {
			// memcached picks the protocol from the first byte a client
			// sends and keeps it for the connection's lifetime.
			b, _ := c.r.Peek(1)
			c.binary = b[0] == binaryRequestMagic
			c.negotiated = true
		}
		c.lastCmd.Store(c.srv.now())
		var err error
		if !c.authed && len(c.srv.cfg.Users) > 0 {
			err = c.handleAuth()
		} else if c.binary {
			err = c.handleBinary()
		} else {
			err = c.handleText()
		}
		switch {
		case errors.Is(err, errDropConn):
			return
		case err != nil:
			c.flush()
			return
		}
		if c.r.Buffered() == 0 || c.pending() >= flushThreshold {
			if c.flush() != nil {
				return
			}
		}
	}
}

// appendValue adds a stored value to the output: copied when small, else
// queued by reference (see sharedValueMin).  It never writes, so callers may
// hold the store lock.
func (c *conn) appendValue(v []byte) {
	if len(v) < sharedValueMin {
		c.out = append(c.out, v...)
		return
	}
	if len(c.out) > 0 {
		c.queued = append(c.queued, c.out)
		c.queuedLen += len(c.out)
		c.out = nil // the queued chunk keeps that array; start a new one
	}
	c.queued = append(c.queued, v)
	c.queuedLen += len(v)
}

// pending is the number of output bytes not yet written.
func (c *conn) pending() int {
	return c.queuedLen + len(c.out)
}

// flushIfFull writes the pending output when it has reached flushThreshold
// (called between the replies of one long command, never under the store
// lock: the write blocks until the client reads).
func (c *conn) flushIfFull() error {
	if c.pending() < flushThreshold {
		return nil
	}
	return c.flush()
}

// takeOutput returns the pending output as buffers to write and resets it,
// releasing the references to shared values once written.
func (c *conn) takeOutput() net.Buffers {
	bufs := append(c.queued, c.out)
	c.queued, c.queuedLen = nil, 0
	c.out = c.out[:0] // written before anything is appended again
	return bufs
}

func joinBuffers(bufs net.Buffers) []byte {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	out := make([]byte, 0, n)
	for _, b := range bufs {
		out = append(out, b...)
	}
	return out
}

// flush writes the pending responses, applying response faults.
func (c *conn) flush() error {
	if c.pending() == 0 {
		return nil
	}
	bufs := c.takeOutput()
	f := c.srv.Fault()
	if f.Stall {
		return nil
	}
	if !f.Corrupt && !f.CloseMidResponse {
		if f.Delay > 0 && !c.srv.sleep(f.Delay) {
			return errDropConn
		}
		return c.writeBuffers(bufs)
	}
	// The faults that rewrite or cut the output work on one copy of it.
	data := joinBuffers(bufs)
	if f.Delay > 0 && !c.srv.sleep(f.Delay) {
		return errDropConn
	}
	if f.Corrupt {
		data = corruptBytes(data, c.binary)
	}
	if f.CloseMidResponse {
		n := f.CloseAfterBytes
		if n <= 0 {
			n = len(data) / 2
		}
		if n >= len(data) {
			n = len(data) - 1
		}
		c.write(data[:n])
		c.nc.Close()
		return errDropConn
	}
	return c.write(data)
}

// writeBuffers writes bufs in order (writev on TCP and unix sockets).
func (c *conn) writeBuffers(bufs net.Buffers) error {
	if len(bufs) == 1 {
		return c.write(bufs[0])
	}
	n, err := bufs.WriteTo(c.nc)
	c.srv.bytesWritten.Add(n)
	if err != nil {
		return errDropConn
	}
	return nil
}

func (c *conn) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	// A client that stops reading blocks this write; Close closes the
	// socket, which unblocks it.
	n, err := c.nc.Write(b)
	c.srv.bytesWritten.Add(int64(n))
	if err != nil {
		return errDropConn
	}
	return nil
}

// stalled reports whether requests should be read and dropped.
func (c *conn) stalled() bool {
	return c.srv.Fault().Stall
}

// discard skips n bytes of input (a value that will not be stored).  A
// long body is swallowed after the pending replies are written, so a
// client announcing a huge value hears the refusal at once, as from
// memcached, instead of after sending it all.
func (c *conn) discard(n int64) error {
	if n <= 0 {
		return nil
	}
	if n > int64(c.r.Buffered()) {
		if err := c.flush(); err != nil {
			return err
		}
	}
	_, err := io.CopyN(io.Discard, c.r, n)
	if err != nil {
		return errDropConn
	}
	return nil
}

// readFull reads exactly n bytes of input.
func (c *conn) readFull(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return nil, errDropConn
	}
	return b, nil
}

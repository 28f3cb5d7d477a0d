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
	// flushThreshold bounds how much output a long pipeline accumulates
	// before it is written even though more requests are waiting.
	flushThreshold = 256 << 10
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
	out        []byte
	noreply    bool // the text command being handled asked for no reply

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
		if c.binary {
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
		if c.r.Buffered() == 0 || len(c.out) >= flushThreshold {
			if c.flush() != nil {
				return
			}
		}
	}
}

// flush writes the pending responses, applying response faults.
func (c *conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	data := c.out
	c.out = c.out[:0]
	f := c.srv.Fault()
	if f.Stall {
		return nil
	}
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

// discard skips n bytes of input (a value that will not be stored).
func (c *conn) discard(n int64) error {
	if n <= 0 {
		return nil
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

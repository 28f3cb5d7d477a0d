package conn

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Fd returns the connection's socket, for a caller that waits for it to be
// readable with its own poller (an event loop) and then calls Buffered.
// It is not valid after Close.
func (c *Conn) Fd() int { return c.fd }

// Buffered reads what the socket holds without waiting and reports whether
// Recv can now return without waiting: the next reply is complete in the
// read buffer, or the connection failed (Recv then returns the error).
// large reports a reply whose value is LargeValue bytes or more: Recv reads
// such a value into a buffer of its own, so Buffered does not wait for it
// to arrive in full (ready is false); the caller hands the connection to a
// thread that may block in Recv. A TLS connection is not supported (its
// records may wait in the transport): ready is false.
func (c *Conn) Buffered() (ready, large bool) {
	if c.err != nil {
		return true, false
	}
	if c.tls != nil {
		return false, false
	}
	if c.big != nil {
		return false, true
	}
	read := false
	for {
		// c.rp is scratch here: parse overwrites it before Recv uses it.
		head, vlen, trailer, need, err := c.codec.Parse(c.rbuf[c.rpos:c.rend], c.opts.MaxValue, &c.rp)
		if err != nil {
			// Recv fails at once with this error.
			return true, false
		}
		if head > 0 {
			if vlen < 0 {
				return true, false
			}
			if vlen+trailer >= LargeValue {
				return false, true
			}
			need = head + vlen + trailer
			if c.rend-c.rpos >= need {
				return true, false
			}
		}
		if read && c.drained {
			return false, false
		}
		switch errno := c.readOnce(need, unix.MSG_DONTWAIT); errno {
		case 0:
			read = true
		case unix.EINTR:
		case unix.EAGAIN:
			return false, false
		default:
			c.fail(fmt.Errorf("read from %s: %w", c.addr, c.ioErr(errno)))
			return true, false
		}
	}
}

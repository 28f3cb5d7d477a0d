// Package conn is one connection to one memcached server over a raw socket.
//
// It deliberately avoids the net package: the client runs inside cgo calls
// from Python, where every net read parks and wakes the goroutine locked to
// the cgo thread, adding 15-20 us to a ~80 us loopback round trip (measured,
// see gopy-notes.md). Here the socket is a file descriptor driven with plain
// system calls on the calling thread:
//
//   - writes use send(2) with MSG_DONTWAIT, so a batch goes out in one call
//     and a full socket is waited on with poll(2) until the deadline, reading
//     replies meanwhile;
//   - the first read after a Send blocks in recv(2), bounded by SO_RCVTIMEO
//     set to the I/O timeout. A round trip is then exactly two system calls;
//     with the non-blocking read-then-poll sequence it was four whenever the
//     reply was not there yet, which on loopback was ~90% of the time
//     (strace of BenchmarkGet), and the blocking read measured faster
//     (BenchmarkGetRoundTrip has both modes);
//   - any further read (a reply bigger than one read, a batch) is
//     MSG_DONTWAIT first, then poll(2) until the exchange's deadline.
//
// A Conn is not safe for concurrent use. Once any call fails (timeout,
// reset, end of stream, garbage from the server) the Conn closes itself and
// every later call returns the same error: its stream position is unknown,
// so it must never be reused.
package conn

import (
	"errors"
	"fmt"
	"io"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/omcache/omcache/go/binprot"
)

// Defaults used when Options leave a field zero.
const (
	DefaultConnectTimeout = time.Second
	DefaultIOTimeout      = time.Second
	// DefaultMaxBody is the response body cap when none is given: memcached's
	// default 1 MiB item size plus room for key and extras.
	DefaultMaxBody = 1<<20 + 4096
)

// blockingRead makes the socket blocking, with SO_RCVTIMEO as the timeout,
// so the first read after a Send sleeps in recv(2) instead of failing with
// EAGAIN and sleeping in poll(2): two system calls per round trip instead of
// four. Every other read and every write passes MSG_DONTWAIT. It is a
// variable only so that tests and benchmarks can cover both read modes.
var blockingRead = true

// Buffers above keepBufCap are dropped after use instead of kept, so one
// big value does not pin memory in every pooled connection.
const (
	initialReadBuf = 16 << 10
	keepBufCap     = 256 << 10
)

// ErrTimeout is wrapped by errors from calls that ran past their deadline.
var ErrTimeout = errors.New("i/o timeout")

// ErrClosed is returned by calls on a Conn closed by Close.
var ErrClosed = errors.New("use of closed connection")

// Options tune a connection. Zero fields take the defaults above.
type Options struct {
	// ConnectTimeout bounds name resolution and connection setup together.
	ConnectTimeout time.Duration
	// IOTimeout bounds one exchange: a Send and the Recv calls that follow
	// it until the next Send.
	IOTimeout time.Duration
	// MaxBody is the largest response body accepted; a bigger announced
	// body is treated as a protocol error instead of being read.
	MaxBody uint32
}

func (o *Options) fill() {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.IOTimeout <= 0 {
		o.IOTimeout = DefaultIOTimeout
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
}

// Conn is one connection to a memcached server speaking the binary protocol.
type Conn struct {
	fd   int
	addr string
	opts Options

	wbuf []byte
	rbuf []byte // rbuf[rpos:rend] is received but not yet parsed
	rpos int
	rend int

	// deadline of the current exchange. Set by Send when the first read
	// may block (it then bounds the polls that follow); otherwise zero
	// until the first wait, so the poll-mode fast path never reads the
	// clock.
	deadline time.Time
	received bool // any byte read since the last Send
	blockOK  bool // the next read may block (see blockingRead)
	pfd      [1]unix.PollFd
	ts       unix.Timespec
	err      error
}

// Addr returns the address the connection was dialled with.
func (c *Conn) Addr() string { return c.addr }

// Err returns the error that broke the connection, or nil if it is usable.
func (c *Conn) Err() error { return c.err }

// Received reports whether any byte arrived since the last Send. A pooled
// connection that fails with nothing received was most likely closed by the
// server while idle, so the request can be retried on a new connection.
func (c *Conn) Received() bool { return c.received }

// Buffer returns the connection's write buffer, emptied. Append requests to
// it (binprot.Append*) and pass the result to Send: reusing it keeps a
// steady state free of allocations.
func (c *Conn) Buffer() []byte { return c.wbuf[:0] }

// Close closes the socket. It is safe to call more than once.
func (c *Conn) Close() error {
	if c.fd < 0 {
		return nil
	}
	err := closeSocket(c.fd)
	c.fd = -1
	if c.err == nil {
		c.err = ErrClosed
	}
	return err
}

// fail records the first error, closes the socket and returns the error.
func (c *Conn) fail(err error) error {
	if c.err == nil || c.err == ErrClosed {
		c.err = err
	}
	if c.fd >= 0 {
		closeSocket(c.fd)
		c.fd = -1
	}
	return c.err
}

// Send writes b in full, starting a new exchange with a fresh I/O deadline.
// The whole batch goes out in as few write calls as the kernel allows (one,
// normally). While the socket is full, Send also reads what the server
// already answered, so a large pipelined batch cannot deadlock with a server
// that stops reading until its replies are consumed.
func (c *Conn) Send(b []byte) error {
	if c.err != nil {
		return c.err
	}
	c.deadline = time.Time{}
	if blockingRead {
		c.deadline = time.Now().Add(c.opts.IOTimeout)
	}
	c.received = false
	c.blockOK = blockingRead
	if c.rpos == c.rend {
		c.rpos, c.rend = 0, 0
		if cap(c.rbuf) > keepBufCap {
			c.rbuf = nil
		}
	}
	if cap(b) <= keepBufCap {
		c.wbuf = b[:0]
	} else {
		c.wbuf = nil
	}
	for len(b) > 0 {
		n, errno := send(c.fd, b)
		b = b[n:]
		switch errno {
		case 0, unix.EINTR:
		case unix.EAGAIN:
			// The exchange has started its clock: a blocking read could
			// now outlast the deadline.
			c.blockOK = false
			rev, err := c.wait(unix.POLLOUT | unix.POLLIN)
			if err != nil {
				return c.fail(fmt.Errorf("write to %s: %w", c.addr, err))
			}
			if rev&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 && rev&unix.POLLOUT == 0 {
				if err := c.readOnce(c.rend-c.rpos+initialReadBuf, unix.MSG_DONTWAIT); err != 0 && err != unix.EAGAIN {
					return c.fail(fmt.Errorf("read from %s: %w", c.addr, errnoOrEOF(err)))
				}
			}
		default:
			return c.fail(fmt.Errorf("write to %s: %w", c.addr, errno))
		}
	}
	return nil
}

// Recv returns the next response. Its Extras, Key and Value alias the read
// buffer and stay valid only until the next Recv or Send.
func (c *Conn) Recv() (binprot.Response, error) {
	if c.err != nil {
		return binprot.Response{}, c.err
	}
	for {
		r, n, err := binprot.ParseResponse(c.rbuf[c.rpos:c.rend], c.opts.MaxBody)
		if err != nil {
			return binprot.Response{}, c.fail(fmt.Errorf("from %s: %w", c.addr, err))
		}
		if n > 0 {
			c.rpos += n
			return r, nil
		}
		need := binprot.HeaderLen
		if c.rend-c.rpos >= binprot.HeaderLen {
			need += int(r.BodyLen)
		}
		var errno unix.Errno
		if c.blockOK {
			c.blockOK = false
			errno = c.readOnce(need, 0)
			if errno == unix.EAGAIN {
				return binprot.Response{}, c.fail(fmt.Errorf("read from %s: %w", c.addr, ErrTimeout))
			}
		} else {
			// Try the read before polling: on loopback the reply is often
			// already there, and then poll would be a wasted system call.
			errno = c.readOnce(need, unix.MSG_DONTWAIT)
		}
		for errno == unix.EAGAIN || errno == unix.EINTR {
			if errno == unix.EAGAIN {
				if _, werr := c.wait(unix.POLLIN); werr != nil {
					return binprot.Response{}, c.fail(fmt.Errorf("read from %s: %w", c.addr, werr))
				}
			}
			errno = c.readOnce(need, unix.MSG_DONTWAIT)
		}
		if errno != 0 {
			return binprot.Response{}, c.fail(fmt.Errorf("read from %s: %w", c.addr, errnoOrEOF(errno)))
		}
	}
}

// errEOF stands for end of stream in readOnce's errno result.
const errEOF = unix.Errno(0x7fffffff)

func errnoOrEOF(e unix.Errno) error {
	if e == errEOF {
		// The server never closes a healthy binary-protocol connection by
		// itself, so any end of stream cuts a response short.
		return io.ErrUnexpectedEOF
	}
	return e
}

// readOnce makes room for a packet of need bytes at rbuf[rpos:] and reads
// once into the free space with recv(2) flags. End of stream is errEOF.
func (c *Conn) readOnce(need int, flags int) unix.Errno {
	if cap(c.rbuf)-c.rpos < need || c.rend == cap(c.rbuf) {
		pending := c.rend - c.rpos
		if cap(c.rbuf) < need || cap(c.rbuf) < initialReadBuf {
			nb := make([]byte, max(need, 2*cap(c.rbuf), initialReadBuf))
			copy(nb, c.rbuf[c.rpos:c.rend])
			c.rbuf = nb
		} else {
			copy(c.rbuf, c.rbuf[c.rpos:c.rend])
		}
		c.rpos, c.rend = 0, pending
	}
	c.rbuf = c.rbuf[:cap(c.rbuf)]
	free := c.rbuf[c.rend:]
	r, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(c.fd), uintptr(unsafe.Pointer(&free[0])), uintptr(len(free)),
		uintptr(flags), 0, 0)
	if e != 0 {
		return e
	}
	if r == 0 {
		return errEOF
	}
	c.rend += int(r)
	c.received = true
	return 0
}

// wait polls the socket for events until the exchange's deadline.
func (c *Conn) wait(events int16) (int16, error) {
	if c.deadline.IsZero() {
		c.deadline = time.Now().Add(c.opts.IOTimeout)
	}
	return pollFd(c.fd, events, c.deadline, &c.pfd, &c.ts)
}

// pollFd waits for events on fd until deadline, retrying on EINTR.
func pollFd(fd int, events int16, deadline time.Time, pfd *[1]unix.PollFd, ts *unix.Timespec) (int16, error) {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, ErrTimeout
		}
		*ts = unix.NsecToTimespec(int64(left))
		pfd[0] = unix.PollFd{Fd: int32(fd), Events: events}
		n, err := unix.Ppoll(pfd[:], ts, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return pfd[0].Revents, nil
		}
	}
}

// send writes with MSG_NOSIGNAL: a peer that closed must give EPIPE, not a
// SIGPIPE that would kill the host process (Python, when loaded by gopy).
// It returns the errno rather than an error so the EAGAIN path does not box.
func send(fd int, b []byte) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// Alive reports whether an idle connection still looks usable: no pending
// error, no end of stream and no unsolicited bytes waiting. It costs one
// non-blocking system call; the client spends it only before requests that
// must not be retried (a retry could apply an increment twice).
func (c *Conn) Alive() bool {
	if c.err != nil || c.rpos != c.rend {
		return false
	}
	var b [1]byte
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return e == unix.EAGAIN
}

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
//   - reads block in recv(2), bounded by SO_RCVTIMEO set to a slice of the
//     I/O timeout, for as long as a whole slice still ends before the
//     exchange's deadline; the rest of the wait is poll(2) until the
//     deadline. A round trip is then exactly two system calls; with the
//     non-blocking read-then-poll sequence it was four whenever the reply
//     was not there yet, which on loopback was ~90% of the time (strace of
//     BenchmarkGet), and the blocking read measured faster
//     (BenchmarkGetRoundTrip has both modes). A reply that arrives in
//     several pieces (memcached answers a batch of 100 gets in about five)
//     costs one recv(2) per piece instead of a poll(2) and a recv(2);
//   - values of LargeValue bytes or more never pass through the
//     connection's buffers: they are written from the caller's memory with
//     sendmsg(2) and read into a buffer of their own that becomes the
//     caller's (AppendValue, OwnValue);
//   - Start, Flush, TryRecv and PollSet let one thread drive exchanges with
//     several servers at once, waiting on all their sockets in one ppoll(2).
//
// A Conn is not safe for concurrent use. Once any call fails (timeout,
// reset, end of stream, garbage from the server) the Conn closes itself and
// every later call returns the same error: its stream position is unknown,
// so it must never be reused.
package conn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/omcache/omcache/go/proto"
)

// Defaults used when Options leave a field zero.
const (
	DefaultConnectTimeout = time.Second
	DefaultIOTimeout      = time.Second
	// DefaultMaxValue is the cap on a reply's value when none is given:
	// memcached's default 1 MiB item size plus room for an error message.
	DefaultMaxValue = 1<<20 + 4096
)

// blockingRead makes the socket blocking, with SO_RCVTIMEO as a bound, so
// that Recv sleeps in recv(2) instead of failing with EAGAIN and sleeping
// in poll(2): one system call per wait instead of two. Writes and the reads
// of Send and TryRecv pass MSG_DONTWAIT. It is a variable only so that
// tests and benchmarks can cover both read modes.
var blockingRead = true

// blockSlice is the SO_RCVTIMEO of a connection with I/O timeout t: how long
// one blocking recv(2) may last. Recv blocks only while the slice plus
// blockMargin (the kernel counts the timeout in clock ticks, up to 10 ms on
// some kernels, and may wake a tick late) still ends before the exchange's
// deadline, so a server sending a byte now and then cannot stretch an
// exchange past its timeout; the end of a long wait is a poll(2).
func blockSlice(t time.Duration) time.Duration { return max(t/4, time.Millisecond) }

const blockMargin = 20 * time.Millisecond

// Buffers above keepBufCap are dropped after use instead of kept, so one
// big value does not pin memory in every pooled connection.
const (
	initialReadBuf = 16 << 10
	keepBufCap     = 256 << 10
)

// LargeValue is the size from which values bypass the connection's
// buffers: AppendValue leaves a value this long where it is for Send to
// write with sendmsg(2) from the caller's memory, and Recv reads a response
// body this long straight into a buffer of its own, which OwnValue hands
// over. A 1 MiB get then costs one 1 MiB allocation and no copy in user
// space, and no pooled connection keeps a buffer grown for one big value.
// Below it, copying through the buffers is cheaper than the extra iovecs
// and reads.
const LargeValue = 32 << 10

// iovMax is the most iovecs one sendmsg(2) takes (Linux's UIO_MAXIOV).
const iovMax = 1024

// yieldEvery is how often an exchange first yields the processor
// (runtime.Gosched), and why: the Go scheduler's sysmon thread treats a
// goroutine that has not been through the scheduler for 10 ms
// (forcePreemptNS) as a hog. A caller doing nothing but exchanges (a loop
// of gets, or Python threads calling in through cgo) never is, so sysmon
// keeps preempting it and taking its P away in the middle of a blocking
// recv(2), handing the P to another thread that wakes up only to find
// nothing to do; the goroutine then picks up an idle P whose schedule tick
// is just as old, and it starts again at sysmon's fastest pace (20 us).
// Measured on 20k gets from Python: 5300 futex calls, 6800 nanosleeps and
// 31k context switches; with this yield 1600, 270 and 21.7k (one per get,
// the blocking recv). A yield is not free on a thread locked to its
// goroutine, as cgo callbacks are (two hand-offs, ~6 futex calls): 8 ms
// costs half of what 4 ms did and still stays under sysmon's 10 ms.
const yieldEvery = 8 * time.Millisecond

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
	// MaxValue is the largest value a reply may carry; a bigger announced
	// value is treated as a protocol error instead of being read.
	MaxValue int
	// Codec is the protocol the connection speaks for its whole life
	// (default: meta).
	Codec proto.Codec
	// TLS, if set, encrypts the connection (see tls.go); the handshake
	// is bounded by ConnectTimeout.
	TLS *TLSConfig
}

func (o *Options) fill() {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.IOTimeout <= 0 {
		o.IOTimeout = DefaultIOTimeout
	}
	if o.MaxValue <= 0 {
		o.MaxValue = DefaultMaxValue
	}

}

// extent is a large value AppendValue left in the caller's memory, to be
// written at offset at of the request buffer.
type extent struct {
	at   int
	data []byte
}

// Conn is one connection to a memcached server speaking one protocol.
type Conn struct {
	fd    int
	addr  string
	opts  Options
	codec proto.Codec

	wbuf []byte
	ext  []extent // large values of the request being built
	// The unwritten rest of the current request: rest when it is one
	// buffer, else the pieces iov[iovPos:] (iov[iovPos] possibly started).
	rest   []byte
	iov    []unix.Iovec
	iovPos int

	rbuf []byte // rbuf[rpos:rend] is received but not yet parsed
	rpos int
	rend int
	// drained: the last read got less than it asked for, so the socket
	// was empty then and another read would most likely find nothing.
	drained bool

	// A large value being read into its own buffer: big[:bigGot] arrived;
	// bigReply is its reply, whose Key was copied to bigKey, and bigTrailer
	// the length of the CRLF that ends big.
	big        []byte
	bigGot     int
	bigReply   proto.Reply
	bigKey     []byte
	bigTrailer int
	// owned is the Value of the last response if it was read apart, so
	// that OwnValue can hand it over instead of copying it.
	owned []byte

	// deadline of the current exchange, set by Start and, when reads may
	// block, by Send (it bounds the blocking reads and the polls that
	// follow); in the poll mode of tests it is zero until the first wait.
	deadline time.Time
	received bool          // any byte read since the last Send
	slice    time.Duration // SO_RCVTIMEO, 0 if reads never block
	yieldAt  time.Time     // see yieldEvery
	aliveAt  time.Time     // when last seen usable: an exchange began, or Reusable checked
	id       uint64        // see ID
	seq      uint32        // the last sequence number handed out
	rp       proto.Reply   // the reply being parsed (see parse)
	rq       proto.Request // the request being encoded (see AppendRequest)
	pfd      [1]unix.PollFd
	ts       unix.Timespec
	err      error

	// tls and tport are set on an encrypted connection (see tls.go);
	// tlsErr is the TLS failure behind an errTLS result.
	tls    *tls.Conn
	tport  *fdTransport
	tlsErr error
	// replied: a reply was ever parsed on the connection.
	replied bool
	// bounds are the ends of the requests appended to the buffer since
	// Buffer, on a TLS connection (see tlsEncrypt).
	bounds []int
}

// Addr returns the address the connection was dialled with.
func (c *Conn) Addr() string { return c.addr }

// Err returns the error that broke the connection, or nil if it is usable.
func (c *Conn) Err() error { return c.err }

// Received reports whether any byte arrived since the last Send. A pooled
// connection that fails with nothing received was most likely closed by the
// server while idle, so the request can be retried on a new connection.
func (c *Conn) Received() bool { return c.received }

// NextSeq returns a sequence number for the next request on the
// connection: one never used on it recently, so that a late reply to an
// earlier request cannot pass for an answer to this one.
func (c *Conn) NextSeq() uint32 {
	c.seq++
	return c.seq
}

// NextSeqs reserves n consecutive sequence numbers and returns the first.
func (c *Conn) NextSeqs(n int) uint32 {
	first := c.seq + 1
	c.seq += uint32(n)
	return first
}

// Codec returns the protocol the connection speaks.
func (c *Conn) Codec() proto.Codec { return c.codec }

// Buffer returns the connection's write buffer, emptied. Append requests to
// it (AppendRequest, AppendValue) and pass the result to Send or Start:
// reusing it keeps a steady state free of allocations.
func (c *Conn) Buffer() []byte {
	c.clearExtents()
	c.bounds = c.bounds[:0]
	return c.wbuf[:0]
}

// AppendRequest appends req to buf, the request being built from Buffer,
// in the connection's protocol; a store's value is value, appended with
// AppendValue. It returns an error wrapping proto.ErrUnsupported, and buf
// unchanged, for a request the protocol cannot express.
func (c *Conn) AppendRequest(buf []byte, req *proto.Request, value []byte) ([]byte, error) {
	// The codec gets a copy in c.rq: the caller's request would escape
	// through the Codec interface, one allocation per request.
	c.rq = *req
	c.rq.ValueLen = len(value)
	out, err := c.codec.AppendRequest(buf, &c.rq)
	store := c.rq.Op.IsStore()
	c.rq = proto.Request{} // keep no reference to the caller's keys
	if err != nil || !store {
		if err == nil && c.tls != nil {
			c.bounds = append(c.bounds, len(out))
		}
		return out, err
	}
	out = c.codec.AppendValueEnd(c.AppendValue(out, value))
	if c.tls != nil {
		c.bounds = append(c.bounds, len(out))
	}
	return out, nil
}

// AppendValue appends value to buf, the request being built from Buffer
// (after a store's head). A value of
// LargeValue bytes or more is not copied: Send (or Start and Flush) writes
// it from where it is, so it must stay unchanged until the request is
// written, and buf must be sent before Buffer is called again.
func (c *Conn) AppendValue(buf, value []byte) []byte {
	if len(value) < LargeValue {
		return append(buf, value...)
	}
	c.ext = append(c.ext, extent{at: len(buf), data: value})
	return buf
}

func (c *Conn) clearExtents() {
	clear(c.ext)
	c.ext = c.ext[:0]
}

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
	c.dropRequest()
	return err
}

// fail records the first error, closes the socket and returns the error.
func (c *Conn) fail(err error) error {
	if c.tls != nil && !c.replied && !c.received && c.err == nil && len(c.opts.TLS.Config.Certificates) == 0 && !errors.Is(err, ErrTimeout) {
		// A server that requires a client certificate closes the
		// connection at the first request (TLS 1.3 checks it after the
		// client's handshake is done).
		err = fmt.Errorf("%w (a TLS server requiring a client certificate does this: give tls_cert_file and tls_key_file)", err)
	}
	if c.err == nil || c.err == ErrClosed {
		c.err = err
	}
	if c.fd >= 0 {
		closeSocket(c.fd)
		c.fd = -1
	}
	c.dropRequest()
	c.big = nil
	return c.err
}

// dropRequest forgets the unwritten request, which may point into the
// caller's memory.
func (c *Conn) dropRequest() {
	c.clearExtents()
	c.rest = nil
	clear(c.iov)
	c.iov, c.iovPos = c.iov[:0], 0
}

// begin starts a new exchange whose request is b plus the extents.
func (c *Conn) begin(b []byte) {
	c.received = false
	c.drained = false
	c.owned = nil
	c.big = nil
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
	if len(c.ext) == 0 {
		c.rest = b
		return
	}
	pos := 0
	for _, e := range c.ext {
		c.addPiece(b[pos:e.at])
		c.addPiece(e.data)
		pos = e.at
	}
	c.addPiece(b[pos:])
	c.clearExtents()
}

func (c *Conn) addPiece(p []byte) {
	if len(p) == 0 {
		return
	}
	v := unix.Iovec{Base: &p[0]}
	v.SetLen(len(p))
	c.iov = append(c.iov, v)
}

// unsent reports whether part of the request is still to be written.
func (c *Conn) unsent() bool { return len(c.rest) > 0 || c.iovPos < len(c.iov) }

// writeSome makes one non-blocking write of the rest of the request.
func (c *Conn) writeSome() unix.Errno {
	if len(c.rest) > 0 {
		n, errno := send(c.fd, c.rest)
		c.rest = c.rest[n:]
		return errno
	}
	iov := c.iov[c.iovPos:]
	if len(iov) > iovMax {
		iov = iov[:iovMax]
	}
	n, errno := sendmsg(c.fd, iov)
	for n > 0 {
		v := &c.iov[c.iovPos]
		if l := int(v.Len); n < l {
			v.Base = (*byte)(unsafe.Add(unsafe.Pointer(v.Base), n))
			v.SetLen(l - n)
			break
		} else {
			n -= l
		}
		*v = unix.Iovec{}
		c.iovPos++
	}
	if c.iovPos == len(c.iov) {
		c.iov, c.iovPos = c.iov[:0], 0
	}
	return errno
}

// Send writes b in full, starting a new exchange with a fresh I/O deadline.
// The whole batch goes out in as few write calls as the kernel allows (one,
// normally). While the socket is full, Send also reads what the server
// already answered, so a large pipelined batch cannot deadlock with a server
// that stops reading until its replies are consumed.
func (c *Conn) Send(b []byte) error {
	if c.err != nil {
		c.dropRequest()
		return c.err
	}
	now := c.pace()
	c.aliveAt = now
	c.deadline = time.Time{}
	if blockingRead {
		c.deadline = now.Add(c.opts.IOTimeout)
	}
	if c.tls != nil {
		b = c.tlsPlaintext(b)
	}
	c.begin(b)
	if c.tls != nil {
		if err := c.tlsEncrypt(); err != nil {
			return c.fail(fmt.Errorf("write to %s: TLS: %w", c.addr, err))
		}
	}
	for c.unsent() {
		switch errno := c.writeSome(); errno {
		case 0, unix.EINTR:
		case unix.EAGAIN:
			rev, err := c.wait(unix.POLLOUT | unix.POLLIN)
			if err != nil {
				return c.fail(fmt.Errorf("write to %s: %w", c.addr, err))
			}
			if rev&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 && rev&unix.POLLOUT == 0 {
				if err := c.readOnce(c.rend-c.rpos+initialReadBuf, unix.MSG_DONTWAIT); err != 0 && err != unix.EAGAIN {
					return c.fail(fmt.Errorf("read from %s: %w", c.addr, c.ioErr(err)))
				}
			}
		default:
			return c.fail(fmt.Errorf("write to %s: %w", c.addr, errno))
		}
	}
	return nil
}

// Start begins an exchange like Send but never waits: it writes what the
// socket takes now, and Flush writes more once the socket is writable
// again. Use it with TryRecv and PollSet to talk to several servers from
// one thread. Writing reports whether part of the request is left.
func (c *Conn) Start(b []byte) error {
	if c.err != nil {
		c.dropRequest()
		return c.err
	}
	c.aliveAt = time.Now()
	c.deadline = c.aliveAt.Add(c.opts.IOTimeout)
	if c.tls != nil {
		b = c.tlsPlaintext(b)
	}
	c.begin(b)
	if c.tls != nil {
		if err := c.tlsEncrypt(); err != nil {
			return c.fail(fmt.Errorf("write to %s: TLS: %w", c.addr, err))
		}
	}
	return c.Flush()
}

// Yield gives up the processor if the connection has not done so for
// yieldEvery (see there why). Send does it by itself; a caller driving
// several connections with Start calls it on one of them per round, so
// that one thread yields once, not once per connection.
func (c *Conn) Yield() { c.pace() }

// pace yields the processor if the connection's last yield is yieldEvery
// ago, before an exchange starts, and returns the time.
func (c *Conn) pace() time.Time {
	now := time.Now()
	if now.Sub(c.yieldAt) >= yieldEvery {
		runtime.Gosched()
		now = time.Now()
		c.yieldAt = now
	}
	return now
}

// Flush writes more of a request begun by Start, without waiting.
func (c *Conn) Flush() error {
	if c.err != nil {
		return c.err
	}
	for c.unsent() {
		switch errno := c.writeSome(); errno {
		case 0, unix.EINTR:
		case unix.EAGAIN:
			return nil
		default:
			return c.fail(fmt.Errorf("write to %s: %w", c.addr, errno))
		}
	}
	return nil
}

// Writing reports whether part of the request begun by Start is still to be
// written: the socket must then be polled for writing too.
func (c *Conn) Writing() bool { return c.err == nil && c.unsent() }

// Deadline returns the deadline of the current exchange, fixed by Start.
func (c *Conn) Deadline() time.Time { return c.deadline }

// Expire fails the connection with ErrTimeout: its exchange's deadline
// passed while the caller waited for it.
func (c *Conn) Expire() error {
	if c.err != nil {
		return c.err
	}
	if c.unsent() {
		return c.fail(fmt.Errorf("write to %s: %w", c.addr, ErrTimeout))
	}
	return c.fail(fmt.Errorf("read from %s: %w", c.addr, ErrTimeout))
}

// Recv returns the next reply. Its Key, Message and Value alias the read
// buffer and stay valid only until the next Recv or Send, except a Value of
// LargeValue bytes or more, which has a buffer of its own (see OwnValue).
func (c *Conn) Recv() (proto.Reply, error) {
	if c.err != nil {
		return proto.Reply{}, c.err
	}
	c.owned = nil
	for {
		r, ok, need, err := c.parse()
		if err != nil {
			return proto.Reply{}, c.fail(fmt.Errorf("from %s: %w", c.addr, err))
		}
		if ok {
			c.replied = true
			return r, nil
		}
		if c.slice > 0 && time.Until(c.deadline) >= c.slice+blockMargin {
			switch errno := c.fill(need, 0); errno {
			case 0, unix.EAGAIN, unix.EINTR:
				// Data, or the slice ran out, or a signal: look again.
				continue
			default:
				return proto.Reply{}, c.fail(fmt.Errorf("read from %s: %w", c.addr, c.ioErr(errno)))
			}
		}
		// The end of the wait, or the poll mode of tests: the socket is
		// non-blocking or every read passes MSG_DONTWAIT.
		errno := unix.EAGAIN
		if !c.drained {
			// Try the read before polling: on loopback the reply is often
			// already there, and then poll would be a wasted system call.
			errno = c.fill(need, unix.MSG_DONTWAIT)
		}
		for errno == unix.EAGAIN || errno == unix.EINTR {
			if errno == unix.EAGAIN {
				if _, werr := c.wait(unix.POLLIN); werr != nil {
					return proto.Reply{}, c.fail(fmt.Errorf("read from %s: %w", c.addr, werr))
				}
			}
			errno = c.fill(need, unix.MSG_DONTWAIT)
		}
		if errno != 0 {
			return proto.Reply{}, c.fail(fmt.Errorf("read from %s: %w", c.addr, c.ioErr(errno)))
		}
	}
}

// TryRecv returns the next response if it can be had without waiting, from
// what is buffered or after non-blocking reads. ok false means the caller
// must wait until the socket is readable (PollSet) and call again. The
// response is valid as one from Recv is.
func (c *Conn) TryRecv() (r proto.Reply, ok bool, err error) {
	if c.err != nil {
		return proto.Reply{}, false, c.err
	}
	c.owned = nil
	read := false
	for {
		r, ok, need, err := c.parse()
		if err != nil {
			return proto.Reply{}, false, c.fail(fmt.Errorf("from %s: %w", c.addr, err))
		}
		if ok {
			c.replied = true
			return r, true, nil
		}
		if read && c.drained {
			return proto.Reply{}, false, nil
		}
		switch errno := c.fill(need, unix.MSG_DONTWAIT); errno {
		case 0:
			read = true
		case unix.EINTR:
		case unix.EAGAIN:
			return proto.Reply{}, false, nil
		default:
			return proto.Reply{}, false, c.fail(fmt.Errorf("read from %s: %w", c.addr, c.ioErr(errno)))
		}
	}
}

// parse returns the next reply if all of it arrived. Otherwise need is how
// many bytes the read buffer should have room for. A large value is moved
// to a buffer of its own as soon as the reply's head is in.
func (c *Conn) parse() (r proto.Reply, ok bool, need int, err error) {
	// The codec works on c.rp, not on a local: a pointer passed through
	// the Codec interface escapes, and a local would then be one
	// allocation per reply.
	rp := &c.rp
	if c.big != nil {
		if c.bigGot < len(c.big) {
			return r, false, 0, nil
		}
		n := len(c.big) - c.bigTrailer
		if string(c.big[n:]) != proto.CRLF[:c.bigTrailer] {
			return r, false, 0, proto.Malformed("a %d-byte value not followed by CRLF", n)
		}
		// The value keeps its CRLF as spare capacity, for ReleaseValue.
		*rp = c.bigReply
		rp.Value = c.big[:n]
		c.owned, c.big = rp.Value, nil
		c.bigReply = proto.Reply{}
		err = c.codec.Complete(rp)
		return *rp, err == nil, 0, err
	}
	buf := c.rbuf[c.rpos:c.rend]
	head, vlen, trailer, need, err := c.codec.Parse(buf, c.opts.MaxValue, rp)
	if err != nil || head == 0 {
		return r, false, need, err
	}
	if vlen < 0 {
		c.rpos += head
		err = c.codec.Complete(rp)
		return *rp, err == nil, 0, err
	}
	total := head + vlen + trailer
	if vlen+trailer < LargeValue {
		if len(buf) < total {
			return r, false, total, nil
		}
		if string(buf[head+vlen:total]) != proto.CRLF[:trailer] {
			return r, false, 0, proto.Malformed("a %d-byte value not followed by CRLF", vlen)
		}
		rp.Value = buf[head : head+vlen : head+vlen]
		c.rpos += total
		err = c.codec.Complete(rp)
		return *rp, err == nil, 0, err
	}
	// Read the value straight into the buffer that becomes the caller's,
	// starting with what already arrived.
	if rp.Key != nil {
		// The key aliases the read buffer, which the value's bytes will
		// not pass through: keep a copy. A reply without one keeps none
		// (an empty copy would read as a key that does not match).
		c.bigKey = append(c.bigKey[:0], rp.Key...)
		rp.Key = c.bigKey
	}
	c.bigReply, c.bigTrailer = *rp, trailer
	c.big = largeBuffer(vlen + trailer)
	c.bigGot = copy(c.big, buf[head:])
	c.rpos += head + c.bigGot
	return c.parse()
}

// Pending reports whether bytes the caller has not read arrived: after an
// exchange is complete, they are replies nobody asked for.
func (c *Conn) Pending() bool {
	return c.err == nil && (c.rpos != c.rend || c.big != nil || !c.tlsDrained())
}

// OwnValue returns v, the Value of the response just received, as memory
// the caller owns: the buffer itself if it was read apart (a large value:
// no copy), else a copy. An empty value gives an empty, non-nil slice.
func (c *Conn) OwnValue(v []byte) []byte {
	if len(v) > 0 && len(c.owned) == len(v) && &c.owned[0] == &v[0] {
		c.owned = nil
		return v
	}
	out := make([]byte, len(v))
	copy(out, v)
	return out
}

// errEOF stands for end of stream in readOnce's errno result.
const errEOF = unix.Errno(0x7fffffff)

func errnoOrEOF(e unix.Errno) error {
	if e == errEOF {
		// The server never closes a healthy connection by itself, so any
		// end of stream cuts a reply short.
		return io.ErrUnexpectedEOF
	}
	return e
}

// fill reads once, with recv(2) flags, into the large body being read
// apart if there is one, else into the read buffer (see readOnce).
func (c *Conn) fill(need int, flags int) unix.Errno {
	if c.big == nil {
		return c.readOnce(need, flags)
	}
	free := c.big[c.bigGot:]
	n, e := c.recv(free, flags)
	if e != 0 {
		return e
	}
	c.bigGot += n
	c.received = true
	c.drained = n < len(free) && c.tlsDrained()
	return 0
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
	n, e := c.recv(free, flags)
	if e != 0 {
		return e
	}
	c.rend += n
	c.received = true
	c.drained = n < len(free) && c.tlsDrained()
	return 0
}

// recv reads into p with recv(2) flags, through TLS on an encrypted
// connection.
func (c *Conn) recv(p []byte, flags int) (int, unix.Errno) {
	if c.tls != nil {
		return c.tlsRecv(p, flags)
	}
	return recv(c.fd, p, flags)
}

// tlsDrained reports whether no received byte waits in the TLS transport
// (always true without TLS): only then may an empty read mean an empty
// socket.
func (c *Conn) tlsDrained() bool { return c.tls == nil || c.tport.buffered() == 0 }

// recv reads into p with recv(2) flags; end of stream is errEOF.
func recv(fd int, p []byte, flags int) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		uintptr(flags), 0, 0)
	if e != 0 {
		return 0, e
	}
	if r == 0 {
		return 0, errEOF
	}
	return int(r), 0
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

// sendmsg writes the pieces iov in order, as send does one buffer.
func sendmsg(fd int, iov []unix.Iovec) (int, unix.Errno) {
	var msg unix.Msghdr
	msg.Iov = &iov[0]
	msg.SetIovlen(len(iov))
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// PollSet waits on several connections at once, for a caller driving their
// exchanges (Start, Flush, TryRecv) from one thread. The zero value is ready
// to use; reusing one avoids allocations.
type PollSet struct {
	fds []unix.PollFd
	ts  unix.Timespec
}

// Wait blocks until one of conns is readable, writable while Writing, or
// hung up, or until deadline; nil and failed entries are skipped. It
// returns how many are ready, 0 when the deadline passed. Readable and
// Writable then tell which.
func (p *PollSet) Wait(conns []*Conn, deadline time.Time) (int, error) {
	p.fds = p.fds[:0]
	buffered := false
	for _, c := range conns {
		fd := int32(-1) // poll(2) ignores negative descriptors
		var ev int16 = unix.POLLIN
		if c != nil && c.err == nil {
			fd = int32(c.fd)
			if c.unsent() {
				ev |= unix.POLLOUT
			}
			if !c.tlsDrained() {
				buffered = true
			}
		}
		p.fds = append(p.fds, unix.PollFd{Fd: fd, Events: ev})
	}
	if buffered {
		// TLS records already read wait in a transport: those connections
		// are readable now, whatever their sockets say.
		return p.readyBuffered(conns)
	}
	for {
		left := max(time.Until(deadline), 0)
		p.ts = unix.NsecToTimespec(int64(left))
		n, err := unix.Ppoll(p.fds, &p.ts, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("poll: %w", err)
		}
		return n, nil
	}
}

// Readable reports whether conns[i] of the last Wait has something to read
// (or failed: the read then reports how).
func (p *PollSet) Readable(i int) bool {
	return p.fds[i].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
}

// Writable reports whether conns[i] of the last Wait can take more of its
// request (or failed).
func (p *PollSet) Writable(i int) bool {
	return p.fds[i].Revents&(unix.POLLOUT|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
}

// Alive reports whether an idle connection still looks usable: no pending
// error, no end of stream and no unsolicited bytes waiting. It costs one
// non-blocking system call; the client spends it only before requests that
// must not be retried (a retry could apply an increment twice).
func (c *Conn) Alive() bool {
	if c.err != nil || c.rpos != c.rend {
		return false
	}
	if c.tls != nil {
		// Records the server sent while the connection was idle (TLS 1.3
		// session tickets) are not data: a read consumes them, and the
		// connection is alive if no data and no end of stream came.
		return c.readOnce(initialReadBuf, unix.MSG_DONTWAIT) == unix.EAGAIN && c.rpos == c.rend
	}
	var b [1]byte
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return e == unix.EAGAIN
}

// connIDs numbers the connections of this process (see ID).
var connIDs atomic.Uint64

// ID returns a number no other connection of this process had or will
// have: what tells a connection apart from an earlier one that had the
// same descriptor number, without keeping the earlier one alive.
func (c *Conn) ID() uint64 { return c.id }

// reuseWindow is how recently a connection must have been seen usable for
// Reusable to skip Alive's system call. A check that soon after an
// exchange can only catch what a server sent within a millisecond of its
// answer, which could as well arrive just after the check; and a server
// restarted and listening again within it is not a case worth a system
// call per request (the peek is 1.0-1.2 us on the 2-core VM of
// benchmarks/ANALYSIS.md, ~3% of a loopback get).
const reuseWindow = time.Millisecond

// Reusable is Alive for a connection taken from a pool, without the system
// call when the connection was last seen usable (an exchange began, or
// this check passed) less than reuseWindow ago: it then checks only what
// the connection already knows (a failure, bytes read and not consumed).
func (c *Conn) Reusable() bool {
	if c.err != nil || c.rpos != c.rend {
		return false
	}
	now := time.Now()
	if now.Sub(c.aliveAt) < reuseWindow {
		return true
	}
	if !c.Alive() {
		return false
	}
	c.aliveAt = now
	return true
}

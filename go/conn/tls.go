package conn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TLS runs crypto/tls over the connection's own file descriptor, not over
// the net package: fdTransport is a net.Conn whose Read and Write are
// system calls on the non-blocking socket, so the engine keeps its
// deadlines, its poll(2) waits and its multi-server PollSet.
//
//   - The handshake runs in Dial, bounded by ConnectTimeout (a fresh one
//     after the TCP connect): reads and writes wait in poll(2) until then.
//   - A request is encrypted into memory (fdTransport.out) when its
//     exchange begins; the ciphertext then goes through the same
//     non-blocking write path as a plaintext request, so a full socket
//     still reads replies while it waits. Large values are copied (the
//     cipher has to read them anyway): zero-copy does not apply.
//   - Reads pass the caller's recv(2) flags down: EAGAIN comes back from
//     the transport as a temporary net.Error, which crypto/tls does not
//     treat as fatal (it keeps the part of a record already read).
//   - The transport hands crypto/tls one record at a time, so bytes that
//     arrived beyond it stay in fdTransport.in, where Conn can see them:
//     a socket that polls empty while a record waits there must not be
//     waited on (drained, PollSet, Alive).
//
// Renegotiation is refused (crypto/tls's default, RenegotiateNever); there
// is never a fallback to plaintext.

// TLSConfig is the TLS setup of a connection: Options.TLS.
type TLSConfig struct {
	// Config is the crypto/tls configuration. Its ServerName, when empty,
	// is set per connection to the host of the address dialled.
	Config *tls.Config
}

// ErrTLSConfig is wrapped by handshake failures that a retry cannot mend:
// a certificate the client does not trust (unknown authority, wrong name,
// expired), a server that does not speak TLS, no common version or cipher.
var ErrTLSConfig = errors.New("TLS handshake failed")

// TLSOptions are the user-facing TLS settings NewTLSConfig turns into a
// crypto/tls configuration.
type TLSOptions struct {
	CAFile     string // PEM CA bundle; empty: the system roots
	CertFile   string // PEM client certificate (mutual TLS), with KeyFile
	KeyFile    string
	ServerName string // name to verify; empty: the host of each server
	NoVerify   bool   // skip verification of the server's certificate
	MinVersion string // "1.0", "1.1", "1.2" (default) or "1.3"
}

// NewTLSConfig builds the TLS configuration for o, reading the files.
// Error messages name the files, never their content.
func NewTLSConfig(o TLSOptions) (*TLSConfig, error) {
	cfg := &tls.Config{
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.NoVerify,
		Renegotiation:      tls.RenegotiateNever,
	}
	switch o.MinVersion {
	case "", "1.2":
		cfg.MinVersion = tls.VersionTLS12
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	case "1.1":
		cfg.MinVersion = tls.VersionTLS11
	case "1.0":
		cfg.MinVersion = tls.VersionTLS10
	default:
		return nil, fmt.Errorf("unknown TLS minimum version %q (1.0, 1.1, 1.2 or 1.3)", o.MinVersion)
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s: no PEM certificate in it", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("a TLS client certificate needs both a certificate file and a key file")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			// crypto/tls's messages name what is wrong, not key bytes.
			return nil, fmt.Errorf("TLS client certificate %s / key %s: %w", o.CertFile, o.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &TLSConfig{Config: cfg}, nil
}

// serverName returns the name to verify for addr: the configured one, or
// the host part of "host:port" (a unix socket path has none).
func (t *TLSConfig) config(addr string) *tls.Config {
	cfg := t.Config.Clone()
	// Full-size records from the first byte (as OpenSSL writes them):
	// small ones would split a batch that fits one record (see
	// tlsWriteRecords).
	cfg.DynamicRecordSizingDisabled = true
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		} else {
			cfg.ServerName = "localhost"
		}
	}
	return cfg
}

// tempError is EAGAIN or EINTR from the socket, handed to crypto/tls as a
// temporary error so that it keeps its state.
type tempError struct{ errno unix.Errno }

func (e tempError) Error() string   { return e.errno.Error() }
func (e tempError) Timeout() bool   { return true }
func (e tempError) Temporary() bool { return true }

// fdTransport is the net.Conn crypto/tls talks through.
type fdTransport struct {
	fd int
	// direct: reads and writes wait in poll(2) until deadline (the
	// handshake, and anything crypto/tls writes outside an exchange).
	// Otherwise reads make one recv(2) with flags and writes are queued
	// in out.
	direct   bool
	deadline time.Time
	flags    int
	queue    bool // Write appends to out
	out      []byte

	in          []byte // in[inPos:] arrived and was not handed over yet
	inPos       int
	hdr         [5]byte
	hdrGot      int // bytes of the current record header handed over
	bodyLeft    int // bytes of the current record body still to hand over
	pfd         [1]unix.PollFd
	ts          unix.Timespec
	eof         bool
	readErrno   unix.Errno
	writeFailed error
}

func (t *fdTransport) buffered() int { return len(t.in) - t.inPos }

// Read hands crypto/tls at most the rest of the current record.
func (t *fdTransport) Read(p []byte) (int, error) {
	if t.buffered() == 0 {
		if err := t.readMore(); err != nil {
			return 0, err
		}
	}
	avail := t.in[t.inPos:]
	var n int
	if t.bodyLeft == 0 {
		n = min(len(p), len(avail), 5-t.hdrGot)
		copy(t.hdr[t.hdrGot:], avail[:n])
		t.hdrGot += n
		if t.hdrGot == 5 {
			t.hdrGot = 0
			t.bodyLeft = int(t.hdr[3])<<8 | int(t.hdr[4])
		}
	} else {
		n = min(len(p), len(avail), t.bodyLeft)
		t.bodyLeft -= n
	}
	copy(p, avail[:n])
	t.inPos += n
	if t.inPos == len(t.in) {
		t.in, t.inPos = t.in[:0], 0
	}
	return n, nil
}

// readMore reads from the socket into in.
func (t *fdTransport) readMore() error {
	if t.eof {
		return io.EOF
	}
	if cap(t.in) == 0 {
		t.in = make([]byte, 0, 32<<10)
	}
	buf := t.in[len(t.in):cap(t.in)]
	for {
		flags := t.flags
		if t.direct {
			flags = unix.MSG_DONTWAIT
		}
		n, errno := recv(t.fd, buf, flags)
		switch errno {
		case 0:
			t.in = t.in[:len(t.in)+n]
			return nil
		case errEOF:
			t.eof = true
			return io.EOF
		case unix.EAGAIN, unix.EINTR:
			if !t.direct {
				return tempError{errno}
			}
			if errno == unix.EAGAIN {
				if _, err := pollFd(t.fd, unix.POLLIN, t.deadline, &t.pfd, &t.ts); err != nil {
					return err
				}
			}
		default:
			return errno
		}
	}
}

// Write queues p during an exchange, else writes it in full by the
// deadline.
func (t *fdTransport) Write(p []byte) (int, error) {
	if t.queue {
		t.out = append(t.out, p...)
		return len(p), nil
	}
	deadline := t.deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(DefaultIOTimeout)
	}
	done := 0
	for done < len(p) {
		n, errno := send(t.fd, p[done:])
		switch errno {
		case 0:
			done += n
		case unix.EINTR:
		case unix.EAGAIN:
			if _, err := pollFd(t.fd, unix.POLLOUT, deadline, &t.pfd, &t.ts); err != nil {
				return done, err
			}
		default:
			return done, errno
		}
	}
	return done, nil
}

// Close does nothing: the Conn owns the descriptor.
func (t *fdTransport) Close() error { return nil }

// LocalAddr is part of net.Conn; crypto/tls does not need it.
func (t *fdTransport) LocalAddr() net.Addr { return nil }

// RemoteAddr is part of net.Conn; crypto/tls does not need it.
func (t *fdTransport) RemoteAddr() net.Addr { return nil }

// SetDeadline is part of net.Conn; deadlines are the Conn's own.
func (t *fdTransport) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is part of net.Conn; deadlines are the Conn's own.
func (t *fdTransport) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is part of net.Conn; deadlines are the Conn's own.
func (t *fdTransport) SetWriteDeadline(time.Time) error { return nil }

// handshake runs the TLS handshake on fd until deadline.
func handshake(fd int, addr string, cfg *TLSConfig, deadline time.Time) (*tls.Conn, *fdTransport, error) {
	t := &fdTransport{fd: fd, direct: true, deadline: deadline}
	tc := tls.Client(t, cfg.config(addr))
	if err := tc.Handshake(); err != nil {
		if errors.Is(err, ErrTimeout) {
			return nil, nil, fmt.Errorf("TLS handshake: %w", ErrTimeout)
		}
		var errno unix.Errno
		if errors.As(err, &errno) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// The server closed or reset the connection: it may be one
			// that requires a client certificate, or a failing one.
			return nil, nil, fmt.Errorf("TLS handshake: connection closed by the server (%w); "+
				"does it require a client certificate, or speak TLS at all?", errnoOrEOF(eofErrno(err)))
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrTLSConfig, err)
	}
	t.direct = false
	return tc, t, nil
}

func eofErrno(err error) unix.Errno {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return errEOF
}

// tlsEncrypt turns the request in c.rest/c.iov into ciphertext in c.rest.
func (c *Conn) tlsEncrypt() error {
	t := c.tport
	t.out = t.out[:0]
	t.queue = true
	defer func() { t.queue = false }()
	if len(c.rest) > 0 {
		if err := c.tlsWriteRecords(c.rest); err != nil {
			return err
		}
	}
	for i := c.iovPos; i < len(c.iov); i++ {
		v := c.iov[i]
		if _, err := c.tls.Write(unsafeSlice(v.Base, int(v.Len))); err != nil {
			return err
		}
	}
	clear(c.iov)
	c.iov, c.iovPos = c.iov[:0], 0
	c.rest = t.out
	return nil
}

// tlsPlaintext returns the request b with its large values (extents) in
// place, and moves c.bounds to match: under TLS every byte is copied by
// the cipher anyway, and a request must be contiguous to be cut into
// records at its end (see tlsWriteRecords).
func (c *Conn) tlsPlaintext(b []byte) []byte {
	if len(c.ext) == 0 {
		return b
	}
	total := len(b)
	for _, e := range c.ext {
		total += len(e.data)
	}
	out := make([]byte, 0, total)
	pos := 0
	for _, e := range c.ext {
		out = append(out, b[pos:e.at]...)
		out = append(out, e.data...)
		pos = e.at
	}
	out = append(out, b[pos:]...)
	add, k := 0, 0
	for i, bd := range c.bounds {
		for k < len(c.ext) && c.ext[k].at < bd {
			add += len(c.ext[k].data)
			k++
		}
		c.bounds[i] = bd + add
	}
	c.clearExtents()
	return out
}

// maxRecord is the most plaintext one TLS record carries.
const maxRecord = 16 << 10

// tlsWriteRecords encrypts b, a batch of requests whose ends are c.bounds
// (when they add up to b), in records that each end at the end of a
// request and hold at most maxRecord bytes unless one request is longer.
// memcached 1.6 (its TLS read path, with OpenSSL) stalls on a pipeline
// whose records straddle requests: it reads part of a record into its
// buffer, leaves the rest decrypted inside OpenSSL, and waits for the
// socket, which has nothing more to say. Python's ssl (pymemcache) hits
// the same stall with batches over 16 KiB.
func (c *Conn) tlsWriteRecords(b []byte) error {
	bounds := c.bounds
	c.bounds = c.bounds[:0]
	if len(bounds) == 0 || bounds[len(bounds)-1] != len(b) || len(b) <= maxRecord {
		_, err := c.tls.Write(b)
		return err
	}
	// Whole requests, grouped up to maxRecord; a longer request alone (its
	// records then end at its end).
	start, end := 0, 0
	for _, e := range bounds {
		if e-start > maxRecord && end > start {
			if _, err := c.tls.Write(b[start:end]); err != nil {
				return err
			}
			start = end
		}
		end = e
	}
	if end > start {
		_, err := c.tls.Write(b[start:end])
		return err
	}
	return nil
}

// tlsRecv reads plaintext into p with recv(2) flags, as recv does.
func (c *Conn) tlsRecv(p []byte, flags int) (int, unix.Errno) {
	t := c.tport
	t.flags = flags
	t.deadline = c.deadline
	n, err := c.tls.Read(p)
	if n > 0 {
		return n, 0
	}
	var te tempError
	var errno unix.Errno
	switch {
	case err == nil:
		return 0, unix.EAGAIN
	case errors.As(err, &te):
		return 0, te.errno
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return 0, errEOF
	case errors.As(err, &errno):
		return 0, errno
	default:
		c.tlsErr = err
		return 0, errTLS
	}
}

// errTLS stands for a TLS-level failure (c.tlsErr) in an errno result.
const errTLS = unix.Errno(0x7ffffffe)

// ioErr is errnoOrEOF with TLS failures spelled out.
func (c *Conn) ioErr(e unix.Errno) error {
	if e == errTLS && c.tlsErr != nil {
		return fmt.Errorf("TLS: %w", c.tlsErr)
	}
	return errnoOrEOF(e)
}

// TLS reports whether the connection is encrypted.
func (c *Conn) TLS() bool { return c.tls != nil }

// readyBuffered is PollSet.Wait when a connection of conns holds TLS
// records already read: it polls the sockets without waiting and marks
// those connections readable.
func (p *PollSet) readyBuffered(conns []*Conn) (int, error) {
	p.ts = unix.Timespec{}
	for {
		_, err := unix.Ppoll(p.fds, &p.ts, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("poll: %w", err)
		}
		break
	}
	n := 0
	for i, c := range conns {
		if c != nil && c.err == nil && !c.tlsDrained() {
			p.fds[i].Revents |= unix.POLLIN
		}
		if p.fds[i].Revents != 0 {
			n++
		}
	}
	return n, nil
}

func unsafeSlice(b *byte, n int) []byte { return unsafe.Slice(b, n) }

// RecvFrame reads until frame, given the bytes received so far, returns a
// length n > 0, and returns those n bytes (valid until the next call),
// consuming them. frame returns 0 when more bytes are needed and an error
// for bytes that cannot be what is awaited. It waits until the deadline of
// the exchange begun by Send. It is for the rare exchanges outside the
// codec (authentication), so it always polls.
func (c *Conn) RecvFrame(frame func(b []byte) (int, error)) ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	for {
		n, err := frame(c.rbuf[c.rpos:c.rend])
		if err != nil {
			return nil, c.fail(fmt.Errorf("from %s: %w", c.addr, err))
		}
		if n > 0 {
			b := c.rbuf[c.rpos : c.rpos+n]
			c.rpos += n
			c.replied = true
			return b, nil
		}
		errno := c.readOnce(c.rend-c.rpos+512, unix.MSG_DONTWAIT)
		for errno == unix.EAGAIN || errno == unix.EINTR {
			if errno == unix.EAGAIN {
				if _, werr := c.wait(unix.POLLIN); werr != nil {
					return nil, c.fail(fmt.Errorf("read from %s: %w", c.addr, werr))
				}
			}
			errno = c.readOnce(c.rend-c.rpos+512, unix.MSG_DONTWAIT)
		}
		if errno != 0 {
			return nil, c.fail(fmt.Errorf("read from %s: %w", c.addr, c.ioErr(errno)))
		}
	}
}

package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Dial connects to addr: "host:port", "[v6addr]:port" or an absolute unix
// socket path. Host names are resolved, and each address tried in turn,
// within opts.ConnectTimeout. TCP connections get TCP_NODELAY, because the
// protocol is request/response and Nagle would hold back small requests.
func Dial(addr string, opts Options) (*Conn, error) {
	opts.fill()
	if opts.Codec == nil {
		return nil, fmt.Errorf("dial %s: no protocol chosen (Options.Codec)", addr)
	}
	deadline := time.Now().Add(opts.ConnectTimeout)
	sas, err := resolve(addr, deadline)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var errs []error
	for _, sa := range sas {
		fd, err := connect(sa, deadline)
		var tc *tls.Conn
		var tport *fdTransport
		if err == nil && opts.TLS != nil {
			// A fresh ConnectTimeout for the handshake: it is a second
			// round trip, plus the certificate checks.
			tc, tport, err = handshake(fd, addr, opts.TLS, time.Now().Add(opts.ConnectTimeout))
			if err != nil {
				closeSocket(fd)
				if errors.Is(err, ErrTLSConfig) {
					return nil, fmt.Errorf("dial %s: %w", addr, err)
				}
			}
		}
		var slice time.Duration
		if err == nil && blockingRead {
			slice = blockSlice(opts.IOTimeout)
			err = setBlockingWithTimeout(fd, slice)
		}
		if err == nil {
			return &Conn{fd: fd, addr: addr, opts: opts, codec: opts.Codec, slice: slice, tls: tc, tport: tport, id: connIDs.Add(1)}, nil
		}
		errs = append(errs, err)
		if errors.Is(err, ErrTimeout) {
			break
		}
	}
	return nil, fmt.Errorf("dial %s: %w", addr, errors.Join(errs...))
}

// resolve turns addr into socket addresses. Only names that are not IP
// literals touch the resolver (which is net's: resolution is rare and
// bounded by the deadline, unlike the per-request I/O).
func resolve(addr string, deadline time.Time) ([]unix.Sockaddr, error) {
	if strings.HasPrefix(addr, "/") {
		if len(addr) >= len(unix.RawSockaddrUnix{}.Path) {
			return nil, fmt.Errorf("unix socket path longer than %d bytes", len(unix.RawSockaddrUnix{}.Path)-1)
		}
		return []unix.Sockaddr{&unix.SockaddrUnix{Name: addr}}, nil
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("invalid port %q", portStr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		sa, err := sockaddr(ip, port)
		if err != nil {
			return nil, err
		}
		return []unix.Sockaddr{sa}, nil
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, ErrTimeout)
		}
		return nil, err
	}
	var sas []unix.Sockaddr
	for _, ia := range ips {
		ip, ok := netip.AddrFromSlice(ia.IP)
		if !ok {
			continue
		}
		if ia.Zone != "" {
			ip = ip.WithZone(ia.Zone)
		}
		if sa, err := sockaddr(ip.Unmap(), port); err == nil {
			sas = append(sas, sa)
		}
	}
	if len(sas) == 0 {
		return nil, fmt.Errorf("resolve %s: no usable address", host)
	}
	return sas, nil
}

func sockaddr(ip netip.Addr, port int) (unix.Sockaddr, error) {
	if ip.Is4() || ip.Is4In6() {
		return &unix.SockaddrInet4{Port: port, Addr: ip.Unmap().As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			if n, nerr := strconv.Atoi(z); nerr == nil {
				sa.ZoneId = uint32(n)
				return sa, nil
			}
			return nil, err
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}

// connect opens a non-blocking socket and connects it, waiting in poll(2)
// for the handshake until deadline.
func connect(sa unix.Sockaddr, deadline time.Time) (int, error) {
	family := unix.AF_UNIX
	switch sa.(type) {
	case *unix.SockaddrInet4:
		family = unix.AF_INET
	case *unix.SockaddrInet6:
		family = unix.AF_INET6
	}
	fd, err := openSocket(family)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if family != unix.AF_UNIX {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			closeSocket(fd)
			return -1, fmt.Errorf("setsockopt TCP_NODELAY: %w", err)
		}
	}
	err = unix.Connect(fd, sa)
	if err == unix.EINTR {
		// An interrupted connect carries on asynchronously, as if it had
		// returned EINPROGRESS.
		err = unix.EINPROGRESS
	}
	if err == unix.EINPROGRESS {
		var pfd [1]unix.PollFd
		var ts unix.Timespec
		if _, err = pollFd(fd, unix.POLLOUT, deadline, &pfd, &ts); err == nil {
			var soerr int
			soerr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && soerr != 0 {
				err = unix.Errno(soerr)
			}
		}
	}
	if err != nil {
		closeSocket(fd)
		return -1, fmt.Errorf("connect: %w", err)
	}
	return fd, nil
}

func setBlockingWithTimeout(fd int, timeout time.Duration) error {
	tv := unix.NsecToTimeval(int64(timeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		closeSocket(fd)
		return fmt.Errorf("setsockopt SO_RCVTIMEO: %w", err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		closeSocket(fd)
		return fmt.Errorf("clear O_NONBLOCK: %w", err)
	}
	return nil
}

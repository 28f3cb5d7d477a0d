package conn

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// SocketObserver is told about every socket this package opens and closes.
// The Python binding uses it to keep a table of the engine's sockets in
// memory that survives fork(), so a child process can close the sockets it
// inherited without calling into the parent's (dead) Go runtime.
type SocketObserver interface {
	// SocketOpened is called right after a socket is created.
	SocketOpened(fd int)
	// SocketClosed is called right before a socket is closed.
	SocketClosed(fd int)
}

type observerBox struct{ o SocketObserver }

var observer atomic.Pointer[observerBox]

// SetSocketObserver installs o (nil removes it) for all connections opened
// from now on and for the closing of those already open.
func SetSocketObserver(o SocketObserver) {
	if o == nil {
		observer.Store(nil)
		return
	}
	observer.Store(&observerBox{o})
}

// openSocket creates a non-blocking, close-on-exec stream socket.
func openSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		if b := observer.Load(); b != nil {
			b.o.SocketOpened(fd)
		}
	}
	return fd, err
}

// closeSocket closes a socket made by openSocket.
func closeSocket(fd int) error {
	if b := observer.Load(); b != nil {
		b.o.SocketClosed(fd)
	}
	return unix.Close(fd)
}

package bind

import (
	"github.com/omcache/omcache/go/client"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socketTable records the engine's open sockets in memory that Python owns:
// entry fd holds the socket's inode number (0: not ours). After fork() the
// child's copy of that memory tells Python which inherited descriptors are
// the parent engine's sockets, so it can close them without calling the
// parent's Go runtime (which does not survive fork). The inode check stops a
// child from closing a descriptor that was reused for something else.
type socketTable struct {
	base unsafe.Pointer // n uint64 entries, 8-byte aligned
	n    int
}

func (t *socketTable) slot(fd int) *uint64 {
	if fd < 0 || fd >= t.n {
		return nil
	}
	return (*uint64)(unsafe.Add(t.base, fd*8))
}

// SocketOpened records fd's inode.
func (t *socketTable) SocketOpened(fd int) {
	if p := t.slot(fd); p != nil {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			atomic.StoreUint64(p, st.Ino)
		}
	}
}

// SocketClosed clears fd's entry.
func (t *socketTable) SocketClosed(fd int) {
	if p := t.slot(fd); p != nil {
		atomic.StoreUint64(p, 0)
	}
}

// TrackSockets makes the engine record its sockets' inodes in the table of
// n uint64 entries at addr (memory owned by the caller, 8-byte aligned,
// alive for the life of the process), indexed by file descriptor;
// descriptors >= n are not recorded. addr 0 stops tracking.
func TrackSockets(addr, n int64) (ret int64) {
	defer recoverInt(&ret)
	if addr == 0 || n <= 0 {
		client.SetSocketObserver(nil)
		return 0
	}
	if addr%8 != 0 || n > 1<<24 {
		return result(errBadConfig)
	}
	base := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
	client.SetSocketObserver(&socketTable{base: base, n: int(n)})
	return 0
}

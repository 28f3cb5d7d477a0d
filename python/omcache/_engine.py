"""Loading of the Go engine: lazily, with signals blocked, and afresh after fork().

The engine is the gopy-built extension ``omcache._gopy._core``.  Loading it
starts a Go runtime, and a Go runtime does not survive ``fork()`` (see
../shared/fork-notes.md): in a child every Go call that needs the scheduler,
timers or the GC hangs.  So:

* ``import omcache`` does not load it; the first client operation does.
* It is loaded with every signal blocked in the loading thread: Go's threads
  inherit that mask, so process-directed signals (SIGTERM under uWSGI) are
  delivered to Python's threads, not to a Go thread.
* Every entry point compares ``os.getpid()`` with the PID that loaded the
  engine (at-fork hooks do not run in uWSGI workers).  A process whose parent
  had loaded the engine never calls that copy: it loads a fresh copy of the
  shared library from a new inode (a ``memfd``, else a temporary file), which
  gets its own working Go runtime.  Client objects notice the new PID and
  reconnect lazily.

Values cross the boundary without gopy's handle bookkeeping: Python passes the
address and length of a ``bytes`` object's buffer (the caller keeps the object
alive for the duration of the call, and bytes are immutable), Go reads it in
place and never keeps it after returning.
"""

from __future__ import annotations

import ctypes
import fcntl
import importlib.machinery
import importlib.util
import logging
import os
import signal
import stat
import sys
import tempfile
import threading
from types import ModuleType
from typing import Any, Callable, NoReturn, Optional

from . import exceptions as exc

log = logging.getLogger("omcache")

# Status codes returned by go/bind (keep in sync with go/bind/status.go).
OK = 0
MISS = 1
EXISTS = 2
NOT_STORED = 3
TOO_LARGE = 4
INVALID_ARGS = 5
DELTA_BAD_VALUE = 6
BAD_KEY = 7
SERVER_ERROR = 8
CONNECTION = 9
TIMEOUT = 10
PROTOCOL = 11
NO_SERVERS = 12
CLOSED = 13
BAD_HANDLE = 14
BAD_CONFIG = 15
INTERNAL = 16
NOT_SUPPORTED = 17
SERVER_DOWN = 18
SERVER_DEAD = 19
WRONG_PROTOCOL = 20
AUTH = 21
TLS = 22

_EXCEPTIONS: dict[int, type[Exception]] = {
    MISS: exc.NotFoundError,
    EXISTS: exc.KeyExistsError,
    NOT_STORED: exc.NotStoredError,
    TOO_LARGE: exc.TooLargeValueError,
    INVALID_ARGS: exc.InvalidArgumentsError,
    DELTA_BAD_VALUE: exc.DeltaBadValueError,
    BAD_KEY: exc.InvalidKeyError,
    SERVER_ERROR: exc.ServerError,
    CONNECTION: exc.ConnectionError,
    TIMEOUT: exc.TimeoutError,
    PROTOCOL: exc.ProtocolError,
    NO_SERVERS: exc.NoServersError,
    CLOSED: exc.ClientClosedError,
    BAD_HANDLE: exc.EngineError,
    BAD_CONFIG: exc.ConfigError,
    INTERNAL: exc.EngineError,
    NOT_SUPPORTED: NotImplementedError,
    SERVER_DOWN: exc.ServerDownError,
    SERVER_DEAD: exc.ServerDeadError,
    WRONG_PROTOCOL: exc.WrongProtocolError,
    AUTH: exc.AuthenticationError,
    TLS: exc.TLSError,
}
_DEFAULT_MESSAGES = {
    MISS: "not found",
    EXISTS: "key exists with a different cas value",
    NOT_STORED: "not stored",
    TOO_LARGE: "value too large for the server's item size limit",
    INVALID_ARGS: "invalid arguments",
    DELTA_BAD_VALUE: "cannot increment or decrement a non-numeric value",
    BAD_KEY: "invalid key",
    SERVER_ERROR: "server error",
    CONNECTION: "connection error",
    TIMEOUT: "timed out",
    PROTOCOL: "protocol error",
    NO_SERVERS: "no servers",
    CLOSED: "client is closed",
    BAD_HANDLE: "stale engine handle",
    BAD_CONFIG: "invalid configuration",
    INTERNAL: "internal engine error",
    NOT_SUPPORTED: "not supported",
    SERVER_DOWN: "server down after a failure",
    SERVER_DEAD: "server marked dead",
    WRONG_PROTOCOL: "the server does not speak this protocol",
    AUTH: "authentication failed",
    TLS: "TLS handshake failed",
}

# Offset of the character data in a CPython bytes object (PyBytesObject.ob_sval):
# sys.getsizeof(b"") is that offset plus the trailing NUL.  Checked at load time.
BYTES_DATA_OFFSET = sys.getsizeof(b"") - 1

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_lock = threading.Lock()
_core: Optional[ModuleType] = None
_core_pid = 0
# True once any engine was loaded in this process image, including by a parent
# before fork(): from then on the library's path is mapped to a dead runtime.
_inherited_mapping = False
_loads = 0
# The engine records its sockets' inode numbers here, indexed by descriptor
# (go/bind TrackSockets). The memory is Python's, so a forked child still has
# it after the parent's Go runtime is gone, and closes those sockets.
_SOCKET_TABLE_SIZE = 4096
_socket_table: Optional["ctypes.Array[ctypes.c_uint64]"] = None


def library_path() -> str:
    """Return the path of the engine's shared library inside the package."""
    d = os.path.join(_PKG_DIR, "_gopy")
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    for suffix in suffixes:
        p = os.path.join(d, "_core" + suffix)
        if os.path.exists(p):
            return p
    raise exc.EngineError(
        f"omcache's engine is not built: no _core{suffixes[0]} in {d}. "
        "Install omcache with pip (it builds the Go engine), or run `make build`."
    )


def _load_from(path: str, name: str) -> ModuleType:
    """Load the extension at path as module name with all signals blocked."""
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:  # pragma: no cover - spec_from_file_location with a loader
        raise exc.EngineError(f"cannot make a module spec for {path}")
    # Go's threads inherit this thread's mask and unblock only synchronous signals.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        module = importlib.util.module_from_spec(spec)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    _dlopen_paths.add(path)
    return module


# Every path given to dlopen in this process image, inherited by fork()
# children.  glibc's dlopen returns an already-loaded library whose recorded
# name equals the path before it compares inodes: a grandchild whose new memfd
# got the same descriptor number as its parent's copy (/proc/self/fd/5 twice)
# was handed the parent's copy, a dead Go runtime, and hung.
_dlopen_paths: set[str] = set()


def _unused_fd_path(fd: int) -> tuple[int, str]:
    """Return fd, or a duplicate of it (closing fd), whose /proc/self/fd path
    was never given to dlopen in this process image."""
    while f"/proc/self/fd/{fd}" in _dlopen_paths:
        new = fcntl.fcntl(fd, fcntl.F_DUPFD, fd + 1)
        os.close(fd)
        fd = new
    return fd, f"/proc/self/fd/{fd}"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fresh_copy_dirs() -> list[str]:
    env = os.environ.get("OMCACHE_TMPDIR")
    dirs = [env] if env else []
    dirs.append(tempfile.gettempdir())
    if "/dev/shm" not in dirs and os.path.isdir("/dev/shm"):
        dirs.append("/dev/shm")
    return dirs


def _load_fresh_copy(path: str, pid: int) -> ModuleType:
    """Load the library from a new inode, so the child gets its own Go runtime.

    glibc returns the already-mapped (dead) copy for the same path, a symlink or
    a hard link; a copy with a new inode is a new library.  memfd first, then a
    temporary file in OMCACHE_TMPDIR or the temp dir (must allow exec mappings).
    """
    name = f"omcache._gopy_pid{pid}._core"
    with open(path, "rb") as f:
        data = f.read()
    errors = []
    if hasattr(os, "memfd_create") and not os.environ.get("OMCACHE_NO_MEMFD"):
        try:
            fd = os.memfd_create("omcache-engine", 0)
        except OSError as e:
            errors.append(f"memfd_create: {e}")
        else:
            try:
                fd, fd_path = _unused_fd_path(fd)
                _write_all(fd, data)
                return _load_from(fd_path, name)
            except (OSError, ImportError) as e:
                errors.append(f"memfd: {e}")
            finally:
                os.close(fd)
    for d in _fresh_copy_dirs():
        try:
            fd, tmp = tempfile.mkstemp(prefix="omcache-engine-", suffix=".so", dir=d)
            while tmp in _dlopen_paths:  # an earlier copy's (unlinked) name: see _dlopen_paths
                os.close(fd)
                os.unlink(tmp)
                fd, tmp = tempfile.mkstemp(prefix="omcache-engine-", suffix=".so", dir=d)
        except OSError as e:
            errors.append(f"{d}: {e}")
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return _load_from(tmp, name)
        except (OSError, ImportError) as e:
            errors.append(f"{tmp}: {e}")
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    hint = "Set OMCACHE_TMPDIR to a writable directory that allows executable mappings"
    limit = _address_space_limit()
    if limit is not None:
        hint = (
            f"The address space is limited to {limit >> 20} MiB (RLIMIT_AS, e.g. uWSGI --limit-as): "
            "a second Go runtime needs about 1.3 GiB more; raise the limit"
        )
    raise exc.EngineError(
        "omcache's Go engine was loaded before fork() and a fresh copy cannot be loaded in "
        f"this process ({'; '.join(errors)}). {hint}, or make the parent not use omcache "
        "before forking (e.g. gunicorn without --preload, uWSGI --lazy-apps)."
    )


def _address_space_limit() -> Optional[int]:
    """The soft RLIMIT_AS in bytes, or None when unlimited."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def _track_sockets(core: ModuleType) -> None:
    global _socket_table
    if _socket_table is None:
        _socket_table = (ctypes.c_uint64 * _SOCKET_TABLE_SIZE)()
    r = core.bind_TrackSockets(ctypes.addressof(_socket_table), _SOCKET_TABLE_SIZE)
    if r != OK:
        raise_for(core, r)


def close_inherited_sockets() -> int:
    """In a forked child: close the sockets the parent's engine had open.

    Only descriptors that are still the very same sockets (same inode) are
    closed, so a descriptor the child reused for something else is left
    alone.  Returns how many were closed.  Never calls into Go.
    """
    table = _socket_table
    if table is None:
        return 0
    closed = 0
    for fd, ino in enumerate(table):
        if not ino:
            continue
        table[fd] = 0
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISSOCK(st.st_mode) and st.st_ino == ino:
            try:
                os.close(fd)
                closed += 1
            except OSError:
                pass
    return closed


# The signal dispositions the loaded engine's Go runtime installed, with the
# ones they replaced: {signal: (before, after)} as raw struct sigaction bytes.
# A Go runtime forwards the signals that do not come from Go code (a SIGPIPE
# raised by a Python write to a closed socket, a SIGSEGV in C code) to the
# handler it replaced.  In a fork child the installed handlers are the parent's
# copy's: a fresh copy loaded on top would forward to that dead copy.  So the
# child first puts back what the process had before the parent's load.
_replaced_signals: dict[int, tuple[bytes, bytes]] = {}
_SIGACTION_BUFFER = 512  # more than any libc's struct sigaction
# struct sigaction starts with the handler.  Only that is compared: glibc
# fills the rest of sa_mask, past the kernel's 8 bytes, with stack garbage.
_HANDLER = ctypes.sizeof(ctypes.c_void_p)
_SIGNALS = tuple(int(s) for s in signal.valid_signals())  # valid_signals() takes ~0.1 ms


def _sigaction() -> Optional[Callable[..., int]]:
    try:
        f = ctypes.CDLL(None, use_errno=True).sigaction
    except (OSError, AttributeError):
        return None
    f.restype = ctypes.c_int
    return f


def _signal_dispositions() -> dict[int, bytes]:
    sigaction = _sigaction()
    if sigaction is None:
        return {}
    out = {}
    for sig in _SIGNALS:
        buf = ctypes.create_string_buffer(_SIGACTION_BUFFER)
        if sigaction(sig, None, buf) == 0:
            out[sig] = buf.raw
    return out


def _remember_replaced_signals(before: dict[int, bytes]) -> None:
    global _replaced_signals
    after = _signal_dispositions()
    _replaced_signals = {
        s: (old, after[s]) for s, old in before.items() if s in after and after[s][:_HANDLER] != old[:_HANDLER]
    }


def _restore_replaced_signals() -> None:
    """In a fork child: put back the dispositions the parent's engine replaced,
    unless the program changed them since.  Never calls into Go."""
    sigaction = _sigaction()
    if sigaction is None:
        return
    for sig, (old, installed) in _replaced_signals.items():
        cur = ctypes.create_string_buffer(_SIGACTION_BUFFER)
        if sigaction(sig, None, cur) == 0 and cur.raw[:_HANDLER] == installed[:_HANDLER]:
            sigaction(sig, ctypes.create_string_buffer(old, _SIGACTION_BUFFER), None)


def _check_layout(core: ModuleType) -> None:
    probe = b"omcache\x00probe"
    if ctypes.string_at(id(probe) + BYTES_DATA_OFFSET, len(probe)) != probe:
        raise exc.EngineError("unsupported Python: bytes objects do not have CPython's layout")


def core() -> ModuleType:
    """Return the engine module for this process, loading it if needed."""
    c = _core
    if c is not None and _core_pid == os.getpid():
        return c
    return _load()


def _load() -> ModuleType:
    global _core, _core_pid, _inherited_mapping, _loads
    with _lock:
        pid = os.getpid()
        if _core is not None and _core_pid == pid:
            return _core
        path = library_path()
        if _inherited_mapping:
            log.debug("omcache: engine was loaded by parent process; loading a fresh copy in pid %d", pid)
            closed = close_inherited_sockets()
            if closed:
                log.debug("omcache: closed %d sockets inherited from the parent's engine", closed)
            _restore_replaced_signals()
            before = _signal_dispositions()
            module = _load_fresh_copy(path, pid)
        else:
            before = _signal_dispositions()
            module = _load_from(path, "omcache._gopy._core")
        _remember_replaced_signals(before)
        _check_layout(module)
        _track_sockets(module)
        _core, _core_pid = module, pid
        _inherited_mapping = True
        _loads += 1
        log.debug("omcache: engine loaded in pid %d", pid)
        return module


def loaded() -> bool:
    """Return True if this process has loaded (and may call) the engine."""
    return _core is not None and _core_pid == os.getpid()


def addr(b: bytes) -> int:
    """Return the address of a bytes object's data (valid while b is alive).

    Only an exact ``bytes`` object has its data at that offset with
    ``len(b)`` bytes behind it; anything else (a subclass may lie about its
    length) is a TypeError, never an address."""
    if type(b) is not bytes:
        raise TypeError(f"the engine reads exact bytes objects only, not {type(b).__name__}")
    return id(b) + BYTES_DATA_OFFSET


def error_for(c: ModuleType, r: int) -> Exception:
    """Build the exception for a non-OK int result (status | detail_token << 8)."""
    code = r & 0xFF
    token = r >> 8
    msg = c.bind_ErrorDetail(token) if token else _DEFAULT_MESSAGES.get(code, f"status {code}")
    cls = _EXCEPTIONS.get(code, exc.EngineError)
    return cls(msg)


def raise_for(c: ModuleType, r: int) -> NoReturn:
    """Raise the exception for a non-OK int result."""
    raise error_for(c, r)


def take_bytes(c: ModuleType, h: int) -> bytes:
    """Copy out a []byte returned by the engine and release its handle.

    gopy registers every returned slice with a zero refcount; IncRef then
    DecRef removes it (DecRef alone would underflow and panic).
    """
    if h <= 0:
        raise exc.EngineError(f"engine returned an invalid handle {h}")
    c.IncRef(h)
    try:
        data: bytes = c.Slice_byte_to_bytes(h)
        return data
    finally:
        c.DecRef(h)


def packed_error(c: ModuleType, r: bytes) -> Exception:
    """Build the exception for a packed result whose first byte is not OK."""
    code = r[0]
    msg = r[1:].decode("utf-8", "replace") or _DEFAULT_MESSAGES.get(code, f"status {code}")
    return _EXCEPTIONS.get(code, exc.EngineError)(msg)


Call = Callable[..., Any]

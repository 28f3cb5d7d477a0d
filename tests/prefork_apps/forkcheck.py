"""A tripwire for forked children: make every engine copy inherited from the
parent non-executable, so that any call into it kills the child with SIGSEGV.

A Go runtime inherited through fork() is dead: calling it may happen to work
for trivial functions and hang for the rest, so "it did not hang" proves
little.  Removing execute permission from the inherited copies' code turns
every use of them, however indirect (a wrapper function, a cached bound
method, a signal handler forwarded by the child's fresh runtime), into an
immediate crash that the tests see as an exit by signal 11.

Arm it in the child before its first omcache call.  Disarm it before a
normal exit(): the dynamic loader runs each loaded library's ELF destructors
(plain C from crtstuff, harmless) at exit, the inherited copy's included;
``arm`` registers ``disarm`` with atexit for that.  Children that leave with
os._exit (multiprocessing and billiard workers) never run them.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
from typing import List, Tuple

_PROT_READ = 0x1
_PROT_EXEC = 0x4

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mprotect.restype = ctypes.c_int

_lock = threading.Lock()
_armed_pid = 0
_ranges: List[Tuple[int, int, str]] = []


def engine_code_mappings() -> List[Tuple[int, int, str]]:
    """Executable mappings of every omcache engine copy in this process:
    the package's own library, memfd copies and temp-file copies."""
    from omcache import _engine

    lib = _engine.library_path()
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or "x" not in fields[1]:
                continue
            path = fields[5].strip()
            if path == lib or path.startswith("/memfd:omcache-engine") or "/omcache-engine-" in path:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                out.append((start, end, path))
    return out


def _protect(ranges: List[Tuple[int, int, str]], prot: int) -> None:
    for start, end, path in ranges:
        if _libc.mprotect(start, end - start, prot) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mprotect {start:#x}-{end:#x} ({path}): {os.strerror(err)}")


def arm() -> int:
    """In a forked child: make the engine copies mapped now non-executable.

    Idempotent per process; returns how many code mappings are protected
    (0 means the parent had not loaded the engine: nothing to guard).
    """
    global _armed_pid, _ranges
    with _lock:
        if _armed_pid == os.getpid():
            return len(_ranges)
        ranges = engine_code_mappings()
        _protect(ranges, _PROT_READ)
        _armed_pid, _ranges = os.getpid(), ranges
        atexit.register(disarm)
        return len(ranges)


def disarm() -> None:
    """Make the protected mappings executable again (before a normal exit)."""
    global _armed_pid, _ranges
    with _lock:
        if _armed_pid == os.getpid() and _ranges:
            _protect(_ranges, _PROT_READ | _PROT_EXEC)
        _armed_pid, _ranges = 0, []


def armed() -> int:
    """How many inherited engine code mappings this process has protected."""
    return len(_ranges) if _armed_pid == os.getpid() else 0

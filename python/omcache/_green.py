"""gevent: the synchronous clients wait for replies by yielding to the hub.

A Go call blocks its OS thread, and under gevent every greenlet shares one
thread: a get that waits 50 ms for a slow server would stop all greenlets
for those 50 ms.  When the process is monkey-patched by gevent
(``gevent.monkey.patch_all()``, detected when a client opens its engine, or
forced with ``OMCACHE_GEVENT=1``; ``OMCACHE_GEVENT=0`` turns it off), a
``omcache.Client`` (and so ``omcache_pylibmc`` and ``omcache.memcache``)
is given :class:`GreenCore` instead of the engine module: it has the
engine's functions, but those that talk to servers submit the request to
the engine's completion queue (the mechanism of ``omcache.aio``) and wait
for its eventfd with a gevent io watcher, so the hub runs other greenlets
meanwhile.  Results come back in the same packed forms the client decodes.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from types import ModuleType
from typing import Any, Dict, Optional, Tuple

from . import _engine

_OFF = _engine.BYTES_DATA_OFFSET
_OK = _engine.OK
_REC = struct.Struct("<QI")

# go/bind/async.go's operations.
_GET, _TOUCH, _STORE, _DELETE, _DELTA, _GET_META, _GET_LEASE, _RELEASE_LEASE, _INVALIDATE = range(1, 10)
_GET_MULTI, _SET_MULTI, _DELETE_MULTI, _FLUSH_ALL, _VERSION, _STATS, _NOOP, _VERBOSITY = range(10, 18)

# Results handed out as gopy-like handles and error-detail tokens of this
# module live above the engine's own (its handles are small counters, its
# detail tokens stay below 2**40).
_HANDLE_BASE = 1 << 60
_TOKEN_BASE = 1 << 41
_MAX_KEPT = 4096  # bound on results and details not yet taken


def active() -> bool:
    """Whether clients should wait the gevent way (see the module docstring)."""
    env = os.environ.get("OMCACHE_GEVENT")
    if env is not None:
        return env not in ("", "0")
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None:
        return False
    try:
        return bool(monkey.is_module_patched("socket"))
    except Exception:  # pragma: no cover - an unusual gevent
        return False


class _HubQueue:
    """A completion queue watched by one gevent hub."""

    def __init__(self, core: ModuleType, hub: Any) -> None:
        from gevent.event import AsyncResult

        self._result_class = AsyncResult
        r = _engine.take_bytes(core, core.bind_AsyncQueueNew())
        if r[0] != _OK:
            raise _engine.packed_error(core, r)
        self.core = core
        self.qid = int.from_bytes(r[1:9], "little")
        self.fd = int.from_bytes(r[9:13], "little")
        self.ep = int.from_bytes(r[13:17], "little")  # unused here: no inline requests
        self.waiters: Dict[int, Any] = {}
        self.watcher = hub.loop.io(self.fd, 1)
        self.watcher.start(self._ready)

    def call(self, h: int, op: int, a: Tuple[int, int] = (0, 0), b: Tuple[int, int] = (0, 0),
             c: Tuple[int, int] = (0, 0), i1: int = 0, i2: int = 0, i3: int = 0, i4: int = 0) -> bytes:
        """Run one request, letting other greenlets run until its result arrives."""
        rid = self.core.bind_AsyncSubmit(self.qid, h, op, a[0], a[1], b[0], b[1], c[0], c[1], i1, i2, i3, i4)
        if rid < 0:
            raise _engine.error_for(self.core, -rid)
        ev = self._result_class()
        self.waiters[rid] = ev
        try:
            data: bytes = ev.get()
            return data
        except BaseException:  # killed or timed out (gevent.Timeout): drop the result
            if self.waiters.pop(rid, None) is not None:
                self.core.bind_AsyncCancel(self.qid, rid)
            raise

    def _ready(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass
        r = _engine.take_bytes(self.core, self.core.bind_AsyncCollect(self.qid))
        if r[0] != _OK:
            err = _engine.packed_error(self.core, r)
            for ev in self.waiters.values():
                ev.set_exception(err)
            self.waiters.clear()
            return
        (count,) = struct.unpack_from("<I", r, 1)
        pos = 5
        for _ in range(count):
            rid, n = _REC.unpack_from(r, pos)
            pos += _REC.size
            ev = self.waiters.pop(rid, None)
            if ev is not None:
                ev.set(r[pos : pos + n])
            pos += n


_queues: Dict[int, _HubQueue] = {}
_queues_pid = 0


def _queue(core: ModuleType) -> _HubQueue:
    global _queues_pid
    import gevent

    hub = gevent.get_hub()
    pid = os.getpid()
    if _queues_pid != pid:
        for old in _queues.values():  # the parent's engine's: close without calling it
            for fd in (old.fd, old.ep):
                try:
                    os.close(fd)
                except OSError:
                    pass
        _queues.clear()
        _queues_pid = pid
    q = _queues.get(id(hub))
    if q is None or q.core is not core:
        q = _queues[id(hub)] = _HubQueue(core, hub)
    return q


class GreenCore:
    """The engine module as a synchronous client sees it, waiting the gevent way."""

    def __init__(self, core: ModuleType) -> None:
        self._core = core
        self._results: Dict[int, bytes] = {}
        self._details: Dict[int, str] = {}
        self._next = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    def _call(self, h: int, op: int, *args: Any, **kw: Any) -> bytes:
        return _queue(self._core).call(h, op, *args, **kw)

    def _id(self) -> int:
        self._next += 1
        return self._next

    def _keep(self, r: bytes) -> int:
        """A handle for take_bytes (IncRef, Slice_byte_to_bytes, DecRef)."""
        if len(self._results) >= _MAX_KEPT:
            self._results.pop(next(iter(self._results)))
        h = _HANDLE_BASE + self._id()
        self._results[h] = r
        return h

    def _int(self, r: bytes) -> int:
        """An int status result (status | detail token << 8) from a packed one."""
        if len(r) == 1 or r[0] == _OK:
            return r[0]
        if len(self._details) >= _MAX_KEPT:
            self._details.pop(next(iter(self._details)))
        token = _TOKEN_BASE + self._id()
        self._details[token] = r[1:].decode("utf-8", "replace")
        return r[0] | token << 8

    def _into(self, r: bytes, buf_addr: int, buf_cap: int) -> int:
        """As GetInto: the result in the buffer (its length), or -token for TakeResult."""
        if len(r) <= buf_cap:
            ctypes.memmove(buf_addr, r, len(r))
            return len(r)
        ctypes.memset(buf_addr, 0xFF, 1)  # not OK: the client takes the packed result
        return -self._keep(r)

    # -- what take_bytes and error_for call ------------------------------------

    def IncRef(self, h: int) -> None:  # noqa: N802 - gopy's names
        if h < _HANDLE_BASE:
            self._core.IncRef(h)

    def DecRef(self, h: int) -> None:  # noqa: N802
        if h < _HANDLE_BASE:
            self._core.DecRef(h)

    def Slice_byte_to_bytes(self, h: int) -> bytes:  # noqa: N802
        if h < _HANDLE_BASE:
            data: bytes = self._core.Slice_byte_to_bytes(h)
            return data
        return self._results.pop(h)

    def bind_TakeResult(self, token: int) -> int:  # noqa: N802
        if token >= _HANDLE_BASE:
            return token
        h: int = self._core.bind_TakeResult(token)
        return h

    def bind_ErrorDetail(self, token: int) -> str:  # noqa: N802
        if token >= _TOKEN_BASE:
            return self._details.pop(token, f"error detail {token} no longer available")
        msg: str = self._core.bind_ErrorDetail(token)
        return msg

    def bind_ClientClose(self, h: int) -> int:  # noqa: N802
        """Close the engine client and drop its request lanes."""
        self._core.bind_AsyncForgetClient(h)
        r: int = self._core.bind_ClientClose(h)
        return r

    # -- the engine's I/O calls ------------------------------------------------

    def bind_GetInto(self, h: int, ka: int, kl: int, buf: int, cap: int, gat: bool, exp: int) -> int:  # noqa: N802
        return self._into(self._call(h, _GET, (ka, kl), i1=int(gat), i2=exp), buf, cap)

    def bind_Get(self, h: int, ka: int, kl: int) -> int:  # noqa: N802
        return self._keep(self._call(h, _GET, (ka, kl)))

    def bind_Gat(self, h: int, ka: int, kl: int, exp: int) -> int:  # noqa: N802
        return self._keep(self._call(h, _GET, (ka, kl), i1=1, i2=exp))

    def bind_GetMultiInto(self, h: int, ka: int, kl: int, n: int, buf: int, cap: int, gat: bool, exp: int) -> int:  # noqa: N802
        return self._into(self._call(h, _GET_MULTI, (ka, kl), i1=n, i2=int(gat), i3=exp), buf, cap)

    def bind_Store(self, h: int, op: int, ka: int, kl: int, va: int, vl: int, flags: int, exp: int, cas: int) -> int:  # noqa: N802
        return self._int(self._call(h, _STORE, (ka, kl), (va, vl), i1=op, i2=flags, i3=exp, i4=cas))

    def bind_Delete(self, h: int, ka: int, kl: int) -> int:  # noqa: N802
        return self._int(self._call(h, _DELETE, (ka, kl)))

    def bind_Touch(self, h: int, ka: int, kl: int, exp: int) -> int:  # noqa: N802
        return self._int(self._call(h, _TOUCH, (ka, kl), i1=exp))

    def bind_Delta(self, h: int, ka: int, kl: int, decr: bool, delta: int, initial: int, create: bool, exp: int) -> int:  # noqa: N802
        bits = int(bool(decr)) | (2 if create else 0)
        return self._keep(self._call(h, _DELTA, (ka, kl), i1=bits, i2=delta, i3=initial, i4=exp))

    def bind_GetMeta(self, h: int, ka: int, kl: int, bump: bool) -> int:  # noqa: N802
        return self._keep(self._call(h, _GET_META, (ka, kl), i1=int(bool(bump))))

    def bind_GetLease(self, h: int, ka: int, kl: int, lock_ttl: int, recache: int) -> int:  # noqa: N802
        return self._keep(self._call(h, _GET_LEASE, (ka, kl), i1=lock_ttl, i2=recache))

    def bind_ReleaseLease(self, h: int, ka: int, kl: int, has_value: bool, stale: bool, cas: int, ttl: int) -> int:  # noqa: N802
        bits = int(bool(has_value)) | (2 if stale else 0)
        return self._int(self._call(h, _RELEASE_LEASE, (ka, kl), i1=bits, i2=cas, i3=ttl))

    def bind_Invalidate(self, h: int, ka: int, kl: int, stale_ttl: int) -> int:  # noqa: N802
        return self._int(self._call(h, _INVALIDATE, (ka, kl), i1=stale_ttl))

    def _token(self, r: bytes) -> int:
        """As SetMulti/DeleteMulti: OK, or -token for TakeResult."""
        return _OK if r == b"\x00" else -self._keep(r)

    def bind_SetMulti(  # noqa: N802
        self, h: int, ka: int, kl: int, n: int, va: int, vl: int, la: int, ll: int, fa: int, fl: int, flags: int, exp: int
    ) -> int:
        # The engine takes the lengths and the flags as one buffer.
        lens_flags = ctypes.string_at(la, ll) + ctypes.string_at(fa, fl)
        return self._token(
            self._call(h, _SET_MULTI, (ka, kl), (va, vl), (id(lens_flags) + _OFF, len(lens_flags)), i1=n, i2=flags, i3=ll, i4=exp)
        )

    def bind_DeleteMulti(self, h: int, ka: int, kl: int, n: int) -> int:  # noqa: N802
        return self._token(self._call(h, _DELETE_MULTI, (ka, kl), i1=n))

    def bind_FlushAll(self, h: int, delay: int) -> int:  # noqa: N802
        return self._keep(self._call(h, _FLUSH_ALL, i1=delay))

    def bind_Noop(self, h: int) -> int:  # noqa: N802
        return self._keep(self._call(h, _NOOP))

    def bind_Verbosity(self, h: int, level: int) -> int:  # noqa: N802
        return self._keep(self._call(h, _VERBOSITY, i1=level))

    def bind_ServerVersions(self, h: int) -> int:  # noqa: N802
        return self._keep(self._call(h, _VERSION))

    def bind_Stats(self, h: int, group: str) -> int:  # noqa: N802
        g = group.encode()
        return self._keep(self._call(h, _STATS, (id(g) + _OFF, len(g))))


def wrap(core: ModuleType) -> Any:
    """The engine as a synchronous client should call it in this process."""
    return GreenCore(core) if active() else core


def unwrap(core: Any) -> Optional[ModuleType]:
    """The engine module behind core."""
    return core._core if isinstance(core, GreenCore) else core

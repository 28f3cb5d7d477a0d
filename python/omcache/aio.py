"""omcache.aio: asyncio clients on the same Go engine, without a thread per call.

A call submits its request to the engine (go/bind AsyncStart) and awaits a
future.  When the loop has no other request in flight and the key's server
nothing else from the client (a lone get, set, add, replace, touch or
delete: concurrency 1), the request is written
at once by the loop's thread (with the opt-in OMCACHE_AIO_SPIN_US, the
engine first polls that long for the answer if that server's answers have
been coming that fast), and the socket joins the queue's epoll
descriptor, which the event loop watches, so the answer is read by the
loop's thread when it arrives: no other thread is woken.  Other requests
are copied and run on a few worker goroutines per server, which send the
single-key gets, sets and deletes waiting for the same server together as
one pipelined exchange (autobatching), store the result in the completion
queue and write to its eventfd, also in the epoll descriptor.  When that
descriptor is readable, one engine call (AsyncCollect) hands over every
completed result, and their futures are resolved.  The event loop never
waits for a slow server: a stalled server delays only the calls for that
server, each by at most the client's ``connect_timeout`` + ``io_timeout``
(a per-loop watchdog enforces it on the inline path).

Cancellation (``task.cancel()``, ``asyncio.wait_for``): a request not yet
started is never sent; one already on the wire is completed by the engine
(the connection is never left in the middle of a reply) and its result is
dropped, never handed to another call.

Event loops: each event loop gets its own completion queue, so a client may
be used from several loops (one per thread, or one after another with
``asyncio.run``).  Fork: a child process gets a fresh engine and fresh
queues, as with the synchronous client.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
import struct
import threading
import time
from types import ModuleType
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _engine, _messages
from . import exceptions as exc
from . import lease as _lease
from .client import (
    Client as _SyncClient,
    Item,
    ItemMeta,
    K,
    Key,
    Servers,
    _check_u32,
    _check_u64,
    _GET_HEADER_LEN,
    _getpid,
    _item,
    _join_keys,
    _multi_columns,
    _raise_first,
    _signed64,
    _ERR_REC,
    _LEASE_HEADER,
    _META_HEADER,
    _MAX_U64,
    _OP_ADD,
    _OP_APPEND,
    _OP_PREPEND,
    _OP_REPLACE,
    _OP_SET,
    _U64,
    key_bytes,
    value_bytes,
)
from .serde import Serde, get_serde

__all__ = ["Client", "SerdeClient"]

log = logging.getLogger("omcache")

# go/bind/async.go's operations.
_GET, _TOUCH, _STORE, _DELETE, _DELTA, _GET_META, _GET_LEASE, _RELEASE_LEASE, _INVALIDATE = range(1, 10)
_GET_MULTI, _SET_MULTI, _DELETE_MULTI, _FLUSH_ALL, _VERSION, _STATS, _NOOP, _VERBOSITY = range(10, 18)

_OFF = _engine.BYTES_DATA_OFFSET
_OK = _engine.OK
_MISS = _engine.MISS
_REC = struct.Struct("<QI")  # a completion: request id, result length
_COLLECT_HEAD = 5  # status byte, u32 count
_ONE = struct.Struct("<IQI")  # after the status byte: the count and the first completion's head
_STORE_OUTCOMES = frozenset((_OK, _engine.NOT_STORED, _engine.EXISTS, _MISS))
# How late after an inline request's deadline AsyncInlineExpire runs.
_EXPIRE_SLACK = 0.001


class _Queue:
    """One completion queue of this process's engine, watched by one event loop."""

    def __init__(self, core: ModuleType, loop: asyncio.AbstractEventLoop) -> None:
        r = _engine.take_bytes(core, core.bind_AsyncQueueNew())
        if r[0] != _OK:
            raise _engine.packed_error(core, r)
        self.core = core
        self.loop = loop
        self.qid = int.from_bytes(r[1:9], "little")
        self.fd = int.from_bytes(r[9:13], "little")
        # The epoll descriptor: readable when the eventfd is or when the
        # answer of a request started inline arrived.
        self.ep = int.from_bytes(r[13:17], "little")
        self.futures: Dict[int, "asyncio.Future[bytes]"] = {}
        self.watchdog: Optional[asyncio.TimerHandle] = None
        self.closed = False
        # An omcache._fastpath.Engine of this process's engine (any
        # client's: collecting needs only the engine), once a client with
        # one has submitted here.
        self.fe: Any = None
        loop.add_reader(self.ep, self._ready)

    def submit(
        self, h: int, op: int, timeout: float, a: bytes = b"", b: bytes = b"", c: bytes = b"",
        i1: int = 0, i2: int = 0, i3: int = 0, i4: int = 0, fe: Any = None,
    ) -> Tuple[int, "asyncio.Future[bytes]"]:
        """Start request op; its result comes through the returned future.

        A lone single-key request is written at once by this thread
        (AsyncStart) and its socket joins the engine's epoll descriptor that
        the loop watches: its answer is read here, on the loop's thread, with
        no other thread woken.  Other requests go through the engine's lanes
        and the eventfd.  ``timeout`` is the client's io_timeout: the
        watchdog (AsyncInlineExpire) fails an inline request whose server
        stays silent.
        """
        # a, b and c are exact bytes objects, alive for the call; the engine copies them.
        r: Any = NotImplemented
        if fe is not None:  # the same call from C (omcache._fastpath), for client h
            self.fe = fe
            r = fe.async_start(self.qid, op, a, b, c, i1, i2, i3, i4)
        if r is NotImplemented:
            r = self.core.bind_AsyncStart(
                self.qid, h, op, id(a) + _OFF, len(a), id(b) + _OFF, len(b), id(c) + _OFF, len(c), i1, i2, i3, i4
            )
        if r < 0:
            raise _engine.error_for(self.core, -r)
        rid = r >> 2
        fut: "asyncio.Future[bytes]" = self.loop.create_future()
        self.futures[rid] = fut
        if r & 2:
            # Answered while AsyncStart waited briefly: collect it now, and
            # the caller's await returns without the loop going round.
            self._ready()
        elif r & 1:
            # One watchdog per queue, due no later than this request's
            # deadline (clients sharing the loop may have other timeouts).
            due = self.loop.time() + timeout + _EXPIRE_SLACK
            wd = self.watchdog
            if wd is None or wd.when() > due:
                if wd is not None:
                    wd.cancel()
                self.watchdog = self.loop.call_at(due, self._expire)
        return rid, fut

    def _expire(self) -> None:
        self.watchdog = None
        if self.closed:
            return
        ms: int = self.core.bind_AsyncInlineExpire(self.qid)
        if ms >= 0:
            self.watchdog = self.loop.call_later(ms / 1000 + _EXPIRE_SLACK, self._expire)
        elif ms < -1:
            log.error("omcache.aio: expiring inline requests failed: %s", _engine.error_for(self.core, -2 - ms))

    def cancel(self, rid: int) -> None:
        """Forget request rid: its result, when it comes, is dropped."""
        if self.futures.pop(rid, None) is not None and not self.closed:
            self.core.bind_AsyncCancel(self.qid, rid)

    def _ready(self) -> None:
        # AsyncCollect reads the eventfd and the inline answers itself.
        fe = self.fe
        r = NotImplemented if fe is None else fe.async_collect(self.qid)
        if type(r) is int:  # more than the C buffer holds
            r = _engine.take_bytes(self.core, self.core.bind_TakeResult(-r))
        elif r is NotImplemented:
            r = _engine.take_bytes(self.core, self.core.bind_AsyncCollect(self.qid))
        if r[0] != _OK:
            log.error("omcache.aio: collecting results failed: %s", _engine.packed_error(self.core, r))
            return
        if len(r) < _COLLECT_HEAD + _REC.size:
            return  # no completion (a wake-up whose results an earlier call took)
        futures = self.futures
        count, rid, n = _ONE.unpack_from(r, 1)
        if count == 1:  # the common case at low concurrency: no view, no loop
            fut = futures.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(r[_COLLECT_HEAD + _REC.size :])
            return
        pos = _COLLECT_HEAD
        view = memoryview(r)
        for _ in range(count):
            rid, n = _REC.unpack_from(r, pos)
            pos += _REC.size
            fut = futures.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(view[pos : pos + n].tobytes())
            pos += n

    def close(self) -> None:
        """Stop watching the epoll descriptor and free the queue in the engine."""
        if self.closed:
            return
        self.closed = True
        if not self.loop.is_closed():
            self.loop.remove_reader(self.ep)
            if self.watchdog is not None:
                self.watchdog.cancel()
        self.watchdog = None
        for fut in self.futures.values():
            if not fut.done() and not self.loop.is_closed():
                fut.set_exception(exc.ClientClosedError("the completion queue was closed"))
        self.futures.clear()
        if _engine.loaded() and _engine.core() is self.core:
            self.core.bind_AsyncQueueClose(self.qid)


_queues: Dict[int, _Queue] = {}  # id(loop) -> queue, of the process _queues_pid
_queues_pid = 0
_queues_lock = threading.Lock()


def _queue_for(loop: asyncio.AbstractEventLoop) -> _Queue:
    """The completion queue of this process and loop, created on first use."""
    global _queues_pid
    q = _queues.get(id(loop))
    if q is not None and q.loop is loop and _queues_pid == _getpid():
        return q
    with _queues_lock:
        pid = _getpid()
        if _queues_pid != pid:
            # Queues inherited over fork() belong to the parent's engine: close
            # their descriptors without calling it.
            for old in _queues.values():
                for fd in (old.fd, old.ep):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            _queues.clear()
            _queues_pid = pid
        for key, old in list(_queues.items()):
            if old.loop.is_closed() or old.loop is loop:
                old.close()
                del _queues[key]
        q = _Queue(_engine.core(), loop)
        _queues[id(loop)] = q
        return q


class Client:
    """An asyncio memcached client: ``omcache.Client``'s commands as coroutines.

    Takes the same arguments and options as :class:`omcache.Client`
    (servers, ``protocol``, timeouts, distribution, failover, ...) and
    returns the same results.  Calls from many tasks run concurrently;
    concurrent single-key calls for one server are pipelined.  Use it as
    ``async with omcache.aio.Client(servers) as mc:`` or ``await mc.close()``.

    ``connect_timeout`` and ``io_timeout`` bound every call, as in the
    synchronous client; a task may also be cancelled at any moment (its
    reply, if any, is dropped).  A client may be used from several event
    loops, one after the other or at once from several threads.
    """

    def __init__(self, servers: Servers, **options: Any) -> None:
        self._sync = _SyncClient(servers, **options)
        # When an inline request's timeout is checked (the engine decides).
        self._io_timeout = float(options.get("io_timeout", 1.0))

    @property
    def servers(self) -> List[str]:
        """The server specifications this client was created with."""
        return self._sync.servers

    @property
    def protocol(self) -> str:
        """The protocol the client speaks: "meta", "text" or "binary"."""
        return self._sync.protocol

    async def _call(
        self, op: int, a: bytes = b"", b: bytes = b"", c: bytes = b"",
        i1: int = 0, i2: int = 0, i3: int = 0, i4: int = 0,
    ) -> Tuple[ModuleType, bytes]:
        core, h = self._sync._engine()
        q = _queue_for(asyncio.get_running_loop())
        rid, fut = q.submit(h, op, self._io_timeout, a, b, c, i1, i2, i3, i4, self._sync._fe)
        try:
            return core, await fut
        except asyncio.CancelledError:
            q.cancel(rid)
            raise

    # -- single-key reads ---------------------------------------------------

    async def get(self, key: Key) -> Optional[bytes]:
        """Return the value stored under key, or None on a miss."""
        # get_item's work, two coroutine frames shorter: the hottest call.
        k = key.encode() if type(key) is str else key_bytes(key)
        core, r = await self._call(_GET, k)
        if r[0] == _OK:
            return r[_GET_HEADER_LEN:]
        it = self._to_item(core, r, key)
        return None if it is None else it.value

    def _to_item(self, core: ModuleType, r: bytes, key: Key) -> Optional[Item]:
        """A get's packed result as an Item (None on a miss), or its exception."""
        try:
            return _item(core, r)
        except exc.InvalidKeyError as e:
            raise self._sync._failure(e, key) from None

    async def _get_item(self, key: Key, gat: bool, expire: int) -> Optional[Item]:
        k = key.encode() if type(key) is str else key_bytes(key)
        core, r = await self._call(_GET, k, i1=int(gat), i2=expire)
        return self._to_item(core, r, key)

    async def get_item(self, key: Key) -> Optional[Item]:
        """Return key's Item (value, flags, cas), or None on a miss."""
        return await self._get_item(key, False, 0)

    async def gets(self, key: Key) -> Tuple[Optional[bytes], Optional[int]]:
        """Return (value, cas) for key, or (None, None) on a miss."""
        it = await self._get_item(key, False, 0)
        return (None, None) if it is None else (it.value, it.cas)

    async def gat(self, key: Key, expire: int) -> Optional[Item]:
        """Get key and set its expiration (get-and-touch); None on a miss."""
        _check_u32("expire", expire)
        return await self._get_item(key, True, expire)

    async def get_meta(self, key: Key, *, bump: bool = True) -> Optional[ItemMeta]:
        """Return key's value with its item's metadata (meta protocol only); None on a miss."""
        core, r = await self._call(_GET_META, key_bytes(key), i1=int(bool(bump)))
        if r[0] == _MISS:
            return None
        if r[0] != _OK:
            raise _engine.packed_error(core, r)
        _, flags, cas, ttl, last, fetched, size = _META_HEADER.unpack_from(r)
        return ItemMeta(r[_META_HEADER.size :], flags, cas, ttl, last, bool(fetched), size)

    async def touch(self, key: Key, expire: int) -> bool:
        """Set a new expiration on key; True if it exists, False if not."""
        _check_u32("expire", expire)
        core, r = await self._call(_TOUCH, key_bytes(key), i1=expire)
        return self._bool(core, r, key)

    def _bool(self, core: ModuleType, r: bytes, key: Key) -> bool:
        if r[0] == _OK:
            return True
        if r[0] == _MISS:
            return False
        raise self._sync._failure(_engine.packed_error(core, r), key)

    # -- single-key writes --------------------------------------------------

    @staticmethod
    def _store_args(key: Key, value: bytes, expire: int, flags: int) -> Tuple[bytes, bytes]:
        """A store's key and value as the engine takes them, after checking
        expire and flags."""
        if type(expire) is not int or not 0 <= expire <= 0xFFFFFFFF:
            _check_u32("expire", expire)
        if type(flags) is not int or not 0 <= flags <= 0xFFFFFFFF:
            _check_u32("flags", flags)
        k = key.encode() if type(key) is str else key_bytes(key)
        return k, value if type(value) is bytes else value_bytes(value)

    def _store_outcome(self, core: ModuleType, r: bytes, key: Key, v: bytes) -> int:
        """A store's status (OK, NOT_STORED, EXISTS, MISS), or its exception."""
        if r[0] in _STORE_OUTCOMES:
            return r[0]
        raise self._sync._failure(_engine.packed_error(core, r), key, v)

    async def _store(self, op: int, key: Key, value: bytes, expire: int, flags: int, cas: int) -> int:
        k, v = self._store_args(key, value, expire, flags)
        core, r = await self._call(_STORE, k, v, i1=op, i2=flags, i3=expire, i4=_signed64(cas) if cas else 0)
        return self._store_outcome(core, r, key, v)

    async def set(self, key: Key, value: bytes, expire: int = 0, *, flags: int = 0) -> bool:
        """Store value under key unconditionally; True (failures raise)."""
        # _store's work without its coroutine frame: the hottest store.
        k, v = self._store_args(key, value, expire, flags)
        core, r = await self._call(_STORE, k, v, i1=_OP_SET, i2=flags, i3=expire)
        self._store_outcome(core, r, key, v)
        return True

    async def add(self, key: Key, value: bytes, expire: int = 0, *, flags: int = 0) -> bool:
        """Store value only if key does not exist; False if it does."""
        return await self._store(_OP_ADD, key, value, expire, flags, 0) == _OK

    async def replace(self, key: Key, value: bytes, expire: int = 0, *, flags: int = 0) -> bool:
        """Store value only if key exists; False if it does not."""
        return await self._store(_OP_REPLACE, key, value, expire, flags, 0) == _OK

    async def append(self, key: Key, value: bytes) -> bool:
        """Append value to key's value; False if key does not exist."""
        return await self._store(_OP_APPEND, key, value, 0, 0, 0) == _OK

    async def prepend(self, key: Key, value: bytes) -> bool:
        """Prepend value to key's value; False if key does not exist."""
        return await self._store(_OP_PREPEND, key, value, 0, 0, 0) == _OK

    async def cas(self, key: Key, value: bytes, cas: int, expire: int = 0, *, flags: int = 0) -> Optional[bool]:
        """Store value if key's CAS unique is still ``cas``: True if stored,
        False if the item changed since, None if the key no longer exists."""
        if isinstance(cas, bool) or not isinstance(cas, int) or not 0 < cas <= _MAX_U64:
            raise ValueError(f"cas must be a positive 64-bit int, got {cas!r}")
        code = await self._store(_OP_SET, key, value, expire, flags, cas)
        if code == _MISS:
            return None
        return code == _OK

    async def delete(self, key: Key) -> bool:
        """Delete key; return True if it existed, False if it did not."""
        core, r = await self._call(_DELETE, key_bytes(key))
        return self._bool(core, r, key)

    async def _delta(self, decr: bool, key: Key, delta: int, initial: Optional[int], expire: int) -> Optional[int]:
        _check_u64("delta", delta)
        if initial is not None:
            _check_u64("initial", initial)
        _check_u32("expire", expire)
        bits = int(decr) | (2 if initial is not None else 0)
        core, r = await self._call(_DELTA, key_bytes(key), i1=bits, i2=_signed64(delta), i3=_signed64(initial or 0), i4=expire)
        if r[0] == _OK:
            return int(_U64.unpack_from(r, 1)[0])
        if r[0] == _MISS:
            return None
        raise self._sync._failure(_engine.packed_error(core, r), key)

    async def incr(self, key: Key, delta: int = 1, *, initial: Optional[int] = None, expire: int = 0) -> Optional[int]:
        """Increment key's decimal value; the new value, or None on a miss
        (unless ``initial`` creates the key)."""
        return await self._delta(False, key, delta, initial, expire)

    async def decr(self, key: Key, delta: int = 1, *, initial: Optional[int] = None, expire: int = 0) -> Optional[int]:
        """Decrement like incr (memcached stops at 0)."""
        return await self._delta(True, key, delta, initial, expire)

    # -- multi-key ----------------------------------------------------------

    async def _get_multi(self, klist: List[K], gat_expire: Optional[int]) -> Tuple[bytes, ModuleType]:
        packed, nkeys = _join_keys(klist)
        core, r = await self._call(_GET_MULTI, packed, i1=nkeys, i2=int(gat_expire is not None), i3=gat_expire or 0)
        if r[0] != _OK:
            e = _engine.packed_error(core, r)
            s = self._sync
            raise s._failure(e, _messages.first_bad_key(klist, binary_keys=s._binary_keys, protocol=s._protocol))
        return r, core

    async def get_multi(self, keys: Iterable[K], *, errors: Optional[Dict[K, Exception]] = None) -> Dict[K, bytes]:
        """Get many keys in one pipelined exchange per server; {key: value} for the hits.

        Keys of a failing server are left out; pass a dict as ``errors`` to
        receive {key: exception} for them.
        """
        klist = keys if isinstance(keys, list) else list(keys)
        if not klist:
            return {}
        r, core = await self._get_multi(klist, None)
        nhits, nerrs, errpos, pos, values = _multi_columns(r)
        out = dict(zip(map(klist.__getitem__, struct.unpack_from(f"<{nhits}I", r, pos)), values))
        if nerrs:
            self._sync._multi_errors(core, r, errpos, nerrs, klist, errors)
        return out

    async def get_multi_raw(
        self, keys: Iterable[K], *, errors: Optional[Dict[K, Exception]] = None
    ) -> Tuple[List[K], Tuple[bytes, ...], Tuple[int, ...]]:
        """get_multi returning the hits as three aligned columns: keys, values, flags."""
        klist = keys if isinstance(keys, list) else list(keys)
        if not klist:
            return [], (), ()
        r, core = await self._get_multi(klist, None)
        nhits, nerrs, errpos, pos, values = _multi_columns(r)
        flags = struct.unpack_from(f"<{nhits}I", r, pos + 4 * nhits)
        hit_keys = list(map(klist.__getitem__, struct.unpack_from(f"<{nhits}I", r, pos)))
        if nerrs:
            self._sync._multi_errors(core, r, errpos, nerrs, klist, errors)
        return hit_keys, values, flags

    async def get_multi_items(
        self, keys: Iterable[K], *, gat_expire: Optional[int] = None, errors: Optional[Dict[K, Exception]] = None
    ) -> Dict[K, Item]:
        """get_multi returning Items (value, flags, cas); with ``gat_expire`` also touches each hit."""
        klist = keys if isinstance(keys, list) else list(keys)
        if not klist:
            return {}
        if gat_expire is not None:
            _check_u32("expire", gat_expire)
        r, core = await self._get_multi(klist, gat_expire)
        nhits, nerrs, errpos, pos, values = _multi_columns(r)
        idx = struct.unpack_from(f"<{nhits}I", r, pos)
        flags = struct.unpack_from(f"<{nhits}I", r, pos + 4 * nhits)
        cas = struct.unpack_from(f"<{nhits}Q", r, pos + 8 * nhits)
        out = dict(zip(map(klist.__getitem__, idx), map(Item, values, flags, cas)))
        if nerrs:
            self._sync._multi_errors(core, r, errpos, nerrs, klist, errors)
        return out

    async def set_multi(
        self, mapping: Mapping[K, bytes], expire: int = 0, *, flags: int = 0, errors: Optional[Dict[K, Exception]] = None
    ) -> List[K]:
        """Store many items pipelined per server; return the keys that failed."""
        _check_u32("flags", flags)
        return await self._set_multi(list(mapping), list(mapping.values()), None, flags, expire, errors)

    async def set_multi_items(
        self, items: Sequence[Tuple[K, bytes, int]], expire: int = 0, *, errors: Optional[Dict[K, Exception]] = None
    ) -> List[K]:
        """set_multi over (key, value, flags) triples, for serialising callers."""
        flags = [it[2] for it in items]
        for f in flags:
            _check_u32("flags", f)
        return await self._set_multi([it[0] for it in items], [it[1] for it in items], flags, 0, expire, errors)

    async def _set_multi(
        self, klist: List[K], values: List[bytes], flag_list: Optional[List[int]], flags: int, expire: int,
        errors: Optional[Dict[K, Exception]],
    ) -> List[K]:
        _check_u32("expire", expire)
        if not klist:
            return []
        keys, nkeys = _join_keys(klist)
        values = [v if type(v) is bytes else value_bytes(v) for v in values]
        n = len(values)
        lens = struct.pack(f"<{n}I", *map(len, values))
        fl = b"" if flag_list is None else struct.pack(f"<{n}I", *flag_list)
        core, r = await self._call(_SET_MULTI, keys, b"".join(values), lens + fl, i1=nkeys, i2=flags, i3=len(lens), i4=expire)
        if r == bytes([_OK]):
            return []
        return self._sync._failed_from(core, r, klist, errors, values)

    async def delete_multi(self, keys: Iterable[K], *, errors: Optional[Dict[K, Exception]] = None) -> List[K]:
        """Delete many keys pipelined per server; return the keys NOT deleted (misses included)."""
        klist = keys if isinstance(keys, list) else list(keys)
        if not klist:
            return []
        packed, nkeys = _join_keys(klist)
        core, r = await self._call(_DELETE_MULTI, packed, i1=nkeys)
        if r == bytes([_OK]):
            return []
        return self._sync._failed_from(core, r, klist, errors)

    # -- stampede protection (docs/stampede.md) -----------------------------

    async def get_or_set(
        self,
        key: Key,
        loader: Callable[[], Union[bytes, Awaitable[bytes]]],
        expire: int,
        *,
        lock_ttl: int = 30,
        recache_before: int = 0,
        wait_timeout: Optional[float] = None,
    ) -> bytes:
        """Return the value under key; on a miss, exactly one caller loads it.

        As :meth:`omcache.Client.get_or_set`; ``loader`` may be a plain
        function or a coroutine function.  Waiting callers sleep with
        ``asyncio.sleep``, never blocking the loop.
        """
        k = key_bytes(key)
        wait = _lease.check_args(lock_ttl, recache_before, wait_timeout, expire)
        if not callable(loader):
            raise TypeError(f"loader must be callable, not {type(loader).__name__}")

        async def load() -> Tuple[bytes, int]:
            v = loader()
            if inspect.isawaitable(v):
                v = await v
            return value_bytes(v), 0

        value, _ = await _get_or_set(self, k, load, expire, lock_ttl, recache_before, wait)
        return value

    async def invalidate(self, key: Key, stale_ttl: int = 30) -> bool:
        """Mark key's item stale for at most ``stale_ttl`` seconds; True if it
        existed (see :meth:`omcache.Client.invalidate`)."""
        _check_u32("stale_ttl", stale_ttl)
        if self.protocol != "meta":
            return await self.delete(key)
        core, r = await self._call(_INVALIDATE, key_bytes(key), i1=stale_ttl)
        return self._bool(core, r, key)

    async def _get_lease(self, key: bytes, lock_ttl: int, recache_before: int) -> _lease.Lease:
        core, r = await self._call(_GET_LEASE, key, i1=lock_ttl, i2=recache_before)
        if r[0] != _OK:
            raise _engine.packed_error(core, r)
        _, state, has_value, stale, flags, cas, ttl = _LEASE_HEADER.unpack_from(r)
        value = r[_LEASE_HEADER.size :] if has_value else None
        return _lease.Lease(state, value, flags, bool(stale), cas, ttl)

    async def _release_lease(self, key: bytes, lease: _lease.Lease) -> None:
        bits = int(lease.value is not None) | (2 if lease.stale else 0)
        core, r = await self._call(_RELEASE_LEASE, key, i1=bits, i2=_signed64(lease.cas), i3=lease.ttl)
        if r[0] != _OK:
            raise _engine.packed_error(core, r)

    # -- per-server ---------------------------------------------------------

    async def flush_all(self, delay: int = 0) -> bool:
        """Invalidate every item on every server; True, or the first error is raised."""
        _check_u32("delay", delay)
        core, r = await self._call(_FLUSH_ALL, i1=delay)
        _raise_first(self._sync._per_server(r, core, False))
        return True

    async def verbosity(self, level: int) -> bool:
        """Set every server's logging level; True if all did, else raise the first error."""
        _check_u32("level", level)
        core, r = await self._call(_VERBOSITY, i1=level)
        _raise_first(self._sync._per_server(r, core, False))
        return True

    async def noop(self) -> bool:
        """Ping every server; True if all answered, else raise the first error."""
        core, r = await self._call(_NOOP)
        _raise_first(self._sync._per_server(r, core, False))
        return True

    async def version(self) -> Dict[str, Union[str, Exception]]:
        """Return {server address: version string, or the exception for that server}."""
        core, r = await self._call(_VERSION)
        res = self._sync._per_server(r, core, True)
        return {a: (err if err is not None else str(v)) for a, (err, v) in zip(self._sync.server_addresses(), res)}

    async def stats(self, group: str = "") -> Dict[str, Union[Dict[str, str], Exception]]:
        """Return {server address: {stat: value}} (a failed server maps to its exception)."""
        self._sync._check_stats_group(group)
        core, r = await self._call(_STATS, group.encode())
        return self._sync._parse_stats(core, r, group)

    def server_addresses(self) -> List[str]:
        """The normalised addresses the engine connects to, in server-list order (no I/O)."""
        return self._sync.server_addresses()

    def server_for_key(self, key: Key) -> int:
        """The index of the server key maps to (no I/O)."""
        return self._sync.server_for_key(key)

    async def close(self) -> None:
        """Close the client's connections; further calls raise ClientClosedError."""
        core, h = self._sync._core, self._sync._h
        if core is not None and _engine.loaded() and self._sync._pid == os.getpid():
            core.bind_AsyncForgetClient(h)
        self._sync.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"omcache.aio.Client({self._sync.servers!r})"


async def _sleep_backoff(backoff: _lease._Backoff) -> None:
    left = backoff.deadline - time.monotonic()
    if left <= 0:
        raise exc.LeaseTimeoutError(
            f"get_or_set: no value for {backoff.key[:64]!r} after waiting {backoff.timeout:g} s for another caller's load"
        )
    await asyncio.sleep(min(backoff.delay * random.uniform(0.75, 1.25), left))
    backoff.delay = min(backoff.delay * _lease.POLL_FACTOR, _lease.POLL_MAX)


async def _get_or_set(
    client: Client, key: bytes, load: Callable[[], Awaitable[Tuple[bytes, int]]],
    expire: int, lock_ttl: int, recache_before: int, wait: float,
) -> Tuple[bytes, int]:
    """lease.get_or_set for coroutines: the same protocol, awaited."""
    backoff: Optional[_lease._Backoff] = None
    if client.protocol == "meta":
        while True:
            lease = await client._get_lease(key, lock_ttl, recache_before)
            if lease.state == _lease.LEASE_HIT and lease.value is not None:
                return lease.value, lease.flags
            if lease.state == _lease.LEASE_WON:
                try:
                    value, flags = await load()
                    await client.set(key, value, expire, flags=flags)
                except BaseException:
                    try:
                        await asyncio.shield(client._release_lease(key, lease))
                    except exc.Error as e:
                        log.warning("get_or_set: could not release the lease on %r: %s", key[:64], e)
                    raise
                return value, flags
            if lease.value is not None:
                return lease.value, lease.flags
            if backoff is None:
                backoff = _lease._Backoff(key, wait)
            await _sleep_backoff(backoff)
    lk = _lease.lock_key(key)
    token = f"{os.getpid()}:{random.getrandbits(64):x}".encode()
    while True:
        it = await client.get_item(key)
        if it is not None:
            return it.value, it.flags
        if await client.add(lk, token, lock_ttl):
            try:
                it = await client.get_item(key)
                if it is not None:
                    return it.value, it.flags
                value, flags = await load()
                await client.set(key, value, expire, flags=flags)
                return value, flags
            finally:
                try:
                    if await client.get(lk) == token:
                        await client.delete(lk)
                except exc.Error as e:
                    log.warning("get_or_set: could not release the lock %r: %s", lk, e)
        if backoff is None:
            backoff = _lease._Backoff(key, wait)
        await _sleep_backoff(backoff)


class SerdeClient:
    """An asyncio client for Python objects: :class:`omcache.SerdeClient`'s
    commands as coroutines over :class:`omcache.aio.Client`.

    ``serde``, ``key_prefix`` and ``allow_pickle`` as in
    ``omcache.SerdeClient``; other keyword arguments go to the client.
    """

    def __init__(
        self,
        servers: Servers,
        *,
        serde: Union[str, Serde, None] = None,
        key_prefix: Key = b"",
        allow_pickle: Optional[bool] = None,
        **client_options: Any,
    ) -> None:
        settings: Dict[str, Any] = {}
        if allow_pickle is not None:
            settings["allow_pickle"] = allow_pickle
        if (serde is None or isinstance(serde, str)) and "max_value_size" in client_options:
            settings["max_value_size"] = client_options["max_value_size"]
        self.serde: Serde = get_serde(serde, **settings)
        self.key_prefix: bytes = key_bytes(key_prefix)
        self.client = Client(servers, **client_options)

    def _wire(self, key: Key) -> bytes:
        return self.key_prefix + key_bytes(key)

    def _decode(self, key: Key, data: bytes, flags: int) -> Any:
        return self.serde.deserialize(key, data, flags)

    def _ser(self, key: Key, value: Any) -> Tuple[bytes, int]:
        return self.serde.serialize(key, value)

    async def get(self, key: Key, default: Any = None) -> Any:
        """Return the value stored under key, or ``default`` on a miss."""
        it = await self.client.get_item(self._wire(key))
        return default if it is None else self._decode(key, it.value, it.flags)

    async def gets(self, key: Key) -> Tuple[Any, Optional[int]]:
        """Return (value, cas) for key, or (None, None) on a miss."""
        it = await self.client.get_item(self._wire(key))
        return (None, None) if it is None else (self._decode(key, it.value, it.flags), it.cas)

    async def gat(self, key: Key, expire: int, default: Any = None) -> Any:
        """Get key and set its expiration; ``default`` on a miss."""
        it = await self.client.gat(self._wire(key), expire)
        return default if it is None else self._decode(key, it.value, it.flags)

    async def touch(self, key: Key, expire: int) -> bool:
        """Set a new expiration on key; True if it exists, False if not."""
        return await self.client.touch(self._wire(key), expire)

    async def get_multi(self, keys: Iterable[K]) -> Dict[K, Any]:
        """Return {key: value} for the keys that hit, in one pipelined call."""
        wire = {self._wire(k): k for k in keys}
        items = await self.client.get_multi_items(list(wire))
        return {wire[w]: self._decode(wire[w], it.value, it.flags) for w, it in items.items()}

    async def set(self, key: Key, value: Any, expire: int = 0) -> bool:
        """Store value under key unconditionally; True (failures raise)."""
        data, flags = self._ser(key, value)
        return await self.client.set(self._wire(key), data, expire, flags=flags)

    async def add(self, key: Key, value: Any, expire: int = 0) -> bool:
        """Store value only if key does not exist; False if it does."""
        data, flags = self._ser(key, value)
        return await self.client.add(self._wire(key), data, expire, flags=flags)

    async def replace(self, key: Key, value: Any, expire: int = 0) -> bool:
        """Store value only if key exists; False if it does not."""
        data, flags = self._ser(key, value)
        return await self.client.replace(self._wire(key), data, expire, flags=flags)

    @staticmethod
    def _raw(value: Union[str, bytes]) -> bytes:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise TypeError(f"append/prepend take str or bytes, not {type(value).__name__}")

    async def append(self, key: Key, value: Union[str, bytes]) -> bool:
        """Append str (as UTF-8) or bytes to key's value; False if key does not exist."""
        return await self.client.append(self._wire(key), self._raw(value))

    async def prepend(self, key: Key, value: Union[str, bytes]) -> bool:
        """Prepend str (as UTF-8) or bytes to key's value; False if key does not exist."""
        return await self.client.prepend(self._wire(key), self._raw(value))

    async def cas(self, key: Key, value: Any, cas: int, expire: int = 0) -> Optional[bool]:
        """Store value if key's CAS unique is still ``cas``: True, False (changed) or None (gone)."""
        data, flags = self._ser(key, value)
        return await self.client.cas(self._wire(key), data, cas, expire, flags=flags)

    async def incr(self, key: Key, delta: int = 1, *, initial: Optional[int] = None, expire: int = 0) -> Optional[int]:
        """Add delta to key's decimal value; the result, or None on a miss."""
        return await self.client.incr(self._wire(key), delta, initial=initial, expire=expire)

    async def decr(self, key: Key, delta: int = 1, *, initial: Optional[int] = None, expire: int = 0) -> Optional[int]:
        """Subtract delta from key's decimal value (memcached stops at 0); None on a miss."""
        return await self.client.decr(self._wire(key), delta, initial=initial, expire=expire)

    async def delete(self, key: Key) -> bool:
        """Delete key; True if it existed, False if not."""
        return await self.client.delete(self._wire(key))

    async def set_multi(self, mapping: Mapping[K, Any], expire: int = 0) -> List[K]:
        """Store many values in one pipelined call; return the keys that failed."""
        wire: Dict[bytes, K] = {}
        items: List[Tuple[bytes, bytes, int]] = []
        for k, v in mapping.items():
            w = self._wire(k)
            data, flags = self._ser(k, v)
            wire[w] = k
            items.append((w, data, flags))
        return [wire[w] for w in await self.client.set_multi_items(items, expire)]

    async def delete_multi(self, keys: Iterable[K]) -> List[K]:
        """Delete many keys in one pipelined call; return the keys NOT deleted."""
        wire = {self._wire(k): k for k in keys}
        return [wire[w] for w in await self.client.delete_multi(list(wire))]

    async def get_or_set(
        self,
        key: Key,
        loader: Callable[[], Any],
        expire: int,
        *,
        lock_ttl: int = 30,
        recache_before: int = 0,
        wait_timeout: Optional[float] = None,
    ) -> Any:
        """Return the object under key; on a miss exactly one caller runs
        ``loader`` (a function or a coroutine function); see
        :meth:`omcache.SerdeClient.get_or_set`."""
        wire = self._wire(key)
        wait = _lease.check_args(lock_ttl, recache_before, wait_timeout, expire)
        if not callable(loader):
            raise TypeError(f"loader must be callable, not {type(loader).__name__}")
        loaded: List[Any] = []

        async def load() -> Tuple[bytes, int]:
            obj = loader()
            if inspect.isawaitable(obj):
                obj = await obj
            loaded.append(obj)
            return self._ser(key, obj)

        data, flags = await _get_or_set(self.client, wire, load, expire, lock_ttl, recache_before, wait)
        if loaded:
            return loaded[0]
        return self._decode(key, data, flags)

    async def invalidate(self, key: Key, stale_ttl: int = 30) -> bool:
        """Mark key's item stale for at most ``stale_ttl`` seconds."""
        return await self.client.invalidate(self._wire(key), stale_ttl)

    async def flush_all(self, delay: int = 0) -> bool:
        """Invalidate every item on every server; True, or the first error is raised."""
        return await self.client.flush_all(delay)

    async def stats(self, group: str = "") -> Dict[str, Union[Dict[str, str], Exception]]:
        """Return {server address: {stat: value}}."""
        return await self.client.stats(group)

    async def version(self) -> Dict[str, Union[str, Exception]]:
        """Return {server address: version string, or the exception}."""
        return await self.client.version()

    async def close(self) -> None:
        """Close the connections; the client cannot be used afterwards."""
        await self.client.close()

    async def __aenter__(self) -> "SerdeClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"omcache.aio.SerdeClient({self.client.servers!r}, serde={self.serde!r})"

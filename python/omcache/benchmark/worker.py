"""One benchmark measurement in a fresh process: one client, one workload.

    python -m omcache.benchmark.worker --client omcache --workload "get 10 B" \
        --servers 127.0.0.1:11211[,127.0.0.1:11212,...] --ops 4000 [--warmup 200]
    python -m omcache.benchmark.worker --client pylibmc --probe --servers ...
    python -m omcache.benchmark.worker --client "omcache tls" --workload "TLS get 10 B" \
        --servers 127.0.0.1:11213 --tls-ca-file /tmp/.../ca.pem --ops 4000
    python -m omcache.benchmark.worker --list

The runner (omcache.benchmark.runner: ``omcache bench --compare``, ``make
bench``) runs this once per (client, workload, repetition), so no client
profits from a cache, a connection or a JIT warmed by another workload.  The
worker connects, fills the server with the workload's keys, checks that the
client really returns what was stored (a broken client must not look fast),
warms up, then times ``--ops`` operations in ``--batches`` batches and prints
one JSON line on stdout: {"ok": true, "batches": [[ops, seconds], ...],
"ops": ..., "usage": [[ops, cpu seconds, context switches], ...], "cpu_s": ...,
"context_switches": ..., "threads": ...} (workloads of several threads add
"paired": the one-thread batch run just before each batch) or {"ok": false,
"error": ...}.  The usage is ``getrusage(RUSAGE_SELF)`` over the timed
batches only (user + system CPU and voluntary + involuntary context
switches, summed over every thread of the process); "threads" is the most
OS threads the process had (``/proc/self/task``) at the end of a batch.  ``--probe`` only imports and
constructs the client and prints its version, or why it is not available.
``--profile FILE`` writes cProfile statistics of the timed part.

The TLS clients (``Adapter.tls``) talk to a memcached started with ``-Z``
whose certificate is signed by ``--tls-ca-file``; they run only the TLS
workloads (``Workload.tls``), and the other clients only the others.

The raw-socket floor (``RawFloor``) is the least a Python client can do for
the same round trips: a blocking socket, binary-protocol requests encoded per
call with struct, replies read by length, no error handling beyond status
codes.  Nothing written in Python can be much faster on the same socket.

This module is a program: it prints its verdict on stdout.  It imports only
the standard library at the top; each client is imported when it is probed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import zlib
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type

__all__ = ["CLIENTS", "WORKLOADS", "Adapter", "Meter", "RawFloor", "Workload", "main"]

# -- the raw-socket floor -----------------------------------------------------

_HDR = struct.Struct(">BBHBBHIIQ")
_SET_EXTRAS = struct.Struct(">II")
_INCR_EXTRAS = struct.Struct(">QQI")
_U64 = struct.Struct(">Q")

_OP_GET, _OP_SET, _OP_INCR, _OP_NOOP = 0x00, 0x01, 0x05, 0x0A
_OP_GETKQ, _OP_SETQ, _OP_DELETEQ = 0x0D, 0x11, 0x14
_ST_OK, _ST_MISS = 0x0000, 0x0001


def _req(op: int, key: bytes, extras: bytes = b"", value: bytes = b"", opaque: int = 0) -> bytes:
    return _HDR.pack(0x80, op, len(key), len(extras), 0, 0, len(extras) + len(key) + len(value), opaque, 0) + extras + key + value


class _RawConn:
    """A blocking socket with a receive buffer that reads whole binary-protocol packets."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        if address.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        else:
            host, port = address.rsplit(":", 1)
            self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def packet(self) -> Tuple[int, int, int, int, bytes]:
        """Read one reply: (opcode, status, key length, extras length, body)."""
        if len(self.buf) - self.pos < 24:
            self._fill(24)
        _, op, klen, elen, _, status, blen, _, _ = _HDR.unpack_from(self.buf, self.pos)
        if len(self.buf) - self.pos < 24 + blen:
            self._fill(24 + blen)
        start = self.pos + 24
        body = bytes(self.buf[start : start + blen])
        self.pos = start + blen
        if self.pos == len(self.buf):
            self.buf.clear()
            self.pos = 0
        return op, status, klen, elen, body

    def _fill(self, need: int) -> None:
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        while len(self.buf) < need:
            chunk = self.sock.recv(max(65536, need - len(self.buf)))
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def close(self) -> None:
        self.sock.close()


class RawFloor:
    """The floor: what a minimal Python client costs for the same round trips."""

    def __init__(self, servers: Sequence[str]) -> None:
        self.servers = list(servers)
        self.conns = [_RawConn(s) for s in self.servers]

    def _conn_for(self, key: bytes) -> _RawConn:
        # Any cheap placement will do: the floor only has to spread the keys.
        return self.conns[zlib.crc32(key) % len(self.conns)] if len(self.conns) > 1 else self.conns[0]

    def get(self, key: str) -> Optional[bytes]:
        k = key.encode()
        c = self._conn_for(k)
        c.send(_req(_OP_GET, k))
        _, status, klen, elen, body = c.packet()
        if status == _ST_OK:
            return body[elen + klen :]
        if status == _ST_MISS:
            return None
        raise RuntimeError(f"get: status {status:#x}")

    def set(self, key: str, value: bytes) -> bool:
        k = key.encode()
        c = self._conn_for(k)
        c.send(_req(_OP_SET, k, _SET_EXTRAS.pack(0, 0), value))
        status = c.packet()[1]
        if status != _ST_OK:
            raise RuntimeError(f"set: status {status:#x}")
        return True

    def incr(self, key: str) -> int:
        k = key.encode()
        c = self._conn_for(k)
        c.send(_req(_OP_INCR, k, _INCR_EXTRAS.pack(1, 0, 0xFFFFFFFF)))
        _, status, _, _, body = c.packet()
        if status != _ST_OK:
            raise RuntimeError(f"incr: status {status:#x}")
        return int(_U64.unpack(body)[0])

    def _by_conn(self, keys: Iterable[str]) -> Dict[int, List[Tuple[str, bytes]]]:
        groups: Dict[int, List[Tuple[str, bytes]]] = {}
        n = len(self.conns)
        for key in keys:
            k = key.encode()
            groups.setdefault(zlib.crc32(k) % n if n > 1 else 0, []).append((key, k))
        return groups

    def get_multi(self, keys: Iterable[str]) -> Dict[str, bytes]:
        groups = self._by_conn(keys)
        for i, group in groups.items():
            self.conns[i].send(b"".join([_req(_OP_GETKQ, k, opaque=j) for j, (_, k) in enumerate(group)]) + _req(_OP_NOOP, b""))
        out: Dict[str, bytes] = {}
        for i, group in groups.items():
            c = self.conns[i]
            while True:
                op, status, klen, elen, body = c.packet()
                if op == _OP_NOOP:
                    break
                if status == _ST_OK:
                    out[body[elen : elen + klen].decode()] = body[elen + klen :]
        return out

    def _quiet_multi(self, groups: Dict[int, List[Tuple[str, bytes]]], make: Callable[[bytes, str, int], bytes]) -> List[str]:
        for i, group in groups.items():
            self.conns[i].send(b"".join([make(k, key, j) for j, (key, k) in enumerate(group)]) + _req(_OP_NOOP, b""))
        failed: List[str] = []
        for i, group in groups.items():
            c = self.conns[i]
            while True:
                op, status, _, _, _ = c.packet()
                if op == _OP_NOOP:
                    break
                # quiet commands answer only failures; the opaque is not needed to count them
                failed.append(f"status {status:#x}")
        return failed

    def set_multi(self, mapping: Mapping[str, bytes]) -> List[str]:
        extras = _SET_EXTRAS.pack(0, 0)
        return self._quiet_multi(self._by_conn(mapping), lambda k, key, j: _req(_OP_SETQ, k, extras, mapping[key], j))

    def delete_multi(self, keys: Iterable[str]) -> List[str]:
        return self._quiet_multi(self._by_conn(keys), lambda k, key, j: _req(_OP_DELETEQ, k, opaque=j))

    def close(self) -> None:
        for c in self.conns:
            c.close()


# -- clients ------------------------------------------------------------------
#
# Each adapter exposes get/set/incr/get_multi/set_multi/delete_multi with str
# keys and bytes values, plus thread_handles(n): what n threads "sharing one
# client" use, the way that client's documentation says to share it.


class Adapter:
    """A client under test; subclasses bind the methods to the real client's."""

    name = ""
    #: how thread_handles() shares the client, shown in the report (benchmarks.md)
    sharing = "one client object shared by all threads"
    #: a TLS client: it talks to the TLS server (needs tls_ca_file) and runs only the TLS workloads
    tls = False

    def __init__(self, servers: Sequence[str], tls_ca_file: Optional[str] = None) -> None:
        self.servers = list(servers)
        if self.tls and not tls_ca_file:
            raise ValueError(f"{self.name}: a TLS client needs --tls-ca-file (the CA of the TLS server)")
        self.tls_ca_file = tls_ca_file
        self.client: Any = self.make(self.servers)
        self.get: Callable[[str], Optional[bytes]] = self.client.get
        self.set: Callable[[str, bytes], Any] = self.client.set
        self.incr: Callable[[str], Any] = self.client.incr
        self.get_multi: Callable[[List[str]], Dict[str, bytes]] = self.client.get_multi
        self.set_multi: Callable[[Dict[str, bytes]], Any] = self.client.set_multi
        self.delete_multi: Callable[[List[str]], Any] = self.client.delete_multi

    def make(self, servers: List[str]) -> Any:
        raise NotImplementedError

    @staticmethod
    def version() -> str:
        raise NotImplementedError

    def thread_handles(self, n: int) -> List[Callable[[], Any]]:
        """n factories, one per thread, each returning the object that thread calls get on."""
        return [lambda: self.client] * n

    def thread_done(self, handle: Any) -> None:
        """Give back what a thread got from its factory."""

    def new_client_get(self, key: str) -> Optional[bytes]:
        """Construct a fresh client (a new connection: TCP connect, TLS handshake), get KEY through it, close it."""
        c = self.make(self.servers)
        try:
            value: Optional[bytes] = c.get(key)
            return value
        finally:
            c.close()


class OmcacheAdapter(Adapter):
    name = "omcache"

    def make(self, servers: List[str]) -> Any:
        import omcache

        return omcache.Client(servers)

    @staticmethod
    def version() -> str:
        import omcache

        return omcache.__version__


class OmcacheBinaryAdapter(OmcacheAdapter):
    name = "omcache binary"

    def make(self, servers: List[str]) -> Any:
        import omcache

        return omcache.Client(servers, protocol="binary")


class OmcacheTextAdapter(OmcacheAdapter):
    name = "omcache text"

    def make(self, servers: List[str]) -> Any:
        import omcache

        return omcache.Client(servers, protocol="text")


class OmcacheTLSAdapter(OmcacheAdapter):
    name = "omcache tls"
    tls = True

    def make(self, servers: List[str]) -> Any:
        import omcache

        return omcache.Client(servers, tls=True, tls_ca_file=self.tls_ca_file)


class OmcachePylibmcAdapter(Adapter):
    name = "omcache_pylibmc"

    def make(self, servers: List[str]) -> Any:
        import omcache_pylibmc

        return omcache_pylibmc.Client(servers)

    @staticmethod
    def version() -> str:
        import omcache

        return omcache.__version__


class OmcacheMemcacheAdapter(Adapter):
    name = "omcache.memcache"

    def make(self, servers: List[str]) -> Any:
        import omcache.memcache

        return omcache.memcache.Client(servers)

    @staticmethod
    def version() -> str:
        import omcache

        return omcache.__version__


class PylibmcAdapter(Adapter):
    name = "pylibmc"
    behaviors: Dict[str, Any] = {}
    sharing = "pylibmc.ThreadMappedPool (a clone per thread; a pylibmc.Client must not be shared)"

    def make(self, servers: List[str]) -> Any:
        import pylibmc

        return pylibmc.Client(servers, behaviors=dict(self.behaviors)) if self.behaviors else pylibmc.Client(servers)

    @staticmethod
    def version() -> str:
        import pylibmc

        return f"{pylibmc.__version__} (libmemcached {pylibmc.libmemcached_version})"

    def thread_handles(self, n: int) -> List[Callable[[], Any]]:
        import pylibmc

        self._pool = pylibmc.ThreadMappedPool(self.client)
        self._reserved = threading.local()
        return [self._reserve] * n

    def _reserve(self) -> Any:
        # A thread keeps its clone for the whole run, as a request handler keeps it for a request.
        cm = self._pool.reserve()
        self._reserved.cm = cm
        return cm.__enter__()

    def thread_done(self, handle: Any) -> None:
        self._reserved.cm.__exit__(None, None, None)


class PylibmcNodelayAdapter(PylibmcAdapter):
    name = "pylibmc tcp_nodelay"
    behaviors = {"tcp_nodelay": True}


class PymemcacheAdapter(Adapter):
    name = "pymemcache"
    kwargs: Dict[str, Any] = {}
    sharing = "pymemcache PooledClient (a pymemcache Client must not be shared)"

    def make(self, servers: List[str]) -> Any:
        from pymemcache.client.base import Client
        from pymemcache.client.hash import HashClient

        if len(servers) == 1:
            return Client(servers[0], **self.kwargs)
        return HashClient(servers, **self.kwargs)

    def __init__(self, servers: Sequence[str], tls_ca_file: Optional[str] = None) -> None:
        super().__init__(servers, tls_ca_file)
        client = self.client
        self.incr = lambda key: client.incr(key, 1)

    @staticmethod
    def version() -> str:
        import pymemcache

        return str(pymemcache.__version__)

    def thread_handles(self, n: int) -> List[Callable[[], Any]]:
        from pymemcache.client.base import PooledClient

        pooled = PooledClient(self.servers[0], max_pool_size=n, **self.kwargs)
        return [lambda: pooled] * n


class PymemcacheRepliesAdapter(PymemcacheAdapter):
    name = "pymemcache noreply=False"
    kwargs = {"default_noreply": False}


class PymemcacheTLSAdapter(PymemcacheAdapter):
    """pymemcache's Client with an ``ssl.SSLContext`` that trusts the CA, waiting for every reply.

    A TLS comparison is about round trips, so writes wait for their replies
    (``default_noreply=False``) as omcache's do.
    """

    name = "pymemcache tls"
    tls = True

    def make(self, servers: List[str]) -> Any:
        import ssl

        from pymemcache.client.base import Client

        if len(servers) != 1:
            raise ValueError(f"{self.name}: one TLS server, not {len(servers)}")
        ctx = ssl.create_default_context(cafile=self.tls_ca_file)
        self._ctx = ctx
        return Client(servers[0], tls_context=ctx, default_noreply=False)

    def new_client_get(self, key: str) -> Optional[bytes]:
        # The SSLContext is made once and shared by the new clients, as an application would.
        from pymemcache.client.base import Client

        c = Client(self.servers[0], tls_context=self._ctx, default_noreply=False)
        try:
            value: Optional[bytes] = c.get(key)
            return value
        finally:
            c.close()


class PythonMemcachedAdapter(Adapter):
    name = "python-memcached"
    sharing = "one client object (a threading.local: one connection per thread)"

    def make(self, servers: List[str]) -> Any:
        import memcache

        return memcache.Client(servers)

    @staticmethod
    def version() -> str:
        import memcache

        return str(memcache.__version__)


class RawFloorAdapter(Adapter):
    name = "raw floor"
    sharing = "one socket per thread"

    def make(self, servers: List[str]) -> Any:
        return RawFloor(servers)

    @staticmethod
    def version() -> str:
        return f"omcache.benchmark.worker (Python {sys.version.split()[0]})"

    def thread_handles(self, n: int) -> List[Callable[[], Any]]:
        return [lambda: RawFloor(self.servers)] * n

    def thread_done(self, handle: Any) -> None:
        handle.close()


CLIENTS: Dict[str, Type[Adapter]] = {
    a.name: a
    for a in (
        OmcacheAdapter,
        OmcacheBinaryAdapter,
        OmcacheTextAdapter,
        OmcacheTLSAdapter,
        OmcachePylibmcAdapter,
        OmcacheMemcacheAdapter,
        PylibmcAdapter,
        PylibmcNodelayAdapter,
        PymemcacheAdapter,
        PymemcacheRepliesAdapter,
        PymemcacheTLSAdapter,
        PythonMemcachedAdapter,
        RawFloorAdapter,
    )
}


# -- workloads ----------------------------------------------------------------


def _value(size: int, seed: int) -> bytes:
    # Random bytes: no client gains from compression (none compresses by default anyway).
    return random.Random(seed).randbytes(size)


class Workload:
    """Fills the servers, checks the client, then times ops."""

    #: number of servers the workload needs
    servers = 1
    #: threads sharing the client (0: the calling thread alone)
    threads = 0
    #: run against the TLS server, by the TLS clients only
    tls = False

    def __init__(self, name: str) -> None:
        self.name = name

    def prepare(self, a: Adapter, prefix: str) -> Callable[[], Any]:
        """Store what the workload reads, check the client's answers, return one op."""
        raise NotImplementedError

    def run(
        self, a: Adapter, prefix: str, sizes: List[int], warmup: int, profile: Optional[str], meter: "Meter"
    ) -> List[float]:
        """Time batches of sizes[i] ops; return each batch's seconds; METER records each batch's CPU time."""
        op = self.prepare(a, prefix)
        for _ in range(warmup):
            op()
        clock = time.perf_counter
        out = []
        prof = _profiler(profile)
        for size in sizes:
            meter.batch()
            meter.begin()
            t0 = clock()
            for _ in range(size):
                op()
            out.append(clock() - t0)
            meter.end()
        _dump(prof, profile)
        self.check_after(a, prefix)
        return out

    def check_after(self, a: Adapter, prefix: str) -> None:
        """Recheck the client once the timed ops are done."""


class Meter:
    """CPU time and context switches of the whole worker process over the timed parts only.

    ``getrusage(RUSAGE_SELF)`` sums every thread of the process (the Go
    runtime's threads included, and those that already exited): user plus
    system CPU seconds, and voluntary plus involuntary context switches.
    Each timed batch calls ``batch()`` once, then brackets its timed work
    with ``begin()``/``end()`` (several times when untimed work is
    interleaved, as delete_multi's set_multi).  ``end()`` also counts the
    process's threads (``/proc/self/task``), keeping the largest count seen.
    """

    def __init__(self) -> None:
        #: per batch: [CPU seconds, context switches]
        self.batches: List[List[float]] = []
        #: the most OS threads the process had at the end of a timed part (0: not known, no /proc)
        self.threads = 0
        self._start: Tuple[float, int] = (0.0, 0)

    @staticmethod
    def _now() -> Tuple[float, int]:
        import resource

        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime, ru.ru_nvcsw + ru.ru_nivcsw

    def batch(self) -> None:
        """Start the next batch's totals."""
        self.batches.append([0.0, 0])

    def begin(self) -> None:
        """A timed part of the current batch starts."""
        self._start = self._now()

    def end(self) -> None:
        """The timed part started by begin() ends: add its CPU time and context switches to the batch."""
        cpu, cs = self._now()
        cur = self.batches[-1]
        cur[0] += cpu - self._start[0]
        cur[1] += cs - self._start[1]
        try:
            self.threads = max(self.threads, len(os.listdir("/proc/self/task")))
        except OSError:
            pass


def _profiler(path: Optional[str]) -> Any:
    if not path:
        return None
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    return prof


def _dump(prof: Any, path: Optional[str]) -> None:
    if prof is not None:
        prof.disable()
        prof.dump_stats(path)


def _expect(what: str, got: Any, want: Any) -> None:
    if got != want:
        shown = repr(got)
        raise AssertionError(f"{what}: got {shown[:80]}{'...' if len(shown) > 80 else ''}, want {repr(want)[:80]}")


class GetHit(Workload):
    def __init__(self, name: str, size: int) -> None:
        super().__init__(name)
        self.size = size

    def prepare(self, a: Adapter, prefix: str) -> Callable[[], Any]:
        key, value = f"{prefix}hit{self.size}", _value(self.size, self.size)
        a.set(key, value)
        _expect("get after set", a.get(key), value)
        get = a.get
        return lambda: get(key)


class GetMiss(Workload):
    def prepare(self, a: Adapter, prefix: str) -> Callable[[], Any]:
        key = f"{prefix}missing"
        _expect("get of a missing key", a.get(key), None)
        get = a.get
        return lambda: get(key)


class SetOne(Workload):
    def __init__(self, name: str, size: int) -> None:
        super().__init__(name)
        self.size = size
        self.key = ""
        self.value = b""

    def prepare(self, a: Adapter, prefix: str) -> Callable[[], Any]:
        key, value = f"{prefix}set{self.size}", _value(self.size, self.size + 1)
        self.key, self.value = key, value
        set_ = a.set
        return lambda: set_(key, value)

    def check_after(self, a: Adapter, prefix: str) -> None:
        _expect("get after the timed sets", a.get(self.key), self.value)


class Incr(Workload):
    def prepare(self, a: Adapter, prefix: str) -> Callable[[], Any]:
        key = f"{prefix}counter"
        a.set(key, b"0")
        _expect("incr of 0", int(a.incr(key)), 1)
        incr = a.incr
        return lambda: incr(key)


class MultiWorkload(Workload):
    def __init__(self, name: str, nkeys: int, servers: int) -> None:
        super().__init__(name)
        self.nkeys = nkeys
        self.servers = servers

    def items(self, prefix: str) -> Dict[str, bytes]:
        return {f"{prefix}m{i}": _value(10, i) for i in range(self.nkeys)}


class GetMulti(MultiWorkload):
    def prepare(self, a: Adapter, prefix: str) -> Callable[[], Any]:
        items = self.items(prefix)
        a.set_multi(items)
        keys = list(items)
        _expect("get_multi after set_multi", a.get_multi(keys), items)
        get_multi = a.get_multi
        return lambda: get_multi(keys)


class SetMulti(MultiWorkload):
    def prepare(self, a: Adapter, prefix: str) -> Callable[[], Any]:
        items = self.items(prefix)
        self.expected = items
        set_multi = a.set_multi
        return lambda: set_multi(items)

    def check_after(self, a: Adapter, prefix: str) -> None:
        _expect("get_multi after the timed set_multi", a.get_multi(list(self.expected)), self.expected)


class DeleteMulti(MultiWorkload):
    """delete_multi of keys that exist: each timed call follows an untimed set_multi."""

    def run(
        self, a: Adapter, prefix: str, sizes: List[int], warmup: int, profile: Optional[str], meter: Meter
    ) -> List[float]:
        items = self.items(prefix)
        keys = list(items)
        set_multi, delete_multi, clock = a.set_multi, a.delete_multi, time.perf_counter
        set_multi(items)
        _expect("get_multi after set_multi", a.get_multi(keys), items)  # a client that stores nothing must not look fast
        for _ in range(warmup):
            set_multi(items)
            delete_multi(keys)
        _expect("get_multi after delete_multi", a.get_multi(keys), {})
        prof = _profiler(profile)
        out = []
        for size in sizes:
            elapsed = 0.0
            meter.batch()
            for _ in range(size):
                if prof is not None:
                    prof.disable()
                set_multi(items)
                if prof is not None:
                    prof.enable()
                meter.begin()
                t0 = clock()
                delete_multi(keys)
                elapsed += clock() - t0
                meter.end()
            out.append(elapsed)
        _dump(prof, profile)
        _expect("get_multi after the timed delete_multi", a.get_multi(keys), {})
        return out


class SetGet(Workload):
    """One op is a set then a get of the same large value."""

    def __init__(self, name: str, size: int) -> None:
        super().__init__(name)
        self.size = size

    def prepare(self, a: Adapter, prefix: str) -> Callable[[], Any]:
        key, value = f"{prefix}big{self.size}", _value(self.size, self.size)
        a.set(key, value)
        _expect(f"get of a {self.size}-byte value", a.get(key), value)
        set_, get = a.set, a.get

        def op() -> Any:
            set_(key, value)
            return get(key)

        return op


class ThreadedGets(Workload):
    """``threads`` threads share the client and split each batch of 10-byte gets; the time is wall time.

    The threads meet at a barrier before and after each batch, so a batch's
    time is the time all its gets took together.  With several threads, each
    batch is preceded by a paired batch of the same size that the first
    thread runs alone (the others wait): ``paired`` holds those times, so
    that the scaling over one thread compares batches run moments apart,
    under the same load of a shared machine.  The CPU time and context
    switches (``Meter``) cover the batches of all the threads, not the
    paired ones.

    ``pair=False`` runs no paired batches (the scaling is then the ratio of
    two workloads' medians).  A ``latency`` workload is meant for servers
    behind a relay that delays every reply (the runner's
    ``omcache.benchmark.relay``): the worker does not know, only the
    runner's --servers differ.
    """

    def __init__(self, name: str, threads: int, pair: bool = True, latency: bool = False) -> None:
        super().__init__(name)
        self.threads = threads
        self.pair = pair
        self.latency = latency
        #: seconds of the one-thread batch paired with each batch (several threads only)
        self.paired: List[float] = []

    def run(
        self, a: Adapter, prefix: str, sizes: List[int], warmup: int, profile: Optional[str], meter: Meter
    ) -> List[float]:
        key, value = f"{prefix}shared", _value(10, 7)
        a.set(key, value)
        # Read back on the same connection: a noreply set (pymemcache's default)
        # may otherwise still be on its way when a thread's own connection asks.
        _expect("get after set", a.get(key), value)
        factories = a.thread_handles(self.threads)
        n = self.threads
        shares = [[size // n + (1 if i < size % n else 0) for size in sizes] for i in range(n)]
        paired = n > 1 and self.pair
        # Per thread, what it does in each round: with pairing, the first
        # thread's whole batch alone, then its share.
        rounds = [
            [x for size, share in zip(sizes, mine) for x in ((size if i == 0 else 0, share) if paired else (share,))]
            for i, mine in enumerate(shares)
        ]
        start = threading.Barrier(n + 1)
        done = threading.Barrier(n + 1)
        failures: List[BaseException] = []
        clock = time.perf_counter
        # Per thread and round, when its gets began and ended (None: it had none).
        # A batch lasts from the first thread's start to the last one's end: the
        # main thread's own clock would miss gets done before it ran again after
        # the start barrier (on a loaded machine, most of a short batch).
        marks: List[List[Optional[Tuple[float, float]]]] = [[None] * len(r) for r in rounds]

        def worker(i: int) -> None:
            handle = None
            try:
                handle = factories[i]()
                get = handle.get
                for _ in range(max(1, warmup // n)):
                    _expect("get in a thread", get(key), value)
                for k, count in enumerate(rounds[i]):
                    start.wait()
                    if count:
                        t0 = clock()
                        for _ in range(count):
                            get(key)
                        marks[i][k] = (t0, clock())
                    done.wait()
                _expect("get in a thread after the timed gets", get(key), value)
            except BaseException as e:  # reported by the main thread
                failures.append(e)
                start.abort()
                done.abort()
            finally:
                if handle is not None:
                    a.thread_done(handle)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        times = []
        prof = _profiler(profile)
        try:
            for k in range(len(rounds[0])):
                # With pairing, the even rounds are the first thread's alone: not metered.
                metered = not paired or k % 2 == 1
                if metered:
                    meter.batch()
                    meter.begin()
                start.wait(timeout=60)
                done.wait(timeout=600)
                if metered:
                    meter.end()
                spans = [span for span in (m[k] for m in marks) if span is not None]
                if spans:
                    times.append(max(e for _, e in spans) - min(b for b, _ in spans))
        except threading.BrokenBarrierError:
            pass
        _dump(prof, profile)
        for t in threads:
            t.join(timeout=60)
        if failures:
            raise failures[0]
        if len(times) != len(rounds[0]):
            raise RuntimeError("the threads did not finish their batches")
        if not paired:
            return times
        self.paired = times[0::2]
        return times[1::2]


class TLS(Workload):
    """Another workload's ops, run by the TLS clients against the TLS server."""

    tls = True

    def __init__(self, inner: Workload) -> None:
        super().__init__("TLS " + inner.name)
        self.inner = inner
        self.servers = inner.servers

    def run(
        self, a: Adapter, prefix: str, sizes: List[int], warmup: int, profile: Optional[str], meter: Meter
    ) -> List[float]:
        return self.inner.run(a, prefix, sizes, warmup, profile, meter)


class NewConnectionGet(Workload):
    """One op constructs a fresh client, gets a 10-byte value through it and closes it.

    Each op pays for a TCP connect and, on the TLS server, a full TLS
    handshake (no session is resumed: every client is new), plus one get;
    the report subtracts the get alone to show the cost of a new connection.
    """

    tls = True

    def prepare(self, a: Adapter, prefix: str) -> Callable[[], Any]:
        key, value = f"{prefix}hit10", _value(10, 10)
        a.set(key, value)
        _expect("get through a new client", a.new_client_get(key), value)
        fresh = a.new_client_get
        return lambda: fresh(key)


WORKLOADS: Dict[str, Workload] = {
    w.name: w
    for w in (
        GetHit("get 10 B", 10),
        GetHit("get 1 KB", 1024),
        GetMiss("get miss"),
        SetOne("set 10 B", 10),
        SetOne("set 1 KB", 1024),
        Incr("incr"),
        GetMulti("get_multi 100, 1 server", 100, 1),
        GetMulti("get_multi 100, 3 servers", 100, 3),
        SetMulti("set_multi 100", 100, 1),
        DeleteMulti("delete_multi 100", 100, 1),
        SetGet("set+get 100 KB", 100 * 1024),
        SetGet("set+get 1 MB", 1024 * 1024),
        ThreadedGets("get 10 B, 1 thread", 1),
        ThreadedGets("get 10 B, 2 threads", 2),
        ThreadedGets("get 10 B, 4 threads", 4),
        ThreadedGets("get 10 B, 1 ms latency, 1 thread", 1, pair=False, latency=True),
        ThreadedGets("get 10 B, 1 ms latency, 4 threads", 4, pair=False, latency=True),
        TLS(GetHit("get 10 B", 10)),
        TLS(SetOne("set 10 B", 10)),
        TLS(GetMulti("get_multi 100", 100, 1)),
        NewConnectionGet("TLS new connection + get"),
    )
}


def _latency(w: Workload) -> bool:
    """Whether W is meant for servers behind the runner's delaying relay."""
    return bool(getattr(w, "latency", False))


def _prefix(client: str) -> str:
    # Each client works on its own keys: flags and formats never cross clients.
    return "bench:" + "".join(ch if ch.isalnum() else "_" for ch in client) + ":"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one measurement (or a probe, or --list) as the command line says; print the JSON verdict."""
    ap = argparse.ArgumentParser(
        prog="python -m omcache.benchmark.worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--client", choices=sorted(CLIENTS))
    ap.add_argument("--workload", choices=list(WORKLOADS))
    ap.add_argument("--servers", default="", help="comma-separated host:port list")
    ap.add_argument("--tls-ca-file", help="the CA that signed the TLS server's certificate (TLS clients)")
    ap.add_argument("--ops", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=10, help="split the timed ops into this many batches")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--probe", action="store_true", help="only import and construct the client")
    ap.add_argument("--profile", help="write cProfile stats of the timed part to this file")
    ap.add_argument("--list", action="store_true", help="print the clients and workloads as JSON")
    args = ap.parse_args(argv)

    if args.list:
        print(json.dumps({
            "clients": {n: c.sharing for n, c in CLIENTS.items()},
            "clients tls": [n for n, c in CLIENTS.items() if c.tls],
            "workloads": {n: {"servers": w.servers, "threads": w.threads, "tls": w.tls, "latency": _latency(w)}
                          for n, w in WORKLOADS.items()},
        }))
        return 0
    if not args.client or not args.servers:
        ap.error("--client and --servers are required")
    servers = args.servers.split(",")
    cls = CLIENTS[args.client]
    if args.workload and not args.probe and WORKLOADS[args.workload].tls != cls.tls:
        ap.error(f"{args.client!r} runs only the {'TLS' if cls.tls else 'plaintext'} workloads, not {args.workload!r}")
    try:
        adapter = cls(servers if args.probe else servers[: WORKLOADS[args.workload].servers], args.tls_ca_file)
        version = cls.version()
    except Exception as e:
        # A probe's failure means "not available" (not installed, not constructible);
        # once a probe succeeded, a failure is an error of the run.
        print(json.dumps({"ok": False, "available": not args.probe, "error": f"{type(e).__name__}: {e}"}))
        return 0 if args.probe else 1
    if args.probe:
        print(json.dumps({"ok": True, "available": True, "version": version}))
        return 0
    if not args.workload:
        ap.error("--workload is required")
    nb = max(1, min(args.batches, args.ops))
    sizes = [args.ops // nb + (1 if i < args.ops % nb else 0) for i in range(nb)]
    meter = Meter()
    try:
        seconds = WORKLOADS[args.workload].run(adapter, _prefix(args.client), sizes, args.warmup, args.profile, meter)
    except Exception as e:
        print(json.dumps({"ok": False, "available": True, "error": f"{type(e).__name__}: {e}"}))
        return 1
    if len(meter.batches) != len(sizes):
        print(json.dumps({"ok": False, "available": True,
                          "error": f"the meter saw {len(meter.batches)} batches, not {len(sizes)}"}))
        return 1
    out: Dict[str, Any] = {
        "ok": True,
        "batches": [[n, t] for n, t in zip(sizes, seconds)],
        "ops": args.ops,
        # per batch: [ops, CPU seconds (user + system, all threads), context switches (voluntary + involuntary)]
        "usage": [[n, cpu, int(cs)] for n, (cpu, cs) in zip(sizes, meter.batches)],
        "cpu_s": sum(cpu for cpu, _ in meter.batches),
        "context_switches": int(sum(cs for _, cs in meter.batches)),
        "threads": meter.threads,
    }
    paired = getattr(WORKLOADS[args.workload], "paired", None)
    if paired:
        out["paired"] = [[n, t] for n, t in zip(sizes, paired)]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

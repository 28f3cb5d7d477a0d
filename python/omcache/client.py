"""omcache.Client: the simple, Pythonic entry point to the Go engine."""

from __future__ import annotations

import ctypes
import logging
import os
import re
import struct
import threading
from types import ModuleType
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union

from . import _engine, _green
from . import _config_check, _security, _messages
from . import exceptions as exc
from . import lease as _lease

try:  # the single-key hot path in C (setup.py builds it with the engine)
    if os.environ.get("OMCACHE_NO_FASTPATH"):
        raise ImportError("disabled by OMCACHE_NO_FASTPATH")
    from . import _fastpath
except ImportError:  # a build without it runs the Python path
    _fastpath = None  # type: ignore[assignment]

log = logging.getLogger("omcache")

Key = Union[str, bytes]
Servers = Union[str, Sequence[str]]
K = TypeVar("K", str, bytes)


class Item(NamedTuple):
    """A value as stored: the bytes, the client flags, and the CAS unique."""

    value: bytes
    flags: int
    cas: int


class ItemMeta(NamedTuple):
    """A value with what the meta protocol tells about its item (Client.get_meta)."""

    value: bytes
    flags: int
    cas: int
    #: seconds of life left; -1 if the item never expires
    ttl: int
    #: seconds since the item was last read or written
    last_access: int
    #: whether the item had been read before this request
    fetched: bool
    #: the value's length as the server counts it
    size: int


_OP_SET, _OP_ADD, _OP_REPLACE, _OP_APPEND, _OP_PREPEND = range(5)
_LEASE_HEADER = struct.Struct("<BBBBIQq")  # GetLease: status, state, has value, stale, flags, cas, ttl
_META_HEADER = struct.Struct("<BIQqqBq")  # GetMeta: status, flags, cas, ttl, last access, fetched, size
_GET_HEADER = struct.Struct("<BIQ")
_LARGE_HEADER = struct.Struct("<BIQQ")  # GetInto's header for a value left in the engine
_U32 = struct.Struct("<I")
# GetMulti's header after the status byte: hits, errors, format length, errors offset.
_MULTI_HEAD = struct.Struct("<IIII")
_MULTI_HEAD_END = 1 + _MULTI_HEAD.size
_ERR_REC = struct.Struct("<IBI")  # index, status, message length (go/bind packErrs)
_U64 = struct.Struct("<Q")
_MAX_U64 = (1 << 64) - 1
_GET_HEADER_LEN = _GET_HEADER.size
_OFF = _engine.BYTES_DATA_OFFSET
_OK = _engine.OK
_MISS = _engine.MISS


def _exact_bytes(data: Union[bytes, bytearray, memoryview]) -> bytes:
    """A copy of a bytes-like object's buffer as an exact ``bytes`` object.

    The engine is handed ``id(b) + offset`` and ``len(b)``: that is only the
    object's own memory when ``type(b) is bytes``.  A subclass can override
    ``__len__`` or ``__bytes__`` (and ``bytes(x)`` may return such a subclass),
    so subclasses, bytearray and memoryview are copied through the buffer
    protocol, whose result is always an exact bytes object.
    """
    out = memoryview(data).tobytes()
    if type(out) is not bytes:  # pragma: no cover - memoryview.tobytes() is exact
        raise TypeError(f"cannot read {type(data).__name__} as bytes")
    return out


def key_bytes(key: Key) -> bytes:
    """Return the wire form of a key as an exact ``bytes`` object: bytes as
    given, str encoded as UTF-8, subclasses and bytes-like objects copied.

    Raises TypeError for anything else.  Length and character checks happen in
    the engine (InvalidKeyError), so they cost no extra Python work.  A str
    subclass is encoded by ``str.encode`` itself: an ``encode()`` override is
    never called, so it cannot hand the engine something that is not bytes.
    """
    if type(key) is bytes:
        return key
    if isinstance(key, str):
        return str.encode(key, "utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return _exact_bytes(key)
    raise TypeError(f"key must be str or bytes, not {type(key).__name__}")


def value_bytes(value: object) -> bytes:
    """Return value as an exact, immutable ``bytes`` object (bytes subclasses
    and bytes-like values are copied; see _exact_bytes)."""
    if type(value) is bytes:
        return value  # type: ignore[return-value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _exact_bytes(value)
    raise TypeError(
        f"value must be bytes, not {type(value).__name__} "
        "(omcache.Client stores raw bytes; serialise other objects first)"
    )


# What follows "host:" in a host:port[:weight] spec.
_HOST_PORT_TAIL = re.compile(r"[0-9]+(:[0-9]+)?")


def parse_servers(servers: Servers) -> list[str]:
    """Normalise a server list: a sequence of "host:port" strings or one
    comma-separated string; "unix:/path" becomes the socket path "/path"."""
    if isinstance(servers, str):
        items = [s.strip() for s in servers.split(",")]
    elif isinstance(servers, (list, tuple)):
        items = list(servers)
    else:
        raise TypeError(f"servers must be a list of strings or a string, not {type(servers).__name__}")
    out = []
    for s in items:
        if not isinstance(s, str):
            raise TypeError(f"each server must be a str like 'host:port', not {type(s).__name__}")
        if not s or "\n" in s or "\x00" in s:
            raise exc.ConfigError(f"invalid server specification {s!r}")
        if s.startswith("unix:") and not _HOST_PORT_TAIL.fullmatch(s[5:]):
            # "unix:/path" (and "unix:///path") as libmemcached, python-memcached
            # and pymemcache spell a unix socket; the engine takes the path.
            # "unix:11211" stays the host "unix".
            path = "/" + s[5:].lstrip("/")
            if not s[5:].startswith("/") or path == "/":
                raise exc.ConfigError(
                    f"invalid server specification {s!r}: a unix socket needs an absolute path, e.g. 'unix:/run/memcached.sock'"
                )
            s = path
        out.append(s)
    if not out:
        raise exc.ConfigError("no servers given")
    return out


# Python-friendly spellings of go/dist's distribution names.
_DISTRIBUTION_ALIASES = {
    "libmemcached_ketama": "consistent",
    "libmemcached_ketama_weighted": "ketama_weighted",
    "libmemcached_ketama_pre1010": "ketama_pre1010",
    "python_memcache": "python-memcached",
    "python_memcached": "python-memcached",
}


#: The protocols the engine speaks, the default first.
PROTOCOLS = ("meta", "text", "binary")


def _config_word(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if "\n" in value or "\x00" in value or "=" in value and name == "behavior name":
        raise exc.ConfigError(f"invalid {name} {value!r}")
    return value


def _ms(name: str, seconds: float) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if not (0 < seconds <= 86400):
        raise exc.ConfigError(f"{name} must be > 0 and <= 86400 seconds, got {seconds!r}")
    return max(1, int(round(seconds * 1000)))


def _failover_lines(
    failover: bool,
    failure_limit: int,
    retry_timeout: float,
    reconnect_timeout: float,
    dead_timeout: Optional[float],
    auto_eject: bool,
) -> List[str]:
    """The engine's failure-handling config lines (docs/failover.md); raises for bad values."""
    for name, flag in (("failover", failover), ("auto_eject", auto_eject)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, not {type(flag).__name__}")
    if isinstance(failure_limit, bool) or not isinstance(failure_limit, int):
        raise TypeError(f"failure_limit must be an int, not {type(failure_limit).__name__}")
    if not 0 <= failure_limit <= 1 << 31:
        raise exc.ConfigError(f"failure_limit must be between 0 and 2**31, got {failure_limit}")
    lines = [
        f"failover={int(failover)}",
        f"auto_eject={int(auto_eject)}",
        f"failure_limit={failure_limit}",
        f"retry_timeout_ms={_ms_or_zero('retry_timeout', retry_timeout)}",
        # 0 probes a dead server as soon as a call notices it (the engine
        # reads 0 as its 2 s default, so ask for the shortest interval).
        f"reconnect_timeout_ms={max(1, _ms_or_zero('reconnect_timeout', reconnect_timeout))}",
    ]
    if dead_timeout is not None:
        lines.append(f"dead_timeout_ms={_ms_or_zero('dead_timeout', dead_timeout)}")
    return lines


def _ms_or_zero(name: str, seconds: float) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if not (0 <= seconds <= 86400):
        raise exc.ConfigError(f"{name} must be >= 0 and <= 86400 seconds, got {seconds!r}")
    return int(round(seconds * 1000))


class Client:
    """A memcached client backed by the Go engine.

    ``servers`` is a list of "host", "host:port", "host:port:weight",
    "[v6addr]:port" or unix socket path strings, or one comma-separated
    string.  Timeouts are in seconds.  A client may be shared by many threads
    (the GIL is released during I/O) and survives ``fork()``: in a child
    process it reconnects on first use.

    Key placement is libmemcached's, byte for byte: ``distribution`` is
    "consistent" (ketama as in libmemcached >= 1.0.10, the default, as in
    OMcache), "modula", "ketama_weighted", "ketama_pre1010" (the continuum of
    older libmemcached, for clusters shared with old clients) or
    "python-memcached" (python-memcached's buckets, with ``weights``);
    ``hash`` is one of libmemcached's hashers ("default" one-at-a-time, "md5",
    "crc", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "murmur",
    "jenkins"); ``behaviors`` applies pylibmc behaviors that affect placement,
    with libmemcached's side effects.  ``binary_keys=True`` lets keys hold
    any bytes (spaces, control characters; still 1 to 250 of them), as the
    binary protocol allows; by default keys must also be valid in the text
    protocol, so that every client sharing the servers can read them.

    ``protocol`` is what the client speaks to the servers (docs/protocols.md):
    ``"meta"`` (the default: memcached >= 1.6's meta protocol, with quiet
    pipelines for the multi-key calls and item metadata), ``"text"`` (the
    classic ASCII protocol: proxies such as twemproxy and mcrouter, memcached
    older than 1.6) or ``"binary"`` (memcached's deprecated binary protocol).
    A server that does not speak the chosen protocol gives
    ``omcache.WrongProtocolError`` naming it.  With ``binary_keys``, the meta
    protocol sends keys the text tokenizer cannot carry base64-encoded; the
    text protocol cannot send them at all (InvalidKeyError).

    ``text_multiget`` makes get_multi ask each server with one text-protocol
    ``gets`` of all its keys, on connections of their own, instead of a
    pipeline of quiet requests: memcached answers a pipeline 20 requests at a
    time, a text multi-get in one piece.  It is on by default for
    ``protocol="binary"`` and off for ``"meta"`` (whose client then puts only
    meta commands on the wire); it does not apply with ``binary_keys`` nor to
    ``get_multi_items(gat_expire=...)``, and text clients do it anyway.

    Failure handling (docs/failover.md has the full contract): a connect
    error, timeout, reset or protocol error is a failure of that server;
    ``failure_limit`` consecutive failures (or failures spanning
    ``dead_timeout`` seconds) mark it dead.  With ``failover`` (the default,
    as in OMcache) a dead server's keys go to the next live server on the
    ring; without it their calls raise ConnectionError at once.  A dead
    server is probed in the background every ``reconnect_timeout`` seconds,
    and its keys return once it answers.  ``retry_timeout`` makes calls for
    a server that just failed (below the limit) fail fast for that long;
    ``auto_eject`` rebuilds the placement over the live servers instead of
    walking past the dead one, as libmemcached's auto_eject does.  No call
    waits longer than ``connect_timeout`` + ``io_timeout``.

    ``tls=True`` encrypts every connection (docs/tls-auth.md) with Go's
    crypto/tls over the engine's own sockets: the server's certificate is
    verified against the system roots or ``tls_ca_file`` (``tls_verify=False``
    skips it), for ``tls_server_name`` or else the host of each server spec;
    ``tls_cert_file`` and ``tls_key_file`` present a client certificate
    (mutual TLS); ``tls_min_version`` is "1.2" (default) or "1.3" ("1.0",
    "1.1" for old servers).  The handshake is bounded by ``connect_timeout``;
    a certificate the client does not trust raises ``omcache.TLSError`` (a
    ConfigError) naming the server, which failover does not count as a
    failure.  ``username`` and ``password`` authenticate each new connection
    before its first request: SASL PLAIN with ``protocol="binary"``
    (memcached ``-S``), memcached's ASCII authentication with "text" and
    "meta" (``-Y``); a refusal raises ``omcache.AuthenticationError``, never
    retried in a loop, and no message shows the password.

    ``max_value_size`` caps the size of a value the client accepts from a
    server (default 128 MiB, memcached's largest ``-I``); a larger announced
    body is a ProtocolError, so a broken server cannot make it allocate more.

    The constructor checks the configuration (server specs, distribution,
    hash and behavior names, numbers) and raises ConfigError (or
    NotImplementedError for libmemcached's distributions omcache lacks) at
    once; it connects nowhere and does not load the engine, which the first
    call does.  InvalidKeyError and TooLargeValueError name the key and say
    why (the reason, the value's size and the limits).
    """

    def __init__(
        self,
        servers: Servers,
        *,
        connect_timeout: float = 1.0,
        io_timeout: float = 1.0,
        distribution: str = "consistent",
        hash: Optional[str] = None,
        ketama_hash: Optional[str] = None,
        sort_hosts: bool = False,
        weights: Optional[Sequence[int]] = None,
        behaviors: Optional[Mapping[str, object]] = None,
        protocol: str = "meta",
        binary_keys: bool = False,
        text_multiget: Optional[bool] = None,
        failover: bool = True,
        failure_limit: int = 2,
        retry_timeout: float = 0.0,
        reconnect_timeout: float = 2.0,
        dead_timeout: Optional[float] = None,
        auto_eject: bool = False,
        max_value_size: int = 128 * 1024 * 1024,
        tls: bool = False,
        tls_ca_file: Optional[str] = None,
        tls_cert_file: Optional[str] = None,
        tls_key_file: Optional[str] = None,
        tls_server_name: Optional[str] = None,
        tls_verify: bool = True,
        tls_min_version: str = "1.2",
        username: Optional[str] = None,
        password: Optional[str] = None,
    ) -> None:
        self._servers = parse_servers(servers)
        dist = _DISTRIBUTION_ALIASES.get(distribution, distribution)
        lines = [f"server={s}" for s in self._servers]
        lines.append(f"distribution={_config_word('distribution', dist)}")
        if hash is not None:
            lines.append(f"hash={_config_word('hash', hash)}")
        if ketama_hash is not None:
            lines.append(f"ketama_hash={_config_word('ketama_hash', ketama_hash)}")
        if sort_hosts:
            lines.append("sort_hosts=1")
        if weights is not None:
            ws = list(weights)
            if len(ws) != len(self._servers) or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 0 for w in ws):
                raise exc.ConfigError("weights must be one non-negative int per server")
            lines.append("weights=" + ",".join(map(str, ws)))
        behavior_values: Dict[str, str] = {}
        for name, value in (behaviors or {}).items():
            if isinstance(value, bool):
                value = int(value)
            behavior_values[_config_word("behavior name", name)] = _config_word(name, str(value))
            lines.append(f"behavior.{name}={behavior_values[name]}")
        # Checked here, in Python, so that a bad option raises from the
        # constructor without loading the engine (prefork masters create
        # clients before forking); the engine checks them again.
        _config_check.check_servers(self._servers, python_memcached_syntax=weights is not None)
        _config_check.check_distribution(dist)
        if hash is not None:
            _config_check.check_hash(hash)
        if ketama_hash is not None:
            _config_check.check_hash(ketama_hash, "ketama_hash")
        _config_check.check_behaviors(behavior_values)
        if not behavior_values:
            _config_check.check_combination(dist, hash, bool(sort_hosts))
        lines.append(f"connect_timeout_ms={_ms('connect_timeout', connect_timeout)}")
        lines.append(f"io_timeout_ms={_ms('io_timeout', io_timeout)}")
        if protocol not in PROTOCOLS:
            raise exc.ConfigError(f"protocol must be one of {', '.join(map(repr, PROTOCOLS))}, got {protocol!r}")
        self._protocol = protocol
        lines.append(f"protocol={protocol}")
        if binary_keys:
            lines.append("binary_keys=1")
        if text_multiget is None:
            text_multiget = protocol == "binary"
        if text_multiget:
            lines.append("text_multiget=1")
        if isinstance(max_value_size, bool) or not isinstance(max_value_size, int) or not 1 <= max_value_size <= 2**31:
            raise exc.ConfigError(f"max_value_size must be an int from 1 to 2**31, got {max_value_size!r}")
        lines.append(f"max_item_size={max_value_size}")
        lines += _failover_lines(failover, failure_limit, retry_timeout, reconnect_timeout, dead_timeout, auto_eject)
        lines += _security.config_lines(
            tls=tls,
            tls_ca_file=tls_ca_file,
            tls_cert_file=tls_cert_file,
            tls_key_file=tls_key_file,
            tls_server_name=tls_server_name,
            tls_verify=tls_verify,
            tls_min_version=tls_min_version,
            username=username,
            password=password,
        )
        self._tls = tls
        # Holds the password: never logged, never in repr.
        self._config = "\n".join(lines)
        self._binary_keys = bool(binary_keys)
        self._max_value_size = max_value_size
        self._pid = 0
        self._h = 0
        self._core: Optional[ModuleType] = None
        # The hot path in C (omcache._fastpath) for this process's engine
        # client; None until opened, after close, and under gevent.
        self._fe: Any = None
        self._closed = False

    @property
    def servers(self) -> list[str]:
        """The server specifications this client was created with."""
        return list(self._servers)

    @property
    def protocol(self) -> str:
        """The protocol the client speaks: "meta", "text" or "binary"."""
        return self._protocol

    def _open(self) -> Tuple[ModuleType, int]:
        # One engine client per process, even when many threads make their
        # first call at once (gthread workers right after fork). The lock is
        # module-wide: a per-client lock made before fork() could be held by
        # a thread that does not exist in the child.
        with _open_lock:
            if self._closed:
                raise exc.ClientClosedError("client is closed")
            pid = _getpid()
            if self._pid == pid and self._core is not None:
                return self._core, self._h
            c = _engine.core()
            r = _engine.take_bytes(c, c.bind_ClientNew(self._config))
            if r[0] != _OK:
                raise _engine.packed_error(c, r)
            # Handles from a previous process (before fork) are dropped unused:
            # they name clients of the parent's engine, which must never be called.
            # Under gevent the I/O calls wait by yielding to the hub (_green).
            self._core, self._h = _green.wrap(c), int.from_bytes(r[1:9], "little")
            self._pid = pid
            self._fe = None
            if _fastpath is not None and self._core is c:
                self._fe = _fastpath.Engine(c.bind_FastPathTable(), self._h, pid)
        log.debug("omcache: client %d opened in pid %d for %s", self._h, pid, self._servers)
        return self._core, self._h

    def _engine(self) -> Tuple[ModuleType, int]:
        if self._pid == _getpid() and self._core is not None:
            return self._core, self._h
        return self._open()

    # -- single-key reads ---------------------------------------------------

    def get(self, key: Key) -> Optional[bytes]:
        """Return the value stored under key, or None on a miss."""
        fe = self._fe
        if fe is not None:
            r = fe.get(key)
            if r is None or type(r) is bytes:
                return r  # type: ignore[no-any-return]
            if r is not NotImplemented:
                item = self._fast_item(r, key)
                return item.value if item is not None else None
        k = key.encode() if type(key) is str else key_bytes(key)
        if self._pid == _getpid() and self._core is not None:
            c, h = self._core, self._h
        else:
            c, h = self._open()
        buf = _tls.__dict__.pop("buf", None) or _ResultBuffer()
        try:
            n = c.bind_GetInto(h, id(k) + _OFF, len(k), buf.addr, _RESULT_BUFFER_SIZE, False, 0)
            if n > 0:
                status = buf.data[0]
                if status == _OK:
                    return bytes(buf.view[_GET_HEADER_LEN:n])
                if status == _MISS:
                    return None
                raise self._failure(_engine.packed_error(c, bytes(buf.view[:n])), key)
        finally:
            _tls.buf = buf
        big = self._take_large(c, buf.data, n)
        return big.value if big is not None else None

    def _get_item(self, key: Key, gat: bool, expire: int) -> Optional[Item]:
        fe = self._fe
        if fe is not None:
            r = fe.get_item(key, gat, expire)
            if r is None:
                return None
            if r is not NotImplemented:
                if len(r) == 3:
                    return _new_item(Item, r)  # type: ignore[no-any-return]
                return self._fast_item(r, key)
        k = key.encode() if type(key) is str else key_bytes(key)
        c, h = self._engine()
        buf = _tls.__dict__.pop("buf", None) or _ResultBuffer()
        try:
            n = c.bind_GetInto(h, id(k) + _OFF, len(k), buf.addr, _RESULT_BUFFER_SIZE, gat, expire)
            if n > 0:
                try:  # free when nothing is raised (CPython >= 3.11)
                    return _item(c, bytes(buf.view[:n]))
                except exc.InvalidKeyError as e:
                    raise self._failure(e, key) from None
        finally:
            _tls.buf = buf
        return self._take_large(c, buf.data, n)

    def _store_error(self, r: int, key: Key, value: bytes) -> Exception:
        """The exception for a fast-path store's result code r (not an outcome)."""
        assert self._core is not None
        return self._failure(_engine.error_for(self._core, r), key, value)

    def _delta_error(self, r: Tuple[int, bytes], key: Key) -> Exception:
        """The exception for a fast-path incr/decr that failed: r is (n, head)."""
        c = self._core
        assert c is not None
        n, packed = r
        if n <= 0:
            packed = _engine.take_bytes(c, c.bind_TakeResult(-n))
        return self._failure(_engine.packed_error(c, packed), key)

    def _fast_item(self, r: Tuple[int, bytes], key: Key) -> Optional[Item]:
        """Finish a fast-path get that was not a plain hit or miss: r is
        (n, head) from omcache._fastpath (an error, or a large value)."""
        n, head = r
        c = self._core
        assert c is not None
        if n > 0:
            try:
                return _item(c, head)
            except exc.InvalidKeyError as e:
                raise self._failure(e, key) from None
        return self._take_large(c, head, n)

    @staticmethod
    def _take_large(c: ModuleType, head: Union[bytes, bytearray], n: int) -> Optional[Item]:
        """Fetch a GetInto result that did not fit the buffer (n = -token).

        head is the start of the buffer the result was to be written to.
        A large value is copied by the engine straight into the bytes object
        returned (allocated here at its length, not yet seen by anyone); any
        other result comes back packed.
        """
        if head[0] == _OK:
            _, flags, cas, size = _LARGE_HEADER.unpack_from(head)
            try:
                value = _uninitialized_bytes(None, size)  # fresh (size > the buffer: never a cached one)
            except MemoryError:
                c.bind_TakeValueInto(-n, 0, 0)  # a wrong length: the engine forgets the value
                raise
            r = c.bind_TakeValueInto(-n, id(value) + _OFF, size)
            if r != _OK:
                _engine.raise_for(c, r)
            return Item(value, flags, cas)
        return _item(c, _engine.take_bytes(c, c.bind_TakeResult(-n)))

    def get_item(self, key: Key) -> Optional[Item]:
        """Return key's Item (value, flags, cas), or None on a miss."""
        return self._get_item(key, False, 0)

    def gets(self, key: Key) -> Tuple[Optional[bytes], Optional[int]]:
        """Return (value, cas) for key, or (None, None) on a miss."""
        it = self._get_item(key, False, 0)
        return (None, None) if it is None else (it.value, it.cas)

    def gat(self, key: Key, expire: int) -> Optional[Item]:
        """Get key and set its expiration (get-and-touch); None on a miss."""
        _check_u32("expire", expire)
        return self._get_item(key, True, expire)

    def get_meta(self, key: Key, *, bump: bool = True) -> Optional[ItemMeta]:
        """Return key's value with its item's metadata, or None on a miss.

        The metadata is what memcached's meta protocol offers: the seconds of
        life left (``ttl``, -1 if the item never expires), the seconds since
        its last access, whether it was fetched before, and its size, beside
        flags and CAS.  With ``bump=False`` the read leaves the item's LRU
        position and last access time as they were (a peek).  It needs
        ``protocol="meta"``; other protocols raise NotImplementedError.
        """
        k = key_bytes(key)
        c, h = self._engine()
        r = _engine.take_bytes(c, c.bind_GetMeta(h, id(k) + _OFF, len(k), bool(bump)))
        if r[0] == _MISS:
            return None
        if r[0] != _OK:
            raise _engine.packed_error(c, r)
        _, flags, cas, ttl, last, fetched, size = _META_HEADER.unpack_from(r)
        return ItemMeta(r[_META_HEADER.size :], flags, cas, ttl, last, bool(fetched), size)

    # -- stampede protection (docs/stampede.md) -----------------------------

    def get_or_set(
        self,
        key: Key,
        loader: Callable[[], bytes],
        expire: int,
        *,
        lock_ttl: int = 30,
        recache_before: int = 0,
        wait_timeout: Optional[float] = None,
    ) -> bytes:
        """Return the value under key; on a miss, exactly one caller loads it.

        A hit returns the value.  On a miss, of all the callers in every
        process and host, the one memcached hands the lease runs
        ``loader()`` (no arguments, returns bytes) and stores its result
        with ``expire``; the others poll with a growing backoff and return
        the stored value.  A waiter gives up after ``wait_timeout`` seconds
        (default ``lock_ttl`` plus 2 s, which outlasts a dead winner's
        lease on memcached's whole-second clock) with
        ``omcache.LeaseTimeoutError``.

        If the loader raises, the lease is released at once (another caller
        wins without waiting) and the exception reaches this caller; if the
        winner dies, its lease expires after ``lock_ttl`` seconds and the
        next caller wins.  ``recache_before=N``: when the item has less than
        N seconds left, one caller refreshes it while the others get the
        current value without waiting.  An item marked stale by
        ``invalidate`` is served to every caller but one, who refreshes it.

        With ``protocol="text"`` or ``"binary"`` (no leases in those
        protocols) a missing key is loaded by one caller holding an
        ``add``-based lock key (``omcache:lock:<sha1 of key>``, living
        ``lock_ttl``); ``recache_before`` has no effect and nothing is
        served stale.
        """
        k = key_bytes(key)
        wait = _lease.check_args(lock_ttl, recache_before, wait_timeout, expire)
        if not callable(loader):
            raise TypeError(f"loader must be callable, not {type(loader).__name__}")

        def load() -> Tuple[bytes, int]:
            return value_bytes(loader()), 0

        value, _ = _lease.get_or_set(self, k, load, expire, lock_ttl, recache_before, wait)
        return value

    def invalidate(self, key: Key, stale_ttl: int = 30) -> bool:
        """Mark key's item stale for at most ``stale_ttl`` seconds; True if it existed.

        Meanwhile ``get_or_set`` serves the stale value to every caller but
        one, who refreshes it; plain ``get`` (and every other client) keeps
        returning the stale value until the refresh is stored or
        ``stale_ttl`` ends.  In memcached a meta ``get`` of an invalidated
        item takes the refresh for itself (memcached hands it to the first
        meta read, whatever it asks): then get_or_set callers are served the
        stale value until ``stale_ttl`` ends, and one of them loads the key
        after that.  ``stale_ttl=0`` keeps the item's expiration.  With
        ``protocol="text"`` or ``"binary"`` there is no stale state: the
        item is deleted, and the next get_or_set loads it under its lock.
        """
        _check_u32("stale_ttl", stale_ttl)
        if self._protocol != "meta":
            return self.delete(key)
        k = key_bytes(key)
        c, h = self._engine()
        r = c.bind_Invalidate(h, id(k) + _OFF, len(k), stale_ttl)
        if r == _OK:
            return True
        if r == _MISS:
            return False
        _engine.raise_for(c, r)

    def _get_lease(self, key: bytes, lock_ttl: int, recache_before: int) -> _lease.Lease:
        """GetLease (meta only): the key's value and its lease state."""
        c, h = self._engine()
        r = _engine.take_bytes(c, c.bind_GetLease(h, id(key) + _OFF, len(key), lock_ttl, recache_before))
        if r[0] != _OK:
            raise _engine.packed_error(c, r)
        _, state, has_value, stale, flags, cas, ttl = _LEASE_HEADER.unpack_from(r)
        value = r[_LEASE_HEADER.size :] if has_value else None
        return _lease.Lease(state, value, flags, bool(stale), cas, ttl)

    def _release_lease(self, key: bytes, lease: _lease.Lease) -> None:
        """ReleaseLease: give back a lease won without storing a value."""
        c, h = self._engine()
        cas = lease.cas - (1 << 64) if lease.cas >= 1 << 63 else lease.cas  # the engine takes int64
        r = c.bind_ReleaseLease(h, id(key) + _OFF, len(key), lease.value is not None, lease.stale, cas, lease.ttl)
        if r != _OK:
            _engine.raise_for(c, r)

    def touch(self, key: Key, expire: int) -> bool:
        """Set a new expiration on key; True if it exists, False if not."""
        _check_u32("expire", expire)
        k = key_bytes(key)
        c, h = self._engine()
        r = c.bind_Touch(h, id(k) + _OFF, len(k), expire)
        if r == _OK:
            return True
        if r == _MISS:
            return False
        raise self._failure(_engine.error_for(c, r), key)

    # -- single-key writes --------------------------------------------------

    def _store(self, op: int, key: Key, value: bytes, expire: int, flags: int, cas: int) -> int:
        """Run a store command; return OK, NOT_STORED, EXISTS or MISS, raise for the rest."""
        # The common case (int arguments in range, str/bytes key, bytes
        # value) is checked inline: this is the hot path of every write.
        if type(expire) is not int or not 0 <= expire <= 0xFFFFFFFF:
            _check_u32("expire", expire)
        if type(flags) is not int or not 0 <= flags <= 0xFFFFFFFF:
            _check_u32("flags", flags)
        fe = self._fe
        if fe is not None:
            r = fe.store(op, key, value, flags, expire, cas)
            if r is not NotImplemented:
                if r & 0xFF in _STORE_OUTCOMES:
                    return r & 0xFF  # type: ignore[no-any-return]
                raise self._store_error(r, key, value)
        k = key.encode() if type(key) is str else key_bytes(key)
        v = value if type(value) is bytes else value_bytes(value)
        if self._pid == _getpid() and self._core is not None:
            c, h = self._core, self._h
        else:
            c, h = self._open()
        r = c.bind_Store(h, op, id(k) + _OFF, len(k), id(v) + _OFF, len(v), flags, expire, _signed64(cas) if cas else 0)
        code: int = r & 0xFF
        if code in _STORE_OUTCOMES:
            return code
        raise self._failure(_engine.error_for(c, r), key, v)

    def set(self, key: Key, value: bytes, expire: int = 0, *, flags: int = 0) -> bool:
        """Store value under key unconditionally; return True.

        ``expire`` is memcached's expiration: 0 for never, seconds up to 30
        days, or a unix timestamp.  Raises TooLargeValueError when the value
        exceeds the server's item size, ConnectionError/TimeoutError when the
        server cannot be reached: a write is never silently lost.
        """
        self._store(_OP_SET, key, value, expire, flags, 0)
        return True

    def add(self, key: Key, value: bytes, expire: int = 0, *, flags: int = 0) -> bool:
        """Store value only if key does not exist; False if it does."""
        return self._store(_OP_ADD, key, value, expire, flags, 0) == _OK

    def replace(self, key: Key, value: bytes, expire: int = 0, *, flags: int = 0) -> bool:
        """Store value only if key exists; False if it does not."""
        return self._store(_OP_REPLACE, key, value, expire, flags, 0) == _OK

    def append(self, key: Key, value: bytes) -> bool:
        """Append value to key's value; False if key does not exist."""
        return self._store(_OP_APPEND, key, value, 0, 0, 0) == _OK

    def prepend(self, key: Key, value: bytes) -> bool:
        """Prepend value to key's value; False if key does not exist."""
        return self._store(_OP_PREPEND, key, value, 0, 0, 0) == _OK

    def cas(self, key: Key, value: bytes, cas: int, expire: int = 0, *, flags: int = 0) -> Optional[bool]:
        """Store value if key's CAS unique is still ``cas``.

        Returns True if stored, False if the item changed since (CAS
        mismatch), None if the key no longer exists.
        """
        if isinstance(cas, bool) or not isinstance(cas, int) or not 0 < cas <= _MAX_U64:
            raise ValueError(f"cas must be a positive 64-bit int, got {cas!r}")
        code = self._store(_OP_SET, key, value, expire, flags, cas)
        if code == _MISS:
            return None
        return code == _OK

    def delete(self, key: Key) -> bool:
        """Delete key; return True if it existed, False if it did not."""
        k = key_bytes(key)
        c, h = self._engine()
        r = c.bind_Delete(h, id(k) + _OFF, len(k))
        if r == _OK:
            return True
        if r == _MISS:
            return False
        raise self._failure(_engine.error_for(c, r), key)

    def _delta(self, decr: bool, key: Key, delta: int, initial: Optional[int], expire: int) -> Optional[int]:
        if type(delta) is not int or not 0 <= delta <= 0xFFFFFFFFFFFFFFFF:
            _check_u64("delta", delta)
        if initial is not None:
            _check_u64("initial", initial)
        if type(expire) is not int or not 0 <= expire <= 0xFFFFFFFF:
            _check_u32("expire", expire)
        fe = self._fe
        if fe is not None:
            r = fe.delta(decr, key, delta, initial or 0, initial is not None, expire)
            if r is None or type(r) is int:
                return r  # type: ignore[no-any-return]
            if r is not NotImplemented:
                raise self._delta_error(r, key)
        k = key_bytes(key)
        c, h = self._engine()
        r = _engine.take_bytes(
            c,
            c.bind_Delta(
                h, id(k) + _OFF, len(k), decr, _signed64(delta),
                _signed64(initial or 0), initial is not None, expire,
            ),
        )
        if r[0] == _OK:
            return int(_U64.unpack_from(r, 1)[0])
        if r[0] == _MISS:
            return None
        raise self._failure(_engine.packed_error(c, r), key)

    def incr(self, key: Key, delta: int = 1, *, initial: Optional[int] = None, expire: int = 0) -> Optional[int]:
        """Increment key's decimal value by delta and return the new value.

        A missing key returns None, or is created with ``initial`` (and
        ``expire``) when initial is given.  Values wrap at 2**64.  Raises
        DeltaBadValueError when the value is not a decimal number.
        """
        return self._delta(False, key, delta, initial, expire)

    def decr(self, key: Key, delta: int = 1, *, initial: Optional[int] = None, expire: int = 0) -> Optional[int]:
        """Decrement like incr; memcached clamps at 0 instead of going negative."""
        return self._delta(True, key, delta, initial, expire)

    # -- multi-key ----------------------------------------------------------

    def get_multi(self, keys: Iterable[K], *, errors: Optional[Dict[K, Exception]] = None) -> Dict[K, bytes]:
        """Get many keys in one pipelined exchange per server (servers in parallel).

        Returns {key: value} for the hits.  Keys of a failing server are left
        out; pass a dict as ``errors`` to receive {key: exception} for them
        (they are also logged at WARNING).
        """
        klist = keys if isinstance(keys, list) else list(keys)
        if not klist:
            return {}
        r, c = self._get_multi(klist, None)
        nhits, nerrs, errpos, pos, values = _multi_columns(r)
        if nhits == len(klist):  # every key hit: the values are in the keys' order
            out = dict(zip(klist, values))
        else:
            out = dict(zip(map(klist.__getitem__, struct.unpack_from(f"<{nhits}I", r, pos)), values))
        if nerrs:
            self._multi_errors(c, r, errpos, nerrs, klist, errors)
        return out

    def get_multi_raw(
        self, keys: Iterable[K], *, errors: Optional[Dict[K, Exception]] = None
    ) -> Tuple[List[K], Tuple[bytes, ...], Tuple[int, ...]]:
        """get_multi returning the hits as three aligned columns: keys, values, flags.

        For layers that decode values by their flags (serialisation): they can
        handle a whole column at once, e.g. skip decoding when every flag is 0,
        instead of one Item per key.  Keys come back as given, in their order.
        """
        klist = keys if isinstance(keys, list) else list(keys)
        if not klist:
            return [], (), ()
        r, c = self._get_multi(klist, None)
        nhits, nerrs, errpos, pos, values = _multi_columns(r)
        flags = struct.unpack_from(f"<{nhits}I", r, pos + 4 * nhits)
        if nhits == len(klist):
            hit_keys = klist if klist is not keys else list(klist)
        else:
            hit_keys = list(map(klist.__getitem__, struct.unpack_from(f"<{nhits}I", r, pos)))
        if nerrs:
            self._multi_errors(c, r, errpos, nerrs, klist, errors)
        return hit_keys, values, flags

    def get_multi_items(
        self,
        keys: Iterable[K],
        *,
        gat_expire: Optional[int] = None,
        errors: Optional[Dict[K, Exception]] = None,
    ) -> Dict[K, Item]:
        """get_multi returning Items (value, flags, cas); with ``gat_expire`` also touches each hit."""
        klist = keys if isinstance(keys, list) else list(keys)
        if not klist:
            return {}
        if gat_expire is not None:
            _check_u32("expire", gat_expire)
        r, c = self._get_multi(klist, gat_expire)
        nhits, nerrs, errpos, pos, values = _multi_columns(r)
        idx = struct.unpack_from(f"<{nhits}I", r, pos)
        flags = struct.unpack_from(f"<{nhits}I", r, pos + 4 * nhits)
        cas = struct.unpack_from(f"<{nhits}Q", r, pos + 8 * nhits)
        out = dict(zip(map(klist.__getitem__, idx), map(Item, values, flags, cas)))
        if nerrs:
            self._multi_errors(c, r, errpos, nerrs, klist, errors)
        return out

    def _get_multi(self, klist: List[K], gat_expire: Optional[int]) -> Tuple[bytes, ModuleType]:
        """Run GetMultiInto; return its packed result (see go/bind packItems)."""
        packed, nkeys = _join_keys(klist)
        c, h = self._engine()
        buf = _tls.__dict__.pop("buf", None) or _ResultBuffer()
        try:
            n = c.bind_GetMultiInto(
                h, id(packed) + _OFF, len(packed), nkeys, buf.addr, _RESULT_BUFFER_SIZE,
                gat_expire is not None, gat_expire or 0,
            )
            r = bytes(buf.view[:n]) if n > 0 else None
        finally:
            _tls.buf = buf
        if r is None:
            r = _engine.take_bytes(c, c.bind_TakeResult(-n))
        if r[0] != _OK:
            e = _engine.packed_error(c, r)
            raise self._failure(e, _messages.first_bad_key(klist, binary_keys=self._binary_keys, protocol=self._protocol))
        return r, c

    def _multi_errors(
        self, c: ModuleType, r: bytes, pos: int, count: int, klist: Sequence[K], errors: Optional[Dict[K, Exception]]
    ) -> None:
        for _ in range(count):
            i, status, n = _ERR_REC.unpack_from(r, pos)
            pos += _ERR_REC.size
            self._record_error(c, status, r[pos : pos + n], klist[i], errors)
            pos += n

    def set_multi(
        self,
        mapping: Mapping[K, bytes],
        expire: int = 0,
        *,
        flags: int = 0,
        errors: Optional[Dict[K, Exception]] = None,
    ) -> List[K]:
        """Store many items with quiet SETs pipelined per server; return the keys that failed.

        Pass a dict as ``errors`` to receive {key: exception} for the failures.
        """
        _check_u32("flags", flags)
        return self._set_multi(list(mapping), list(mapping.values()), None, flags, expire, errors)

    def set_multi_items(
        self,
        items: Sequence[Tuple[K, bytes, int]],
        expire: int = 0,
        *,
        errors: Optional[Dict[K, Exception]] = None,
    ) -> List[K]:
        """set_multi over (key, value, flags) triples, for serialising callers."""
        klist = [it[0] for it in items]
        flags = [it[2] for it in items]
        for f in flags:
            _check_u32("flags", f)
        return self._set_multi(klist, [it[1] for it in items], flags, 0, expire, errors)

    def _set_multi(
        self,
        klist: List[K],
        values: List[bytes],
        flag_list: Optional[List[int]],
        flags: int,
        expire: int,
        errors: Optional[Dict[K, Exception]],
    ) -> List[K]:
        _check_u32("expire", expire)
        if not klist:
            return []
        keys, nkeys = _join_keys(klist)
        n = len(values)
        try:
            joined = b"".join(values)  # type: ignore[arg-type]
            lengths = list(map(len, values))
            # Only the exact bytes objects joined, lens and fl reach the
            # engine, which checks that the lengths add up to len(joined).
            # A memoryview of items wider than a byte, or a bytes subclass
            # whose __len__ lies, makes the sums differ: value_bytes then
            # copies each value by its real length.  (bytes.__len__ would
            # also catch liars that compensate each other, at 2.5x the cost
            # of len on set_multi's hot path.)
            if sum(lengths) != len(joined):
                raise TypeError
        except TypeError:  # not all bytes-like: value_bytes copies or explains
            values = [v if type(v) is bytes else value_bytes(v) for v in values]
            joined = b"".join(values)
            lengths = list(map(len, values))
        lens = struct.pack(f"<{n}I", *lengths)
        fl = b"" if flag_list is None else struct.pack(f"<{n}I", *flag_list)
        c, h = self._engine()
        st = c.bind_SetMulti(
            h, id(keys) + _OFF, len(keys), nkeys, id(joined) + _OFF, len(joined),
            id(lens) + _OFF, len(lens), id(fl) + _OFF, len(fl), flags, expire,
        )
        return [] if st == _OK else self._failed_keys(c, st, klist, errors, values)

    def delete_multi(self, keys: Iterable[K], *, errors: Optional[Dict[K, Exception]] = None) -> List[K]:
        """Delete many keys in one pipelined exchange per server; return the keys NOT deleted.

        A key that did not exist is not deleted; pass a dict as ``errors`` to
        tell misses (NotFoundError) from failures.
        """
        klist = keys if isinstance(keys, list) else list(keys)
        if not klist:
            return []
        packed, nkeys = _join_keys(klist)
        c, h = self._engine()
        st = c.bind_DeleteMulti(h, id(packed) + _OFF, len(packed), nkeys)
        return [] if st == _OK else self._failed_keys(c, st, klist, errors)

    def _record_error(
        self, c: ModuleType, status: int, msg: bytes, key: K, errors: Optional[Dict[K, Exception]], value: Optional[bytes] = None
    ) -> None:
        e = _engine.packed_error(c, bytes([status]) + msg)
        if status == _engine.BAD_KEY or status == _engine.TOO_LARGE:
            e = self._failure(e, key, value)
        if errors is not None:
            errors[key] = e
        if status != _MISS:
            log.warning("omcache: %r: %s: %s", key, type(e).__name__, e)

    def _failed_keys(
        self, c: ModuleType, st: int, klist: Sequence[K], errors: Optional[Dict[K, Exception]], values: Optional[List[bytes]] = None
    ) -> List[K]:
        """The keys a SetMulti/DeleteMulti that returned st (-token) did not store or delete."""
        return self._failed_from(c, _engine.take_bytes(c, c.bind_TakeResult(-st)), klist, errors, values)

    def _failed_from(
        self, c: ModuleType, r: bytes, klist: Sequence[K], errors: Optional[Dict[K, Exception]], values: Optional[List[bytes]] = None
    ) -> List[K]:
        """The keys a packed SetMulti/DeleteMulti failure result names (shared with omcache.aio)."""
        if r[0] != _OK:
            raise _engine.packed_error(c, r)
        failed: List[K] = []
        pos, end = 1, len(r)
        while pos < end:
            i, status, n = _ERR_REC.unpack_from(r, pos)
            pos += _ERR_REC.size
            self._record_error(c, status, r[pos : pos + n], klist[i], errors, None if values is None else values[i])
            pos += n
            failed.append(klist[i])
        return failed

    def _failure(self, e: Exception, key: object = None, value: Optional[bytes] = None) -> Exception:
        """On the error path only: give a bad-key or too-large error its reason.

        The engine reports that a key was refused or a value was too large;
        the key (repr, cut), why it was refused, the value's size and the
        limits are worked out here, so that valid calls pay nothing for it.
        """
        if isinstance(e, exc.InvalidKeyError) and key is not None:
            return exc.InvalidKeyError(_messages.invalid_key_message(key, binary_keys=self._binary_keys, protocol=self._protocol))
        if isinstance(e, exc.TooLargeValueError) and value is not None:
            return exc.TooLargeValueError(_messages.too_large_message(len(value), self._max_value_size, key))
        return e

    # -- per-server ---------------------------------------------------------

    def _per_server(self, r: bytes, c: ModuleType, with_payload: bool) -> List[Tuple[Optional[Exception], object]]:
        if r[0] != _OK:
            raise _engine.packed_error(c, r)
        (count,) = _U32.unpack_from(r, 1)
        pos = 5
        out: List[Tuple[Optional[Exception], object]] = []
        for _ in range(count):
            status = r[pos]
            (n,) = _U32.unpack_from(r, pos + 1)
            pos += 5
            err = None if status == _OK else _engine.packed_error(c, bytes([status]) + r[pos : pos + n])
            pos += n
            payload: object = None
            if with_payload:
                payload, pos = _read_str(r, pos)
            out.append((err, payload))
        return out

    def flush_all(self, delay: int = 0) -> bool:
        """Invalidate every item on every server (after ``delay`` seconds); True if all succeeded.

        Raises the first error when a server failed.
        """
        _check_u32("delay", delay)
        c, h = self._engine()
        res = self._per_server(_engine.take_bytes(c, c.bind_FlushAll(h, delay)), c, False)
        _raise_first(res)
        return True

    def verbosity(self, level: int) -> bool:
        """Set every server's logging level; True if all did, else raise the first error."""
        _check_u32("level", level)
        c, h = self._engine()
        _raise_first(self._per_server(_engine.take_bytes(c, c.bind_Verbosity(h, level)), c, False))
        return True

    def noop(self) -> bool:
        """Ping every server; True if all answered, else raise the first error."""
        c, h = self._engine()
        _raise_first(self._per_server(_engine.take_bytes(c, c.bind_Noop(h)), c, False))
        return True

    def version(self) -> Dict[str, Union[str, Exception]]:
        """Return {server address: version string, or the exception for that server}."""
        c, h = self._engine()
        res = self._per_server(_engine.take_bytes(c, c.bind_ServerVersions(h)), c, True)
        return {a: (err if err is not None else str(v)) for a, (err, v) in zip(self.server_addresses(), res)}

    def stats(self, group: str = "") -> Dict[str, Union[Dict[str, str], Exception]]:
        """Return {server address: {stat: value}} for a stats group ("", "items", "slabs", "settings", ...).

        Each dict keeps the order the server sent (memcached's own).  A
        server that failed maps to its exception instead of a dict; one
        that has no such group maps to a ServerError saying so.
        """
        self._check_stats_group(group)
        c, h = self._engine()
        return self._parse_stats(c, _engine.take_bytes(c, c.bind_Stats(h, group)), group)

    @staticmethod
    def _check_stats_group(group: str) -> None:
        if not isinstance(group, str) or any(ch.isspace() or ord(ch) < 32 for ch in group):
            raise ValueError(f"invalid stats group {group!r}")

    def _parse_stats(self, c: ModuleType, r: bytes, group: str) -> Dict[str, Union[Dict[str, str], Exception]]:
        """Decode a packed Stats result (shared with omcache.aio)."""
        if r[0] != _OK:
            raise _engine.packed_error(c, r)
        (count,) = _U32.unpack_from(r, 1)
        pos = 5
        out: Dict[str, Union[Dict[str, str], Exception]] = {}
        for addr in self.server_addresses()[:count]:
            status = r[pos]
            (n,) = _U32.unpack_from(r, pos + 1)
            pos += 5
            err = None if status == _OK else _engine.packed_error(c, bytes([status]) + r[pos : pos + n])
            if group and isinstance(err, exc.ServerError) and any(
                w in str(err).lower() for w in ("not found", "unknown command")
            ):
                # memcached answers an unknown group with "not found" (binary
                # KEY_ENOENT) or ERROR (text and meta): say what that means.
                unknown = exc.ServerError(f"the server has no stats group {group!r}")
                unknown.__cause__ = err
                err = unknown
            pos += n
            (m,) = _U32.unpack_from(r, pos)
            pos += 4
            d: Dict[str, str] = {}
            for _ in range(m):
                name, pos = _read_str(r, pos)
                value, pos = _read_str(r, pos)
                d[name] = value
            out[addr] = err if err is not None else d
        return out

    def server_addresses(self) -> List[str]:
        """The normalised addresses the engine connects to, in server-list order."""
        c, h = self._engine()
        r = _engine.take_bytes(c, c.bind_Servers(h))
        if r[0] != _OK:
            raise _engine.packed_error(c, r)
        (count,) = _U32.unpack_from(r, 1)
        pos, out = 5, []
        for _ in range(count):
            s, pos = _read_str(r, pos)
            out.append(s)
        return out

    # -- placement ----------------------------------------------------------

    def server_for_key(self, key: Key) -> int:
        """Return the index (in the server list) of the server key maps to; -1 if none."""
        k = key_bytes(key)
        c, h = self._engine()
        r = c.bind_ServerForKey(h, id(k) + _OFF, len(k))
        if r < -1:
            raise exc.EngineError("stale client handle")
        return int(r)

    def explain_key(self, key: Key) -> str:
        """Say how key is placed: its hash, the continuum point or bucket, and the server."""
        k = key_bytes(key)
        c, h = self._engine()
        return str(c.bind_ExplainKey(h, id(k) + _OFF, len(k)))

    def close(self) -> None:
        """Close the client's connections. Further calls raise ClientClosedError."""
        self._closed = True
        self._release()

    def _release(self) -> None:
        self._fe = None
        c, h = self._core, self._h
        self._core, self._h = None, 0
        if c is not None and self._pid == os.getpid() and _engine.loaded():
            c.bind_ClientClose(h)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._release()
        except Exception:  # interpreter shutdown: modules may be gone
            pass

    def __repr__(self) -> str:
        return f"omcache.Client({self._servers!r})"


def _check_u32(name: str, n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int, not {type(n).__name__}")
    if not 0 <= n <= 0xFFFFFFFF:
        raise ValueError(f"{name} must be between 0 and 2**32-1, got {n}")


_STORE_OUTCOMES = frozenset((_OK, _engine.NOT_STORED, _engine.EXISTS, _MISS))

# Single-key reads write their result into a per-thread buffer (go/bind
# GetInto) instead of returning a Go slice: that saves an allocation, a gopy
# handle and three boundary crossings per call. Results that do not fit come
# back through TakeResult. A buffer is taken out of the thread-local while in
# use, so a signal handler that runs a get in between gets its own.
_RESULT_BUFFER_SIZE = 32 * 1024
_tls = threading.local()
# A bytes object of a given size whose contents the engine then writes, not
# zero-filled first as bytes(n) would (~30 us for 1 MiB): the C API's
# PyBytes_FromStringAndSize(NULL, n). Nobody sees it before it is filled.
_uninitialized_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
_uninitialized_bytes.restype = ctypes.py_object
_uninitialized_bytes.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
# The pid, for the fork check of every call: without a system call where
# omcache._fastpath can notice forks (a MADV_WIPEONFORK page).
_getpid = _fastpath.getpid if _fastpath is not None and _fastpath.wipe_on_fork() else os.getpid
_new_item = tuple.__new__
_open_lock = threading.Lock()
if hasattr(os, "register_at_fork"):
    # A thread of the parent may hold the lock at fork(): the child's copy
    # would stay locked forever. (Where at-fork hooks do not run, as in uWSGI
    # workers, forks happen from the master's single thread.)
    os.register_at_fork(after_in_child=lambda: globals().update(_open_lock=threading.Lock()))


class _ResultBuffer:
    __slots__ = ("data", "view", "addr", "_cbuf")

    def __init__(self) -> None:
        self.data = bytearray(_RESULT_BUFFER_SIZE)
        self._cbuf = (ctypes.c_char * _RESULT_BUFFER_SIZE).from_buffer(self.data)
        self.addr = ctypes.addressof(self._cbuf)
        self.view = memoryview(self.data)


def _check_u64(name: str, n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int, not {type(n).__name__}")
    if not 0 <= n <= _MAX_U64:
        raise ValueError(f"{name} must be between 0 and 2**64-1, got {n}")


def _signed64(n: int) -> int:
    """Carry a uint64 through a signed int64 argument (the engine reinterprets it)."""
    return n - (1 << 64) if n >= (1 << 63) else n


# A character that a plain text key may not hold: space, control characters,
# DEL ("\n" joins the keys in plain_text_keys and is counted apart).
_NOT_PLAIN = re.compile("[\x00-\x09\x0b-\x20\x7f]")


def plain_text_keys(keys: List[Any]) -> bool:
    """Whether every key is a non-empty ASCII str of at most 250 characters
    with no space or control character.

    Such keys are valid as given in the text and binary protocols and for every
    client library's key checks (python-memcached's, libmemcached's
    verify_keys), and their UTF-8 form is the str itself: the compatibility
    layers use this to skip their per-key checks and mapping in multi-key
    calls.  One join and a few C-level scans, whatever the number of keys.
    """
    try:
        joined = "\n".join(keys)
    except TypeError:  # not all str
        return False
    return bool(
        keys
        and joined.isascii()
        and joined.count("\n") == len(keys) - 1
        and _NOT_PLAIN.search(joined) is None
        and min(map(len, keys)) > 0
        and max(map(len, keys)) <= 250
    )


def _join_keys(klist: Sequence[Any]) -> Tuple[bytes, int]:
    """Encode a multi-key call's keys for GetMultiInto: (keys, count).

    str keys without a newline go as one '\n'-joined UTF-8 string (count
    = len(klist)): one join and one encode instead of a call per key. Any
    other list (bytes keys, a key holding a newline) goes as a packed key
    list (count -1), so that each key is checked on its own.
    """
    try:
        joined = "\n".join(klist)
    except TypeError:  # some keys are bytes (or not keys at all)
        pass
    else:
        if joined.count("\n") == len(klist) - 1:
            return joined.encode(), len(klist)
    return _pack_keys([k.encode() if type(k) is str else key_bytes(k) for k in klist]), -1


def _pack_keys(keys: List[bytes]) -> bytes:
    """u32 count, count u32 lengths, then the keys back to back (go/bind keyList)."""
    n = len(keys)
    return struct.pack(f"<I{n}I", n, *map(len, keys)) + b"".join(keys)


def _item(c: ModuleType, r: bytes) -> Optional[Item]:
    status = r[0]
    if status == _OK:
        _, flags, cas = _GET_HEADER.unpack_from(r)
        return Item(r[_GET_HEADER_LEN:], flags, cas)
    if status == _MISS:
        return None
    raise _engine.packed_error(c, r)


def _multi_columns(r: bytes) -> Tuple[int, int, int, int, Tuple[bytes, ...]]:
    """Decode GetMultiInto's packed result (go/bind packItems).

    Returns (hits, errors, errors offset, columns offset, values).  After the
    status byte come u32 hits, u32 errors, u32 format length and u32 errors
    offset, then a struct format for the values; the columns follow: the
    hits' key indexes (u32 each), their flags (u32), their cas (u64), then
    the values themselves, unpacked here in one struct call.
    """
    nhits, nerrs, flen, errpos = _MULTI_HEAD.unpack_from(r, 1)
    pos = _MULTI_HEAD_END + flen
    values: Tuple[bytes, ...] = struct.unpack_from(r[_MULTI_HEAD_END:pos].decode("ascii"), r, pos + 16 * nhits)
    return nhits, nerrs, errpos, pos, values


def _read_str(r: bytes, pos: int) -> Tuple[str, int]:
    (n,) = _U32.unpack_from(r, pos)
    pos += 4
    return r[pos : pos + n].decode("utf-8", "replace"), pos + n


def _raise_first(res: List[Tuple[Optional[Exception], object]]) -> None:
    for err, _ in res:
        if err is not None:
            raise err

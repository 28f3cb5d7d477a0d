"""omcache.Client: the simple, Pythonic entry point to the Go engine."""

from __future__ import annotations

import logging
import os
import struct
from types import ModuleType
from typing import Optional, Sequence, Tuple, Union

from . import _engine
from . import exceptions as exc

log = logging.getLogger("omcache")

Key = Union[str, bytes]
Servers = Union[str, Sequence[str]]

_OP_SET, _OP_ADD, _OP_REPLACE, _OP_APPEND, _OP_PREPEND = range(5)
_GET_HEADER = struct.Struct("<BIQ")
_GET_HEADER_LEN = _GET_HEADER.size
_OFF = _engine.BYTES_DATA_OFFSET
_OK = _engine.OK
_MISS = _engine.MISS


def key_bytes(key: Key) -> bytes:
    """Return the wire form of a key: bytes as given, str encoded as UTF-8.

    Raises TypeError for anything else.  Length and character checks happen in
    the engine (InvalidKeyError), so they cost no extra Python work.
    """
    if type(key) is bytes:
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise TypeError(f"key must be str or bytes, not {type(key).__name__}")


def value_bytes(value: object) -> bytes:
    """Return value as an immutable bytes object (bytes-like values are copied)."""
    if type(value) is bytes:
        return value  # type: ignore[return-value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(
        f"value must be bytes, not {type(value).__name__} "
        "(omcache.Client stores raw bytes; serialise other objects first)"
    )


def parse_servers(servers: Servers) -> list[str]:
    """Normalise a server list: a sequence of "host:port" strings or one comma-separated string."""
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
        out.append(s)
    if not out:
        raise exc.ConfigError("no servers given")
    return out


def _ms(name: str, seconds: float) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if not (0 < seconds <= 86400):
        raise exc.ConfigError(f"{name} must be > 0 and <= 86400 seconds, got {seconds!r}")
    return max(1, int(round(seconds * 1000)))


class Client:
    """A memcached client over the binary protocol, backed by the Go engine.

    ``servers`` is a list of "host:port", "[v6addr]:port" or unix socket path
    strings, or one comma-separated string.  Timeouts are in seconds.  A
    client may be shared by many threads (the GIL is released during I/O) and
    survives ``fork()``: in a child process it reconnects on first use.
    """

    def __init__(
        self,
        servers: Servers,
        *,
        connect_timeout: float = 1.0,
        io_timeout: float = 1.0,
    ) -> None:
        self._servers = parse_servers(servers)
        lines = [f"server={s}" for s in self._servers]
        lines.append(f"connect_timeout_ms={_ms('connect_timeout', connect_timeout)}")
        lines.append(f"io_timeout_ms={_ms('io_timeout', io_timeout)}")
        self._config = "\n".join(lines)
        self._pid = 0
        self._h = 0
        self._core: Optional[ModuleType] = None
        self._closed = False

    @property
    def servers(self) -> list[str]:
        """The server specifications this client was created with."""
        return list(self._servers)

    def _open(self) -> Tuple[ModuleType, int]:
        if self._closed:
            raise exc.ClientClosedError("client is closed")
        c = _engine.core()
        r = _engine.take_bytes(c, c.bind_ClientNew(self._config))
        if r[0] != _OK:
            raise _engine.packed_error(c, r)
        # Handles from a previous process (before fork) are dropped unused:
        # they name clients of the parent's engine, which must never be called.
        self._core, self._h = c, int.from_bytes(r[1:9], "little")
        self._pid = os.getpid()
        log.debug("omcache: client %d opened in pid %d for %s", self._h, self._pid, self._servers)
        return c, self._h

    def _engine(self) -> Tuple[ModuleType, int]:
        if self._pid == os.getpid() and self._core is not None:
            return self._core, self._h
        return self._open()

    def get(self, key: Key) -> Optional[bytes]:
        """Return the value stored under key, or None on a miss."""
        k = key_bytes(key)
        c, h = self._engine()
        r = _engine.take_bytes(c, c.bind_Get(h, id(k) + _OFF, len(k)))
        status = r[0]
        if status == _OK:
            return r[_GET_HEADER_LEN:]
        if status == _MISS:
            return None
        raise _engine.packed_error(c, r)

    def _store(self, op: int, key: Key, value: bytes, expire: int, flags: int, cas: int) -> None:
        _check_u32("expire", expire)
        _check_u32("flags", flags)
        k = key_bytes(key)
        v = value_bytes(value)
        c, h = self._engine()
        r = c.bind_Store(h, op, id(k) + _OFF, len(k), id(v) + _OFF, len(v), flags, expire, cas)
        if r != _OK:
            _engine.raise_for(c, r)

    def set(self, key: Key, value: bytes, expire: int = 0, *, flags: int = 0) -> bool:
        """Store value under key unconditionally; return True.

        ``expire`` is memcached's expiration: 0 for never, seconds up to 30
        days, or a unix timestamp.  Raises TooLargeValueError when the value
        exceeds the server's item size, ConnectionError/TimeoutError when the
        server cannot be reached: a write is never silently lost.
        """
        self._store(_OP_SET, key, value, expire, flags, 0)
        return True

    def delete(self, key: Key) -> bool:
        """Delete key; return True if it existed, False if it did not."""
        k = key_bytes(key)
        c, h = self._engine()
        r = c.bind_Delete(h, id(k) + _OFF, len(k))
        if r == _OK:
            return True
        if r == _MISS:
            return False
        _engine.raise_for(c, r)

    def close(self) -> None:
        """Close the client's connections. Further calls raise ClientClosedError."""
        self._closed = True
        self._release()

    def _release(self) -> None:
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

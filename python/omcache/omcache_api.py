"""omcache.OMcache: the Python API of the OMcache C library, on the Go engine.

Programs written against OMcache's ``omcache.OMcache`` keep working::

    oc = omcache.OMcache(["127.0.0.1:11211"])
    oc.set("k", "v", expiration=60, flags=3)
    oc.get("k", flags=True)              # (b'v', 3)
    oc.increment("n", 1, initial=10)     # 10

The conventions are OMcache's: commands return ``OMCACHE_OK`` (0) and raise
on every other outcome (a miss is ``NotFoundError``, ``add`` of an existing
key ``KeyExistsError``, ...); values are bytes (str is stored as UTF-8);
timeouts are in milliseconds.  Unreachable servers raise
``omcache.ConnectionError`` or ``omcache.TimeoutError``.

Changing the servers, the distribution or a timeout replaces the underlying
``omcache.Client`` (its connections are closed).

Not provided: OMcache's ``select`` hook and request buffering (commands
here always complete before returning, so ``flush()`` has nothing to do).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from . import exceptions as exc
from .client import Client, Item, key_bytes
from .pyclient import client_supports

__all__ = ["OMcache", "OMCACHE_OK", "DISTRIBUTION_METHODS"]

log = logging.getLogger("omcache")

#: What OMcache's commands return on success.
OMCACHE_OK = 0

#: OMcache's distribution method names and the ``distribution`` option of
#: ``omcache.Client`` each one selects.
DISTRIBUTION_METHODS: Dict[str, str] = {
    "libmemcached_ketama": "ketama",
    "libmemcached_ketama_weighted": "ketama_weighted",
    "libmemcached_ketama_pre1010": "ketama_pre1010",
}
_DEFAULT_METHOD = "libmemcached_ketama"

# OMcache's defaults (omcache.c / omcache.py), milliseconds.
_DEFAULT_CONNECT_MS = 10_000
_DEFAULT_RECONNECT_MS = 10_000
_DEFAULT_DEAD_MS = 10_000
_DEFAULT_IO_MS = 1_000
# OMcache's "wait forever" (-1) is bounded here: every call has a deadline.
_FOREVER_MS = 86_400_000
_MAX_TIMEOUT_CLIENTS = 8

Key = Union[str, bytes]
Value = Union[str, bytes]
ServerList = Union[str, Iterable[str]]
GetResult = Union[bytes, Tuple[bytes, int], Tuple[bytes, int, int]]


def _split_servers(server_list: ServerList) -> List[str]:
    if isinstance(server_list, bytes):
        server_list = server_list.decode("utf-8")
    if isinstance(server_list, str):
        parts = server_list.split(",")
    elif isinstance(server_list, (list, tuple, set, frozenset)):
        parts = []
        for s in server_list:
            if not isinstance(s, str):
                raise TypeError(f"each server must be a str, not {type(s).__name__}")
            parts.extend(s.split(","))
    else:
        raise TypeError(f"server_list must be a str or a list of str, not {type(server_list).__name__}")
    return [p.strip() for p in parts if p.strip()]


def _value(value: Value) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"value must be str or bytes, not {type(value).__name__}")


def _msec(name: str, msec: int) -> int:
    if isinstance(msec, bool) or not isinstance(msec, int):
        raise TypeError(f"{name} must be an int number of milliseconds, not {type(msec).__name__}")
    if msec < 0:
        raise ValueError(f"{name} must be >= 0 milliseconds, got {msec}")
    return msec


def _seconds(msec: int) -> float:
    # Client takes seconds and wants > 0; OMcache's 0 means "do not wait",
    # which a blocking call can only approximate with its shortest deadline.
    if msec < 0:
        msec = _FOREVER_MS
    return max(1, min(msec, _FOREVER_MS)) / 1000.0


def _shape(it: Item, flags: bool, cas: bool) -> GetResult:
    if flags and cas:
        return (it.value, it.flags, it.cas)
    if flags:
        return (it.value, it.flags)
    if cas:
        return (it.value, it.cas)
    return it.value


class OMcache:
    """OMcache's client API (see the module docstring).

    ``server_list``: a list of "host:port" strings or one comma-separated
    string.  ``log``: a ``logging.Logger`` for this object's messages
    (default: the "omcache" logger).  Extra keyword arguments are options of
    ``omcache.Client`` (e.g. ``hash``) passed to every client built.
    """

    def __init__(self, server_list: ServerList, log: Optional[logging.Logger] = None, **client_options: Any) -> None:
        self._lock = threading.Lock()
        self._log: Optional[logging.Logger] = log
        self._options = dict(client_options)
        self._servers: List[str] = []
        self._method = _DEFAULT_METHOD
        self._connect_ms = _DEFAULT_CONNECT_MS
        self._reconnect_ms = _DEFAULT_RECONNECT_MS
        self._dead_ms = _DEFAULT_DEAD_MS
        self._io_ms = _DEFAULT_IO_MS
        self._client: Optional[Client] = None
        self._timeout_clients: Dict[int, Client] = {}
        self._server_clients: Dict[int, Client] = {}
        self.set_servers(server_list)

    # -- configuration ------------------------------------------------------

    @property
    def log(self) -> logging.Logger:
        """The logger this object reports to (assignable; None restores "omcache")."""
        return self._log or log

    @log.setter
    def log(self, logger: Optional[logging.Logger]) -> None:
        self._log = logger

    @property
    def servers(self) -> List[str]:
        """The server list in use."""
        return list(self._servers)

    def _client_kwargs(self, io_ms: int) -> Dict[str, Any]:
        kw: Dict[str, Any] = dict(self._options)
        kw["connect_timeout"] = _seconds(self._connect_ms)
        kw["io_timeout"] = _seconds(io_ms)
        if client_supports("distribution"):
            kw["distribution"] = DISTRIBUTION_METHODS[self._method]
            if self._method == "libmemcached_ketama_weighted" and "hash" not in kw:
                # OMcache's weighted ketama hashes keys with md5, as libmemcached's does.
                kw["hash"] = "md5"
        if client_supports("reconnect_timeout"):
            kw["reconnect_timeout"] = _seconds(self._reconnect_ms)
        if client_supports("dead_timeout"):
            kw["dead_timeout"] = _seconds(self._dead_ms)
        return kw

    def _rebuild(self, servers: Optional[List[str]] = None) -> None:
        """Build the client for the current settings, then drop the old ones."""
        servers = self._servers if servers is None else servers
        new = Client(servers, **self._client_kwargs(self._io_ms)) if servers else None
        if new is not None:
            # The engine parses the configuration when the client first runs;
            # do it now so a bad server spec fails in set_servers(), not later.
            new.server_addresses()
        with self._lock:
            old = [self._client, *self._timeout_clients.values(), *self._server_clients.values()]
            self._servers = servers
            self._client = new
            self._timeout_clients = {}
            self._server_clients = {}
        for c in old:
            if c is not None:
                c.close()
        self.log.debug("omcache: OMcache uses %s (%s)", servers, self._method)

    def set_servers(self, server_list: ServerList) -> int:
        """Replace the server list (a list or a comma-separated string); OMCACHE_OK.

        Raises ConfigError for an invalid server specification.
        """
        self._rebuild(_split_servers(server_list))
        return OMCACHE_OK

    def set_distribution_method(self, method: str) -> int:
        """Choose how keys map to servers: "libmemcached_ketama" (the default),
        "libmemcached_ketama_weighted" or "libmemcached_ketama_pre1010"; OMCACHE_OK.

        Raises omcache.Error for an unknown name.
        """
        if method not in DISTRIBUTION_METHODS:
            raise exc.Error(f"invalid distribution method {method!r}")
        if method != _DEFAULT_METHOD and not client_supports("distribution"):
            raise NotImplementedError(
                f"distribution method {method!r} needs omcache.Client's 'distribution' option, "
                "which this build of the engine does not offer yet"
            )
        self._method = method
        self._rebuild()
        return OMCACHE_OK

    @property
    def distribution_method(self) -> str:
        """The distribution method in use (OMcache's name)."""
        return self._method

    @property
    def connect_timeout(self) -> int:
        """Milliseconds to wait for a connection to be established (default 10000)."""
        return self._connect_ms

    @connect_timeout.setter
    def connect_timeout(self, msec: int) -> None:
        self._connect_ms = _msec("connect_timeout", msec)
        self._rebuild()

    def _failover_option(self, name: str, msec: int) -> int:
        msec = _msec(name, msec)
        if not client_supports(name):
            raise NotImplementedError(
                f"{name} needs omcache.Client's {name!r} option, which this build of the engine does not offer yet"
            )
        return msec

    @property
    def reconnect_timeout(self) -> int:
        """Milliseconds a failed server is left alone before it is retried (default 10000)."""
        return self._reconnect_ms

    @reconnect_timeout.setter
    def reconnect_timeout(self, msec: int) -> None:
        self._reconnect_ms = self._failover_option("reconnect_timeout", msec)
        self._rebuild()

    @property
    def dead_timeout(self) -> int:
        """Milliseconds a server may stay unreachable before it is considered dead
        and its keys move to other servers (default 10000)."""
        return self._dead_ms

    @dead_timeout.setter
    def dead_timeout(self, msec: int) -> None:
        self._dead_ms = self._failover_option("dead_timeout", msec)
        self._rebuild()

    @property
    def io_timeout(self) -> int:
        """Default milliseconds a command may take (default 1000); -1 waits as
        long as the engine allows (a day)."""
        return self._io_ms

    @io_timeout.setter
    def io_timeout(self, msec: int) -> None:
        if isinstance(msec, bool) or not isinstance(msec, int):
            raise TypeError("io_timeout must be an int number of milliseconds")
        self._io_ms = msec
        self._rebuild()

    def _c(self, timeout: Optional[int] = None) -> Client:
        """The client for a call with the given per-call timeout (ms)."""
        c = self._client
        if c is None:
            raise exc.NoServersError("no servers configured")
        if timeout is None or timeout == self._io_ms:
            return c
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            raise TypeError("timeout must be an int number of milliseconds")
        with self._lock:
            tc = self._timeout_clients.get(timeout)
            if tc is None:
                # A client per distinct timeout: the engine fixes the I/O
                # deadline per client.  Few programs use more than one or two.
                if len(self._timeout_clients) >= _MAX_TIMEOUT_CLIENTS:
                    _, evicted = self._timeout_clients.popitem()
                    evicted.close()
                tc = Client(self._servers, **self._client_kwargs(timeout))
                self._timeout_clients[timeout] = tc
            return tc

    def _server_client(self, server_index: int, timeout: Optional[int]) -> Client:
        if isinstance(server_index, bool) or not isinstance(server_index, int):
            raise TypeError("server_index must be an int")
        if not 0 <= server_index < len(self._servers):
            raise exc.CommandError(f"invalid server index {server_index} ({len(self._servers)} servers)")
        io_ms = self._io_ms if timeout is None else timeout
        with self._lock:
            c = self._server_clients.get(server_index)
            if c is None or io_ms != self._io_ms:
                kw = self._client_kwargs(io_ms)
                kw.pop("distribution", None)
                c = Client([self._servers[server_index]], **kw)
                if io_ms == self._io_ms:
                    self._server_clients[server_index] = c
            return c

    def free(self) -> None:
        """Close all connections; the object is unusable until set_servers()."""
        self._rebuild([])

    def __enter__(self) -> "OMcache":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.free()

    def flush(self, timeout: int = -1) -> int:
        """OMCACHE_OK: every command completes before it returns, so no
        buffered request is ever left to send."""
        return OMCACHE_OK

    # -- reads --------------------------------------------------------------

    def get(self, key: Key, flags: bool = False, cas: bool = False, timeout: Optional[int] = None) -> GetResult:
        """Return key's value (bytes); with ``flags``/``cas`` a tuple
        (value, flags), (value, cas) or (value, flags, cas).

        Raises NotFoundError on a miss.
        """
        it = self._c(timeout).get_item(key)
        if it is None:
            raise exc.NotFoundError(f"get: {key!r} not found")
        return _shape(it, flags, cas)

    def gat(
        self, key: Key, expiration: int = 0, flags: bool = False, cas: bool = False, timeout: Optional[int] = None
    ) -> GetResult:
        """get() that also sets key's expiration (get-and-touch); NotFoundError on a miss."""
        it = self._c(timeout).gat(key, expiration)
        if it is None:
            raise exc.NotFoundError(f"gat: {key!r} not found")
        return _shape(it, flags, cas)

    def get_multi(
        self, keys: Iterable[Key], flags: bool = False, cas: bool = False, timeout: Optional[int] = None
    ) -> Dict[bytes, GetResult]:
        """Return {key as bytes: value or tuple as in get()} for the keys found;
        misses (and keys of servers that failed) are left out."""
        wire = [key_bytes(k) for k in keys]
        items = self._c(timeout).get_multi_items(wire)
        return {k: _shape(it, flags, cas) for k, it in items.items()}

    # -- writes -------------------------------------------------------------

    def set(
        self, key: Key, value: Value, expiration: int = 0, flags: int = 0, cas: int = 0, timeout: Optional[int] = None
    ) -> int:
        """Store value; with a non-zero ``cas`` only if key's CAS unique still
        matches (else KeyExistsError, or NotFoundError if the key is gone).

        Returns OMCACHE_OK; raises TooLargeValueError over the item size limit.
        """
        c = self._c(timeout)
        if cas:
            r = c.cas(key, _value(value), cas, expiration, flags=flags)
            if r is None:
                raise exc.NotFoundError(f"set: {key!r} not found")
            if not r:
                raise exc.KeyExistsError(f"set: {key!r} has a different cas value")
        else:
            c.set(key, _value(value), expiration, flags=flags)
        return OMCACHE_OK

    def add(self, key: Key, value: Value, expiration: int = 0, flags: int = 0, timeout: Optional[int] = None) -> int:
        """Store value if key does not exist (else KeyExistsError); OMCACHE_OK."""
        if not self._c(timeout).add(key, _value(value), expiration, flags=flags):
            raise exc.KeyExistsError(f"add: {key!r} exists")
        return OMCACHE_OK

    def replace(self, key: Key, value: Value, expiration: int = 0, flags: int = 0, timeout: Optional[int] = None) -> int:
        """Store value if key exists (else NotFoundError); OMCACHE_OK."""
        if not self._c(timeout).replace(key, _value(value), expiration, flags=flags):
            raise exc.NotFoundError(f"replace: {key!r} not found")
        return OMCACHE_OK

    def _concat(self, name: str, key: Key, value: Value, cas: int, timeout: Optional[int]) -> int:
        if cas:
            raise NotImplementedError(
                f"{name} with a cas value needs a 'cas' keyword on omcache.Client.{name}, "
                "which this build of the engine does not offer yet"
            )
        c = self._c(timeout)
        ok = c.append(key, _value(value)) if name == "append" else c.prepend(key, _value(value))
        if not ok:
            raise exc.NotStoredError(f"{name}: {key!r} not stored (no such key)")
        return OMCACHE_OK

    def append(self, key: Key, value: Value, cas: int = 0, timeout: Optional[int] = None) -> int:
        """Append value to key's value (NotStoredError if key does not exist); OMCACHE_OK."""
        return self._concat("append", key, value, cas, timeout)

    def prepend(self, key: Key, value: Value, cas: int = 0, timeout: Optional[int] = None) -> int:
        """Prepend value to key's value (NotStoredError if key does not exist); OMCACHE_OK."""
        return self._concat("prepend", key, value, cas, timeout)

    def delete(self, key: Key, timeout: Optional[int] = None) -> int:
        """Delete key (NotFoundError if it does not exist); OMCACHE_OK."""
        if not self._c(timeout).delete(key):
            raise exc.NotFoundError(f"delete: {key!r} not found")
        return OMCACHE_OK

    def touch(self, key: Key, expiration: int = 0, timeout: Optional[int] = None) -> int:
        """Set key's expiration (NotFoundError if it does not exist); OMCACHE_OK."""
        if not self._c(timeout).touch(key, expiration):
            raise exc.NotFoundError(f"touch: {key!r} not found")
        return OMCACHE_OK

    def _delta(
        self, name: str, key: Key, delta: int, initial: Optional[int], expiration: int, timeout: Optional[int]
    ) -> int:
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise TypeError(f"delta must be an int, not {type(delta).__name__}")
        if initial is None and expiration:
            # OMcache's binding: without an initial value the key is never
            # created, so an expiration would be silently meaningless.
            raise exc.Error(f"{name} operation's initial must be set if expiration time is used")
        c = self._c(timeout)
        if delta < 0:
            r = c.decr(key, -delta, initial=initial, expire=expiration)
        else:
            r = c.incr(key, delta, initial=initial, expire=expiration)
        if r is None:
            raise exc.NotFoundError(f"{name}: {key!r} not found")
        return r

    def increment(
        self, key: Key, delta: int = 1, initial: Optional[int] = None, expiration: int = 0, timeout: Optional[int] = None
    ) -> int:
        """Add delta (a negative delta subtracts) to key's decimal value; return the new value.

        A missing key raises NotFoundError, or is created with ``initial``
        (and ``expiration``) when initial is given; DeltaBadValueError if the
        value is not a number.  Wraps at 2**64; subtraction stops at 0.
        """
        return self._delta("increment", key, delta, initial, expiration, timeout)

    def decrement(
        self, key: Key, delta: int = 1, initial: Optional[int] = None, expiration: int = 0, timeout: Optional[int] = None
    ) -> int:
        """increment() by -delta."""
        return self._delta("decrement", key, -delta, initial, expiration, timeout)

    # -- servers ------------------------------------------------------------

    def noop(self, server_index: int = 0, timeout: Optional[int] = None) -> int:
        """Round-trip a NOOP to one server (index into the server list); OMCACHE_OK.

        Raises CommandError for a bad index, ConnectionError/TimeoutError if
        the server does not answer.
        """
        self._server_client(server_index, timeout).noop()
        return OMCACHE_OK

    def stat(self, command: str = "", server_index: int = 0, timeout: Optional[int] = None) -> Dict[bytes, bytes]:
        """Return one server's statistics ("" for the general group, or
        "settings", "items", "slabs", ...) as {name: value}, both bytes."""
        res = self._server_client(server_index, timeout).stats(command)
        (r,) = res.values()
        if isinstance(r, Exception):
            raise r
        return {k.encode("utf-8"): v.encode("utf-8") for k, v in r.items()}

    def flush_all(self, expiration: int = 0, timeout: Optional[int] = None) -> int:
        """Invalidate all items on all servers (after ``expiration`` seconds); OMCACHE_OK.

        Raises the first server's error if one failed.
        """
        self._c(timeout).flush_all(expiration)
        return OMCACHE_OK

    def __repr__(self) -> str:
        return f"omcache.OMcache({self._servers!r})"

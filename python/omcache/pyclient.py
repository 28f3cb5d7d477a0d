"""omcache.SerdeClient: a Pythonic client that stores Python objects.

It wraps ``omcache.Client`` (bytes in, bytes out) with a pluggable serde
(``omcache.serde``) and an optional key prefix::

    with omcache.SerdeClient(["127.0.0.1:11211"], key_prefix="app:") as mc:
        mc.set("user:1", {"name": "Ann"})
        mc.get("user:1")            # {'name': 'Ann'}
        mc.get_multi(["user:1"])    # {'user:1': {'name': 'Ann'}}

Keys may be str (sent as UTF-8) or bytes; the prefix is added on the wire
and never appears in results.  Options the underlying client takes
(``connect_timeout``, ``io_timeout``, ``distribution``, ``hash``, ...) are
passed through as keyword arguments.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar, Union

from . import lease as _lease
from .client import Client, Servers, key_bytes
from .serde import Serde, get_serde

__all__ = ["SerdeClient", "client_supports"]

log = logging.getLogger("omcache")

Key = Union[str, bytes]
K = TypeVar("K", str, bytes)


@functools.lru_cache(maxsize=None)
def client_supports(option: str) -> bool:
    """Return True if ``omcache.Client(...)`` accepts the keyword ``option``.

    The layers above Client (OMcache, omcache.memcache) pass options such as
    ``distribution`` through only when the engine's client offers them.
    """
    params = inspect.signature(Client.__init__).parameters
    p = params.get(option)
    if p is not None and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
        return True
    return any(q.kind is q.VAR_KEYWORD for q in params.values())


class SerdeClient:
    """A memcached client for Python objects, over ``omcache.Client``.

    ``serde``: a serde object or a name ("pylibmc", the default;
    "python-memcached"; "raw").  ``key_prefix``: str or bytes prepended to
    every key on the wire.  Other keyword arguments go to ``omcache.Client``.

    Misses return None (or ``default``); writes that cannot reach a server
    raise ``omcache.ConnectionError``/``TimeoutError``; values over the
    server's item size raise ``omcache.TooLargeValueError``; values the serde
    cannot decode raise ``omcache.serde.SerdeError``.

    Values are input from whoever can write to the cache.  ``allow_pickle=
    False`` makes a serde chosen by name refuse pickles (``omcache.serde.
    PickleRefusedError``: reading a value flagged as a pickle, or storing an
    object that needs one); ``max_value_size`` (an ``omcache.Client``
    option, default 128 MiB) also bounds what a compressed value may
    inflate to (``omcache.serde.DecompressedTooLargeError``).  A serde
    object brings its own settings (``allow_pickle`` with one is a
    ValueError).
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

    # -- keys ---------------------------------------------------------------

    def _wire(self, key: Key) -> bytes:
        return self.key_prefix + key_bytes(key)

    def _decode(self, key: Key, data: bytes, flags: int) -> Any:
        return self.serde.deserialize(key, data, flags)

    # -- reads --------------------------------------------------------------

    def get(self, key: Key, default: Any = None) -> Any:
        """Return the value stored under key, or ``default`` on a miss."""
        it = self.client.get_item(self._wire(key))
        if it is None:
            return default
        return self._decode(key, it.value, it.flags)

    def gets(self, key: Key) -> Tuple[Any, Optional[int]]:
        """Return (value, cas) for key, or (None, None) on a miss."""
        it = self.client.get_item(self._wire(key))
        if it is None:
            return None, None
        return self._decode(key, it.value, it.flags), it.cas

    def gat(self, key: Key, expire: int, default: Any = None) -> Any:
        """Get key and set its expiration in one round trip; ``default`` on a miss."""
        it = self.client.gat(self._wire(key), expire)
        if it is None:
            return default
        return self._decode(key, it.value, it.flags)

    def touch(self, key: Key, expire: int) -> bool:
        """Set a new expiration on key; True if it exists, False if not."""
        return self.client.touch(self._wire(key), expire)

    def get_multi(self, keys: Iterable[K]) -> Dict[K, Any]:
        """Return {key: value} for the keys that hit, in one pipelined call.

        Keys of a server that fails are left out (and logged at WARNING), as
        in ``omcache.Client.get_multi``.
        """
        klist = list(keys)
        wire = {self._wire(k): k for k in klist}
        items = self.client.get_multi_items(list(wire))
        return {wire[w]: self._decode(wire[w], it.value, it.flags) for w, it in items.items()}

    # -- writes -------------------------------------------------------------

    def _ser(self, key: Key, value: Any) -> Tuple[bytes, int]:
        return self.serde.serialize(key, value)

    def set(self, key: Key, value: Any, expire: int = 0) -> bool:
        """Store value under key unconditionally; True (failures raise)."""
        data, flags = self._ser(key, value)
        return self.client.set(self._wire(key), data, expire, flags=flags)

    def add(self, key: Key, value: Any, expire: int = 0) -> bool:
        """Store value only if key does not exist; False if it does."""
        data, flags = self._ser(key, value)
        return self.client.add(self._wire(key), data, expire, flags=flags)

    def replace(self, key: Key, value: Any, expire: int = 0) -> bool:
        """Store value only if key exists; False if it does not."""
        data, flags = self._ser(key, value)
        return self.client.replace(self._wire(key), data, expire, flags=flags)

    @staticmethod
    def _raw(value: Union[str, bytes]) -> bytes:
        # Appending a pickle or a compressed payload to another would corrupt
        # both, so only text and bytes are accepted; the stored flags stay.
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise TypeError(f"append/prepend take str or bytes, not {type(value).__name__}")

    def append(self, key: Key, value: Union[str, bytes]) -> bool:
        """Append str (as UTF-8) or bytes to key's value; False if key does not exist."""
        return self.client.append(self._wire(key), self._raw(value))

    def prepend(self, key: Key, value: Union[str, bytes]) -> bool:
        """Prepend str (as UTF-8) or bytes to key's value; False if key does not exist."""
        return self.client.prepend(self._wire(key), self._raw(value))

    def cas(self, key: Key, value: Any, cas: int, expire: int = 0) -> Optional[bool]:
        """Store value if key's CAS unique is still ``cas`` (from ``gets``).

        True if stored, False if the item changed since, None if it is gone.
        """
        data, flags = self._ser(key, value)
        return self.client.cas(self._wire(key), data, cas, expire, flags=flags)

    def incr(self, key: Key, delta: int = 1, *, initial: Optional[int] = None, expire: int = 0) -> Optional[int]:
        """Add delta to key's decimal value and return the result (wraps at 2**64).

        A miss returns None, or creates the key with ``initial`` when given.
        """
        return self.client.incr(self._wire(key), delta, initial=initial, expire=expire)

    def decr(self, key: Key, delta: int = 1, *, initial: Optional[int] = None, expire: int = 0) -> Optional[int]:
        """Subtract delta from key's decimal value (memcached stops at 0); None on a miss."""
        return self.client.decr(self._wire(key), delta, initial=initial, expire=expire)

    def delete(self, key: Key) -> bool:
        """Delete key; True if it existed, False if not."""
        return self.client.delete(self._wire(key))

    def set_multi(self, mapping: Mapping[K, Any], expire: int = 0) -> List[K]:
        """Store many values in one pipelined call; return the keys that failed."""
        wire: Dict[bytes, K] = {}
        items: List[Tuple[bytes, bytes, int]] = []
        for k, v in mapping.items():
            w = self._wire(k)
            data, flags = self._ser(k, v)
            wire[w] = k
            items.append((w, data, flags))
        return [wire[w] for w in self.client.set_multi_items(items, expire)]

    def delete_multi(self, keys: Iterable[K]) -> List[K]:
        """Delete many keys in one pipelined call; return the keys NOT deleted
        (misses included)."""
        wire = {self._wire(k): k for k in keys}
        return [wire[w] for w in self.client.delete_multi(list(wire))]

    # -- stampede protection (docs/stampede.md) -----------------------------

    def get_or_set(
        self,
        key: Key,
        loader: Callable[[], Any],
        expire: int,
        *,
        lock_ttl: int = 30,
        recache_before: int = 0,
        wait_timeout: Optional[float] = None,
    ) -> Any:
        """Return the object under key; on a miss, exactly one caller loads it.

        ``omcache.Client.get_or_set`` for objects: ``loader()`` returns any
        object the serde can store, and the stored object is returned (the
        loader's own result to the caller that ran it).  The same contract:
        one loader run across processes, waiters polling up to
        ``wait_timeout``, a raising loader's lease released at once,
        ``recache_before`` and serve-stale after ``invalidate`` on the meta
        protocol, an add-based lock on text and binary.
        """
        wire = self._wire(key)
        wait = _lease.check_args(lock_ttl, recache_before, wait_timeout, expire)
        if not callable(loader):
            raise TypeError(f"loader must be callable, not {type(loader).__name__}")
        loaded: List[Any] = []

        def load() -> Tuple[bytes, int]:
            obj = loader()
            loaded.append(obj)
            return self._ser(key, obj)

        data, flags = _lease.get_or_set(self.client, wire, load, expire, lock_ttl, recache_before, wait)
        if loaded:
            return loaded[0]
        return self._decode(key, data, flags)

    def invalidate(self, key: Key, stale_ttl: int = 30) -> bool:
        """Mark key's item stale for at most ``stale_ttl`` seconds; see ``omcache.Client.invalidate``."""
        return self.client.invalidate(self._wire(key), stale_ttl)

    # -- servers ------------------------------------------------------------

    def flush_all(self, delay: int = 0) -> bool:
        """Invalidate every item on every server (after ``delay`` seconds); True,
        or the first server's error is raised."""
        return self.client.flush_all(delay)

    def stats(self, group: str = "") -> Dict[str, Union[Dict[str, str], Exception]]:
        """Return {server address: {stat: value}} (a failed server maps to its exception)."""
        return self.client.stats(group)

    def close(self) -> None:
        """Close the connections; the client cannot be used afterwards."""
        self.client.close()

    def __enter__(self) -> "SerdeClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"omcache.SerdeClient({self.client.servers!r}, serde={self.serde!r}, key_prefix={self.key_prefix!r})"

"""A Django cache backend on omcache, whose ``get_or_set`` is stampede-safe.

::

    CACHES = {
        "default": {
            "BACKEND": "omcache.contrib.django.OMcacheCache",
            "LOCATION": "10.0.0.1:11211;10.0.0.2:11211",
            "OPTIONS": {"lock_ttl": 30, "recache_before": 0},
        }
    }

It implements Django's whole cache API (``BaseCache``) over
``omcache.SerdeClient`` with the pylibmc serde, so it shares a cache with
Django's ``PyLibMCCache`` (real pylibmc or omcache_pylibmc).  ``get_or_set``
uses memcached's leases (docs/stampede.md): on a miss exactly one caller
across all processes runs ``default()``, the others wait for its value.

``OPTIONS``: ``lock_ttl``, ``recache_before`` and ``wait_timeout`` are
get_or_set's defaults; everything else goes to ``omcache.SerdeClient``
(``protocol``, ``serde``, ``connect_timeout``, ``distribution``...).
Django's async cache API (``aget``, ``aset``, ``aget_many``, ``aset_many``,
``adelete``, ``aincr``, ``aget_or_set``, ...) runs natively on
``omcache.aio`` (docs/asyncio.md), without a thread per call.
Timeouts follow Django: ``None`` never expires, ``0`` expires at once (the
value is not stored), more than 30 days becomes an absolute time.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache, InvalidCacheKey, memcache_key_warnings

from .. import aio
from .. import exceptions as exc
from ..pyclient import SerdeClient

__all__ = ["OMcacheCache"]

log = logging.getLogger("omcache")

#: memcached reads expiration times over 30 days as unix timestamps.
_MAX_RELATIVE = 60 * 60 * 24 * 30

#: OPTIONS that are get_or_set's defaults rather than client options.
_LEASE_OPTIONS = ("lock_ttl", "recache_before", "wait_timeout")

#: get_backend_timeout's answer for "expire at once": nothing is stored.
_EXPIRED = -1


class OMcacheCache(BaseCache):  # type: ignore[misc]  # Django is untyped
    """Django cache backend on omcache; ``get_or_set`` runs the loader once per miss across processes."""

    def __init__(self, server: Union[str, List[str]], params: Dict[str, Any]) -> None:
        super().__init__(params)
        servers = re.split("[;,]", server) if isinstance(server, str) else list(server)
        self._servers = [s.strip().removeprefix("unix:") for s in servers if s.strip()]
        options: Dict[str, Any] = dict(params.get("OPTIONS") or {})
        self._lease: Dict[str, Any] = {k: options.pop(k) for k in _LEASE_OPTIONS if k in options}
        options.setdefault("serde", "pylibmc")
        self._options = options
        self._client: Optional[SerdeClient] = None
        self._aclient: Optional[aio.SerdeClient] = None

    @property
    def _cache(self) -> SerdeClient:
        """The omcache client, created on first use (it is thread-safe and fork-safe)."""
        if self._client is None:
            self._client = SerdeClient(self._servers, **self._options)
        return self._client

    @property
    def _acache(self) -> aio.SerdeClient:
        """The omcache.aio client of the async methods, created on first use."""
        if self._aclient is None:
            self._aclient = aio.SerdeClient(self._servers, **self._options)
        return self._aclient

    # -- keys and timeouts ------------------------------------------------

    def validate_key(self, key: str) -> None:
        """Refuse keys memcached cannot store (as Django's memcached backends do)."""
        for warning in memcache_key_warnings(key):
            raise InvalidCacheKey(warning)

    def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> int:
        """Django's timeout as memcached's expiration: 0 never, -1 at once, absolute past 30 days."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return 0
        t = int(timeout)
        if t <= 0:
            return _EXPIRED
        if t > _MAX_RELATIVE:
            t += int(time.time())
        return t

    # -- reads ------------------------------------------------------------

    def get(self, key: str, default: Any = None, version: Optional[int] = None) -> Any:
        """Return the value under key, or ``default``."""
        return self._cache.get(self.make_and_validate_key(key, version=version), default)

    def get_many(self, keys: Iterable[str], version: Optional[int] = None) -> Dict[str, Any]:
        """Return {key: value} for the keys that hit, in one pipelined request per server."""
        key_map = {self.make_and_validate_key(k, version=version): k for k in keys}
        found = self._cache.get_multi(list(key_map))
        return {key_map[k]: v for k, v in found.items()}

    def has_key(self, key: str, version: Optional[int] = None) -> bool:
        """Whether key holds a value."""
        return self._cache.client.get(self.make_and_validate_key(key, version=version)) is not None

    def get_or_set(
        self,
        key: str,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Optional[int] = None,
        *,
        lock_ttl: Optional[int] = None,
        recache_before: Optional[int] = None,
        wait_timeout: Optional[float] = None,
    ) -> Any:
        """Return the value under key; on a miss store ``default`` (called if callable), loaded once.

        Unlike BaseCache's get/add/get, of all the callers that miss at once
        in every process exactly one calls ``default()``; the others wait
        for its value (omcache.SerdeClient.get_or_set).  ``lock_ttl``,
        ``recache_before`` and ``wait_timeout`` default to the OPTIONS of
        the same names, else get_or_set's own defaults.
        """
        wire = self.make_and_validate_key(key, version=version)
        loader = default if callable(default) else (lambda: default)
        expire = self.get_backend_timeout(timeout)
        if expire == _EXPIRED:
            # Stored and expired at once: nothing to share.
            val = self._cache.get(wire, self._missing_key)
            return loader() if val is self._missing_key else val
        kw: Dict[str, Any] = dict(self._lease)
        for name, v in (("lock_ttl", lock_ttl), ("recache_before", recache_before), ("wait_timeout", wait_timeout)):
            if v is not None:
                kw[name] = v
        return self._cache.get_or_set(wire, loader, expire, **kw)

    async def aget_or_set(
        self,
        key: str,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Optional[int] = None,
        *,
        lock_ttl: Optional[int] = None,
        recache_before: Optional[int] = None,
        wait_timeout: Optional[float] = None,
    ) -> Any:
        """get_or_set on omcache.aio: waiting callers sleep without a thread.

        ``default`` may be a value, a function or a coroutine function.
        """
        wire = self.make_and_validate_key(key, version=version)
        loader = default if callable(default) else (lambda: default)
        expire = self.get_backend_timeout(timeout)
        if expire == _EXPIRED:
            val = await self._acache.get(wire, self._missing_key)
            if val is not self._missing_key:
                return val
            v = loader()
            return await v if inspect.isawaitable(v) else v
        kw: Dict[str, Any] = dict(self._lease)
        for name, v in (("lock_ttl", lock_ttl), ("recache_before", recache_before), ("wait_timeout", wait_timeout)):
            if v is not None:
                kw[name] = v
        return await self._acache.get_or_set(wire, loader, expire, **kw)

    # -- native async (omcache.aio: no thread per call) --------------------

    async def aget(self, key: str, default: Any = None, version: Optional[int] = None) -> Any:
        """get, awaited on omcache.aio."""
        return await self._acache.get(self.make_and_validate_key(key, version=version), default)

    async def aget_many(self, keys: Iterable[str], version: Optional[int] = None) -> Dict[str, Any]:
        """get_many, awaited on omcache.aio."""
        key_map = {self.make_and_validate_key(k, version=version): k for k in keys}
        found = await self._acache.get_multi(list(key_map))
        return {key_map[k]: v for k, v in found.items()}

    async def ahas_key(self, key: str, version: Optional[int] = None) -> bool:
        """has_key, awaited on omcache.aio."""
        return await self._acache.client.get(self.make_and_validate_key(key, version=version)) is not None

    async def aadd(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Optional[int] = None) -> bool:
        """add, awaited on omcache.aio."""
        wire = self.make_and_validate_key(key, version=version)
        expire = self.get_backend_timeout(timeout)
        if expire == _EXPIRED:
            return await self._acache.client.get(wire) is None
        return await self._acache.add(wire, value, expire)

    async def aset(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Optional[int] = None) -> None:
        """set, awaited on omcache.aio."""
        wire = self.make_and_validate_key(key, version=version)
        expire = self.get_backend_timeout(timeout)
        if expire == _EXPIRED:
            await self._acache.delete(wire)
            return
        try:
            await self._acache.set(wire, value, expire)
        except exc.TooLargeValueError:
            log.warning("cache value for %r over the server's item size: not stored", key)
            await self._acache.delete(wire)

    async def aset_many(self, data: Mapping[str, Any], timeout: Any = DEFAULT_TIMEOUT, version: Optional[int] = None) -> List[str]:
        """set_many, awaited on omcache.aio."""
        key_map = {self.make_and_validate_key(k, version=version): k for k in data}
        expire = self.get_backend_timeout(timeout)
        if expire == _EXPIRED:
            await self._acache.delete_multi(list(key_map))
            return []
        wire = {w: data[k] for w, k in key_map.items()}
        return [key_map[w] for w in await self._acache.set_multi(wire, expire)]

    async def atouch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: Optional[int] = None) -> bool:
        """touch, awaited on omcache.aio."""
        wire = self.make_and_validate_key(key, version=version)
        expire = self.get_backend_timeout(timeout)
        if expire == _EXPIRED:
            return await self._acache.delete(wire)
        return await self._acache.touch(wire, expire)

    async def adelete(self, key: str, version: Optional[int] = None) -> bool:
        """delete, awaited on omcache.aio."""
        return await self._acache.delete(self.make_and_validate_key(key, version=version))

    async def adelete_many(self, keys: Iterable[str], version: Optional[int] = None) -> None:
        """delete_many, awaited on omcache.aio."""
        await self._acache.delete_multi([self.make_and_validate_key(k, version=version) for k in keys])

    async def aincr(self, key: str, delta: int = 1, version: Optional[int] = None) -> int:
        """incr, awaited on omcache.aio (Django's adecr calls it with -delta)."""
        wire = self.make_and_validate_key(key, version=version)
        val = await (self._acache.decr(wire, -delta) if delta < 0 else self._acache.incr(wire, delta))
        if val is None:
            raise ValueError("Key '%s' not found" % key)
        return val

    async def ainvalidate(self, key: str, stale_ttl: int = 30, version: Optional[int] = None) -> bool:
        """invalidate, awaited on omcache.aio."""
        return await self._acache.invalidate(self.make_and_validate_key(key, version=version), stale_ttl)

    async def aclear(self) -> None:
        """clear, awaited on omcache.aio."""
        await self._acache.flush_all()

    # -- writes -----------------------------------------------------------

    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Optional[int] = None) -> bool:
        """Store value if key holds none; True if stored."""
        wire = self.make_and_validate_key(key, version=version)
        expire = self.get_backend_timeout(timeout)
        if expire == _EXPIRED:
            return self._cache.client.get(wire) is None
        return self._cache.add(wire, value, expire)

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Optional[int] = None) -> None:
        """Store value under key. A value over the server's item size removes the key instead."""
        wire = self.make_and_validate_key(key, version=version)
        expire = self.get_backend_timeout(timeout)
        if expire == _EXPIRED:
            self._cache.delete(wire)
            return
        try:
            self._cache.set(wire, value, expire)
        except exc.TooLargeValueError:
            # As Django's memcached backends: the key must not keep its old
            # value (memcached drops it too).
            log.warning("cache value for %r over the server's item size: not stored", key)
            self._cache.delete(wire)

    def set_many(self, data: Mapping[str, Any], timeout: Any = DEFAULT_TIMEOUT, version: Optional[int] = None) -> List[str]:
        """Store many values in one pipelined request per server; return the keys not stored."""
        key_map = {self.make_and_validate_key(k, version=version): k for k in data}
        expire = self.get_backend_timeout(timeout)
        if expire == _EXPIRED:
            self._cache.delete_multi(list(key_map))
            return []
        wire = {w: data[k] for w, k in key_map.items()}
        return [key_map[w] for w in self._cache.set_multi(wire, expire)]

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: Optional[int] = None) -> bool:
        """Set a new timeout on key; True if it exists (timeout 0 deletes it)."""
        wire = self.make_and_validate_key(key, version=version)
        expire = self.get_backend_timeout(timeout)
        if expire == _EXPIRED:
            return self._cache.delete(wire)
        return self._cache.touch(wire, expire)

    def delete(self, key: str, version: Optional[int] = None) -> bool:
        """Delete key; True if it existed."""
        return self._cache.delete(self.make_and_validate_key(key, version=version))

    def delete_many(self, keys: Iterable[str], version: Optional[int] = None) -> None:
        """Delete many keys in one pipelined request per server."""
        self._cache.delete_multi([self.make_and_validate_key(k, version=version) for k in keys])

    def incr(self, key: str, delta: int = 1, version: Optional[int] = None) -> int:
        """Add delta (negative: subtract) to key's number; ValueError if key does not exist."""
        wire = self.make_and_validate_key(key, version=version)
        val = self._cache.decr(wire, -delta) if delta < 0 else self._cache.incr(wire, delta)
        if val is None:
            raise ValueError("Key '%s' not found" % key)
        return val

    def invalidate(self, key: str, stale_ttl: int = 30, version: Optional[int] = None) -> bool:
        """Mark key stale for at most ``stale_ttl`` seconds (omcache.Client.invalidate); True if it existed.

        get_or_set then serves the stale value to every caller but one, who
        refreshes it.
        """
        return self._cache.invalidate(self.make_and_validate_key(key, version=version), stale_ttl)

    def clear(self) -> None:
        """Flush every server (the whole memcached, as Django's memcached backends do)."""
        self._cache.flush_all()

    def close(self, **kwargs: Any) -> None:
        """Nothing to do between requests: omcache pools its connections."""


"""Stampede protection: get_or_set with memcached leases (docs/stampede.md).

``Client.get_or_set`` and ``SerdeClient.get_or_set`` share this module.  On
the meta protocol it uses memcached's own leases (``mg`` with ``N``/``R``,
``md`` with ``I``): of all the callers that find a key missing, stale or
about to expire, memcached hands exactly one the right to load it.  On the
text and binary protocols, which have no leases, an ``add``-based lock key
keeps the one-loader contract for missing keys (no serve-stale, no early
recache).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional, Tuple

from . import exceptions as exc

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("omcache")

#: GetLease states (go/bind/lease.go, client.LeaseState).
LEASE_HIT, LEASE_WON, LEASE_BUSY = 0, 1, 2

#: Polling backoff of the callers that wait for another's load: the first
#: sleep, the factor, the longest sleep (seconds).
POLL_FIRST, POLL_FACTOR, POLL_MAX = 0.005, 1.5, 0.05

#: What wait_timeout=None adds to lock_ttl: memcached counts time in whole
#: seconds, so a dead winner's lease may outlive its lock_ttl by up to a
#: second; waiters outlast it and win.
WAIT_GRACE = 2.0

#: Prefix of the add-lock keys of the text and binary protocols.
LOCK_PREFIX = b"omcache:lock:"


class Lease(NamedTuple):
    """What Client._get_lease returns (client.Lease in Go)."""

    state: int
    #: the stored value, None when the key holds none (a miss)
    value: Optional[bytes]
    flags: int
    stale: bool
    cas: int
    ttl: int


#: A loader as get_or_set calls it: () -> (value bytes, flags).
Load = Callable[[], Tuple[bytes, int]]


def check_args(lock_ttl: int, recache_before: int, wait_timeout: Optional[float], expire: int) -> float:
    """Check get_or_set's numeric arguments; return the wait timeout in seconds."""
    for name, v in (("lock_ttl", lock_ttl), ("recache_before", recache_before), ("expire", expire)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an int, not {type(v).__name__}")
        if v < 0 or v > 0xFFFFFFFF:
            raise ValueError(f"{name} must be between 0 and 2**32-1, got {v}")
    if lock_ttl < 1:
        raise ValueError("lock_ttl must be at least 1 second")
    if wait_timeout is None:
        return lock_ttl + WAIT_GRACE
    if isinstance(wait_timeout, bool) or not isinstance(wait_timeout, (int, float)):
        raise TypeError(f"wait_timeout must be a number of seconds or None, not {type(wait_timeout).__name__}")
    if not wait_timeout >= 0:
        raise ValueError(f"wait_timeout must be >= 0, got {wait_timeout}")
    return float(wait_timeout)


class _Backoff:
    """Sleeps of a waiting caller: growing, jittered, never past the deadline."""

    def __init__(self, key: bytes, timeout: float) -> None:
        self.key = key
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.delay = POLL_FIRST

    def wait(self) -> None:
        """Sleep before the next poll, or raise LeaseTimeoutError when the wait is over."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise exc.LeaseTimeoutError(
                f"get_or_set: no value for {self.key[:64]!r} after waiting {self.timeout:g} s for another caller's load"
            )
        import random  # here, not at import: `import omcache` stays cheap

        time.sleep(min(self.delay * random.uniform(0.75, 1.25), left))
        self.delay = min(self.delay * POLL_FACTOR, POLL_MAX)


def get_or_set(
    client: "Client",
    key: bytes,
    load: Load,
    expire: int,
    lock_ttl: int,
    recache_before: int,
    wait: float,
) -> Tuple[bytes, int]:
    """Return (value, flags) under key, loading and storing it under a lease when needed."""
    if client.protocol == "meta":
        return _meta(client, key, load, expire, lock_ttl, recache_before, wait)
    return _addlock(client, key, load, expire, lock_ttl, wait)


def _meta(
    client: "Client", key: bytes, load: Load, expire: int, lock_ttl: int, recache_before: int, wait: float
) -> Tuple[bytes, int]:
    backoff: Optional[_Backoff] = None
    while True:
        lease = client._get_lease(key, lock_ttl, recache_before)
        if lease.state == LEASE_HIT and lease.value is not None:
            return lease.value, lease.flags
        if lease.state == LEASE_WON:
            try:
                value, flags = load()
                client.set(key, value, expire, flags=flags)
            except BaseException:
                # Give the lease back at once so that another caller wins
                # now, not after lock_ttl; the caller sees its error.
                try:
                    client._release_lease(key, lease)
                except exc.Error as e:
                    log.warning("get_or_set: could not release the lease on %r: %s", key[:64], e)
                raise
            return value, flags
        if lease.value is not None:
            # Busy with a value: stale, or being refreshed early by another
            # caller. Serve it now.
            return lease.value, lease.flags
        # Busy without a value: another caller loads it.
        if backoff is None:
            backoff = _Backoff(key, wait)
        backoff.wait()


def lock_key(key: bytes) -> bytes:
    """The add-lock key of key (text and binary protocols): valid in every protocol."""
    import hashlib  # here, not at import: `import omcache` stays cheap

    return LOCK_PREFIX + hashlib.sha1(key).hexdigest().encode()


def _addlock(client: "Client", key: bytes, load: Load, expire: int, lock_ttl: int, wait: float) -> Tuple[bytes, int]:
    lk = lock_key(key)
    import random

    token = f"{os.getpid()}:{random.getrandbits(64):x}".encode()
    backoff: Optional[_Backoff] = None
    while True:
        it = client.get_item(key)
        if it is not None:
            return it.value, it.flags
        if client.add(lk, token, lock_ttl):
            try:
                # Another caller may have stored the value between our get
                # and our add (and released its lock): read again.
                it = client.get_item(key)
                if it is not None:
                    return it.value, it.flags
                value, flags = load()
                client.set(key, value, expire, flags=flags)
                return value, flags
            finally:
                _unlock(client, lk, token)
        if backoff is None:
            backoff = _Backoff(key, wait)
        backoff.wait()


def _unlock(client: "Client", lk: bytes, token: bytes) -> None:
    """Delete our lock key, unless it expired and is another caller's now."""
    try:
        if client.get(lk) == token:
            client.delete(lk)
    except exc.Error as e:
        log.warning("get_or_set: could not release the lock %r: %s", lk, e)

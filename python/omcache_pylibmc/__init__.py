"""pylibmc 1.6 on omcache's Go engine: ``import omcache_pylibmc as pylibmc``.

The whole pylibmc 1.6.3 API (``Client``, behaviors, the module constants, the
exceptions, ``ClientPool`` and ``ThreadMappedPool``), without libmemcached::

    >>> import omcache_pylibmc as pylibmc
    >>> mc = pylibmc.Client(["127.0.0.1"], binary=True, behaviors={"ketama": True})
    >>> mc.set("some_key", "Some value")            # doctest: +SKIP
    True

Code (or a framework) that does ``import pylibmc`` itself can be given this
package by calling ``install_as_pylibmc()`` first.  The differences from
pylibmc are listed in docs/pylibmc.md.
"""

from __future__ import annotations

import sys
from typing import List

from omcache_pylibmc import _pylibmc
from omcache_pylibmc._pylibmc import (
    AllocationError,
    BadKeyProvided,
    CacheMiss,
    ClientError,
    ConnectionBindError,
    ConnectionError,
    DataDoesNotExist,
    DataExists,
    DecompressedTooLarge,
    Error,
    Failure,
    FetchNotFinished,
    HostLookupError,
    InvalidHostProtocolError,
    MemcachedError,
    NoServers,
    NotFound,
    NotSupportedError,
    PickleRefused,
    ProtocolError,
    ReadError,
    ServerDead,
    ServerDown,
    ServerError,
    SocketCreateError,
    SomeErrors,
    TooBig,
    UnixSocketError,
    UnknownReadFailure,
    UnknownStatKey,
    WriteError,
    __version__,
    all_behaviors,
    all_callbacks,
    callback_namespace,
    distribution_consistent,
    distribution_consistent_ketama,
    distribution_consistent_ketama_spy,
    distribution_consistent_max,
    distribution_consistent_weighted,
    distribution_modula,
    distribution_random,
    distribution_virtual_bucket,
    exceptions,
    hash_crc,
    hash_default,
    hash_fnv1_32,
    hash_fnv1_64,
    hash_fnv1a_32,
    hash_fnv1a_64,
    hash_hsieh,
    hash_jenkins,
    hash_md5,
    hash_murmur,
    libmemcached_version,
    libmemcached_version_hex,
    omcache_version,
    server_type_tcp,
    server_type_udp,
    server_type_unix,
    support_compression,
    support_sasl,
)
from omcache_pylibmc import consts
from omcache_pylibmc.consts import distributions, hashers
from omcache_pylibmc import client  # the submodule, as pylibmc.client is
from omcache_pylibmc.client import Client
from omcache_pylibmc import pools
from omcache_pylibmc.pools import ClientPool, ThreadMappedPool
from omcache_pylibmc import autoconf, test

def build_info() -> str:
    """Describe this build, in pylibmc's words plus the engine's."""
    return (
        f"pylibmc {__version__} for libmemcached {libmemcached_version} "
        f"(compression={support_compression}, sasl={support_sasl}); "
        f"omcache {omcache_version} engine, no libmemcached"
    )


_SUBMODULES = ("_pylibmc", "client", "consts", "pools", "autoconf", "test")


def install_as_pylibmc() -> None:
    """Make ``import pylibmc`` (and ``import _pylibmc``) give this package.

    Call it before anything imports pylibmc, e.g. at the top of a Django
    settings module.  Submodules (``pylibmc.pools``, ``pylibmc.test``, ...)
    are registered too, so no second copy of them is ever loaded.  Raises
    ImportError if the real pylibmc is already imported.
    """
    pkg = sys.modules[__name__]
    current = sys.modules.get("pylibmc")
    if current is not None and current is not pkg:
        raise ImportError(
            "pylibmc is already imported (from "
            f"{getattr(current, '__file__', '?')}); call install_as_pylibmc() before anything imports it"
        )
    sys.modules["pylibmc"] = pkg
    sys.modules["_pylibmc"] = _pylibmc
    for name in _SUBMODULES:
        sys.modules[f"pylibmc.{name}"] = sys.modules[f"{__name__}.{name}"]


__all__: List[str] = [
    "hashers",
    "distributions",
    "Client",
    "ClientPool",
    "ThreadMappedPool",
    "build_info",
    "install_as_pylibmc",
    *_pylibmc.__all__,
]

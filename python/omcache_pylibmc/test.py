"""Helpers for tests (``pylibmc.test``): find the test memcached and make a
client for it.  MEMCACHED_TYPE, MEMCACHED_HOST and MEMCACHED_PORT in the
environment override the defaults."""

from __future__ import annotations

import os
import socket
from typing import Any, Mapping, Optional, Tuple

from omcache_pylibmc import _pylibmc
from omcache_pylibmc.client import Client

_TIMEOUT = 5.0


class NotAliveError(Exception):
    """The test memcached does not answer."""

    def __init__(self, svr: Tuple[int, str, int]) -> None:
        super().__init__(svr)
        (self.server_type, self.address, self.port) = svr

    def __str__(self) -> str:
        return (
            f"test memcached {self.address}:{self.port} not alive\n\n"
            "consider setting MEMCACHED_HOST and/or MEMCACHED_PORT\n"
            "to something more appropriate."
        )


def get_version(addr: Tuple[int, str, int]) -> bytes:
    """Return the version string of the memcached at (type, host, port) (TCP only)."""
    type_, host, port = addr
    if type_ != _pylibmc.server_type_tcp:
        raise NotImplementedError("test server can only be on tcp for now")
    with socket.create_connection((host, port), timeout=_TIMEOUT) as s:
        s.sendall(b"version\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"VERSION ") or not data.endswith(b"\r\n"):
        raise ValueError(f"unexpected version return: {data!r}")
    return data[len(b"VERSION "):-2]


def is_alive(addr: Tuple[int, str, int]) -> Tuple[bool, Optional[bytes]]:
    """Return (True, version) if the memcached at addr answers, else (False, None)."""
    try:
        version: Optional[bytes] = get_version(addr)
    except (ValueError, OSError):
        version = None
    return bool(version), version


def make_test_client(
    cls: Any = Client,
    env: Optional[Mapping[str, str]] = None,
    server_type: str = "tcp",
    host: str = "127.0.0.1",
    port: Any = 11211,
    **kwds: Any,
) -> Any:
    """Return cls([(type, host, port)], **kwds) for the test memcached (env
    overrides the location); NotAliveError if it does not answer.

    >>> make_test_client() is not None  # doctest: +SKIP
    True
    """
    server_types = {"tcp": _pylibmc.server_type_tcp, "udp": _pylibmc.server_type_udp, "unix": _pylibmc.server_type_unix}
    if env is None:
        env = os.environ
    styp = env.get("MEMCACHED_TYPE", server_type)
    host = env.get("MEMCACHED_HOST", host)
    port = env.get("MEMCACHED_PORT", port)
    test_server = (server_types[styp], str(host), int(port))
    alive, _ = is_alive(test_server)
    if not alive:
        raise NotAliveError(test_server)
    return cls([test_server], **kwds)

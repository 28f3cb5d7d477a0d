"""Cluster autoconfiguration (``pylibmc.autoconf``): build a client from an
AWS ElastiCache configuration endpoint."""

from __future__ import annotations

import socket
from typing import List, Tuple, Union

from omcache_pylibmc.client import Client

_TIMEOUT = 5.0


class UnsupportedAutoconfMethod(Exception):
    """The server does not know the ``config get`` command."""


class NoAutoconfFound(Exception):
    """Neither ``config get`` nor the configuration key gave a configuration."""


def _split_address(address: str) -> Tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _elasticache_config_get(address: str, key: Union[str, bytes]) -> bytes:
    """Send ``config get KEY`` and return the configuration body.

    Raises UnsupportedAutoconfMethod when the server answers ERROR (a plain
    memcached), RuntimeError for a malformed or truncated answer.
    """
    if isinstance(key, str):
        key = key.encode("ascii")
    with socket.create_connection(_split_address(address), timeout=_TIMEOUT) as sock:
        sock.sendall(b"config get " + key + b"\r\n")
        buf = b""

        def need(n: int) -> None:
            nonlocal buf
            while len(buf) < n:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("failed reading cluster config")
                buf += chunk

        while b"\r\n" not in buf:
            need(len(buf) + 1)
        header, buf = buf.split(b"\r\n", 1)
        words = header.split()
        if not words or words[0].upper() in (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR"):
            raise UnsupportedAutoconfMethod(header.decode("ascii", "replace"))
        if len(words) != 4 or words[0] != b"CONFIG":
            raise RuntimeError(f"unexpected answer to config get: {header!r}")
        size = int(words[3])
        need(size + 2)
        return buf[:size]


def _parse_elasticache_config(cfg: bytes) -> List[str]:
    """Return "host:port" specs from a configuration: a version line, then
    "hostname|ip|port" entries separated by spaces."""
    lines = cfg.strip().split(b"\n", 1)
    if len(lines) != 2:
        raise ValueError(f"malformed cluster configuration: {cfg!r}")
    int(lines[0])  # the configuration version; 12 as of writing
    out = []
    for node in lines[1].split():
        cname, ip, port = node.decode("ascii").split("|")
        out.append(f"{ip or cname}:{port}")
    return out


def elasticache(
    address: str = "127.0.0.1:11211",
    config_key: Union[str, bytes] = b"cluster",
    mc_key: str = "AmazonElastiCache:cluster",
) -> Client:
    """Return a Client for the cluster described by the configuration endpoint
    at ``address``: from ``config get`` (ElastiCache), else from the value of
    ``mc_key`` (how the configuration is published on a plain memcached).
    Raises NoAutoconfFound when there is neither."""
    try:
        config = _elasticache_config_get(address, config_key)
    except UnsupportedAutoconfMethod:
        config = Client([address]).get(mc_key)
        if config is None:
            raise NoAutoconfFound(f"no cluster configuration at {address}") from None
    return Client(_parse_elasticache_config(config))

"""pylibmc's Python-level client (``pylibmc.client``): ``Client`` with server
spec strings, named behaviors and the mapping interface."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union, cast

from omcache_pylibmc import _pylibmc
from omcache_pylibmc._pylibmc import DEFAULT_MAX_VALUE_SIZE
from omcache_pylibmc.consts import (
    BehaviorDict,
    all_behaviors,
    all_callbacks,
    distributions,
    distributions_rvs,
    hashers,
    hashers_rvs,
)

#: Transport name -> server type code.
server_type_map: Dict[str, int] = {
    "tcp": _pylibmc.server_type_tcp,
    "udp": _pylibmc.server_type_udp,
    "unix": _pylibmc.server_type_unix,
}

_KNOWN_BEHAVIORS = set(all_behaviors) | set(all_callbacks)
_MISS = object()


def translate_server_spec(server: str, port: int = 11211, weight: int = 1) -> Tuple[int, str, int, int]:
    """Turn a server spec into (type, host, port, weight).

    Specs: "host", "host:port", "host:port:weight", "[v6addr]",
    "[v6addr]:port[:weight]", "udp:" + any of those, "/unix/socket/path",
    "unix:/unix/socket/path" (an omcache addition).

    >>> translate_server_spec("127.0.0.1:1234:2")
    (1, '127.0.0.1', 1234, 2)
    >>> translate_server_spec("/var/run/memcached.sock")
    (4, '/var/run/memcached.sock', 0, 1)
    """
    if server.startswith("unix:/"):
        # libmemcached's own URL-ish spelling; pylibmc 1.6 parses "/path" only
        # and fails on this one with int('/path').  "unix:11211" stays the
        # host "unix", as in pylibmc.
        path = "/" + server[5:].lstrip("/")
        if path == "/":
            raise ValueError(f"unix socket spec {server!r} needs a path, e.g. 'unix:/run/memcached.sock'")
        return (_pylibmc.server_type_unix, path, 0, int(weight))
    if server.startswith("unix:") and not server[5:].split(":")[0].isdigit():
        raise ValueError(f"unix socket spec {server!r} needs an absolute path, e.g. 'unix:/run/memcached.sock'")
    if server.startswith("/"):
        return (_pylibmc.server_type_unix, server, 0, int(weight))
    stype = _pylibmc.server_type_tcp
    if server.startswith("udp:"):
        stype, server = _pylibmc.server_type_udp, server[4:]
    port_s: Union[int, str] = port
    weight_s: Union[int, str] = weight
    if server.startswith("["):
        end = server.find("]")
        if end < 0:
            raise ValueError(server)
        host, rest = server[1:end], server[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(server)
            port_s = rest[1:]
    else:
        host, sep, rest = server.partition(":")
        if sep:
            port_s = rest
    if isinstance(port_s, str) and ":" in port_s:
        port_s, weight_s = port_s.split(":", 1)
    return (stype, str(host), int(port_s), int(weight_s))


def translate_server_specs(servers: Iterable[Any]) -> List[Tuple[Any, ...]]:
    """Translate every spec of servers; (type, host, port[, weight]) tuples pass as they are."""
    out: List[Tuple[Any, ...]] = []
    for server in servers:
        if isinstance(server, tuple):
            out.append(server)
        elif isinstance(server, bytes):
            out.append(translate_server_spec(server.decode("utf-8")))
        else:
            out.append(translate_server_spec(server))
    return out


def _behaviors_symbolic(behaviors: Mapping[str, Any]) -> Dict[str, Any]:
    """Numeric behaviors with hash and distribution turned into names."""
    out = dict(behaviors)
    out["hash"] = hashers_rvs[out["hash"]]
    out["distribution"] = distributions_rvs[out["distribution"]]
    return out


class UnknownNameError(KeyError):
    """An unknown hasher or distribution name in behaviors.

    pylibmc raises a bare KeyError(name) there; this is that KeyError (code
    catching KeyError still does) with a message that says what was wrong
    and what is accepted.
    """

    def __init__(self, behavior: str, name: object, choices: Iterable[str]) -> None:
        super().__init__(name)
        self.message = f"unknown {behavior} {name!r} in behaviors; choose one of: {', '.join(sorted(choices))}"

    def __str__(self) -> str:
        return self.message


def _named(table: Mapping[str, int], behavior: str, name: object) -> int:
    try:
        return table[name]  # type: ignore[index]
    except (KeyError, TypeError):  # TypeError: an unhashable value
        raise UnknownNameError(behavior, name, table) from None


def _behaviors_numeric(behaviors: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """Named behaviors as the base client takes them; ValueError for unknown
    names, KeyError (UnknownNameError) for an unknown hasher or distribution
    name, as in pylibmc."""
    if not behaviors:
        return None
    if not isinstance(behaviors, Mapping):
        raise TypeError(f"behaviors must be a mapping, not {type(behaviors).__name__}")
    out = dict(behaviors)
    if "_retry_timeout" in out:
        out.setdefault("retry_timeout", out.pop("_retry_timeout"))
    unknown = set(out) - _KNOWN_BEHAVIORS
    if unknown:
        raise ValueError("unknown behavior names: " + ", ".join(sorted(map(str, unknown))))
    if out.get("hash") is not None:
        out["hash"] = _named(hashers, "hash", out["hash"])
    kh = out.get("ketama_hash")
    if isinstance(kh, str) and kh in hashers:
        out["ketama_hash"] = hashers[kh]
    if out.get("distribution") is not None:
        out["distribution"] = _named(distributions, "distribution", out["distribution"])
    return out


class Client(_pylibmc.client):
    """A memcached client with pylibmc 1.6's API, on omcache's Go engine.

    ``servers``: a list of specs ("host", "host:port", "host:port:weight",
    "[v6]:port", "/unix/path"; see translate_server_spec).  ``behaviors``:
    pylibmc behavior names and values (see ``Client.behaviors``).
    ``binary``: pylibmc's binary-protocol semantics (keys may hold any
    bytes); False gives the text protocol's (see docs/pylibmc.md).
    ``username``/``password``: SASL is not supported yet (TypeError).
    ``max_value_size`` and ``allow_pickle`` are omcache's own keyword-only
    settings against hostile cache contents (see ``_pylibmc.client``).
    """

    def __init__(
        self,
        servers: Iterable[Any],
        behaviors: Optional[Mapping[str, Any]] = None,
        binary: Any = False,
        username: Optional[str] = None,
        password: Optional[str] = None,
        *,
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        allow_pickle: bool = True,
        **tls_options: Any,
    ) -> None:
        if isinstance(servers, (str, bytes)):
            raise TypeError("servers must be a list of server specs, not a single string")
        self.binary = binary
        self.addresses = list(servers)
        super().__init__(
            servers=translate_server_specs(self.addresses),
            binary=binary,
            username=username,
            password=password,
            behaviors=_behaviors_numeric(behaviors),
            max_value_size=max_value_size,
            allow_pickle=allow_pickle,
            **tls_options,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.addresses!r}, binary={self.binary!r})"

    def __str__(self) -> str:
        addrs = ", ".join(map(str, self.addresses))
        return f"<{type(self).__name__} for {addrs}, binary={self.binary!r}>"

    # Mapping interface.

    def __getitem__(self, key: Union[str, bytes]) -> Any:
        value = self.get(key, _MISS)
        if value is _MISS:
            raise KeyError(key)
        return value

    def __setitem__(self, key: Union[str, bytes], value: Any) -> None:
        if not self.set(key, value):
            raise KeyError(f"failed setting {key!r}")

    def __delitem__(self, key: Union[str, bytes]) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: Union[str, bytes]) -> bool:
        return self.get(key, _MISS) is not _MISS

    # Behaviors.

    def get_behaviors(self) -> BehaviorDict:
        """Return the behaviors, with hash and distribution as names; setting
        an item of the returned dict applies it."""
        return BehaviorDict(self, _behaviors_symbolic(super().get_behaviors()))

    def set_behaviors(self, behaviors: Mapping[str, Any]) -> None:
        """Apply named behaviors (unknown names: ValueError; "_retry_timeout"
        is accepted for "retry_timeout")."""
        numeric = _behaviors_numeric(behaviors)
        if numeric:
            super().set_behaviors(numeric)

    behaviors = property(get_behaviors, set_behaviors, doc="The client's behaviors (a BehaviorDict); assign a dict to change some.")

    @property
    def behaviours(self) -> None:
        """Not an alias: pylibmc refuses the British spelling."""
        raise AttributeError("nobody uses british spellings")

    def clone(self) -> "Client":
        """An independent copy with its own connections (for another thread)."""
        obj = cast("Client", super().clone())
        obj.addresses = list(self.addresses)
        obj.binary = self.binary
        return obj

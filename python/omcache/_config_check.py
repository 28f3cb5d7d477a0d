"""Configuration checks run by omcache.Client's constructor, in Python.

The engine checks the same configuration when it builds its client, but it
is loaded only by the first call (a prefork server creates its clients in
the master and must not start the Go runtime there: see docs/prefork.md).
These checks let the constructor raise ConfigError at once without loading
it.  They mirror go/dist (ParseSpec, ParsePythonMemcacheSpec, the
distribution and hash names, pylibmc's behavior names);
tests/test_config_errors.py checks that the two agree.
"""

from __future__ import annotations

from typing import Mapping, Optional

from . import exceptions as exc

#: Distribution names the engine knows (go/dist), plus libmemcached's numbers.
DISTRIBUTIONS = (
    "modula",
    "consistent",
    "consistent ketama",
    "consistent weighted",
    "consistent ketama spy",
    "ketama",
    "ketama_weighted",
    "ketama_pre1010",
    "python-memcached",
)
#: libmemcached's distributions omcache does not implement (README: "Not implemented yet").
UNIMPLEMENTED_DISTRIBUTIONS = ("random", "virtual bucket", "consistent max")
# memcached_server_distribution_t numbers, as pylibmc passes them.
_DISTRIBUTION_NUMBERS = (
    "modula", "consistent", "consistent ketama", "random",
    "consistent ketama spy", "consistent weighted", "virtual bucket", "consistent max",
)
#: Key hashers in libmemcached's numbering (hsieh, 7, is refused: Debian's libhashkit lacks it).
HASHES = ("default", "md5", "crc", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins")
_REFUSED_HASHES = ("hsieh",)
#: pylibmc 1.6.3's behavior names (go/dist pylibmcBehaviors), and the aliases the engine takes.
BEHAVIORS = (
    "no_block", "tcp_nodelay", "tcp_keepalive", "hash", "ketama_hash", "ketama",
    "ketama_weighted", "distribution", "cas", "buffer_requests", "verify_keys",
    "connect_timeout", "send_timeout", "receive_timeout", "num_replicas",
    "auto_eject", "retry_timeout", "remove_failed", "failure_limit",
    "_io_msg_watermark", "_io_bytes_watermark", "_io_key_prefetch",
    "_hash_with_prefix_key", "_noreply", "_sort_hosts", "_poll_timeout",
    "_socket_send_size", "_socket_recv_size", "dead_timeout", "pickle_protocol",
)
_BEHAVIOR_ALIASES = {"sort_hosts": "_sort_hosts", "_retry_timeout": "retry_timeout"}
_PYLIBMC_DISTRIBUTIONS = ("modula", "consistent", "consistent ketama", "consistent weighted", "consistent ketama spy")
_MAX_WEIGHT = 65535


def _decimal_problem(s: str, lo: int, hi: int) -> Optional[str]:
    """go/dist parseDecimal: ASCII digits only, within lo..hi."""
    if s == "":
        return "is empty"
    if len(s) > 9:
        return f"{s!r} is out of range {lo}..{hi}"
    if not all("0" <= c <= "9" for c in s):
        return f"{s!r} is not a decimal number"
    n = int(s)
    if not lo <= n <= hi:
        return f"{n} is out of range {lo}..{hi}"
    return None


def spec_problem(spec: str) -> Optional[str]:
    """Why go/dist ParseSpec refuses a pylibmc-style server spec, or None."""
    if spec == "":
        return "empty"
    unix = spec.startswith("/")
    for ch in spec:
        if ch < " " or ch == "\x7f" or (ch == " " and not unix):
            return "white space or control character"
    if unix:
        return None
    if spec.startswith("udp:"):
        return "UDP is not supported (libmemcached 1.1.4 dropped it)"
    host, rest = spec, ""
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0:
            return "missing ']' after IPv6 address"
        host, rest = spec[1:end], spec[end + 1 :]
        if rest and not rest.startswith(":"):
            return "expected ':port' after ']'"
        if not host or "[" in host or "]" in host:
            return "bad bracketed address"
        rest = rest[1:]
        if rest == "" and spec.endswith(":"):
            return "empty port"
    elif ":" in spec:
        host, rest = spec.split(":", 1)
        if not host:
            return "empty host (IPv6 addresses must be written in brackets: [::1]:11211)"
        if not rest:
            return "empty port"
    if any(c in host for c in "/[]"):
        return "bad character in host"
    if not rest:
        return None
    port, has_weight, weight = rest.partition(":")
    why = _decimal_problem(port, 1, 65535)
    if why:
        return "port " + why
    if has_weight:
        why = _decimal_problem(weight, 0, _MAX_WEIGHT)
        if why:
            return "weight " + why
    return None


def python_memcached_spec_problem(spec: str) -> Optional[str]:
    """Why go/dist ParsePythonMemcacheSpec refuses a python-memcached server string, or None."""
    if spec.startswith("unix:"):
        return "empty socket path" if spec == "unix:" else None
    port = ""
    if spec.startswith("inet6:"):
        rest = spec[len("inet6:") :]
        if not rest.startswith("["):
            return "inet6 address must be in brackets"
        end = rest.find("]")
        if end < 0:
            return "missing ']'"
        host, port = rest[1:end], rest[end + 1 :]
        if not host or "[" in host or "]" in host:
            return "bad bracketed address"
        if port:
            if not port.startswith(":"):
                return "expected ':port' after ']'"
            port = port[1:]
    else:
        rest = spec[len("inet:") :] if spec.startswith("inet:") else spec
        host, has_port, port = rest.partition(":")
        if has_port and port == "":
            return "empty port"
        if not host or ":" in port:
            return "expected host or host:port"
    for ch in host:
        if ch <= " " or ch == "\x7f":
            return "white space or control character in host"
    if port:
        why = _decimal_problem(port, 1, 65535)
        if why:
            return "port " + why
    return None


def check_servers(servers: list[str], python_memcached_syntax: bool) -> None:
    """Raise ConfigError naming the first server spec the engine would refuse."""
    check = python_memcached_spec_problem if python_memcached_syntax else spec_problem
    for i, spec in enumerate(servers):
        why = check(spec)
        if why is not None:
            raise exc.ConfigError(f"server {i}: bad server spec {spec!r}: {why}")


def _canonical_distribution(value: str, what: str) -> str:
    if value == "":
        return "modula"
    if value.isascii() and value.isdigit() and len(value) < 4:
        n = int(value)
        if n < len(_DISTRIBUTION_NUMBERS):
            return _canonical_distribution(_DISTRIBUTION_NUMBERS[n], what)
    if value in UNIMPLEMENTED_DISTRIBUTIONS:
        raise NotImplementedError(f"{what} {value!r}: libmemcached's {value} distribution is not implemented in omcache")
    if value in DISTRIBUTIONS:
        return "consistent ketama" if value == "ketama" else value
    raise exc.ConfigError(f"unknown {what} {value!r} (known: {', '.join(repr(d) for d in DISTRIBUTIONS)})")


def check_distribution(value: str) -> None:
    """Raise ConfigError for a distribution name the engine does not know
    (NotImplementedError for libmemcached's random, virtual bucket and consistent max)."""
    _canonical_distribution(value, "distribution")


def check_hash(value: str, what: str = "hash") -> None:
    """Raise ConfigError for a hash name (or number) the engine does not take."""
    name = value
    if value.isascii() and value.isdigit() and len(value) < 4 and int(value) < len(HASHES):
        name = HASHES[int(value)]
    if name in _REFUSED_HASHES:
        raise exc.ConfigError(
            f"{what} {value!r}: hsieh is not built into Debian's libhashkit 1.1.4, "
            "so libmemcached (and pylibmc) refuse it too"
        )
    if name not in HASHES:
        known = ", ".join(repr(h) for h in HASHES if h not in _REFUSED_HASHES)
        raise exc.ConfigError(f"unknown {what} {value!r} (known: {known})")


def _hash_name(value: str) -> str:
    if value.isascii() and value.isdigit() and len(value) < 4 and int(value) < len(HASHES):
        return HASHES[int(value)]
    return value


def check_combination(distribution: str, hash: Optional[str], sort_hosts: bool) -> None:
    """Raise ConfigError for a distribution and hash (or sort_hosts) that go/dist
    refuses together.  Only for a configuration without behaviors, which may
    change both before the engine resolves them."""
    d = _canonical_distribution(distribution, "distribution")
    h = None if hash is None else _hash_name(hash)
    if d == "ketama_weighted" and h is not None and h != "md5":
        raise exc.ConfigError(
            f"ketama_weighted hashes keys with md5, not {h} "
            "(use 'consistent weighted' to combine another key hash with the weighted continuum)"
        )
    if d == "python-memcached":
        if h is not None and h not in ("default", "crc"):
            raise exc.ConfigError(f"python-memcached always hashes keys with crc, not {h}")
        if sort_hosts:
            raise exc.ConfigError("python-memcached does not sort hosts")


def _flag_problem(value: str) -> bool:
    if value.lower() in ("true", "false", ""):
        return False
    s = value[1:] if value[:1] in "+-" else value
    return not (s.isascii() and s.isdigit() and len(s) <= 18)


def check_behaviors(behaviors: Mapping[str, str]) -> None:
    """Raise ConfigError for a behavior name pylibmc does not know, or a
    placement behavior whose value the engine would refuse."""
    for raw_name, value in behaviors.items():
        name = _BEHAVIOR_ALIASES.get(raw_name, raw_name)
        if name not in BEHAVIORS:
            raise exc.ConfigError(f"unknown behavior {raw_name!r} (pylibmc's behaviors: {', '.join(BEHAVIORS)})")
        if name in ("hash", "ketama_hash"):
            check_hash(value, f"behavior {name}")
        elif name == "distribution":
            d = _canonical_distribution(value, "behavior distribution")
            if d not in _PYLIBMC_DISTRIBUTIONS:
                raise exc.ConfigError(f"behavior distribution {value!r} is not a pylibmc distribution")
        elif name in ("ketama", "ketama_weighted", "_sort_hosts") and _flag_problem(value):
            raise exc.ConfigError(f"behavior {name}: {value!r} is not a number")

"""pylibmc's extension module, ``_pylibmc``, rebuilt on omcache's Go engine.

This module holds what pylibmc 1.6.3 keeps in C: the ``client`` base type
with every memcached command, the native value (de)serialisation, the
exceptions and the constants.  ``omcache_pylibmc`` (the ``pylibmc`` package
stand-in) builds ``Client``, the behaviors dict and the pools on top, exactly
as pylibmc's Python half builds on its ``_pylibmc``.

There is no libmemcached underneath: keys, values and flags go to
``omcache.Client`` (the Go engine, binary protocol).  What libmemcached 1.1.4
decides for pylibmc (behaviors and their side effects, key checks, which
outcomes are errors and which are ``False``) is reproduced here; the
deliberate differences are listed in docs/pylibmc.md.
"""

from __future__ import annotations

import logging
import operator
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, Union

import omcache
from omcache import exceptions as oexc
from omcache import _messages
from omcache import serde as _serde
from omcache import client as _omclient
from omcache.client import plain_text_keys

log = logging.getLogger("omcache")

#: The pylibmc release whose API this module reproduces.
__version__ = "1.6.3"
#: The libmemcached release whose semantics are reproduced (there is no
#: libmemcached inside: placement, behaviors and key rules are omcache's own
#: implementation of libmemcached 1.1.4's).
libmemcached_version = "1.1.4"
#: ``libmemcached_version`` as pylibmc encodes it (0xMMmmmppp).
libmemcached_version_hex = 0x01001004
#: SASL authentication (PLAIN, binary protocol): ``username``/``password``.
support_sasl = True
#: zlib compression of values (``min_compress_len``) is always available.
support_compression = True
#: The omcache release providing the engine.
omcache_version = omcache.__version__

#: Server type codes used in (type, host, port[, weight]) server tuples.
server_type_tcp = 1
server_type_udp = 2
server_type_unix = 4

#: libmemcached's hash function numbers, as pylibmc exposes them.
hash_default = 0
hash_md5 = 1
hash_crc = 2
hash_fnv1_64 = 3
hash_fnv1a_64 = 4
hash_fnv1_32 = 5
hash_fnv1a_32 = 6
hash_hsieh = 7
hash_murmur = 8
hash_jenkins = 9

#: libmemcached's distribution numbers, as pylibmc exposes them.
distribution_modula = 0
distribution_consistent = 1
distribution_consistent_ketama = 2
distribution_random = 3
distribution_consistent_ketama_spy = 4
distribution_consistent_weighted = 5
distribution_virtual_bucket = 6
distribution_consistent_max = 7

#: libmemcached's callback number for the key namespace.
callback_namespace = 0

#: Every behavior name, in the order pylibmc applies them (which decides how
#: behaviors with side effects combine).
all_behaviors: List[str] = [
    "no_block", "tcp_nodelay", "tcp_keepalive", "hash", "ketama_hash", "ketama",
    "ketama_weighted", "distribution", "cas", "buffer_requests", "verify_keys",
    "connect_timeout", "send_timeout", "receive_timeout", "num_replicas",
    "auto_eject", "retry_timeout", "remove_failed", "failure_limit",
    "_io_msg_watermark", "_io_bytes_watermark", "_io_key_prefetch",
    "_hash_with_prefix_key", "_noreply", "_sort_hosts", "_poll_timeout",
    "_socket_send_size", "_socket_recv_size", "dead_timeout", "pickle_protocol",
]
#: Callback names settable through the behaviors mapping.
all_callbacks: List[str] = ["namespace"]

# Value flags (pylibmc's, from python-memcached's convention).
_F_ZLIB = _serde.FLAG_ZLIB

_MAX_KEY = 250
_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1
# memcached's REALTIME_MAXDELTA + 1: its text parser stores an item with a
# negative exptime under this value, which means "already expired".
_EXPIRED = 60 * 60 * 24 * 30 + 1
# A byte the text protocol cannot carry in a key (space, control characters);
# a search, not bytes.translate(None, ok_set), which builds a 256-entry table
# on every call (~1,800 instructions per read, measured).
_text_key_bad = re.compile(rb"[\x00-\x20\x7f]").search
# A byte libmemcached's verify_keys refuses (not isgraph over signed char).
_not_graph = re.compile(rb"[^\x21-\x7e]").search

# libmemcached return codes quoted in messages.
_RC_TIMEOUT = 31
_RC_INVALID_ARGUMENTS = 38


class Error(Exception):
    """Base class of every pylibmc error (``pylibmc.Error``, alias ``MemcachedError``)."""


Error.__module__ = "omcache_pylibmc"


class CacheMiss(Error):
    """Raise it from ``deserialize`` to make the read a miss."""


CacheMiss.__module__ = "omcache_pylibmc"


class DecompressedTooLarge(Error):
    """A zlib value (flags 0x08) would inflate past the client's
    ``max_value_size`` (omcache only: pylibmc inflates whatever it gets)."""


class PickleRefused(Error):
    """A value flagged as a pickle was read, or an object needing a pickle
    was stored, by a client made with ``allow_pickle=False`` (omcache only)."""


DecompressedTooLarge.__module__ = PickleRefused.__module__ = "omcache_pylibmc"

#: The default ``max_value_size``: memcached's largest item size (-I 128m).
DEFAULT_MAX_VALUE_SIZE = 128 * 1024 * 1024

# (name, libmemcached return code) for the exceptions pylibmc derives from
# Error, in pylibmc's order.
_MC_ERRORS: List[Tuple[str, int, str]] = [
    ("Failure", 1, "The command failed."),
    ("HostLookupError", 2, "A server's host name could not be resolved."),
    ("ConnectionError", 3, "A server could not be reached or the connection broke."),
    ("ConnectionBindError", 4, "A local address could not be bound."),
    ("WriteError", 5, "Writing to a server failed."),
    ("ReadError", 6, "Reading from a server failed."),
    ("UnknownReadFailure", 7, "A server's answer could not be read (binary protocol incr/decr on a non-number)."),
    ("ProtocolError", 8, "A server sent something that is not memcached protocol."),
    ("ClientError", 9, "The server refused the command as malformed (text protocol CLIENT_ERROR)."),
    ("ServerError", 10, "The server reported an error of its own."),
    ("SocketCreateError", 11, "A socket could not be created."),
    ("DataExists", 12, "The item changed since it was read (CAS mismatch)."),
    ("DataDoesNotExist", 13, "The item does not exist."),
    ("NotFound", 16, "The key does not exist (incr/decr, cas, binary replace)."),
    ("AllocationError", 17, "Memory could not be allocated."),
    ("SomeErrors", 19, "Some servers failed (flush_all, get_stats)."),
    ("NoServers", 20, "The client has no server for the key."),
    ("UnixSocketError", 27, "A unix socket could not be used."),
    ("NotSupportedError", 28, "The operation or setting is not supported."),
    ("FetchNotFinished", 30, "A multi-get was interrupted."),
    ("BadKeyProvided", 33, "The key is not acceptable (verify_keys, empty key to cas/incr)."),
    ("InvalidHostProtocolError", 34, "The server address names an unknown protocol."),
    ("ServerDead", 35, "The server is marked dead."),
    ("ServerDown", 47, "The server failed recently and is disabled until its retry timeout."),
    ("TooBig", 37, "The value is larger than the server's item size limit."),
    ("UnknownStatKey", 36, "The stat name is unknown."),
]

#: (name, class) for every pylibmc exception, Error and CacheMiss first.
exceptions: List[Tuple[str, Type[Error]]] = [("Error", Error), ("CacheMiss", CacheMiss)]
_BY_NAME: Dict[str, Type[Error]] = {}
for _name, _rc, _doc in _MC_ERRORS:
    _cls = type(_name, (Error,), {"__doc__": _doc, "__module__": "omcache_pylibmc", "retcode": _rc})
    exceptions.append((_name, _cls))
    _BY_NAME[_name] = _cls
    globals()[_name] = _cls
del _name, _rc, _doc, _cls

#: pylibmc <= 1.2.3's name for Error.
MemcachedError = Error

# Static names for the classes built above (the loop binds them in globals()).
Failure: Type[Error] = _BY_NAME["Failure"]
HostLookupError: Type[Error] = _BY_NAME["HostLookupError"]
ConnectionError: Type[Error] = _BY_NAME["ConnectionError"]  # noqa: A001 - pylibmc's name
ConnectionBindError: Type[Error] = _BY_NAME["ConnectionBindError"]
WriteError: Type[Error] = _BY_NAME["WriteError"]
ReadError: Type[Error] = _BY_NAME["ReadError"]
UnknownReadFailure: Type[Error] = _BY_NAME["UnknownReadFailure"]
ProtocolError: Type[Error] = _BY_NAME["ProtocolError"]
ClientError: Type[Error] = _BY_NAME["ClientError"]
ServerError: Type[Error] = _BY_NAME["ServerError"]
SocketCreateError: Type[Error] = _BY_NAME["SocketCreateError"]
DataExists: Type[Error] = _BY_NAME["DataExists"]
DataDoesNotExist: Type[Error] = _BY_NAME["DataDoesNotExist"]
NotFound: Type[Error] = _BY_NAME["NotFound"]
AllocationError: Type[Error] = _BY_NAME["AllocationError"]
SomeErrors: Type[Error] = _BY_NAME["SomeErrors"]
NoServers: Type[Error] = _BY_NAME["NoServers"]
UnixSocketError: Type[Error] = _BY_NAME["UnixSocketError"]
NotSupportedError: Type[Error] = _BY_NAME["NotSupportedError"]
FetchNotFinished: Type[Error] = _BY_NAME["FetchNotFinished"]
BadKeyProvided: Type[Error] = _BY_NAME["BadKeyProvided"]
InvalidHostProtocolError: Type[Error] = _BY_NAME["InvalidHostProtocolError"]
ServerDead: Type[Error] = _BY_NAME["ServerDead"]
ServerDown: Type[Error] = _BY_NAME["ServerDown"]
TooBig: Type[Error] = _BY_NAME["TooBig"]
UnknownStatKey: Type[Error] = _BY_NAME["UnknownStatKey"]


# -- errors from the engine ---------------------------------------------------


def _mapped_class(e: Exception, binary: bool) -> Tuple[Type[Error], int]:
    """The pylibmc class (and libmemcached return code) for an omcache exception."""
    # A call not sent because its server failed recently or is dead.
    if isinstance(e, oexc.ServerDownError):
        return ServerDown, 47
    if isinstance(e, oexc.ServerDeadError):
        return ServerDead, 35
    if isinstance(e, oexc.TimeoutError):
        return Error, _RC_TIMEOUT
    # libmemcached's MEMCACHED_AUTH_FAILURE: pylibmc raises its base Error.
    if isinstance(e, oexc.AuthenticationError):
        return Error, 41
    table: List[Tuple[Type[BaseException], Type[Error]]] = [
        (oexc.NotFoundError, NotFound),
        (oexc.KeyExistsError, DataExists),
        (oexc.TooLargeValueError, TooBig),
        (oexc.DeltaBadValueError, UnknownReadFailure if binary else ClientError),
        (oexc.InvalidArgumentsError, ClientError),
        (oexc.ServerError, ServerError),
        (oexc.ConnectionError, ConnectionError),
        (oexc.ProtocolError, ProtocolError),
        (oexc.NoServersError, NoServers),
        (oexc.InvalidKeyError, BadKeyProvided),
        (NotImplementedError, NotSupportedError),
    ]
    for src, dst in table:
        if isinstance(e, src):
            return dst, getattr(dst, "retcode", 0)
    return Error, 0


def _lead(what: str, rc: int, key: Optional[bytes]) -> str:
    s = f"error {rc} from {what}"
    if key:
        s += "(" + key[:32].decode("utf-8", "replace") + ")"
    return s


def _translate(e: Exception, binary: bool, what: str, key: Optional[bytes] = None) -> Error:
    """Build the pylibmc exception for omcache exception e raised by ``what``."""
    cls, rc = _mapped_class(e, binary)
    return cls(f"{_lead(what, rc, key)}: {e}")


def _bad_key(key: bytes, graphic_only: bool = False) -> str:
    """omcache's message for a refused key: the key and why (see omcache._messages)."""
    return _messages.invalid_key_message(key, graphic_only=graphic_only)


def _text_key_error(what: str, key: bytes, wire: bytes) -> Error:
    return ClientError(
        f"{_lead(what, ClientError.retcode, key)}: {_bad_key(wire)}, "  # type: ignore[attr-defined]
        "which memcached's text protocol (binary=False) cannot carry; use binary=True to store such keys"
    )


# -- argument conversion, as pylibmc's PyArg formats do ---------------------


def _c_uint(name: str, v: object) -> int:
    """PyArg "I"/"k": an integer, wrapped to 32 bits as pylibmc does.

    pylibmc wraps any integer (time=2**64 silently becomes 0, "never
    expire"); here one that no 64-bit C integer holds is an OverflowError
    (a deliberate difference, docs/pylibmc.md)."""
    try:
        n = operator.index(v)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(v).__name__}") from None
    if not -(1 << 63) <= n < (1 << 64):
        raise OverflowError(
            f"{name}={n} does not fit a 64-bit integer (memcached's {name} is 32 bits; "
            "pylibmc would silently use it modulo 2**32)"
        )
    return n & _U32


def _c_int(name: str, v: object) -> int:
    """PyArg "i": an integer that fits a C int."""
    try:
        n = operator.index(v)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"'{type(v).__name__}' object cannot be interpreted as an integer") from None
    if n > 0x7FFFFFFF:
        raise OverflowError("signed integer is greater than maximum")
    if n < -0x80000000:
        raise OverflowError("signed integer is less than minimum")
    return n


def _c_long(name: str, v: object) -> int:
    """A behavior value: int or bool that fits a C long."""
    if not isinstance(v, int):
        raise TypeError(f"behavior {name} must be int, not {type(v).__name__}")
    n = int(v)
    if not -(1 << 63) <= n < (1 << 63):
        raise OverflowError(f"behavior {name}: Python int too large to convert to C long")
    return n


def _key_arg(key: object) -> bytes:
    """A key as exact bytes: str (and subclasses) encoded by str.encode, so an
    ``encode()`` override is never called; bytes subclasses copied."""
    if type(key) is bytes:
        return key
    if isinstance(key, bytes):
        return memoryview(key).tobytes()
    if isinstance(key, str):
        return str.encode(key, "utf-8")
    raise TypeError("key must be bytes")  # pylibmc's words (it takes str too)


def _normalized(key: object) -> bytes:
    """pylibmc's key normalisation: bytes/str, at most 250 bytes."""
    b = _key_arg(key)
    if len(b) > _MAX_KEY:
        raise ValueError(f"key length {len(b)} too long, max is {_MAX_KEY}")
    return b


def _prefix_arg(prefix: object) -> bytes:
    if prefix is None:
        return b""
    if isinstance(prefix, (bytes, str)):
        return _key_arg(prefix)
    raise TypeError(f"key_prefix must be str or bytes, not {type(prefix).__name__}")


def _compress_level(level: object) -> int:
    n = _c_int("compress_level", level)
    if n == -1:
        return -1
    if not 0 <= n <= 9:
        raise ValueError("compress_level must be between 0 and 9 inclusive")
    return n


# Serialisation is pylibmc's convention as omcache.serde implements it (one
# implementation); these wrappers give its errors pylibmc's classes.
_deflate = _serde.compress


def _inflate(data: bytes, max_size: int) -> bytes:
    """zlib-decompress data into at most max_size bytes (only max_size + 1
    are ever inflated): DecompressedTooLarge past it, Error when corrupt."""
    try:
        return _serde.inflate(data, max_size)
    except _serde.DecompressedTooLargeError as e:
        raise DecompressedTooLarge(f"Failed to decompress value: {e}") from None
    except _serde.SerdeError as e:
        raise Error(f"Failed to decompress value: {e.__cause__ or e}") from e


def _pickle_refused(what: str) -> PickleRefused:
    return PickleRefused(f"{what}: the client was made with allow_pickle=False")


def _serialize(value: Any, pickle_protocol: int, allow_pickle: bool = True) -> Tuple[bytes, int]:
    """pylibmc's native serialisation (see client.serialize), omcache.serde's implementation."""
    try:
        return _serde.pylibmc_encode(value, pickle_protocol, allow_pickle)
    except _serde.PickleRefusedError:
        raise _pickle_refused(f"cannot store a {type(value).__name__} without pickling it") from None


def _deserialize(data: bytes, flags: int, allow_pickle: bool = True) -> Any:
    """pylibmc's native deserialisation (see client.deserialize)."""
    if flags & _serde.PYLIBMC_TYPES == _serde.FLAG_PICKLE and not allow_pickle:
        raise _pickle_refused(f"value is a pickle (flags {flags:#x})")
    try:
        return _serde.pylibmc_decode(data, flags)
    except _serde.SerdeDecodeError as e:
        raise e.unicode_error() from None  # pylibmc's exact class
    except _serde.SerdeError as e:
        raise Error(str(e)) from None


# -- server lists -------------------------------------------------------------

ServerTuple = Tuple[int, str, int, int]


def _parse_server_string(spec: str) -> List[ServerTuple]:
    """libmemcached's memcached_servers_parse: "host[:port[:weight]]" items
    separated by commas or spaces; "/path" is a unix socket."""
    out: List[ServerTuple] = []
    for item in spec.replace(",", " ").split():
        if item.startswith("/"):
            out.append((server_type_unix, item, 0, 1))
            continue
        host, port, weight = item, 0, 1
        if item.startswith("["):
            end = item.find("]")
            if end < 0:
                raise Error(f"memcached_servers_parse: bad server {item!r}")
            host, rest = item[1:end], item[end + 1:]
            parts = rest.split(":")[1:] if rest.startswith(":") else []
        else:
            host, *parts = item.split(":")
        try:
            if parts:
                port = int(parts[0])
            if len(parts) > 1:
                weight = int(parts[1])
        except ValueError:
            raise Error(f"memcached_servers_parse: bad server {item!r}") from None
        out.append((server_type_tcp, host, port, weight))
    return out


def _server_tuples(servers: Iterable[object]) -> List[ServerTuple]:
    """Check (type, host[, port[, weight]]) tuples and byte strings as pylibmc's client() does."""
    out: List[ServerTuple] = []
    stype_seen = 0
    for srv in servers:
        if isinstance(srv, bytes):
            out.extend(_parse_server_string(srv.decode("utf-8")))
            continue
        if not isinstance(srv, tuple) or not 2 <= len(srv) <= 4:
            raise TypeError(
                f"a server must be a (type, host[, port[, weight]]) tuple or a bytes spec, not {srv!r}"
            )
        stype = operator.index(srv[0])
        host = srv[1]
        if not isinstance(host, str):
            raise TypeError(f"server host must be str, not {type(host).__name__}")
        port = operator.index(srv[2]) if len(srv) > 2 else 0
        weight = operator.index(srv[3]) if len(srv) > 3 else 1
        if not 0 <= port <= 0xFFFF or not 0 <= weight <= 0xFFFF:
            raise OverflowError("port and weight must fit an unsigned short")
        if stype_seen and stype_seen != stype:
            raise ValueError("can't mix transport types")
        stype_seen = stype
        if stype == server_type_udp:
            raise NotSupportedError(
                f"UDP server {host}:{port}: omcache_pylibmc speaks TCP and unix sockets only"
            )
        if stype == server_type_unix:
            if port:
                raise ValueError("can't set port on unix sockets")
        elif stype != server_type_tcp:
            raise ValueError(f"bad type: {stype}")
        out.append((stype, host, port, weight))
    return out


def _engine_spec(s: ServerTuple, weighted: bool) -> str:
    """The omcache server spec for a server tuple (port 0 is libmemcached's
    11211).  Weights only matter to a weighted continuum, and the engine
    turns weighting on for any weight above 1, so they are left out unless
    the client is weighted (libmemcached can turn it off after the servers
    were added)."""
    stype, host, port, weight = s
    if stype == server_type_unix:
        return host
    if not host:
        host = "localhost"
    h = f"[{host}]" if ":" in host else host
    spec = f"{h}:{port or 11211}"
    return f"{spec}:{weight}" if weight != 1 and weighted else spec


def _stats_label(s: ServerTuple, index: int) -> bytes:
    stype, host, port, _ = s
    if stype == server_type_unix:
        return f"{host}:0 ({index})".encode()
    return f"{host or 'localhost'}:{port or 11211} ({index})".encode()


# -- behaviors ----------------------------------------------------------------

_INT32 = {"connect_timeout", "send_timeout", "receive_timeout", "retry_timeout", "_poll_timeout",
          "_socket_send_size", "_socket_recv_size", "dead_timeout"}
_UINT32 = {"num_replicas", "failure_limit", "_io_msg_watermark", "_io_bytes_watermark", "_io_key_prefetch"}
_FLAGS = {"no_block", "tcp_nodelay", "tcp_keepalive", "cas", "buffer_requests", "verify_keys",
          "_hash_with_prefix_key", "_noreply", "_sort_hosts"}
_CONSISTENT = {distribution_consistent, distribution_consistent_ketama,
               distribution_consistent_ketama_spy, distribution_consistent_weighted}
_DIST_NAMES = {
    distribution_modula: "modula",
    distribution_consistent: "consistent",
    distribution_consistent_ketama: "consistent ketama",
    distribution_consistent_ketama_spy: "consistent ketama spy",
    distribution_consistent_weighted: "consistent weighted",
}
_HASH_NAMES = {
    hash_default: "default", hash_md5: "md5", hash_crc: "crc", hash_fnv1_64: "fnv1_64",
    hash_fnv1a_64: "fnv1a_64", hash_fnv1_32: "fnv1_32", hash_fnv1a_32: "fnv1a_32",
    hash_murmur: "murmur", hash_jenkins: "jenkins",
}
# What libmemcached 1.1.4 reports for a new client (socket sizes read back 0
# here: libmemcached would connect to ask the kernel, omcache does not).
_DEFAULTS: Dict[str, int] = {
    "no_block": 0, "tcp_nodelay": 0, "tcp_keepalive": 0, "hash": 0, "ketama_hash": 0,
    "ketama": 0, "ketama_weighted": 0, "distribution": 0, "cas": 0, "buffer_requests": 0,
    "verify_keys": 0, "connect_timeout": 4000, "send_timeout": 0, "receive_timeout": 0,
    "num_replicas": 0, "auto_eject": 0, "retry_timeout": 2, "remove_failed": 0,
    "failure_limit": 5, "_io_msg_watermark": 500, "_io_bytes_watermark": 65 * 1024,
    "_io_key_prefetch": 0, "_hash_with_prefix_key": 0, "_noreply": 0, "_sort_hosts": 0,
    "_poll_timeout": 5000, "_socket_send_size": 0, "_socket_recv_size": 0,
    "dead_timeout": 0, "pickle_protocol": -1,
}
# Behaviors that change what the engine must be built with.
_ENGINE_BEHAVIORS = {"hash", "ketama", "ketama_weighted", "distribution", "_sort_hosts",
                     "connect_timeout", "send_timeout", "receive_timeout", "_poll_timeout",
                     "retry_timeout", "dead_timeout", "failure_limit", "remove_failed", "auto_eject"}


def _int32(v: int) -> int:
    v &= _U32
    return v - (1 << 32) if v >= (1 << 31) else v


class _Settings:
    """A client's libmemcached-side state: behavior values with the side
    effects memcached_behavior_set has on each other, and placement."""

    __slots__ = (
        "values", "distribution", "hash", "ketama_hash", "weighted", "auto_eject", "binary",
        "max_value_size", "allow_pickle",
    )

    def __init__(self, binary: bool) -> None:
        self.values: Dict[str, int] = {n: v for n, v in _DEFAULTS.items() if n in _INT32 | _UINT32 | _FLAGS}
        self.values["pickle_protocol"] = -1
        self.distribution = distribution_modula
        self.hash = hash_default
        self.ketama_hash = hash_default
        self.weighted = False
        self.auto_eject = False
        self.binary = binary
        self.max_value_size = DEFAULT_MAX_VALUE_SIZE
        self.allow_pickle = True

    def copy(self) -> "_Settings":
        """An independent copy (for clone())."""
        other = _Settings(self.binary)
        other.values = dict(self.values)
        other.distribution, other.hash, other.ketama_hash = self.distribution, self.hash, self.ketama_hash
        other.weighted, other.auto_eject = self.weighted, self.auto_eject
        other.max_value_size, other.allow_pickle = self.max_value_size, self.allow_pickle
        return other

    def read(self) -> Dict[str, int]:
        """The behaviors as memcached_behavior_get reports them (numeric)."""
        consistent = self.distribution in _CONSISTENT
        out: Dict[str, int] = {}
        for name in all_behaviors:
            if name == "hash":
                out[name] = self.hash
            elif name == "ketama_hash":
                out[name] = self.ketama_hash
            elif name == "ketama":
                out[name] = int(consistent)
            elif name == "ketama_weighted":
                out[name] = int(consistent and self.weighted)
            elif name == "distribution":
                out[name] = self.distribution
            elif name in ("auto_eject", "remove_failed"):
                out[name] = int(self.auto_eject)
            else:
                out[name] = self.values[name]
        return out

    def _fail(self, name: str, v: int) -> Error:
        return Error(f"memcached_behavior_set returned {_RC_INVALID_ARGUMENTS} for behavior '{name}' = {v}")

    def _check_hash(self, name: str, v: int) -> int:
        if v == hash_hsieh or v not in _HASH_NAMES:
            if v == 10:  # libmemcached's HASH_CUSTOM: a C function pointer
                raise NotSupportedError(f"behavior '{name}' = 10 (custom hash function) is not supported")
            raise self._fail(name, v)
        return v

    def _set_distribution(self, name: str, v: int) -> None:
        if v in (distribution_random, distribution_virtual_bucket):
            raise NotSupportedError(
                f"distribution {v} ({'random' if v == distribution_random else 'virtual bucket'}) "
                "is not supported by omcache_pylibmc"
            )
        if v not in _DIST_NAMES:
            raise self._fail(name, v)
        if v in (distribution_consistent, distribution_consistent_ketama):
            self.weighted = False
        elif v == distribution_consistent_weighted:
            self.weighted = True
        self.distribution = v

    def set(self, name: str, v: int) -> None:
        """memcached_behavior_set for one (numeric) behavior."""
        if name == "hash":
            self.hash = self._check_hash(name, v)
        elif name == "ketama_hash":
            self.ketama_hash = self._check_hash(name, v)
        elif name == "ketama":
            self._set_distribution(name, distribution_consistent_ketama if v else distribution_modula)
        elif name == "ketama_weighted":
            if not v:
                self._set_distribution(name, distribution_consistent_ketama)
            else:
                self.hash = self.ketama_hash = hash_md5
                self._set_distribution(name, distribution_consistent_weighted)
        elif name == "distribution":
            self._set_distribution(name, v)
        elif name in ("auto_eject", "remove_failed"):
            self.auto_eject = bool(v)
        elif name == "failure_limit":
            if v & _U32 == 0:
                raise self._fail(name, v)
            self.values[name] = v & _U32
        elif name == "verify_keys":
            if self.binary:
                raise self._fail(name, v)
            self.values[name] = int(bool(v))
        elif name == "num_replicas":
            if v & _U32:
                raise NotSupportedError("num_replicas (libmemcached replication) is not supported by omcache_pylibmc")
            self.values[name] = 0
        elif name == "pickle_protocol":
            self.values[name] = v
        elif name in _FLAGS:
            self.values[name] = int(bool(v))
        elif name in _INT32:
            self.values[name] = _int32(v)
        elif name in _UINT32:
            self.values[name] = v & _U32

    def add_servers(self, servers: Sequence[ServerTuple]) -> None:
        """libmemcached's rule when servers are added: a weight above 1 turns
        weighting on if the distribution is consistent at that moment."""
        if self.distribution in _CONSISTENT and any(s[3] > 1 for s in servers):
            self.weighted = True

    def engine_options(self) -> Dict[str, Any]:
        """Keyword arguments for omcache.Client reproducing this state."""
        v = self.values
        opts: Dict[str, Any] = {
            "distribution": _DIST_NAMES[self.distribution],
            "hash": _HASH_NAMES[self.hash],
            "sort_hosts": bool(v["_sort_hosts"]),
            "binary_keys": self.binary,
            # pylibmc speaks what it is asked: binary, or libmemcached's
            # classic text protocol by default.
            "protocol": "binary" if self.binary else "text",
            "max_value_size": self.max_value_size,
        }
        # Timeouts and failure handling as docs/failover.md maps them.
        connect = v["connect_timeout"]
        opts["connect_timeout"] = min(connect / 1000.0, 86400.0) if connect > 0 else 4.0
        sock = max(v["receive_timeout"], v["send_timeout"])
        if sock > 0:
            io = sock / 1e6
        elif v["_poll_timeout"] > 0:
            io = v["_poll_timeout"] / 1000.0
        else:
            io = 5.0  # libmemcached: 0 fails at once, < 0 waits forever
        opts["io_timeout"] = min(max(io, 0.001), 86400.0)
        retry = min(max(v["retry_timeout"], 0), 86400)
        dead = min(max(v["dead_timeout"], 0), 86400)
        opts["failure_limit"] = min(v["failure_limit"], 1 << 31)
        opts["retry_timeout"] = float(retry)
        opts["reconnect_timeout"] = float(dead or retry or 1)
        opts["dead_timeout"] = None
        # Ejecting dead servers is libmemcached's only failover, and it only
        # rebuilds consistent distributions: with modula a dead server's keys
        # keep failing (ServerDead) however auto_eject is set.
        opts["auto_eject"] = opts["failover"] = self.auto_eject and self.distribution in _CONSISTENT
        return opts


# -- the client type ------------------------------------------------------------


class client:
    """pylibmc's base client type (``_pylibmc.client``), on omcache's engine.

    ``servers`` is an iterable of (type, host[, port[, weight]]) tuples
    (type: server_type_tcp or server_type_unix) or byte strings in
    libmemcached's "host:port[:weight],..." syntax.  ``binary`` selects the
    binary protocol's semantics (the engine always speaks binary; see
    docs/pylibmc.md).  ``behaviors`` holds numeric behavior values; unknown
    names are ignored here (``pylibmc.Client`` rejects them).

    Two keyword-only settings are omcache's own (pylibmc has neither):
    ``max_value_size`` (default 128 MiB) is the largest value accepted from
    a server and the most a zlib value may inflate to (DecompressedTooLarge
    past it); ``allow_pickle=False`` refuses to unpickle values flagged as
    pickles and to pickle objects on writes (PickleRefused), for caches that
    untrusted writers can reach.

    Subclasses may override ``serialize`` and ``deserialize``.
    """

    def __init__(
        self,
        servers: Iterable[object],
        binary: object = False,
        username: Optional[str] = None,
        password: Optional[str] = None,
        behaviors: Optional[Mapping[str, object]] = None,
        *,
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        allow_pickle: bool = True,
        tls: bool = False,
        tls_ca_file: Optional[str] = None,
        tls_cert_file: Optional[str] = None,
        tls_key_file: Optional[str] = None,
        tls_server_name: Optional[str] = None,
        tls_verify: bool = True,
        tls_min_version: str = "1.2",
    ) -> None:
        it = iter(servers)  # TypeError for non-iterables, as pylibmc
        try:
            is_binary = bool(operator.index(binary))  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(f"'{type(binary).__name__}' object cannot be interpreted as an integer") from None
        # As pylibmc: SASL needs both halves and the binary protocol.
        if (username is None) != (password is None):
            raise TypeError("SASL requires both username and password")
        if username is not None and not is_binary:
            raise TypeError("SASL requires the memcached binary protocol")
        # Documented extensions (docs/tls-auth.md): TLS, as omcache.Client.
        self._om_security: Dict[str, Any] = dict(
            tls=tls,
            tls_ca_file=tls_ca_file,
            tls_cert_file=tls_cert_file,
            tls_key_file=tls_key_file,
            tls_server_name=tls_server_name,
            tls_verify=tls_verify,
            tls_min_version=tls_min_version,
            username=username,
            password=password,
        )
        self._om_settings = _Settings(is_binary)
        if isinstance(max_value_size, bool) or not isinstance(max_value_size, int) or not 1 <= max_value_size <= 1 << 31:
            raise ValueError(f"max_value_size must be an int from 1 to 2**31, got {max_value_size!r}")
        if not isinstance(allow_pickle, bool):
            raise TypeError(f"allow_pickle must be a bool, not {type(allow_pickle).__name__}")
        self._om_settings.max_value_size = max_value_size
        self._om_settings.allow_pickle = allow_pickle
        self._om_namespace = b""
        self._om_codecs()
        if behaviors is not None:
            self._om_apply(behaviors, rebuild=False)
        tuples = _server_tuples(it)
        if not tuples:
            raise Error("empty server list")
        self._om_servers = tuples
        self._om_check_namespace()
        self._om_settings.add_servers(tuples)
        self._om_mc: omcache.Client = self._om_build()
        self._om_key_check()

    # -- engine -------------------------------------------------------------

    def _om_build(self) -> omcache.Client:
        """Create (and open) the omcache client for the current settings."""
        try:
            weighted = self._om_settings.weighted
            mc = omcache.Client(
                [_engine_spec(s, weighted) for s in self._om_servers],
                **self._om_settings.engine_options(),
                **self._om_security,
            )
            # Opening now (no connection is made) keeps a client's first
            # command from allocating engine state, as libmemcached's
            # memcached_create does everything up front.
            mc.server_addresses()
        except oexc.ConfigError as e:
            raise Error(f"invalid server list or behaviors: {e}") from e
        return mc

    def _om_rebuild(self) -> None:
        old, self._om_mc = self._om_mc, self._om_build()
        old.close()

    @property
    def _om_binary(self) -> bool:
        return self._om_settings.binary

    @property
    def _om_noreply(self) -> bool:
        # libmemcached does not read replies then: soft outcomes (not
        # stored, exists, not found) look like successes.
        return bool(self._om_settings.values["_noreply"])

    # -- keys ----------------------------------------------------------------

    def _om_wire(self, kb: bytes, what: str) -> Optional[bytes]:
        """The key as sent (namespace prepended), or None when the text
        protocol cannot carry it under verify_keys (the caller's soft failure).

        Raises ClientError for keys with spaces or control characters in text
        mode, BadKeyProvided when the namespace makes the key too long.
        """
        ns = self._om_namespace
        wire = ns + kb if ns else kb
        if len(wire) > _MAX_KEY:
            raise BadKeyProvided(f"{_lead(what, BadKeyProvided.retcode, kb)}: key with namespace: {_bad_key(wire)}")  # type: ignore[attr-defined]
        if not self._om_settings.binary:
            if self._om_settings.values["verify_keys"] and _not_graph(wire):
                return None
            if _text_key_bad(wire):
                raise _text_key_error(what, kb, wire)
        return wire

    def _om_read_key(self, kb: bytes, what: str) -> Optional[bytes]:
        """The wire key for a read; None means "certainly a miss".

        What _om_wire checks, and for text keys it cannot carry a miss
        instead of its error (each check done once: this is every read's path).
        """
        ns = self._om_namespace
        wire = ns + kb if ns else kb
        if not self._om_settings.binary:
            if self._om_settings.values["verify_keys"] and _not_graph(wire):
                raise BadKeyProvided(f"{_lead(what, BadKeyProvided.retcode, kb)}: verify_keys: {_bad_key(wire, True)}")  # type: ignore[attr-defined]
            if _text_key_bad(wire):
                return None  # no item can exist under it
        if len(wire) > _MAX_KEY:
            raise BadKeyProvided(f"{_lead(what, BadKeyProvided.retcode, kb)}: key with namespace: {_bad_key(wire)}")  # type: ignore[attr-defined]
        return wire

    def _om_exptime(self, t: int) -> int:
        """An expiration as memcached will treat it (t is already 32-bit)."""
        if not self._om_settings.binary and t >= (1 << 31):
            # The text protocol carries it as a negative number: expired.
            return _EXPIRED
        return t

    # -- serialisation ------------------------------------------------------

    def serialize(self, value: Any) -> Tuple[bytes, int]:
        """Return (bytes, flags) for value: bytes raw (0), str UTF-8 (16),
        bool b"1"/b"0" (2), int decimal (4), anything else pickled (1)."""
        return _serialize(value, self._om_settings.values["pickle_protocol"], self._om_settings.allow_pickle)

    def deserialize(self, bytes_: bytes, flags: int) -> Any:
        """Return the value ``(bytes_, flags)`` stands for; raise CacheMiss in an
        override to turn a read into a miss.  flags may include zlib's 8 (the
        data is already inflated)."""
        return _deserialize(bytes_, _c_uint("flags", flags), self._om_settings.allow_pickle)

    def _om_codecs(self) -> None:
        """Note whether serialize/deserialize are overridden (pylibmc checks
        the class once, when the client is made)."""
        cls = type(self)
        self._om_native_ser = cls.serialize is client.serialize
        self._om_native_de = cls.deserialize is client.deserialize

    def _om_encode(self, value: Any) -> Tuple[bytes, int]:
        """serialize(value), checked as pylibmc checks an override's result."""
        if self._om_native_ser:
            return _serialize(value, self._om_settings.values["pickle_protocol"], self._om_settings.allow_pickle)
        r = self.serialize(value)
        if not isinstance(r, tuple) or len(r) < 2 or not isinstance(r[1], int):
            raise ValueError("serialize() must return (bytes, flags)")
        data, flags = r[0], int(r[1])
        if not isinstance(data, bytes):
            raise TypeError(f"serialize() must return bytes, not {type(data).__name__}")
        if not -(1 << 63) <= flags < (1 << 63):
            raise OverflowError("serialize() flags do not fit a C long")
        return data, flags & _U32

    def _om_decode(self, data: bytes, flags: int) -> Any:
        """Inflate if needed, then deserialize; CacheMiss propagates."""
        if not flags and self._om_native_de:
            return data  # bytes stored as they are: the common case
        if flags & _F_ZLIB:
            data = _inflate(data, self._om_settings.max_value_size)
        if self._om_native_de:
            return _deserialize(data, flags, self._om_settings.allow_pickle)
        return self.deserialize(data, flags)

    # -- reads ----------------------------------------------------------------

    # A deserialize override may keep the exception it catches (pylibmc's
    # tests do): its traceback keeps this frame, and the locals it has when it
    # returns, alive.  So the read methods drop their references to the
    # caller's keys (and their result) before returning: pylibmc, being C,
    # leaves no such references behind either.

    def get(self, key: Union[str, bytes], default: Any = None, /) -> Any:
        """Return the value of key, or default (None) on a miss."""
        fe = self._om_mc._fe
        if fe is not None and self._om_native_de and not self._om_namespace:
            # The C read path: a key it takes is what the checks below
            # would pass unchanged; it leaves the others to them.
            r = fe.get_plain(key, self._om_check)
            if type(r) is bytes:
                return r
            if r is None:
                return default
            if r is not NotImplemented:
                return self._om_got(r, key, default)
        kb = key.encode() if type(key) is str else _key_arg(key)  # _normalized, inline: every read's path
        del key
        if len(kb) > _MAX_KEY:
            raise ValueError(f"key length {len(kb)} too long, max is {_MAX_KEY}")
        if not kb:
            return default
        wire = self._om_read_key(kb, "memcached_get")
        if wire is None:
            return default
        try:
            item = self._om_mc._get_item(wire, False, 0)
        except oexc.Error as e:
            raise _translate(e, self._om_binary, "memcached_get", kb) from e
        del kb, wire
        if item is None:
            return default
        if not item.flags and self._om_native_de:
            return item.value  # bytes stored as they are (what _om_decode does, inline)
        try:
            return self._om_decode(item.value, item.flags)
        except CacheMiss:
            return default

    def _om_got(self, r: Tuple[Any, ...], key: Union[str, bytes], default: Any) -> Any:
        """Finish a get_plain result that is not plain bytes or a miss: an
        item with flags to decode, an error, or a large value."""
        if len(r) == 3:
            value, flags = r[0], r[1]
        else:
            mc = self._om_mc
            kb = key.encode() if type(key) is str else _key_arg(key)
            try:
                item = mc._fast_item(r, kb)  # type: ignore[arg-type]
            except oexc.Error as e:
                raise _translate(e, self._om_binary, "memcached_get", kb) from e
            if item is None:
                return default
            value, flags = item.value, item.flags
        try:
            return self._om_decode(value, flags)
        except CacheMiss:
            return default

    def gets(self, key: Union[str, bytes], /) -> Tuple[Any, Optional[int]]:
        """Return (value, cas unique) for key, (None, None) on a miss.

        Requires the "cas" behavior (ValueError otherwise).
        """
        kb = _normalized(key)
        del key
        if not kb:
            return (None, None)
        if not self._om_settings.values["cas"]:
            raise ValueError("gets without cas behavior")
        wire = self._om_read_key(kb, "memcached_gets")
        if wire is None:
            return (None, None)
        try:
            item = self._om_mc._get_item(wire, False, 0)
        except oexc.Error as e:
            raise _translate(e, self._om_binary, "memcached_gets") from e
        del kb, wire
        if item is None:
            return (None, None)
        try:
            return (self._om_decode(item.value, item.flags), item.cas)
        except CacheMiss:
            return (None, None)

    def _om_multi_keys(self, keys: Iterable[Union[str, bytes]], prefix: bytes) -> Tuple[List[bytes], Dict[bytes, Any]]:
        """Wire keys for get_multi, and {key bytes: key as given}."""
        ns = self._om_namespace
        text = not self._om_settings.binary
        verify = text and self._om_settings.values["verify_keys"]
        wires: List[bytes] = []
        result_key: Dict[bytes, Any] = {}
        for k in keys:
            if type(k) is str:
                kb = k.encode("utf-8")
                result_key[kb] = k
            else:
                kb = _key_arg(k)
                if kb not in result_key or isinstance(k, str):
                    result_key[kb] = k
            if len(kb) > _MAX_KEY:
                raise ValueError(f"key length {len(kb)} too long, max is {_MAX_KEY}")
            full = prefix + kb if prefix else kb
            if not full:
                continue
            wire = ns + full if ns else full
            if len(wire) > _MAX_KEY:
                raise BadKeyProvided(f"{_lead('memcached_mget', BadKeyProvided.retcode, None)}: {_bad_key(wire)}")  # type: ignore[attr-defined]
            if text:
                if verify and _not_graph(wire):
                    raise BadKeyProvided(f"{_lead('memcached_mget', BadKeyProvided.retcode, None)}: verify_keys: {_bad_key(wire, True)}")  # type: ignore[attr-defined]
                if _text_key_bad(wire):
                    continue  # no item can exist under it
            wires.append(wire)
        return wires, result_key

    def get_multi(self, keys: Iterable[Union[str, bytes]], key_prefix: Optional[Union[str, bytes]] = None) -> Dict[Any, Any]:
        """Return {key: value} for the keys that hit; keys are returned as
        given (str or bytes), without ``key_prefix``.  Empty keys are skipped.

        In text mode (binary=False) a failing server leaves its keys out (it
        raises when no server answered); in binary mode it raises, as pylibmc
        does.
        """
        prefix = _prefix_arg(key_prefix)
        klist = keys if type(keys) is list else list(keys)
        del keys
        wires: List[Any]
        result_key: Optional[Dict[bytes, Any]]
        if not prefix and not self._om_namespace and plain_text_keys(klist):
            # Keys valid as given in both modes: sent and returned as they are.
            wires, result_key = klist, None
        else:
            wires, result_key = self._om_multi_keys(klist, prefix)
        del klist
        if not wires:
            return {}
        errors: Dict[Any, Exception] = {}
        try:
            hits, values, flags = self._om_mc.get_multi_raw(wires, errors=errors)
        except oexc.Error as e:
            raise _translate(e, self._om_binary, "memcached_mget") from e
        failures = [err for err in errors.values() if not isinstance(err, oexc.NotFoundError)]
        # Binary mode raises for any failing server; text mode only when no
        # server answered at all (libmemcached's mget then fails as a whole).
        if failures and (self._om_settings.binary or len(failures) == len(set(wires))):
            raise _translate(failures[0], self._om_binary, "memcached_mget") from failures[0]
        del failures, wires
        out: Dict[Any, Any]
        if result_key is None and self._om_native_de and not any(flags):
            out = dict(zip(hits, values))  # all plain bytes: nothing to decode
        else:
            skip = len(self._om_namespace) + len(prefix)
            out = {}
            decode = self._om_decode
            wire = value = None
            for wire, value, fl in zip(hits, values, flags):
                try:
                    out[wire if result_key is None else result_key[wire[skip:] if skip else wire]] = decode(value, fl)
                except CacheMiss:
                    continue
            del wire, value
        del result_key, hits, values
        box = [out]
        del out
        return box.pop()

    # -- writes ---------------------------------------------------------------

    def _om_store(self, op: str, key: object, val: Any, time: object, min_compress_len: object, compress_level: object) -> bool:
        # Every write's path: the common argument types are taken inline,
        # anything else through the checks that convert or refuse it.
        if type(time) is int and 0 <= time < (1 << 31):
            exptime = time
        else:
            exptime = self._om_exptime(_c_uint("time", time))
        if type(min_compress_len) is int and 0 <= min_compress_len <= _U32:
            min_compress = min_compress_len
        else:
            min_compress = _c_uint("min_compress_len", min_compress_len)
        level = -1 if type(compress_level) is int and compress_level == -1 else _compress_level(compress_level)
        kb = key.encode() if type(key) is str else _key_arg(key)
        if len(kb) > _MAX_KEY:
            raise ValueError(f"key length {len(kb)} too long, max is {_MAX_KEY}")
        if type(val) is bytes and self._om_native_ser:
            data, flags = val, 0
        else:
            data, flags = self._om_encode(val)
        if not kb:
            return False
        what = "memcached_" + op
        wire = self._om_wire(kb, what)
        if wire is None:
            return False
        if min_compress:
            data, flags = _deflate(data, flags, min_compress, level)
        mc = self._om_mc
        try:
            if op == "set":
                mc._store(_omclient._OP_SET, wire, data, exptime, flags, 0)  # Client.set, one frame less
                ok = True
            elif op == "add":
                ok = mc.add(wire, data, exptime, flags=flags)
            elif op == "replace":
                ok = mc.replace(wire, data, exptime, flags=flags)
            elif op == "append":
                ok = mc.append(wire, data)
            else:
                ok = mc.prepend(wire, data)
        except oexc.Error as e:
            raise _translate(e, self._om_binary, what) from e
        if self._om_noreply:
            return True
        if not ok and op == "replace" and self._om_settings.binary:
            # The binary protocol answers NOT_FOUND, which pylibmc raises.
            raise NotFound(_lead(what, NotFound.retcode, None))  # type: ignore[attr-defined]
        return ok

    def set(self, key: Union[str, bytes], val: Any, time: int = 0, min_compress_len: int = 0, compress_level: int = -1) -> bool:
        """Store val under key; True. ``time`` is memcached's expiration;
        values of at least ``min_compress_len`` bytes are zlib-compressed."""
        fe = self._om_mc._fe
        if (
            fe is not None and type(val) is bytes and type(time) is int and 0 <= time < (1 << 31)
            and type(min_compress_len) is int and min_compress_len == 0
            and type(compress_level) is int and -1 <= compress_level <= 9
            and self._om_native_ser and not self._om_namespace
        ):
            # The C write path: bytes stored as they are (flags 0), under a
            # key it takes as _om_wire would; the others go the long way.
            r = fe.store(_omclient._OP_SET, key, val, 0, time, 0, self._om_check)
            if r is not NotImplemented:
                if r & 0xFF not in _omclient._STORE_OUTCOMES:
                    e = self._om_mc._store_error(r, key.encode() if type(key) is str else key, val)
                    raise _translate(e, self._om_binary, "memcached_set") from e
                return True
        return self._om_store("set", key, val, time, min_compress_len, compress_level)

    def add(self, key: Union[str, bytes], val: Any, time: int = 0, min_compress_len: int = 0, compress_level: int = -1) -> bool:
        """Store val only if key does not exist; False if it does."""
        return self._om_store("add", key, val, time, min_compress_len, compress_level)

    def replace(self, key: Union[str, bytes], val: Any, time: int = 0, min_compress_len: int = 0, compress_level: int = -1) -> bool:
        """Store val only if key exists: False if not (text mode), NotFound
        raised in binary mode, as pylibmc does."""
        return self._om_store("replace", key, val, time, min_compress_len, compress_level)

    def append(self, key: Union[str, bytes], val: Any, time: int = 0, min_compress_len: int = 0, compress_level: int = -1) -> bool:
        """Append val's serialised bytes to key's value; False if key is missing."""
        return self._om_store("append", key, val, time, min_compress_len, compress_level)

    def prepend(self, key: Union[str, bytes], val: Any, time: int = 0, min_compress_len: int = 0, compress_level: int = -1) -> bool:
        """Prepend val's serialised bytes to key's value; False if key is missing."""
        return self._om_store("prepend", key, val, time, min_compress_len, compress_level)

    def cas(self, key: Union[str, bytes], val: Any, cas: int, time: int = 0) -> bool:
        """Store val if key's cas unique is still ``cas`` (from gets): True if
        stored, False if the item changed; NotFound if key is missing.

        Requires the "cas" behavior.  Values are not compressed.
        """
        kb = _key_arg(key)
        try:
            unique = operator.index(cas)
        except TypeError:
            raise TypeError(f"cas must be an integer, not {type(cas).__name__}") from None
        if not -(1 << 63) <= unique < (1 << 63):
            raise OverflowError("int too big to convert")
        exptime = self._om_exptime(_c_uint("time", time))
        if not self._om_settings.values["cas"]:
            raise ValueError("cas without cas behavior")
        kb = _normalized(kb)
        data, flags = self._om_encode(val)
        what = "memcached_cas"
        if not kb:
            raise BadKeyProvided(f"{_lead(what, BadKeyProvided.retcode, None)}: {_bad_key(kb)}")  # type: ignore[attr-defined]
        wire = self._om_wire(kb, what)
        if wire is None:
            raise BadKeyProvided(f"{_lead(what, BadKeyProvided.retcode, kb)}: verify_keys: {_bad_key(self._om_namespace + kb, True)}")  # type: ignore[attr-defined]
        unique &= _U64
        try:
            if unique == 0:
                # A zero unique is no condition: libmemcached's cas is then a replace.
                ok: Optional[bool] = self._om_mc.replace(wire, data, exptime, flags=flags) or None
            else:
                ok = self._om_mc.cas(wire, data, unique, exptime, flags=flags)
        except oexc.Error as e:
            raise _translate(e, self._om_binary, what, kb) from e
        if self._om_noreply:
            return True
        if ok is None:
            raise NotFound(_lead(what, NotFound.retcode, kb))  # type: ignore[attr-defined]
        return ok

    def delete(self, key: Union[str, bytes], /, *extra: object) -> bool:
        """Delete key: True if it existed, False if not.  Takes no time
        argument (pylibmc's issue #1: the TypeError is pylibmc's)."""
        if extra:
            raise TypeError(f"delete() takes exactly 1 argument ({1 + len(extra)} given)")
        kb = _normalized(key)
        if not kb:
            return False
        wire = self._om_wire(kb, "memcached_delete")
        if wire is None:
            return False
        try:
            return self._om_mc.delete(wire) or self._om_noreply
        except oexc.Error as e:
            raise _translate(e, self._om_binary, "memcached_delete", kb) from e

    def touch(self, key: Union[str, bytes], seconds: int, /) -> bool:
        """Set key's expiration: True if it exists, False if not."""
        kb = _normalized(key)
        exptime = self._om_exptime(_c_uint("seconds", seconds))
        if not kb:
            return False
        wire = self._om_wire(kb, "memcached_touch")
        if wire is None:
            return False
        try:
            return self._om_mc.touch(wire, exptime)
        except oexc.Error as e:
            raise _translate(e, self._om_binary, "memcached_touch", kb) from e

    # -- counters -------------------------------------------------------------

    def _om_delta(self, decr: bool, wires: Sequence[Tuple[bytes, bytes]], delta: int) -> Optional[int]:
        """Run incr/decr over (key, wire) pairs; raise pylibmc's summary error."""
        notfound = failed = 0
        last: Optional[Error] = None
        cause: Optional[Exception] = None
        result: Optional[int] = None
        op = self._om_mc.decr if decr else self._om_mc.incr
        for kb, wire in wires:
            if not wire:
                failed += 1
                last = BadKeyProvided()
                continue
            try:
                result = op(wire, delta)
            except oexc.Error as e:
                failed += 1
                cls, _ = _mapped_class(e, self._om_binary)
                last, cause = cls(), e
                continue
            if result is None:
                notfound += 1
        if self._om_noreply and not failed:
            # libmemcached returns without reading the new value (or the miss).
            return _U64
        if notfound or failed:
            n = notfound + failed
            if not failed:
                raise NotFound(f"{n} keys not found")
            cls2: Type[Error] = type(last) if failed == 1 and last is not None else Error
            raise cls2(f"{n} keys failed") from cause
        return result

    def _om_delta_done(self, v: Any, key: Union[str, bytes]) -> int:
        """A C-path incr/decr's result as _om_delta gives it for one key:
        the value, NotFound for a miss, the mapped error for a failure."""
        if type(v) is int:
            return v  # type: ignore[no-any-return]
        if v is None:
            raise NotFound("1 keys not found")
        e = self._om_mc._delta_error(v, key.encode() if type(key) is str else key)
        cls, _ = _mapped_class(e, self._om_binary)
        raise cls("1 keys failed") from e

    def _om_delta_key(self, key: object, what: str) -> Tuple[bytes, bytes]:
        kb = key if type(key) is bytes and len(key) <= _MAX_KEY else _normalized(key)
        if not kb:
            return kb, b""
        wire = self._om_wire(kb, what)
        if wire is None:
            return kb, b""
        return kb, wire

    def incr(self, key: Union[str, bytes], delta: int = 1, /) -> int:
        """Add delta (>= 0) to key's decimal value and return the new value
        (wrapping at 2**64); NotFound if key is missing."""
        if type(delta) is int and 0 <= delta < (1 << 31) and not self._om_namespace and not self._om_noreply:
            fe = self._om_mc._fe
            if fe is not None:  # the C path, for a key _om_wire would send unchanged
                v = fe.delta(False, key, delta, 0, False, 0, self._om_check)
                if v is not NotImplemented:
                    return self._om_delta_done(v, key)
        d = delta if type(delta) is int and 0 <= delta < (1 << 31) else _c_int("delta", delta)
        kb = key.encode() if type(key) is str else _key_arg(key)
        if d < 0:
            raise ValueError("delta must be positive")
        r = self._om_delta(False, [self._om_delta_key(kb, "memcached_increment")], d)
        assert r is not None
        return r

    def decr(self, key: Union[str, bytes], delta: int = 1, /) -> int:
        """Subtract delta (>= 0) from key's value, stopping at 0; return it.
        NotFound if key is missing."""
        if type(delta) is int and 0 <= delta < (1 << 31) and not self._om_namespace and not self._om_noreply:
            fe = self._om_mc._fe
            if fe is not None:  # the C path, for a key _om_wire would send unchanged
                v = fe.delta(True, key, delta, 0, False, 0, self._om_check)
                if v is not NotImplemented:
                    return self._om_delta_done(v, key)
        d = delta if type(delta) is int and 0 <= delta < (1 << 31) else _c_int("delta", delta)
        kb = key.encode() if type(key) is str else _key_arg(key)
        if d < 0:
            raise ValueError("delta must be positive")
        r = self._om_delta(True, [self._om_delta_key(kb, "memcached_decrement")], d)
        assert r is not None
        return r

    def incr_multi(self, keys: Sequence[Union[str, bytes]], key_prefix: Optional[Union[str, bytes]] = None, delta: int = 1) -> None:
        """Increment every key by delta; return None.  Raises NotFound ("N
        keys not found") if some were missing (the others are incremented)."""
        if isinstance(keys, Mapping):
            raise TypeError(f"{type(keys).__name__} is not a sequence")
        prefix = _prefix_arg(key_prefix)
        d = _c_uint("delta", delta)
        pairs = []
        for k in keys:
            kb = _normalized(k)
            pairs.append(self._om_delta_key(prefix + kb, "memcached_increment"))
        self._om_delta(False, pairs, d)

    # -- multi writes -----------------------------------------------------------

    def _om_store_multi(
        self,
        op: str,
        mapping: Mapping[Any, Any],
        time: object,
        key_prefix: object,
        min_compress_len: object,
        compress_level: object,
    ) -> List[Any]:
        if not isinstance(mapping, dict):
            raise TypeError(f"argument 1 must be dict, not {type(mapping).__name__}")
        exptime = self._om_exptime(_c_uint("time", time))
        prefix = _prefix_arg(key_prefix)
        min_compress = _c_uint("min_compress_len", min_compress_len)
        level = _compress_level(compress_level)
        what = f"memcached_{op}_multi"
        if op == "set" and not prefix and not self._om_namespace and self._om_native_ser:
            plain = self._om_plain_set_multi(mapping, exptime, min_compress, level, what)
            if plain is not None:
                return plain
        entries: List[Tuple[Any, Optional[bytes]]] = []  # (key as given, wire key or None: not sent)
        batch: List[Tuple[bytes, bytes, int]] = []
        for k, v in mapping.items():
            kb = _normalized(k)
            full = prefix + kb if prefix else kb
            if len(full) > _MAX_KEY:
                raise ValueError(f"key length {len(full)} too long, max is {_MAX_KEY}")
            data, flags = self._om_encode(v)
            wire = self._om_wire(full, what) if full else None
            entries.append((k, wire))
            if wire is not None:
                data, flags = _deflate(data, flags, min_compress, level)
                batch.append((wire, data, flags))
        errors: Dict[bytes, Exception] = {}
        bad: List[bytes] = []
        try:
            if op == "set":
                if batch:
                    bad = self._om_mc.set_multi_items(batch, exptime, errors=errors)
            else:
                for wire, data, flags in batch:
                    try:
                        if not self._om_mc.add(wire, data, exptime, flags=flags):
                            bad.append(wire)
                    except oexc.Error as e:
                        errors[wire] = e
                        bad.append(wire)
        except oexc.Error as e:
            raise _translate(e, self._om_binary, what) from e
        hard = [e for e in errors.values() if not isinstance(e, (oexc.NotStoredError, oexc.KeyExistsError))]
        if hard:
            raise _translate(hard[0], self._om_binary, what) from hard[0]
        bad_set = set() if self._om_noreply else set(bad)
        return [k for k, wire in entries if wire is None or wire in bad_set]

    def _om_plain_set_multi(
        self, mapping: Mapping[Any, Any], exptime: int, min_compress: int, level: int, what: str
    ) -> Optional[List[Any]]:
        """set_multi of plain str keys and bytes values, which pylibmc stores as
        they are (flags 0): sent as they are, in one call.  None when the items
        are not all such (or some would be compressed): the caller takes the
        per-item path."""
        klist = list(mapping)
        values = list(mapping.values())
        if not plain_text_keys(klist) or set(map(type, values)) != {bytes}:
            return None
        if level and min_compress and max(map(len, values)) >= min_compress:
            return None
        errors: Dict[Any, Exception] = {}
        try:
            bad = self._om_mc.set_multi(mapping, exptime, errors=errors)
        except oexc.Error as e:
            raise _translate(e, self._om_binary, what) from e
        hard = [e for e in errors.values() if not isinstance(e, (oexc.NotStoredError, oexc.KeyExistsError))]
        if hard:
            raise _translate(hard[0], self._om_binary, what) from hard[0]
        return [] if self._om_noreply else bad

    def set_multi(
        self,
        keys: Dict[Any, Any],
        time: int = 0,
        key_prefix: Optional[Union[str, bytes]] = None,
        min_compress_len: int = 0,
        compress_level: int = -1,
    ) -> List[Any]:
        """Store every item of the dict ``keys`` (pipelined); return the list
        of keys that were not stored.  Raises on server errors."""
        return self._om_store_multi("set", keys, time, key_prefix, min_compress_len, compress_level)

    def add_multi(
        self,
        keys: Dict[Any, Any],
        time: int = 0,
        key_prefix: Optional[Union[str, bytes]] = None,
        min_compress_len: int = 0,
        compress_level: int = -1,
    ) -> List[Any]:
        """add every item of the dict ``keys``; return the keys not stored
        (those that already existed)."""
        return self._om_store_multi("add", keys, time, key_prefix, min_compress_len, compress_level)

    def delete_multi(self, keys: Iterable[Union[str, bytes]], key_prefix: Optional[Union[str, bytes]] = None) -> bool:
        """Delete every key (pipelined): True if all existed, else False."""
        if isinstance(keys, dict):
            raise TypeError("keys must be a sequence, not a mapping")
        prefix = _prefix_arg(key_prefix)
        wires: List[bytes] = []
        all_ok = True
        for k in keys:
            kb = _normalized(k)
            full = prefix + kb if prefix else kb
            if len(full) > _MAX_KEY:
                raise ValueError(f"key length {len(full)} too long, max is {_MAX_KEY}")
            if not full:
                all_ok = False
                continue
            wire = self._om_wire(full, "memcached_delete")
            if wire is None:
                all_ok = False
                continue
            wires.append(wire)
        if not wires:
            return all_ok
        errors: Dict[bytes, Exception] = {}
        try:
            not_deleted = self._om_mc.delete_multi(wires, errors=errors)
        except oexc.Error as e:
            raise _translate(e, self._om_binary, "memcached_delete") from e
        for err in errors.values():
            if not isinstance(err, oexc.NotFoundError):
                raise _translate(err, self._om_binary, "memcached_delete") from err
        return all_ok and (not not_deleted or self._om_noreply)

    # -- servers ----------------------------------------------------------------

    def _om_order(self) -> List[int]:
        """Server indexes (into the list given) in libmemcached's order: with
        _sort_hosts it sorts its server array by host name, then port."""
        n = len(self._om_servers)
        if not self._om_settings.values["_sort_hosts"]:
            return list(range(n))

        def sort_key(i: int) -> Tuple[bytes, int]:
            stype, host, port, _ = self._om_servers[i]
            if stype == server_type_unix:
                return host.encode(), 0
            return (host or "localhost").encode(), port or 11211

        return sorted(range(n), key=sort_key)

    def hash(self, key: Union[str, bytes], /) -> int:
        """Return the index of the server key maps to (libmemcached's
        memcached_generate_hash: with _sort_hosts, an index into the sorted
        server list)."""
        kb = _key_arg(key)
        i = max(self._om_mc.server_for_key(kb), 0)
        order = self._om_order()
        return order.index(i)

    def get_stats(self, arg: Optional[str] = None, /) -> List[Tuple[bytes, Dict[str, bytes]]]:
        """Return [(b"host:port (index)", {stat: value bytes})] per server.

        ``arg`` is a stats group ("items", "slabs", "settings", ...).
        Raises SomeErrors when a server cannot be reached.
        """
        if arg is not None and not isinstance(arg, str):
            raise TypeError(f"get_stats() argument 1 must be str, not {type(arg).__name__}")
        try:
            stats = self._om_mc.stats(arg or "")
            addrs = self._om_mc.server_addresses()
        except ValueError as e:
            raise Error(f"error {_RC_INVALID_ARGUMENTS} from get_stats: {e}") from e
        except oexc.Error as e:
            raise _translate(e, self._om_binary, "get_stats") from e
        out: List[Tuple[bytes, Dict[str, bytes]]] = []
        for i, j in enumerate(self._om_order()):
            srv, addr = self._om_servers[j], addrs[j]
            st = stats.get(addr)
            if isinstance(st, Exception):
                if isinstance(st, (oexc.ConnectionError, oexc.NoServersError)):
                    raise SomeErrors(f"error {SomeErrors.retcode} from get_stats: {addr}: {st}") from st  # type: ignore[attr-defined]
                raise Error(f"error {_RC_INVALID_ARGUMENTS} from get_stats: {addr}: {st}") from st
            out.append((_stats_label(srv, i), {k: v.encode() for k, v in (st or {}).items()}))
        return out

    def flush_all(self, time: Optional[int] = None) -> bool:
        """Invalidate every item on every server (after ``time`` seconds);
        True.  Raises SomeErrors when a server failed."""
        if time is not None and not isinstance(time, int):
            raise TypeError(f"flush_all() argument 1 must be int, not {type(time).__name__}")
        delay = max(int(time or 0), 0) & _U32
        try:
            return self._om_mc.flush_all(delay)
        except oexc.Error as e:
            raise SomeErrors(f"error {SomeErrors.retcode} from flush_all: {e}") from e  # type: ignore[attr-defined]

    def disconnect_all(self) -> None:
        """Close every connection; the client reconnects on its next command."""
        self._om_rebuild()

    # -- behaviors -----------------------------------------------------------

    def _om_apply(self, behaviors: Mapping[str, object], rebuild: bool = True) -> None:
        st = self._om_settings
        changed = False
        try:
            for name in all_behaviors:
                if name not in behaviors:
                    continue
                v = _c_long(name, behaviors[name])
                st.set(name, v)
                changed = changed or name in _ENGINE_BEHAVIORS
            if "namespace" in behaviors:
                ns = behaviors["namespace"]
                if not isinstance(ns, (bytes, str)):
                    raise TypeError(f"namespace must be bytes or str, not {type(ns).__name__}")
                nsb = _key_arg(ns)
                if len(nsb) > _MAX_KEY or (not st.binary and _text_key_bad(nsb)):
                    raise ValueError(f"bad key provided: {nsb!r}")
                self._om_namespace = nsb
        finally:
            # Like libmemcached, behaviors applied before a failing one stay.
            if rebuild and changed:
                self._om_rebuild()
        if rebuild:
            self._om_check_namespace()
        self._om_key_check()

    def _om_key_check(self) -> None:
        """Note the key check of the C read path (omcache._fastpath
        get_plain): 0 binary, 1 text, 2 text with verify_keys."""
        st = self._om_settings
        self._om_check = 0 if st.binary else 1 + bool(st.values["verify_keys"])

    def _om_check_namespace(self) -> None:
        if self._om_namespace and not self._om_settings.values["_hash_with_prefix_key"] and len(self._om_servers) > 1:
            raise NotSupportedError(
                "a namespace with several servers needs _hash_with_prefix_key=1: omcache places keys "
                "by the key as sent, libmemcached by the key without its namespace"
            )

    def get_behaviors(self) -> Dict[str, int]:
        """Return every behavior's current value, numerically."""
        return self._om_settings.read()

    def set_behaviors(self, behaviors: Mapping[str, object]) -> None:
        """Apply numeric behavior values (see pylibmc.Client.set_behaviors for names)."""
        self._om_apply(behaviors)

    # -- copies ------------------------------------------------------------------

    def clone(self) -> "client":
        """Return an independent client of the same class with the same
        servers and settings (and its own connections)."""
        other = type(self).__new__(type(self))
        other._om_settings = self._om_settings.copy()
        other._om_codecs()
        other._om_namespace = self._om_namespace
        other._om_servers = list(self._om_servers)
        other._om_security = dict(self._om_security)
        other._om_mc = other._om_build()
        other._om_key_check()
        return other


__all__ = [
    "client", "exceptions", "Error", "MemcachedError", "CacheMiss", "DecompressedTooLarge", "PickleRefused",
    *[n for n, _, _ in _MC_ERRORS],
    "all_behaviors", "all_callbacks", "callback_namespace",
    "__version__", "libmemcached_version", "libmemcached_version_hex",
    "support_sasl", "support_compression", "omcache_version",
    "server_type_tcp", "server_type_udp", "server_type_unix",
    *[n for n in list(globals()) if n.startswith(("hash_", "distribution_"))],
]

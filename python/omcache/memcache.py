"""python-memcached 1.62's API on omcache's engine: ``import omcache.memcache as memcache``.

``Client`` keeps python-memcached's signatures, return values and value
flags, so code written for it, and caches shared with it, keep working:

- keys are checked as python-memcached checks them (``MemcachedKeyError``
  and its subclasses, also reachable as ``Client.MemcachedKeyError`` ...);
- values are stored with python-memcached's flags (``omcache.serde.
  PythonMemcachedSerde``): bytes 0, str 0x10, int 0x02, everything else a
  pickle at ``pickleProtocol`` (0 by default), 0x08 when compressed;
- keys are placed on servers as python-memcached places them (crc32-based
  buckets, weights, rehashing around dead servers) so both clients can share
  a cluster;
- failures are silent where python-memcached's are: a dead server makes
  ``get`` return None and ``set`` return 0; a value over
  ``server_max_value_length`` is not sent and ``set`` returns 0; a value the
  server refuses makes ``set`` return False.  Such failures are logged to
  the "omcache" logger (DEBUG for misses of dead servers, WARNING for writes).

Deliberate differences (python-memcached bugs not reproduced):

- the client is one object shared by all threads, not a ``threading.local``
  (the engine is thread-safe), so ``cas_ids`` are shared as well;
- ``get_slabs`` works (python-memcached 1.62 raises TypeError on Python 3);
- ``set_multi`` with an over-size value does not stall and mark the server
  dead (python-memcached waits for a reply that never comes);
- ``key_encoder`` is applied once per key (python-memcached applies it twice
  in the multi-key calls);
- ``servers`` given as one string is one server (python-memcached iterates
  over its characters).
"""

from __future__ import annotations

import binascii
import logging
import pickle
import re
import zlib
from datetime import timedelta
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _messages
from . import exceptions as exc
from .client import Client as _EngineClient
from .client import Item, plain_text_keys
from .pyclient import client_supports
from .serde import FLAG_INTEGER, FLAG_LONG, FLAG_PICKLE, FLAG_TEXT, FLAG_ZLIB, PythonMemcachedSerde, SerdeDecodeError

__all__ = [
    "Client",
    "MemcachedKeyError",
    "MemcachedKeyLengthError",
    "MemcachedKeyCharacterError",
    "MemcachedKeyNoneError",
    "MemcachedKeyTypeError",
    "MemcachedStringEncodingError",
    "SERVER_MAX_KEY_LENGTH",
    "SERVER_MAX_VALUE_LENGTH",
    "cmemcache_hash",
    "valid_key_chars_re",
]

log = logging.getLogger("omcache")

#: The longest key python-memcached lets through (module default of
#: ``server_max_key_length``, read when a Client is created).
SERVER_MAX_KEY_LENGTH = 250
#: The largest value python-memcached sends (module default of
#: ``server_max_value_length``); larger values are silently not stored.
SERVER_MAX_VALUE_LENGTH = 1024 * 1024

_DEAD_RETRY = 30
_SOCKET_TIMEOUT = 3
# "No timeout" (socket_timeout=None) is bounded: every engine call has a deadline.
_LONGEST_TIMEOUT = 86400.0

# memcached reads an expiration above 30 days as a unix time, and one before
# it started as "already expired": what a negative time means in the text
# protocol, which python-memcached passes through.  (1970-01-31T00:00:01Z)
_ALREADY_EXPIRED = 30 * 24 * 3600 + 1

#: What a checked key may consist of: printable ASCII but space, and bytes >= 0x80.
valid_key_chars_re = re.compile(b"[\x21-\x7e\x80-\xff]+$")


def cmemcache_hash(key: bytes) -> int:
    """python-memcached's server hash: bits 16-30 of the CRC-32 of key."""
    return ((binascii.crc32(key) & 0xFFFFFFFF) >> 16) & 0x7FFF


class MemcachedKeyError(exc.Error):
    """A key python-memcached would refuse (base of the key errors)."""


class MemcachedKeyLengthError(MemcachedKeyError):
    """The key is longer than ``server_max_key_length``."""


class MemcachedKeyCharacterError(MemcachedKeyError):
    """The key is empty or contains spaces or control characters."""


class MemcachedKeyNoneError(MemcachedKeyError):
    """The key is None."""


class MemcachedKeyTypeError(MemcachedKeyError):
    """The key is neither str nor bytes."""


class MemcachedStringEncodingError(exc.Error):
    """Kept for python-memcached compatibility; never raised (str keys are UTF-8 encoded)."""


AnyKey = Any  # str, bytes, (hash, key) tuples; int keys in the multi-key calls
Servers = Union[str, Sequence[Union[str, Tuple[str, int]]]]

_HOST_RES = (
    re.compile(r"^(?P<proto>unix):(?P<path>.*)$"),
    re.compile(r"^(?P<proto>inet6):\[(?P<host>[^\[\]]+)\](:(?P<port>[0-9]+))?$"),
    re.compile(r"^(?P<proto>inet):(?P<host>[^:]+)(:(?P<port>[0-9]+))?$"),
    re.compile(r"^(?P<host>[^:]+)(:(?P<port>[0-9]+))?$"),
)


class Host:
    """One server of a Client, parsed from python-memcached's syntax:
    "host[:port]", "inet:host[:port]", "inet6:[addr][:port]", "unix:/path",
    optionally as a ("spec", weight) tuple."""

    def __init__(self, spec: Union[str, Tuple[str, int]]) -> None:
        if isinstance(spec, tuple):
            spec, self.weight = spec
        else:
            self.weight = 1
        m = None
        for rx in _HOST_RES:
            m = rx.match(spec)
            if m:
                break
        if not m:
            raise ValueError('Unable to parse connection string: "%s"' % spec)
        d = m.groupdict()
        #: "unix", "inet6" or "inet".
        self.family = d.get("proto") or "inet"
        self.ip = ""
        self.port = 0
        if self.family == "unix":
            self.address: Union[str, Tuple[str, int]] = d["path"]
        else:
            self.ip = d["host"]
            self.port = int(d.get("port") or 11211)
            self.address = (self.ip, self.port)

    @property
    def engine_spec(self) -> str:
        """The server spec omcache.Client understands."""
        if self.family == "unix":
            return str(self.address)
        if self.family == "inet6":
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"

    @property
    def stats_name(self) -> str:
        """The server's name in ``get_stats`` results, as python-memcached prints it."""
        if self.family == "inet":
            return f"{self.ip}:{self.port} ({self.weight})"
        if self.family == "inet6":
            return f"[{self.ip}]:{self.port} ({self.weight})"
        return f"unix:{self.address} ({self.weight})"

    def __str__(self) -> str:
        if self.family == "inet":
            return f"inet:{self.ip}:{self.port}"
        if self.family == "inet6":
            return f"inet6:[{self.ip}]:{self.port}"
        return f"unix:{self.address}"

    def __repr__(self) -> str:
        return f"<Host {self}>"


# Engine outcomes python-memcached reports as a dead or unreachable server:
# the call returns its "no server" value (None or 0).
_UNREACHABLE = (exc.ConnectionError, exc.NoServersError, exc.ProtocolError, exc.InvalidKeyError, exc.ClientClosedError)



def _same_key(key: Any) -> Any:
    """The default key_encoder: the key unchanged."""
    return key

class Client:
    """python-memcached's ``memcache.Client`` (see the module docstring).

    The parameters are python-memcached 1.62's; ``dead_retry`` and
    ``socket_timeout`` are seconds.  Extra keyword arguments are options of
    ``omcache.Client`` (for example ``distribution`` to override
    python-memcached's placement).
    """

    _FLAG_PICKLE = FLAG_PICKLE
    _FLAG_INTEGER = FLAG_INTEGER
    _FLAG_LONG = FLAG_LONG
    _FLAG_COMPRESSED = FLAG_ZLIB
    _FLAG_TEXT = FLAG_TEXT

    _SERVER_RETRIES = 10

    MemcachedKeyError = MemcachedKeyError
    MemcachedKeyLengthError = MemcachedKeyLengthError
    MemcachedKeyCharacterError = MemcachedKeyCharacterError
    MemcachedKeyNoneError = MemcachedKeyNoneError
    MemcachedKeyTypeError = MemcachedKeyTypeError
    MemcachedStringEncodingError = MemcachedStringEncodingError

    def __init__(
        self,
        servers: Servers,
        debug: int = 0,
        pickleProtocol: int = 0,
        pickler: Callable[..., Any] = pickle.Pickler,
        unpickler: Callable[..., Any] = pickle.Unpickler,
        compressor: Callable[[bytes], bytes] = zlib.compress,
        decompressor: Callable[[bytes], bytes] = zlib.decompress,
        pload: Optional[Callable[[Any], Any]] = None,
        pid: Optional[Callable[[Any], Any]] = None,
        server_max_key_length: Optional[int] = None,
        server_max_value_length: Optional[int] = None,
        dead_retry: float = _DEAD_RETRY,
        socket_timeout: Optional[float] = _SOCKET_TIMEOUT,
        cache_cas: bool = False,
        flush_on_reconnect: int = 0,
        check_keys: bool = True,
        key_encoder: Optional[Callable[[Any], Any]] = None,
        **client_options: Any,
    ) -> None:
        self.debug = debug
        self.dead_retry = dead_retry
        self.socket_timeout = socket_timeout
        if flush_on_reconnect and not client_supports("flush_on_reconnect"):
            raise NotImplementedError(
                "flush_on_reconnect needs omcache.Client's 'flush_on_reconnect' option, "
                "which this build of the engine does not offer yet"
            )
        self.flush_on_reconnect = flush_on_reconnect
        self._client_options = dict(client_options)
        self._engine: Optional[_EngineClient] = None
        #: Calls per command name, as python-memcached counts them.
        self.stats: Dict[str, int] = {}
        self.cache_cas = cache_cas
        self.cas_ids: Dict[bytes, int] = {}
        self.do_check_key = check_keys
        self._serde = PythonMemcachedSerde(
            pickle_protocol=pickleProtocol,
            pickler=pickler,
            unpickler=unpickler,
            compressor=compressor,
            decompressor=decompressor,
            persistent_id=pid,
            persistent_load=pload,
        )
        self.server_max_key_length = SERVER_MAX_KEY_LENGTH if server_max_key_length is None else server_max_key_length
        self.server_max_value_length = (
            SERVER_MAX_VALUE_LENGTH if server_max_value_length is None else server_max_value_length
        )
        self.key_encoder: Callable[[Any], Any] = key_encoder if key_encoder is not None else _same_key
        self.set_servers(servers)

    # -- serialisation settings (python-memcached's attributes) -------------

    @property
    def pickleProtocol(self) -> int:
        """The pickle protocol for values that are not bytes, str or int."""
        return int(self._serde.pickle_protocol)

    @pickleProtocol.setter
    def pickleProtocol(self, value: int) -> None:
        self._serde.pickle_protocol = value

    @property
    def pickler(self) -> Callable[..., Any]:
        """The Pickler class (called as pickler(file, protocol=...))."""
        return self._serde.pickler

    @pickler.setter
    def pickler(self, value: Callable[..., Any]) -> None:
        self._serde = PythonMemcachedSerde(
            pickle_protocol=self._serde.pickle_protocol,
            pickler=value,
            unpickler=self._serde.unpickler,
            compressor=self._serde.compressor,
            decompressor=self._serde.decompressor,
            persistent_id=self._serde.persistent_id,
            persistent_load=self._serde.persistent_load,
        )

    @property
    def picklerIsKeyword(self) -> bool:
        """Whether the pickler takes ``protocol`` as a keyword argument."""
        return self._serde._pickler_keyword

    @property
    def unpickler(self) -> Callable[..., Any]:
        """The Unpickler class (called as unpickler(file))."""
        return self._serde.unpickler

    @unpickler.setter
    def unpickler(self, value: Callable[..., Any]) -> None:
        self._serde.unpickler = value

    @property
    def compressor(self) -> Callable[[bytes], bytes]:
        """The compression function (zlib.compress)."""
        return self._serde.compressor

    @compressor.setter
    def compressor(self, value: Callable[[bytes], bytes]) -> None:
        self._serde.compressor = value

    @property
    def decompressor(self) -> Callable[[bytes], bytes]:
        """The decompression function (zlib.decompress)."""
        return self._serde.decompressor

    @decompressor.setter
    def decompressor(self, value: Callable[[bytes], bytes]) -> None:
        self._serde.decompressor = value

    @property
    def persistent_load(self) -> Optional[Callable[[Any], Any]]:
        """The unpickler's persistent_load function (``pload``)."""
        return self._serde.persistent_load

    @persistent_load.setter
    def persistent_load(self, value: Optional[Callable[[Any], Any]]) -> None:
        self._serde.persistent_load = value

    @property
    def persistent_id(self) -> Optional[Callable[[Any], Any]]:
        """The pickler's persistent_id function (``pid``)."""
        return self._serde.persistent_id

    @persistent_id.setter
    def persistent_id(self, value: Optional[Callable[[Any], Any]]) -> None:
        self._serde.persistent_id = value

    # -- servers ------------------------------------------------------------

    def set_servers(self, servers: Servers) -> None:
        """Use these servers: "host:port" strings or ("host:port", weight) tuples."""
        if isinstance(servers, str):
            servers = [servers]
        hosts = [Host(s) for s in servers]
        old = self._engine
        self.servers = hosts
        self._engine = self._make_engine(hosts) if hosts else None
        if old is not None:
            old.close()

    def _make_engine(self, hosts: List[Host]) -> _EngineClient:
        kw: Dict[str, Any] = {}
        timeout = _LONGEST_TIMEOUT if self.socket_timeout is None else min(float(self.socket_timeout), _LONGEST_TIMEOUT)
        kw["connect_timeout"] = timeout
        kw["io_timeout"] = timeout
        if client_supports("distribution"):
            kw["distribution"] = "python_memcache"
        weights = [h.weight for h in hosts]
        if any(w != 1 for w in weights):
            if not client_supports("weights"):
                raise NotImplementedError("server weights need omcache.Client's 'weights' option")
            kw["weights"] = weights
        if client_supports("reconnect_timeout"):
            # python-memcached retries a dead server dead_retry seconds after
            # its failure (0: at once, which the engine spells 1 ms).
            kw["reconnect_timeout"] = min(max(0.001, float(self.dead_retry)), _LONGEST_TIMEOUT)
        if client_supports("failure_limit"):
            # and marks it dead at its first failure, moving its keys on
            kw["failure_limit"] = 1
        if self.flush_on_reconnect:
            kw["flush_on_reconnect"] = True
        # python-memcached speaks the classic text protocol.
        kw["protocol"] = "text"
        kw.update(self._client_options)
        return _EngineClient([h.engine_spec for h in hosts], **kw)

    def _c(self) -> _EngineClient:
        if self._engine is None:
            raise exc.NoServersError("no servers")
        return self._engine

    def forget_dead_hosts(self) -> None:
        """Reset every server to "alive" (a fresh engine client forgets failures)."""
        self.set_servers([(str(h), h.weight) for h in self.servers])

    def disconnect_all(self) -> None:
        """Close all connections; the next command reconnects."""
        self.forget_dead_hosts()

    def quit_all(self) -> None:
        """Close all connections (python-memcached sends "quit" first)."""
        self.disconnect_all()

    def debuglog(self, str: str) -> None:
        """Log a message at DEBUG to the "omcache" logger when ``debug`` is set."""
        if self.debug:
            log.debug("MemCached: %s", str)

    def _statlog(self, func: str) -> None:
        self.stats[func] = self.stats.get(func, 0) + 1

    def reset_cas(self) -> None:
        """Forget the cas ids remembered by gets() (with ``cache_cas=True``)."""
        self.cas_ids = {}

    # -- keys ---------------------------------------------------------------

    @staticmethod
    def _encode_key(key: Any) -> Any:
        if isinstance(key, tuple):
            if isinstance(key[1], str):
                return (key[0], key[1].encode("utf8"))
        elif isinstance(key, str):
            return key.encode("utf8")
        return key

    def check_key(self, key: Any, key_extra_len: int = 0) -> None:
        """Raise a MemcachedKeyError subclass if python-memcached would refuse key
        (already encoded to bytes): None, not bytes, too long, or with spaces
        or control characters (an empty key counts as the latter)."""
        if isinstance(key, tuple):
            key = key[1]
        if key is None:
            raise MemcachedKeyNoneError("Key is None")
        if key == "":
            if key_extra_len == 0:
                raise MemcachedKeyNoneError("Key is empty")
            return
        if not isinstance(key, bytes):
            raise MemcachedKeyTypeError("Key must be a binary string")
        # python-memcached's messages, then omcache's: the key and the reason.
        if self.server_max_key_length != 0 and len(key) + key_extra_len > self.server_max_key_length:
            why = _messages.invalid_key_message(key, max_length=self.server_max_key_length - key_extra_len)
            extra = f" (the key_prefix takes {key_extra_len} of {self.server_max_key_length})" if key_extra_len else ""
            raise MemcachedKeyLengthError(f"Key length is > {self.server_max_key_length}: {why}{extra}")
        if not valid_key_chars_re.match(key):
            why = _messages.bad_key_reason(key, max_length=1 << 30) or "it does not match python-memcached's key pattern"
            raise MemcachedKeyCharacterError(f"Control/space characters not allowed (key={_messages.key_repr(key)}): {why}")

    def _key(self, key: Any) -> bytes:
        """Encode and check a single-key command's key; return the wire key."""
        key = self._encode_key(self.key_encoder(key))
        if self.do_check_key:
            self.check_key(key)
        return self._placeable(key)

    def _placeable(self, key: Any) -> bytes:
        if isinstance(key, tuple):
            # python-memcached's (hash, key): the caller picks the server.
            # With one server there is nothing to pick.
            if len(self.servers) > 1:
                raise NotImplementedError(
                    "(server_hash, key) tuple keys on several servers need explicit-hash placement "
                    "in omcache.Client, which this build of the engine does not offer yet"
                )
            key = key[1]
        if not isinstance(key, bytes):
            raise TypeError(f"key must be str or bytes, not {type(key).__name__}")
        return key

    def _prefixed(self, keys: Iterable[Any], key_prefix: Any) -> Dict[bytes, Any]:
        """Map wire keys (prefix + key) to the caller's keys, checking each."""
        prefix = self._encode_key(key_prefix)
        extra = len(prefix)
        if prefix and self.do_check_key:
            self.check_key(prefix)
        out: Dict[bytes, Any] = {}
        for orig in keys:
            if isinstance(orig, tuple):
                k = self._encode_key(self.key_encoder(orig[1]))
            else:
                k = self._encode_key(self.key_encoder(orig))
            if not isinstance(k, bytes):
                k = str(k).encode("utf8")  # int keys, e.g. database ids
            if orig is None:
                self.check_key(orig, key_extra_len=extra)
            if self.do_check_key:
                self.check_key(k, key_extra_len=extra)
            wire = prefix + k
            self._placeable((0, wire) if isinstance(orig, tuple) else wire)
            out[wire] = orig
        return out

    @staticmethod
    def _exptime(time: Any) -> int:
        """python-memcached formats time with "%d": floats truncate, negatives expire at once."""
        if isinstance(time, float):
            time = int(time)
        if isinstance(time, int) and not isinstance(time, bool) and time < 0:
            return _ALREADY_EXPIRED
        return time  # type: ignore[no-any-return]

    # -- values -------------------------------------------------------------

    def _val_to_store_info(self, val: Any, min_compress_len: int) -> Optional[Tuple[int, bytes]]:
        """Return (flags, data), or None if the data is over server_max_value_length."""
        data, flags = self._serde.serialize(b"", val, min_compress_len=min_compress_len)
        if self.server_max_value_length != 0 and len(data) > self.server_max_value_length:
            log.warning("omcache.memcache: value of %d bytes not stored (server_max_value_length %d)",
                        len(data), self.server_max_value_length)
            return None
        return flags, data

    def _recv_value(self, key: bytes, it: Item) -> Any:
        try:
            return self._serde.deserialize(key, it.value, it.flags)
        except SerdeDecodeError as e:
            raise e.unicode_error() from None  # python-memcached's exact class

    # -- reads --------------------------------------------------------------

    def _get(self, cmd: str, key: Any, default: Any = None) -> Any:
        wire = self._key(key)
        if self._engine is None:
            return None
        self._statlog(cmd)
        try:
            it = self._engine.get_item(wire)
        except _UNREACHABLE as e:
            self.debuglog(f"{cmd} {wire!r}: {e}")
            log.debug("omcache.memcache: %s %r: %s", cmd, wire, e)
            return None
        except exc.CommandError as e:
            # python-memcached takes any reply but VALUE for a miss
            log.warning("omcache.memcache: %s %r: %s", cmd, wire, e)
            return default
        if it is None:
            return default
        if cmd == "gets" and self.cache_cas:
            self.cas_ids[wire] = it.cas
        return self._recv_value(wire, it)

    def get(self, key: AnyKey, default: Any = None) -> Any:
        """Return key's value; ``default`` on a miss, None if the server is down."""
        return self._get("get", key, default)

    def gets(self, key: AnyKey) -> Any:
        """get() that remembers key's cas id for cas() when ``cache_cas`` is set."""
        return self._get("gets", key)

    def get_multi(self, keys: Iterable[AnyKey], key_prefix: Union[str, bytes] = "") -> Dict[Any, Any]:
        """Return {key: value} for the keys found, in one pipelined call.

        ``key_prefix`` is prepended on the wire and absent from the result;
        int keys are sent as their decimal text.  Keys of dead servers are
        left out.
        """
        self._statlog("get_multi")
        klist = keys if type(keys) is list else list(keys)
        plain = not key_prefix and self.key_encoder is _same_key and plain_text_keys(klist)
        # Plain keys pass every check as they are and come back as given.
        wire: Dict[Any, Any] = {} if plain else self._prefixed(klist, key_prefix)
        if not klist or not (plain or wire) or self._engine is None:
            return {}
        errors: Dict[Any, Exception] = {}
        try:
            hits, values, flags = self._engine.get_multi_raw(klist if plain else list(wire), errors=errors)
        except _UNREACHABLE as e:
            self.debuglog(f"get_multi: {e}")
            return {}
        for k, err in errors.items():
            if not isinstance(err, exc.NotFoundError):
                self.debuglog(f"get_multi {k!r}: {err}")
        if plain:
            if not any(flags):  # bare bytes: nothing to decode
                return dict(zip(hits, values))
            de = self._serde.deserialize
            try:
                return {k: de(k.encode(), v, f) for k, v, f in zip(hits, values, flags)}
            except SerdeDecodeError as e:
                raise e.unicode_error() from None  # python-memcached's exact class
        de = self._serde.deserialize
        try:
            return {wire[k]: de(k, v, f) for k, v, f in zip(hits, values, flags)}
        except SerdeDecodeError as e:
            raise e.unicode_error() from None

    # -- writes -------------------------------------------------------------

    def _set(self, cmd: str, key: Any, val: Any, time: Any, min_compress_len: int, noreply: bool) -> Union[bool, int]:
        return self._store(cmd, self._key(key), val, time, min_compress_len, noreply)

    def _store(self, cmd: str, wire: bytes, val: Any, time: Any, min_compress_len: int, noreply: bool) -> Union[bool, int]:
        if self._engine is None:
            return 0
        self._statlog(cmd)
        if cmd == "cas" and wire not in self.cas_ids:
            return self._store("set", wire, val, time, min_compress_len, noreply)
        info = self._val_to_store_info(val, min_compress_len)
        if info is None:
            return 0
        flags, data = info
        c = self._engine
        time = self._exptime(time)
        try:
            if cmd == "set":
                ok: Optional[bool] = c.set(wire, data, time, flags=flags)
            elif cmd == "add":
                ok = c.add(wire, data, time, flags=flags)
            elif cmd == "replace":
                ok = c.replace(wire, data, time, flags=flags)
            elif cmd == "append":
                ok = c.append(wire, data)
            elif cmd == "prepend":
                ok = c.prepend(wire, data)
            else:
                ok = c.cas(wire, data, self.cas_ids[wire], time, flags=flags)
        except exc.CommandError as e:
            # The server answered with a refusal (too large, out of memory, ...).
            log.warning("omcache.memcache: %s %r not stored: %s", cmd, wire, e)
            return True if noreply else False
        except _UNREACHABLE as e:
            log.warning("omcache.memcache: %s %r not stored: %s", cmd, wire, e)
            return 0
        return True if noreply else bool(ok)

    def set(self, key: AnyKey, val: Any, time: Union[int, timedelta] = 0, min_compress_len: int = 0,
            noreply: bool = False) -> Union[bool, int]:
        """Store val under key; True if stored, False if the server refused it,
        0 if it was not sent (dead server, value over server_max_value_length).

        ``time``: seconds, a unix timestamp or a timedelta; 0 never expires.
        ``min_compress_len``: zlib-compress serialised values longer than this.
        ``noreply``: return True whatever the outcome (the command still runs).
        """
        if isinstance(time, timedelta):
            time = int(time.total_seconds())
        return self._set("set", key, val, time, min_compress_len, noreply)

    def add(self, key: AnyKey, val: Any, time: int = 0, min_compress_len: int = 0,
            noreply: bool = False) -> Union[bool, int]:
        """set() only if key does not exist yet (False if it does)."""
        return self._set("add", key, val, time, min_compress_len, noreply)

    def replace(self, key: AnyKey, val: Any, time: int = 0, min_compress_len: int = 0,
                noreply: bool = False) -> Union[bool, int]:
        """set() only if key exists (False if not)."""
        return self._set("replace", key, val, time, min_compress_len, noreply)

    def append(self, key: AnyKey, val: Any, time: int = 0, min_compress_len: int = 0,
               noreply: bool = False) -> Union[bool, int]:
        """Append val's serialised bytes to key's value (False if key does not exist).
        The stored flags and expiration stay as they were."""
        return self._set("append", key, val, time, min_compress_len, noreply)

    def prepend(self, key: AnyKey, val: Any, time: int = 0, min_compress_len: int = 0,
                noreply: bool = False) -> Union[bool, int]:
        """Prepend val's serialised bytes to key's value (False if key does not exist)."""
        return self._set("prepend", key, val, time, min_compress_len, noreply)

    def cas(self, key: AnyKey, val: Any, time: int = 0, min_compress_len: int = 0,
            noreply: bool = False) -> Union[bool, int]:
        """Store val if key is unchanged since gets() remembered its cas id
        (``cache_cas=True``); False if it changed or is gone.  Without a
        remembered id this is set()."""
        return self._set("cas", key, val, time, min_compress_len, noreply)

    def set_multi(self, mapping: Mapping[AnyKey, Any], time: int = 0, key_prefix: Union[str, bytes] = "",
                  min_compress_len: int = 0, noreply: bool = False) -> List[Any]:
        """Store every item of mapping in one pipelined call; return the keys
        (as given) that were not stored.  All keys if no server is reachable."""
        self._statlog("set_multi")
        wire = self._prefixed(mapping.keys(), key_prefix)
        notstored: List[Any] = []
        items: List[Tuple[bytes, bytes, int]] = []
        for w, orig in wire.items():
            info = self._val_to_store_info(mapping[orig], min_compress_len)
            if info is None:
                notstored.append(orig)
            else:
                items.append((w, info[1], info[0]))
        if self._engine is None:
            return list(mapping.keys())
        errors: Dict[bytes, Exception] = {}
        try:
            failed = self._engine.set_multi_items(items, self._exptime(time), errors=errors)
        except _UNREACHABLE as e:
            log.warning("omcache.memcache: set_multi: %s", e)
            return list(mapping.keys())
        if noreply:
            return notstored
        if failed and len(failed) == len(items) and all(isinstance(e, _UNREACHABLE) for e in errors.values()):
            return list(mapping.keys())
        notstored.extend(wire[w] for w in failed)
        return notstored

    def delete(self, key: AnyKey, noreply: bool = False) -> int:
        """Delete key; 1 if it was deleted, 0 if it did not exist or the server is down."""
        wire = self._key(key)
        if self._engine is None:
            return 0
        self._statlog("delete")
        try:
            ok = self._engine.delete(wire)
        except (exc.CommandError, *_UNREACHABLE) as e:
            log.warning("omcache.memcache: delete %r: %s", wire, e)
            return 1 if noreply else 0
        return 1 if (noreply or ok) else 0

    def delete_multi(self, keys: Iterable[AnyKey], time: Optional[int] = None, key_prefix: Union[str, bytes] = "",
                     noreply: bool = False) -> int:
        """Delete many keys in one pipelined call; 1 (0 only if a server broke
        down while deleting).

        A non-zero ``time`` deletes nothing: memcached >= 1.4 refuses delete
        with a hold time, which python-memcached does not notice either.
        """
        self._statlog("delete_multi")
        wire = self._prefixed(keys, key_prefix)
        if not wire or self._engine is None:
            return 1
        if time:
            log.warning("omcache.memcache: delete_multi with time=%r: memcached refuses delete hold times, "
                        "nothing deleted", time)
            return 1
        errors: Dict[bytes, Exception] = {}
        try:
            self._engine.delete_multi(list(wire), errors=errors)
        except _UNREACHABLE as e:
            log.warning("omcache.memcache: delete_multi: %s", e)
            return 1
        broken = [err for err in errors.values() if not isinstance(err, exc.NotFoundError)]
        for err in broken:
            log.warning("omcache.memcache: delete_multi: %s", err)
        # python-memcached skips servers it already knows are dead (rc stays 1)
        # and reports 0 only for a connection that broke during the call; the
        # engine does not tell the two apart, so a failure counts as the former
        # unless the server answered with an error.
        return 0 if any(isinstance(err, exc.CommandError) for err in broken) else 1

    def touch(self, key: AnyKey, time: int = 0, noreply: bool = False) -> int:
        """Set key's expiration; 1 if key exists, else 0."""
        wire = self._key(key)
        if self._engine is None:
            return 0
        self._statlog("touch")
        try:
            ok = self._engine.touch(wire, self._exptime(time))
        except (exc.CommandError, *_UNREACHABLE) as e:
            log.warning("omcache.memcache: touch %r: %s", wire, e)
            return 1 if noreply else 0
        return 1 if (noreply or ok) else 0

    def _incrdecr(self, cmd: str, key: Any, delta: Any, noreply: bool) -> Optional[int]:
        wire = self._key(key)
        if self._engine is None:
            return None
        self._statlog(cmd)
        # python-memcached sends str(delta); memcached refuses anything but an
        # unsigned 64-bit decimal, and the refusal surfaces as a ValueError.
        text = str(delta)
        if not (text.isascii() and text.isdigit()) or int(text) > 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"invalid numeric delta argument {delta!r}")
        try:
            if cmd == "incr":
                r = self._engine.incr(wire, int(text))
            else:
                r = self._engine.decr(wire, int(text))
        except exc.DeltaBadValueError as e:
            raise ValueError(f"cannot increment or decrement non-numeric value of {wire!r}") from e
        except (exc.CommandError, *_UNREACHABLE) as e:
            log.warning("omcache.memcache: %s %r: %s", cmd, wire, e)
            return None
        return None if noreply else r

    def incr(self, key: AnyKey, delta: int = 1, noreply: bool = False) -> Optional[int]:
        """Add delta to key's decimal value and return the new value (wraps at
        2**64); None if key does not exist or the server is down.

        Raises ValueError if the value is not a number or delta is negative.
        """
        return self._incrdecr("incr", key, delta, noreply)

    def decr(self, key: AnyKey, delta: int = 1, noreply: bool = False) -> Optional[int]:
        """Subtract delta like incr(); memcached stops at 0."""
        return self._incrdecr("decr", key, delta, noreply)

    # -- per server ---------------------------------------------------------

    def _per_server(self, group: str) -> List[Tuple[Host, Dict[str, str]]]:
        if self._engine is None:
            return []
        res = list(self._engine.stats(group).values())
        out = []
        for host, r in zip(self.servers, res):
            if isinstance(r, exc.ServerError) and group:
                # The server answered that it has no such group: memcached's
                # text reply is "ERROR", which python-memcached 1.62 splits
                # into one word and then indexes: IndexError, as here.
                raise IndexError(
                    f"list index out of range: {host} has no stats group {group!r} "
                    "(python-memcached 1.62 raises IndexError for it too)"
                ) from r
            if isinstance(r, Exception):
                self.debuglog(f"stats {group!r} from {host}: {r}")
                continue
            out.append((host, r))
        return out

    def get_stats(self, stat_args: Optional[str] = None) -> List[Tuple[str, Dict[str, str]]]:
        """Return [(server name, {stat: value as str})] for the reachable servers;
        ``stat_args`` picks a stats group ("items", "slabs", "settings", ...)."""
        return [(h.stats_name, d) for h, d in self._per_server(stat_args or "")]

    def get_slab_stats(self) -> List[Tuple[str, Dict[str, Any]]]:
        """Return [(server name, {slab id: {stat: value}, "active_slabs": n,
        "total_malloced": n})] from "stats slabs"."""
        out: List[Tuple[str, Dict[str, Any]]] = []
        for h, d in self._per_server("slabs"):
            data: Dict[str, Any] = {}
            for name, value in d.items():
                if name in ("active_slabs", "total_malloced"):
                    data[name] = value
                else:
                    slab, _, stat = name.partition(":")
                    data.setdefault(slab, {})[stat] = value
            out.append((h.stats_name, data))
        return out

    def get_slabs(self) -> List[Tuple[str, Dict[str, Dict[str, str]]]]:
        """Return [(server name, {slab id: {stat: value}})] from "stats items"."""
        out: List[Tuple[str, Dict[str, Dict[str, str]]]] = []
        for h, d in self._per_server("items"):
            data: Dict[str, Dict[str, str]] = {}
            for name, value in d.items():
                parts = name.split(":", 2)
                if len(parts) == 3:
                    data.setdefault(parts[1], {})[parts[2]] = value
            out.append((h.stats_name, data))
        return out

    def flush_all(self) -> None:
        """Invalidate all items on every reachable server."""
        if self._engine is None:
            return
        try:
            self._engine.flush_all()
        except (exc.CommandError, *_UNREACHABLE) as e:
            log.warning("omcache.memcache: flush_all: %s", e)

    def __repr__(self) -> str:
        return f"omcache.memcache.Client({[str(h) for h in self.servers]!r})"

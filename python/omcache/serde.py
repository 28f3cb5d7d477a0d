"""Value serialisation: how Python objects become memcached bytes and flags.

A serde is any object with two methods (the protocol pymemcache uses)::

    serialize(key, value) -> (bytes, flags)
    deserialize(key, data, flags) -> value

Three implementations ship here:

``PylibmcSerde`` (the default of ``omcache.SerdeClient``)
    pylibmc >= 1.6: bytes raw (flags 0), str UTF-8 (0x10), bool as b"1"/b"0"
    under the integer flag (0x02, so it reads back as ``int``), other ints
    as decimal text (0x04), everything else pickled at the highest protocol
    (0x01); zlib (0x08) when a value is at least ``min_compress_len`` bytes
    and compression saves space.

``PythonMemcachedSerde``
    python-memcached 1.62: exact types only (subclasses are pickled), bytes
    raw (0), str UTF-8 (0x10), int decimal (0x02), everything else pickled,
    by default at protocol 0 (0x01); zlib (0x08) when longer than
    ``min_compress_len`` and smaller compressed; ints are never compressed.

``RawSerde``
    bytes in, bytes out, flags 0 (for callers that serialise themselves).

``CompressedSerde``
    wraps any serde: zlib-compresses what it produces (flag 0x08) when that
    pays, and inflates flagged data before handing it back.

The pylibmc convention is also available as plain functions
(:func:`pylibmc_encode`, :func:`pylibmc_decode`, :func:`compress`,
:func:`decompress`), which ``omcache_pylibmc`` uses, so that the convention
has one implementation.

The two client conventions give every flag bit the same meaning, so each
reader understands values written by either client: both read 0x02 and 0x04
as int, 0x10 as text, 0x01 as a pickle of any protocol.  They differ only
where the real clients differ: pylibmc ignores flag bits above 0x10 and
refuses combinations of type bits, python-memcached refuses unknown bits
and lets the text bit win over the others.
"""

from __future__ import annotations

import io
import logging
import pickle
import zlib
from typing import Any, Callable, Dict, Optional, Protocol, Tuple, Union

from .exceptions import Error

__all__ = [
    "Serde",
    "SerdeError",
    "PylibmcSerde",
    "PythonMemcachedSerde",
    "RawSerde",
    "CompressedSerde",
    "SerdeDecodeError",
    "get_serde",
    "pylibmc_encode",
    "pylibmc_decode",
    "compress",
    "decompress",
    "FLAG_NONE",
    "FLAG_PICKLE",
    "FLAG_INTEGER",
    "FLAG_LONG",
    "FLAG_ZLIB",
    "FLAG_TEXT",
]

log = logging.getLogger("omcache")

Key = Union[str, bytes]

#: Raw bytes.
FLAG_NONE = 0
#: A pickle (any protocol).
FLAG_PICKLE = 1 << 0
#: A decimal integer (python-memcached's int, pylibmc's bool).
FLAG_INTEGER = 1 << 1
#: A decimal integer (pylibmc's int, python-memcached's Python 2 long).
FLAG_LONG = 1 << 2
#: The payload is zlib-compressed; combined with one of the type flags.
FLAG_ZLIB = 1 << 3
#: UTF-8 text.
FLAG_TEXT = 1 << 4

# pylibmc's PYLIBMC_FLAG_TYPES: bits outside it (and ZLIB) are ignored on read.
_PYLIBMC_TYPES = FLAG_PICKLE | FLAG_INTEGER | FLAG_LONG | FLAG_TEXT


class SerdeError(Error, ValueError):
    """A value could not be serialised or deserialised (unknown flags, corrupt
    compressed data, an undecodable pickle, text that is not UTF-8, ...).

    The original exception, if any, is chained as ``__cause__``.
    """


class SerdeDecodeError(SerdeError, UnicodeDecodeError):
    """Text-flagged data (0x10) that is not valid UTF-8.

    Also a UnicodeDecodeError, which is what pylibmc and python-memcached
    raise for such a value.
    """

    def unicode_error(self) -> UnicodeDecodeError:
        """The plain UnicodeDecodeError, for the drop-ins whose originals raise exactly that."""
        return UnicodeDecodeError(self.encoding, self.object, self.start, self.end, self.reason)


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        err = SerdeDecodeError(e.encoding, e.object, e.start, e.end, e.reason)
        raise err from e


class Serde(Protocol):
    """The serialiser protocol: any object with these two methods is a serde."""

    def serialize(self, key: Key, value: Any) -> Tuple[bytes, int]:
        """Return (data, flags) to store for value under key."""
        ...  # pragma: no cover - protocol

    def deserialize(self, key: Key, data: bytes, flags: int) -> Any:
        """Return the value that (data, flags), read from key, stands for."""
        ...  # pragma: no cover - protocol


def _check_level(level: int) -> int:
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"compress_level must be an int, not {type(level).__name__}")
    if level != -1 and not 0 <= level <= 9:
        raise ValueError("compress_level must be between 0 and 9 inclusive, or -1 for zlib's default")
    return level


def _check_len(name: str, n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return n


def decompress(data: bytes) -> bytes:
    """Inflate zlib data (flag 0x08); raises SerdeError if it is corrupt."""
    try:
        return zlib.decompress(data)
    except zlib.error as e:
        raise SerdeError(f"failed to decompress value: {e}") from e


def compress(data: bytes, flags: int, min_compress_len: int, compress_level: int) -> Tuple[bytes, int]:
    """pylibmc's compression rule: zlib at ``compress_level`` when data is at
    least ``min_compress_len`` bytes (0: never) and compressing makes it
    smaller; then flags gains 0x08.  Otherwise (data, flags) unchanged."""
    if compress_level and min_compress_len and len(data) >= min_compress_len:
        packed = zlib.compress(data, compress_level)
        if len(packed) < len(data):
            return packed, flags | FLAG_ZLIB
    return data, flags


def pylibmc_encode(value: Any, pickle_protocol: int = -1) -> Tuple[bytes, int]:
    """pylibmc's type encoding, without compression: bytes raw (0), str
    UTF-8 (0x10), bool b"1"/b"0" (0x02), int decimal (0x04), anything else
    pickled at ``pickle_protocol`` (0x01)."""
    if isinstance(value, bytes):
        return bytes(value), FLAG_NONE
    if isinstance(value, str):
        return value.encode("utf-8"), FLAG_TEXT
    if isinstance(value, bool):
        return (b"1" if value else b"0"), FLAG_INTEGER
    if isinstance(value, int):
        # str(), not int.__repr__: pylibmc calls PyObject_Str on int subclasses too.
        return str(value).encode("ascii"), FLAG_LONG
    return pickle.dumps(value, pickle_protocol), FLAG_PICKLE


def pylibmc_decode(data: bytes, flags: int) -> Any:
    """pylibmc's type decoding of (already inflated) data: exactly one type
    bit, or none for bytes; 0x08 and bits above 0x10 are ignored.

    Errors are the decoders' own, as in pylibmc (ValueError from int(),
    UnicodeDecodeError (as SerdeDecodeError), whatever unpickling raises);
    SerdeError for a combination of type bits.
    """
    kind = flags & _PYLIBMC_TYPES
    if kind == FLAG_NONE:
        return data
    if kind == FLAG_TEXT:
        return _text(data)
    if kind == FLAG_INTEGER or kind == FLAG_LONG:
        return int(_text(data))  # pylibmc decodes the text first: UnicodeDecodeError for non-UTF-8
    if kind == FLAG_PICKLE:
        return pickle.loads(data)
    raise SerdeError(f"unknown memcached key flags {kind}")


class RawSerde:
    """Store bytes as they are (flags 0) and return stored data unchanged.

    ``serialize`` accepts bytes, bytearray and memoryview and raises
    TypeError for anything else; ``deserialize`` ignores the flags.
    """

    def serialize(self, key: Key, value: Any) -> Tuple[bytes, int]:
        """Return (bytes(value), 0); TypeError if value is not bytes-like."""
        if isinstance(value, bytes):
            return bytes(value), FLAG_NONE
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value), FLAG_NONE
        raise TypeError(f"RawSerde stores bytes only, not {type(value).__name__}")

    def deserialize(self, key: Key, data: bytes, flags: int) -> bytes:
        """Return data as stored, whatever the flags."""
        return data

    def __repr__(self) -> str:
        return "RawSerde()"


class PylibmcSerde:
    """pylibmc 1.6's value convention (see the module docstring).

    ``pickle_protocol``: -1 (pylibmc's default) means the highest protocol.
    ``min_compress_len``: compress values of at least this many bytes (0:
    never).  ``compress_level``: zlib level 1-9, -1 for zlib's default, 0
    disables compression (as in pylibmc).  ``serialize`` takes per-call
    overrides of the last two, as pylibmc's ``set`` does.
    """

    def __init__(self, *, pickle_protocol: int = -1, min_compress_len: int = 0, compress_level: int = -1) -> None:
        if isinstance(pickle_protocol, bool) or not isinstance(pickle_protocol, int):
            raise TypeError("pickle_protocol must be an int")
        if pickle_protocol > pickle.HIGHEST_PROTOCOL:
            raise ValueError(f"pickle_protocol must be <= {pickle.HIGHEST_PROTOCOL}")
        self.pickle_protocol = pickle_protocol
        self.min_compress_len = _check_len("min_compress_len", min_compress_len)
        self.compress_level = _check_level(compress_level)

    def encode(self, value: Any) -> Tuple[bytes, int]:
        """Return (data, type flags) for value, without compression."""
        return pylibmc_encode(value, self.pickle_protocol)

    def serialize(
        self,
        key: Key,
        value: Any,
        *,
        min_compress_len: Optional[int] = None,
        compress_level: Optional[int] = None,
    ) -> Tuple[bytes, int]:
        """Return (data, flags) for value, compressed when it pays (see the class doc)."""
        data, flags = pylibmc_encode(value, self.pickle_protocol)
        mcl = self.min_compress_len if min_compress_len is None else _check_len("min_compress_len", min_compress_len)
        level = self.compress_level if compress_level is None else _check_level(compress_level)
        return compress(data, flags, mcl, level)

    def deserialize(self, key: Key, data: bytes, flags: int) -> Any:
        """Decode as pylibmc does: inflate if 0x08, then exactly one type bit
        (or none: bytes); bits above 0x10 are ignored.  Raises SerdeError."""
        if flags & FLAG_ZLIB:
            data = decompress(data)
        try:
            return pylibmc_decode(data, flags)
        except SerdeError:
            raise
        except Exception as e:
            raise SerdeError(f"cannot decode value with flags {flags:#x}: {type(e).__name__}: {e}") from e

    def __repr__(self) -> str:
        return (
            f"PylibmcSerde(pickle_protocol={self.pickle_protocol}, "
            f"min_compress_len={self.min_compress_len}, compress_level={self.compress_level})"
        )


class PythonMemcachedSerde:
    """python-memcached 1.62's value convention (see the module docstring).

    The hooks are python-memcached's: ``pickler(file, protocol=...)`` and
    ``unpickler(file)`` classes, ``persistent_id``/``persistent_load``
    functions set on them, ``compressor(data)``/``decompressor(data)``.
    ``min_compress_len``: compress values LONGER than this (0: never).

    ``strict=False`` (python-memcached's behaviour) makes a pickle that
    cannot be loaded read back as None, logged at WARNING; ``strict=True``
    raises SerdeError instead.  Unknown flags always raise SerdeError (a
    ValueError, as in python-memcached).
    """

    def __init__(
        self,
        *,
        pickle_protocol: int = 0,
        pickler: Callable[..., Any] = pickle.Pickler,
        unpickler: Callable[..., Any] = pickle.Unpickler,
        compressor: Callable[[bytes], bytes] = zlib.compress,
        decompressor: Callable[[bytes], bytes] = zlib.decompress,
        persistent_id: Optional[Callable[[Any], Any]] = None,
        persistent_load: Optional[Callable[[Any], Any]] = None,
        min_compress_len: int = 0,
        strict: bool = False,
    ) -> None:
        self.pickle_protocol = pickle_protocol
        self.pickler = pickler
        self.unpickler = unpickler
        self.compressor = compressor
        self.decompressor = decompressor
        self.persistent_id = persistent_id
        self.persistent_load = persistent_load
        self.min_compress_len = _check_len("min_compress_len", min_compress_len)
        self.strict = strict
        # python-memcached probes once whether the pickler takes protocol= by keyword.
        try:
            self.pickler(io.BytesIO(), protocol=self.pickle_protocol)
            self._pickler_keyword = True
        except TypeError:
            self._pickler_keyword = False

    def _pickle(self, value: Any) -> bytes:
        buf = io.BytesIO()
        if self._pickler_keyword:
            p = self.pickler(buf, protocol=self.pickle_protocol)
        else:
            p = self.pickler(buf, self.pickle_protocol)
        if self.persistent_id is not None:
            p.persistent_id = self.persistent_id
        p.dump(value)
        return buf.getvalue()

    def serialize(self, key: Key, value: Any, *, min_compress_len: Optional[int] = None) -> Tuple[bytes, int]:
        """Return (data, flags) for value; ``min_compress_len`` overrides the instance's for one call."""
        mcl = self.min_compress_len if min_compress_len is None else _check_len("min_compress_len", min_compress_len)
        # Exact types, as python-memcached checks them: subclasses (markup-safe
        # strings, IntEnums, bool) are pickled so they come back as themselves.
        t = type(value)
        if t is bytes:
            data, flags = value, FLAG_NONE
        elif t is str:
            data, flags = value.encode("utf-8"), FLAG_TEXT
        elif t is int:
            data, flags, mcl = b"%d" % value, FLAG_INTEGER, 0
        else:
            data, flags = self._pickle(value), FLAG_PICKLE
        if mcl and len(data) > mcl:
            packed = self.compressor(data)
            if len(packed) < len(data):
                return packed, flags | FLAG_ZLIB
        return data, flags

    def deserialize(self, key: Key, data: bytes, flags: int) -> Any:
        """Decode as python-memcached does (see the class doc)."""
        if flags & FLAG_ZLIB:
            try:
                data = self.decompressor(data)
            except Exception as e:
                raise SerdeError(f"failed to decompress value: {e}") from e
            flags &= ~FLAG_ZLIB
        try:
            if flags == 0:
                return data
            if flags & FLAG_TEXT:
                return _text(data)
            if flags & (FLAG_INTEGER | FLAG_LONG):
                return int(data)
        except SerdeDecodeError:
            raise  # a UnicodeDecodeError too, as python-memcached raises
        except ValueError as e:
            raise SerdeError(f"cannot decode value with flags {flags:#x}: {e}") from e
        if flags & FLAG_PICKLE:
            try:
                u = self.unpickler(io.BytesIO(data))
                if self.persistent_load is not None:
                    u.persistent_load = self.persistent_load
                return u.load()
            except Exception as e:
                if self.strict:
                    raise SerdeError(f"cannot unpickle value of {key!r}: {type(e).__name__}: {e}") from e
                log.warning("omcache: cannot unpickle value of %r, returning None: %s: %s", key, type(e).__name__, e)
                return None
        raise SerdeError(f"Unknown flags on get: {flags:x}")

    def __repr__(self) -> str:
        return f"PythonMemcachedSerde(pickle_protocol={self.pickle_protocol}, min_compress_len={self.min_compress_len})"


class CompressedSerde:
    """Wrap a serde with zlib compression (flag 0x08), as pymemcache's CompressedSerde.

    ``serialize`` compresses what ``inner`` produced when it is at least
    ``min_compress_len`` bytes (0: never) and compression makes it smaller,
    at ``compress_level`` (1-9, -1 for zlib's default, 0 disables it);
    ``deserialize`` inflates data flagged 0x08 (SerdeError if corrupt) and
    hands it to ``inner`` with that bit cleared.
    """

    def __init__(self, inner: Serde, *, min_compress_len: int = 0, compress_level: int = -1) -> None:
        self.inner = inner
        self.min_compress_len = _check_len("min_compress_len", min_compress_len)
        self.compress_level = _check_level(compress_level)

    def serialize(self, key: Key, value: Any) -> Tuple[bytes, int]:
        """Return inner's (data, flags), compressed when it pays."""
        data, flags = self.inner.serialize(key, value)
        return compress(data, flags, self.min_compress_len, self.compress_level)

    def deserialize(self, key: Key, data: bytes, flags: int) -> Any:
        """Inflate if flagged, then let inner decode."""
        if flags & FLAG_ZLIB:
            data, flags = decompress(data), flags & ~FLAG_ZLIB
        return self.inner.deserialize(key, data, flags)

    def __repr__(self) -> str:
        return (
            f"CompressedSerde({self.inner!r}, min_compress_len={self.min_compress_len}, "
            f"compress_level={self.compress_level})"
        )


_NAMED: Dict[str, Callable[[], Serde]] = {
    "pylibmc": PylibmcSerde,
    "python-memcached": PythonMemcachedSerde,
    "python_memcached": PythonMemcachedSerde,
    "raw": RawSerde,
}


def get_serde(serde: Union[str, Serde, None]) -> Serde:
    """Return a serde object: one given as is, or a new one by name
    ("pylibmc", "python-memcached", "raw"); None means "pylibmc"."""
    if serde is None:
        return PylibmcSerde()
    if isinstance(serde, str):
        try:
            return _NAMED[serde]()
        except KeyError:
            raise ValueError(f"unknown serde {serde!r}; choose one of {sorted(_NAMED)}") from None
    if not (callable(getattr(serde, "serialize", None)) and callable(getattr(serde, "deserialize", None))):
        raise TypeError(f"a serde needs serialize() and deserialize() methods, {type(serde).__name__} lacks them")
    return serde

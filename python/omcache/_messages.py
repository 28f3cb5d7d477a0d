"""Error messages that say why: which key, what is wrong with it, how large a value was.

Used only on the error path: the engine checks keys (at no Python cost per
call) and reports a bad-key status; only then does this module work out the
reason, for omcache.Client and every layer above it (SerdeClient, OMcache,
omcache.memcache, omcache_pylibmc), so that all of them explain a bad key the
same way.
"""

from __future__ import annotations

from typing import Iterable, Optional, Union

#: memcached's key length limit, in bytes (UTF-8 for str keys).
MAX_KEY_LENGTH = 250
#: How many characters of a key's repr a message shows.
KEY_REPR_LIMIT = 60

_NAMES = {
    0x00: "NUL",
    0x09: "tab",
    0x0A: "newline",
    0x0D: "carriage return",
    0x20: "space",
    0x7F: "DEL",
}


def key_repr(key: object, limit: int = KEY_REPR_LIMIT) -> str:
    """The repr of a key for a message, cut to about ``limit`` characters.

    A long key keeps its start and says how much was left out, so a message
    never carries a whole 10 kB key.
    """
    r = repr(key)
    if len(r) <= limit:
        return r
    return f"{r[: limit - 3]}... ({len(r)} characters of repr)"


def _char_name(code: int) -> str:
    name = _NAMES.get(code)
    if name is None:
        name = "control character"
    return f"{name} {chr(code)!r} (0x{code:02x})"


#: The longest key the meta protocol carries base64-encoded: memcached takes
#: no token over 250 characters.
MAX_BASE64_KEY_LENGTH = MAX_KEY_LENGTH // 4 * 3


def bad_key_reason(
    key: Union[str, bytes],
    *,
    binary_keys: bool = False,
    max_length: int = MAX_KEY_LENGTH,
    graphic_only: bool = False,
    protocol: str = "binary",
) -> Optional[str]:
    """Why memcached (or omcache's engine) refuses key, or None if it is acceptable.

    The rules are the engine's: 1 to ``max_length`` bytes (a str is measured
    in UTF-8) and, unless ``binary_keys``, no space, no control character
    (bytes 0x00-0x20) and no DEL (0x7f).  For a str key the position is the
    character's index in the str; for bytes, the byte offset.
    ``graphic_only`` also refuses anything outside printable ASCII, as
    libmemcached's verify_keys does (pylibmc's behavior).  ``protocol`` is
    the client's: with ``binary_keys``, the text protocol still cannot carry
    a key with a space or control character, and the meta protocol carries
    one base64-encoded, up to 187 bytes.
    """
    raw = key.encode("utf-8", "surrogatepass") if isinstance(key, str) else bytes(key)
    if not raw:
        return "it is empty (keys are 1 to 250 bytes)"
    if len(raw) > max_length:
        unit = " in UTF-8" if isinstance(key, str) and len(raw) != len(key) else ""
        return f"it is {len(raw)} bytes long{unit}, over the {max_length}-byte limit"
    if binary_keys:
        if protocol == "binary":
            return None
        plain = bad_key_reason(key, max_length=max_length, graphic_only=graphic_only)
        if plain is None:
            return None
        if protocol == "text":
            return f"the text protocol cannot carry it: {plain}"
        if len(raw) > MAX_BASE64_KEY_LENGTH:
            return (f"{plain}, so the meta protocol sends it base64-encoded, which takes keys of at most "
                    f"{MAX_BASE64_KEY_LENGTH} bytes (it is {len(raw)})")
        return None
    if isinstance(key, str):
        for i, ch in enumerate(key):
            code = ord(ch)
            if code <= 0x20 or code == 0x7F:
                return f"it holds a {_char_name(code)} at position {i}"
            if graphic_only and code > 0x7F:
                return f"it holds a non-ASCII character {ch!r} (U+{code:04X}) at position {i}"
        return None
    for i, code in enumerate(raw):
        if code <= 0x20 or code == 0x7F:
            return f"it holds a {_char_name(code)} at byte {i}"
        if graphic_only and code > 0x7F:
            return f"it holds a non-ASCII byte 0x{code:02x} at byte {i}"
    return None


def invalid_key_message(
    key: object,
    *,
    binary_keys: bool = False,
    max_length: int = MAX_KEY_LENGTH,
    graphic_only: bool = False,
    protocol: str = "binary",
) -> str:
    """The whole message for a refused key: the key (repr, cut) and the reason."""
    reason = None
    if isinstance(key, (str, bytes)):
        reason = bad_key_reason(
            key, binary_keys=binary_keys, max_length=max_length, graphic_only=graphic_only, protocol=protocol
        )
    if reason is None:
        # The engine refused a key these rules accept (or a non-key reached
        # it): say so rather than invent a reason.
        reason = "the engine refused it"
    return f"invalid key {key_repr(key)}: {reason}"


def first_bad_key(keys: Iterable[object], *, binary_keys: bool = False, protocol: str = "binary") -> Optional[object]:
    """The first key of a multi-key call that these rules refuse, or None."""
    for k in keys:
        if not isinstance(k, (str, bytes)) or bad_key_reason(k, binary_keys=binary_keys, protocol=protocol) is not None:
            return k
    return None


def too_large_message(size: int, max_value_size: Optional[int] = None, key: object = None) -> str:
    """The message for a value over the server's item size limit: its size and the limits."""
    what = f"value of {size} bytes" if key is None else f"value of {size} bytes for key {key_repr(key)}"
    msg = f"{what} is too large: over the server's item size limit (memcached -I, 1 MiB by default)"
    if max_value_size is not None:
        msg += f"; this client's max_value_size is {max_value_size} bytes"
    return msg

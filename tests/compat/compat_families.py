"""Client families for the compatibility suite.

A *family* is one implementation of a client API: the real library
(python-memcached, pylibmc) or omcache's emulation of it.  Every test in
tests/compat/ runs once per family, as cmemcache ran its tests against both
clients, so a behaviour is only accepted when the real library shows it too.

A Family carries:

- ``make(servers, **options)``: build a client of that family;
- ``module``: the module its exceptions live in;
- ``expect``: what the API answers where APIs differ (python-memcached's
  ``delete`` returns 1/0, pylibmc's True/False; a miss on ``incr`` is None
  in one, an exception in the other).  A value is compared by value AND
  type; ``Raises(cls)`` means the call must raise cls.  Entries of a real
  library and of its emulation are identical except where omcache
  deliberately differs; those entries are overridden in the emulation's
  family and commented there.

The pylibmc pair (the real pylibmc 1.6.3 and omcache_pylibmc, api="pylibmc")
runs the common tests too; optional keys (``<name>:get``, ``dead_flush_all``,
``set_multi_oversize``, ``stats_value_type``, ``stats_groups``) give an
answer where one API's calls differ among themselves.  API-specific tests get
their own fixture (``memcache_family`` runs only api == "memcache").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Dict, List, Mapping

import pytest


@dataclass(frozen=True)
class Raises:
    """Expectation: the call raises this exception class (or a subclass)."""

    exc: type


@dataclass(frozen=True)
class Family:
    """One client implementation under test (see the module docstring)."""

    name: str
    api: str
    real: bool
    module: ModuleType
    make: Callable[..., Any]
    expect: Mapping[str, Any] = field(default_factory=dict)


def check(expected: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call fn and compare with an expectation (value and type, or Raises)."""
    if isinstance(expected, Raises):
        with pytest.raises(expected.exc):
            fn(*args, **kwargs)
        return None
    got = fn(*args, **kwargs)
    assert got == expected, f"{getattr(fn, '__name__', fn)} returned {got!r}, expected {expected!r}"
    assert type(got) is type(expected), f"{got!r} is a {type(got).__name__}, expected a {type(expected).__name__}"
    return got


#: Keys every family's ``expect`` must define (the common tests use them).
COMMON_KEYS = (
    "bool_roundtrip",
    "set_ok",
    "add_new",
    "add_existing",
    "replace_missing",
    "append_missing",
    "delete_hit",
    "delete_miss",
    "incr_miss",
    "incr_non_numeric",
    "incr_negative_delta",
    "touch_hit",
    "touch_miss",
    "delete_multi",
    "value_over_client_limit",
    "value_at_server_limit",
    "key_too_long",
    "key_with_space",
    "key_with_newline",
    "key_none",
    "key_empty",
    "key_int",
    "dead_get",
    "dead_set",
    "dead_get_multi",
    "dead_set_multi",
    "dead_delete",
    "dead_incr",
    "dead_touch",
    "dead_delete_multi",
    "dead_get_stats",
    "flush_all",
    "stats_name",
)


def _memcache_expect(module: ModuleType) -> Dict[str, Any]:
    """python-memcached 1.62's answers; its emulation must give the same."""
    C = module.Client
    return {
        # bool is not an int to python-memcached's exact type check: pickled.
        "bool_roundtrip": True,
        "set_ok": True,
        "add_new": True,
        "add_existing": False,
        "replace_missing": False,
        "append_missing": False,
        "delete_hit": 1,
        "delete_miss": 0,
        "incr_miss": None,
        # memcached's CLIENT_ERROR reply fails int() in python-memcached.
        "incr_non_numeric": Raises(ValueError),
        "incr_negative_delta": Raises(ValueError),
        "touch_hit": 1,
        "touch_miss": 0,
        "delete_multi": 1,
        # over server_max_value_length: not sent at all
        "value_over_client_limit": 0,
        # within the client's limit but over the server's item size: refused
        "value_at_server_limit": False,
        "key_too_long": Raises(C.MemcachedKeyLengthError),
        "key_with_space": Raises(C.MemcachedKeyCharacterError),
        "key_with_newline": Raises(C.MemcachedKeyCharacterError),
        "key_none": Raises(C.MemcachedKeyNoneError),
        # the empty key is encoded to b"" before the "is it empty" test, so
        # it fails the character check instead
        "key_empty": Raises(C.MemcachedKeyCharacterError),
        "key_int": Raises(C.MemcachedKeyTypeError),
        "dead_get": None,
        "dead_set": 0,
        "dead_get_multi": {},
        "dead_set_multi": ["a", "b"],
        "dead_delete": 0,
        "dead_incr": None,
        "dead_touch": 0,
        # a server known to be dead is skipped, not a failure
        "dead_delete_multi": 1,
        "dead_get_stats": [],
        "flush_all": None,
        "stats_name": lambda address: f"{address} (1)",
        # python-memcached 1.62 compares bytes with str in get_slabs: TypeError on Python 3
        "get_slabs": Raises(TypeError),
        # set_multi of an over-size value waits for a reply that was never
        # requested, times out and marks the server dead
        "set_multi_oversize_kills_server": True,
    }


def _real_python_memcached() -> Family:
    import memcache

    return Family(
        name="python-memcached",
        api="memcache",
        real=True,
        module=memcache,
        make=lambda servers, **kw: memcache.Client(servers, **kw),
        expect=_memcache_expect(memcache),
    )


def _omcache_memcache() -> Family:
    from omcache import memcache

    expect = _memcache_expect(memcache)
    # Deliberate differences (python-memcached bugs, see omcache/memcache.py):
    expect["get_slabs"] = "works"
    expect["set_multi_oversize_kills_server"] = False
    return Family(
        name="omcache.memcache",
        api="memcache",
        real=False,
        module=memcache,
        make=lambda servers, **kw: memcache.Client(servers, **kw),
        expect=expect,
    )


def _pylibmc_expect(module: ModuleType) -> Dict[str, Any]:
    """pylibmc 1.6.3's answers (text protocol, its default); omcache_pylibmc
    must give the same.  Keys "<name>:get" are get's answer where it differs
    from set's."""
    m = module
    return {
        # bool is stored as b"1" under the integer flag and reads back as int
        "bool_roundtrip": 1,
        "set_ok": True,
        "add_new": True,
        "add_existing": False,
        "replace_missing": False,
        "append_missing": False,
        "delete_hit": True,
        "delete_miss": False,
        "incr_miss": Raises(m.NotFound),
        "incr_non_numeric": Raises(m.ClientError),
        "incr_negative_delta": Raises(ValueError),
        "touch_hit": True,
        "touch_miss": False,
        "delete_multi": True,
        # memcached refuses both (item header and key count against -I 1m)
        "value_over_client_limit": Raises(m.TooBig),
        "value_at_server_limit": Raises(m.TooBig),
        "set_multi_oversize": Raises(m.TooBig),
        "key_too_long": Raises(ValueError),
        # get of a key the text protocol cannot carry is a miss; set raises
        "key_with_space": Raises(m.ClientError),
        "key_with_space:get": None,
        "key_with_newline": Raises(m.SocketCreateError),
        "key_with_newline:get": None,
        "key_none": Raises(TypeError),
        "key_empty": False,
        "key_empty:get": None,
        "key_int": Raises(TypeError),
        # the first call reports the refused connection, later ones (within
        # retry_timeout) ServerDown: both are pylibmc.Error
        "dead_get": Raises(m.ConnectionError),
        "dead_set": Raises(m.Error),
        "dead_get_multi": Raises(m.Error),
        "dead_set_multi": Raises(m.Error),
        "dead_delete": Raises(m.Error),
        "dead_incr": Raises(m.Error),
        "dead_touch": Raises(m.Error),
        "dead_delete_multi": Raises(m.Error),
        "dead_get_stats": Raises(m.SomeErrors),
        "dead_flush_all": Raises(m.SomeErrors),
        "flush_all": True,
        "stats_name": lambda address: f"{address} (0)".encode(),
        "stats_value_type": bytes,
        # libmemcached answers get_stats("items") with its 22 general names, zeroed
        "stats_groups": False,
    }


def _real_pylibmc() -> Family:
    import pylibmc

    return Family(
        name="pylibmc",
        api="pylibmc",
        real=True,
        module=pylibmc,
        make=lambda servers, **kw: pylibmc.Client(servers, **kw),
        expect=_pylibmc_expect(pylibmc),
    )


def _omcache_pylibmc() -> Family:
    import omcache_pylibmc

    expect = _pylibmc_expect(omcache_pylibmc)
    # Deliberate differences (docs/pylibmc.md): a newline in a text-mode key
    # is refused like a space (pylibmc breaks its connection), and stats
    # groups are the server's.
    expect["key_with_newline"] = Raises(omcache_pylibmc.ClientError)
    expect["stats_groups"] = True
    return Family(
        name="omcache_pylibmc",
        api="pylibmc",
        real=False,
        module=omcache_pylibmc,
        make=lambda servers, **kw: omcache_pylibmc.Client(servers, **kw),
        expect=expect,
    )


#: Every family, by name; the suite is parametrised over this.
FAMILY_BUILDERS: Dict[str, Callable[[], Family]] = {
    "python-memcached": _real_python_memcached,
    "omcache.memcache": _omcache_memcache,
    "pylibmc": _real_pylibmc,
    "omcache_pylibmc": _omcache_pylibmc,
}


#: The API of each family, known without importing the reference clients
#: (which conftest's reference_clients fixture checks before any test runs).
FAMILY_APIS: Dict[str, str] = {
    "python-memcached": "memcache",
    "omcache.memcache": "memcache",
    "pylibmc": "pylibmc",
    "omcache_pylibmc": "pylibmc",
}


def families(api: str = "") -> List[str]:
    """Names of the families of one API ("" for all)."""
    return [n for n in FAMILY_BUILDERS if not api or FAMILY_APIS[n] == api]

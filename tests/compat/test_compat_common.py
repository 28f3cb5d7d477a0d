"""Behaviour every client family shares, checked on each family against a real memcached.

Where APIs differ the expectation comes from ``family.expect`` (see
compat_families.py); everything else must behave identically.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from compat_families import Family, check


class Point:
    """A user class: stored as a pickle by every family."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


ROUNDTRIP = [
    b"bytes\x00\xff",
    "text é ✓",
    "",
    0,
    -12,
    2**64 + 5,
    1.25,
    None,
    [1, "two", b"three"],
    {"k": (1, 2)},
    Point(3, 4),
]


@pytest.mark.parametrize("value", ROUNDTRIP, ids=lambda v: type(v).__name__)
def test_values_read_back_equal_and_same_type(family: Family, make: Callable[..., Any], value: Any) -> None:
    mc = make(family)
    check(family.expect["set_ok"], mc.set, "v", value)
    got = mc.get("v")
    assert got == value and type(got) is type(value)


def test_bool_reads_back_per_api(family: Family, make: Callable[..., Any]) -> None:
    mc = make(family)
    mc.set("b", True)
    check(family.expect["bool_roundtrip"], mc.get, "b")


def test_get_of_missing_key_is_none(family: Family, make: Callable[..., Any]) -> None:
    assert make(family).get("nothing-here") is None


def test_add_replace_append_prepend(family: Family, make: Callable[..., Any]) -> None:
    mc = make(family)
    check(family.expect["replace_missing"], mc.replace, "k", "r")
    check(family.expect["append_missing"], mc.append, "k", "x")
    check(family.expect["append_missing"], mc.prepend, "k", "x")
    assert mc.get("k") is None
    check(family.expect["add_new"], mc.add, "k", "a")
    check(family.expect["add_existing"], mc.add, "k", "b")
    assert mc.get("k") == "a"
    check(family.expect["set_ok"], mc.replace, "k", "m")
    check(family.expect["set_ok"], mc.append, "k", "z")
    check(family.expect["set_ok"], mc.prepend, "k", "<")
    assert mc.get("k") == "<mz"


def test_delete_hit_and_miss(family: Family, make: Callable[..., Any]) -> None:
    mc = make(family)
    mc.set("d", 1)
    check(family.expect["delete_hit"], mc.delete, "d")
    check(family.expect["delete_miss"], mc.delete, "d")
    assert mc.get("d") is None


def test_incr_decr(family: Family, make: Callable[..., Any]) -> None:
    mc = make(family)
    check(family.expect["incr_miss"], mc.incr, "n")
    check(family.expect["incr_miss"], mc.decr, "n")
    mc.set("n", 10)
    assert mc.incr("n") == 11
    assert mc.incr("n", 9) == 20
    assert mc.decr("n", 5) == 15
    assert mc.decr("n", 100) == 0  # memcached clamps at zero
    assert mc.set("w", 2**64 - 1)
    assert mc.incr("w", 2) == 1  # and wraps at 2**64
    assert mc.get("w") == 1
    check(family.expect["incr_negative_delta"], mc.incr, "w", -1)
    mc.set("s", "text")
    check(family.expect["incr_non_numeric"], mc.incr, "s")
    assert mc.get("s") == "text"


def test_touch(family: Family, make: Callable[..., Any]) -> None:
    mc = make(family)
    check(family.expect["touch_miss"], mc.touch, "t", 100)
    mc.set("t", "v")
    check(family.expect["touch_hit"], mc.touch, "t", 100)
    assert mc.get("t") == "v"


def test_multi_calls_with_key_prefix(family: Family, make: Callable[..., Any]) -> None:
    mc = make(family)
    assert mc.set_multi({"a": 1, "b": "two", "c": [3]}, key_prefix="p:") == []
    assert mc.get("p:a") == 1 and mc.get("a") is None
    assert mc.get_multi(["a", "b", "c", "zz"], key_prefix="p:") == {"a": 1, "b": "two", "c": [3]}
    assert mc.get_multi(["p:a", "p:b"]) == {"p:a": 1, "p:b": "two"}
    assert mc.get_multi([]) == {}
    check(family.expect["delete_multi"], mc.delete_multi, ["a", "b"], key_prefix="p:")
    assert mc.get_multi(["a", "b", "c"], key_prefix="p:") == {"c": [3]}


def test_set_multi_reports_values_over_the_limit(family: Family, make: Callable[..., Any]) -> None:
    mc = make(family)
    expected = family.expect.get("set_multi_oversize", ["big"])
    if isinstance(expected, list):
        assert list(mc.set_multi({"ok": "x", "big": b"x" * (2 * 1024 * 1024)})) == expected
    else:
        check(expected, mc.set_multi, {"ok": "x", "big": b"x" * (2 * 1024 * 1024)})


def test_value_size_limits(family: Family, make: Callable[..., Any]) -> None:
    mc = make(family)
    check(family.expect["value_over_client_limit"], mc.set, "big", b"x" * (1024 * 1024 + 1))
    check(family.expect["value_at_server_limit"], mc.set, "big", b"x" * (1024 * 1024))
    assert mc.get("big") is None
    # the connection is still in step after the refusals
    check(family.expect["set_ok"], mc.set, "small", b"x" * (1024 * 1024 - 1024))
    assert mc.get("small") == b"x" * (1024 * 1024 - 1024)


@pytest.mark.parametrize(
    "name,key",
    [
        ("key_too_long", "k" * 251),
        ("key_with_space", "a b"),
        ("key_with_newline", "a\nb"),
        ("key_none", None),
        ("key_empty", ""),
        ("key_int", 5),
    ],
)
def test_invalid_keys(family: Family, make: Callable[..., Any], name: str, key: Any) -> None:
    mc = make(family)
    check(family.expect.get(f"{name}:get", family.expect[name]), mc.get, key)
    check(family.expect[name], mc.set, key, "v")


def test_longest_and_utf8_keys_are_fine(family: Family, make: Callable[..., Any]) -> None:
    mc = make(family)
    for key in ("k" * 250, "ключ", "\u00e9" * 125):
        check(family.expect["set_ok"], mc.set, key, "v")
        assert mc.get(key) == "v"


def test_dead_server(family: Family, dead_address: str) -> None:
    mc = family.make([dead_address])
    e = family.expect
    check(e["dead_get"], mc.get, "a")
    check(e["dead_set"], mc.set, "a", 1)
    check(e["dead_get_multi"], mc.get_multi, ["a", "b"])
    check(e["dead_set_multi"], mc.set_multi, {"a": 1, "b": 2})
    check(e["dead_delete"], mc.delete, "a")
    check(e["dead_incr"], mc.incr, "a")
    check(e["dead_touch"], mc.touch, "a", 10)
    check(e["dead_delete_multi"], mc.delete_multi, ["a", "b"])
    check(e["dead_get_stats"], mc.get_stats)
    check(e.get("dead_flush_all", e["flush_all"]), mc.flush_all)


def test_flush_all(family: Family, make: Callable[..., Any]) -> None:
    mc = make(family)
    mc.set_multi({"a": 1, "b": 2})
    check(family.expect["flush_all"], mc.flush_all)
    assert mc.get_multi(["a", "b"]) == {}


def test_get_stats(family: Family, make: Callable[..., Any], compat_server: Any) -> None:
    mc = make(family)
    mc.set("s", 1)
    stats = mc.get_stats()
    assert len(stats) == 1
    name, d = stats[0]
    assert name == family.expect["stats_name"](compat_server.address)
    assert int(d["total_items"]) >= 1 and int(d["curr_connections"]) >= 1
    value_type = family.expect.get("stats_value_type", str)
    assert all(isinstance(k, str) and isinstance(v, value_type) for k, v in d.items())
    ((name2, items),) = mc.get_stats("items")
    assert name2 == name
    if family.expect.get("stats_groups", True):
        assert int(items["items:1:number"]) >= 1
    else:
        assert "items:1:number" not in items

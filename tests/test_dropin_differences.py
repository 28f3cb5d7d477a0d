"""Behaviours of the drop-ins checked side by side with the real clients on one
memcached: unknown stats groups, text-flagged values that are not UTF-8, and
pylibmc's "random" distribution (a listed deliberate difference)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import memcache as real_memcache
import pylibmc as real_pylibmc
import pytest

import omcache
import omcache.memcache as om_memcache
import omcache_pylibmc
from omcache.testing import MemcachedProcess


@pytest.fixture
def mc_server(memcached_factory: Callable[..., MemcachedProcess]) -> Iterator[MemcachedProcess]:
    yield memcached_factory()


def _raised(f: Callable[[], Any]) -> type:
    try:
        f()
    except BaseException as e:  # noqa: BLE001 - the class is what is compared
        return type(e)
    raise AssertionError("no exception")


def test_memcache_get_stats_unknown_group_raises_index_error_like_python_memcached(mc_server: MemcachedProcess) -> None:
    real = real_memcache.Client([mc_server.address])
    ours = om_memcache.Client([mc_server.address])
    assert _raised(lambda: real.get_stats("nosuchgroup")) is IndexError
    with pytest.raises(IndexError) as ei:
        ours.get_stats("nosuchgroup")
    assert "no stats group 'nosuchgroup'" in str(ei.value)
    # The known groups still work, and the general stats keep memcached's order.
    assert [name for name, _ in ours.get_stats("settings")] == [name for name, _ in real.get_stats("settings")]
    assert list(ours.get_stats()[0][1])[:3] == ["pid", "uptime", "time"]


def test_text_flag_with_bad_utf8_raises_unicode_decode_error_like_the_originals(mc_server: MemcachedProcess) -> None:
    with omcache.Client([mc_server.address]) as raw:
        raw.set("notutf8", b"\xff\xfe", flags=0x10)
    real_pm, ours_pm = real_memcache.Client([mc_server.address]), om_memcache.Client([mc_server.address])
    for client in (real_pm, ours_pm):
        assert _raised(lambda: client.get("notutf8")) is UnicodeDecodeError
        assert _raised(lambda: client.get_multi(["notutf8"])) is UnicodeDecodeError
    real_pl = real_pylibmc.Client([mc_server.address])
    ours_pl = omcache_pylibmc.Client([mc_server.address])
    assert _raised(lambda: real_pl.get("notutf8")) is UnicodeDecodeError
    assert _raised(lambda: ours_pl.get("notutf8")) is UnicodeDecodeError
    # omcache's own SerdeClient raises its SerdeError, which is a UnicodeDecodeError too.
    with omcache.SerdeClient([mc_server.address]) as sc:
        with pytest.raises(omcache.serde.SerdeDecodeError) as ei:
            sc.get("notutf8")
    assert isinstance(ei.value, UnicodeDecodeError) and isinstance(ei.value, omcache.serde.SerdeError)


def test_random_distribution_is_a_listed_difference(mc_server: MemcachedProcess) -> None:
    real = real_pylibmc.Client([mc_server.address])
    real.behaviors = {"distribution": "random"}
    assert real.behaviors["distribution"] == "random"
    ours = omcache_pylibmc.Client([mc_server.address])
    with pytest.raises(omcache_pylibmc.NotSupportedError, match="random"):
        ours.behaviors = {"distribution": "random"}
    with open(__file__.replace("tests/test_dropin_differences.py", "docs/pylibmc.md")) as f:
        assert '`NotSupportedError` instead of being accepted: `distribution` "random"' in f.read().replace("\n   ", " ")

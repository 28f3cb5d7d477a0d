"""Key placement of omcache_pylibmc is the real pylibmc's (libmemcached 1.1.4's).

For each configuration (distribution, hash, weights, host spelling) the
server index of many keys (``Client.hash``) must equal pylibmc's, and items
set through omcache_pylibmc must be found by pylibmc on real memcached
servers (and on the very server pylibmc says).
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

import pytest

import omcache
import omcache_pylibmc
from omcache.testing import MemcachedProcess, find_memcached

from references import unavailable


# The references' versions are checked once per session (conftest.py's
# reference_clients fixture): a wrong or missing one stops this module.
pytestmark = pytest.mark.usefixtures("reference_clients")

try:
    import pylibmc as real
except ImportError:  # reported by the reference_clients fixture
    real = None

KEYS = [f"key:{i}" for i in range(300)] + ["", "a", "\u00e9t\u00e9", "\u4e2d\u6587-\u00ff", "k" * 250, "x y", "\x7f\x80"]

CONFIGS: List[Optional[Dict[str, Any]]] = [
    None,
    {"hash": "md5"},
    {"hash": "crc"},
    {"hash": "fnv1_64"},
    {"hash": "fnv1a_64"},
    {"hash": "fnv1_32"},
    {"hash": "fnv1a_32"},
    {"hash": "murmur"},
    {"hash": "jenkins"},
    {"ketama": True},
    {"ketama": True, "hash": "md5"},
    {"ketama": True, "hash": "fnv1a_32"},
    {"ketama_weighted": True},
    {"distribution": "consistent"},
    {"distribution": "consistent weighted"},
    {"distribution": "consistent weighted", "hash": "crc"},
    {"distribution": "consistent ketama spy"},
    {"_sort_hosts": 1},
    {"ketama": True, "_sort_hosts": 1},
]


@pytest.fixture(scope="module")
def servers() -> Iterator[List[MemcachedProcess]]:
    if find_memcached() is None:
        unavailable("memcached is not installed (apt-get install memcached)")
    procs = [MemcachedProcess().start() for _ in range(3)]
    try:
        yield procs
    finally:
        for p in procs:
            p.stop()


def _specs(servers: List[MemcachedProcess], style: str) -> List[str]:
    ports = [p.port for p in servers]
    if style == "plain":
        return [f"127.0.0.1:{p}" for p in ports]
    if style == "localhost":
        return [f"localhost:{p}" for p in ports]
    if style == "reversed":
        return [f"127.0.0.1:{p}" for p in reversed(ports)]
    if style == "weights":
        return [f"127.0.0.1:{p}:{w}" for p, w in zip(ports, (1, 3, 2))]
    raise AssertionError(style)


@pytest.mark.parametrize("style", ["plain", "localhost", "reversed", "weights"])
@pytest.mark.parametrize("behaviors", CONFIGS, ids=repr)
def test_hash_gives_pylibmcs_server(servers: List[MemcachedProcess], behaviors: Any, style: str) -> None:
    specs = _specs(servers, style)
    theirs = real.Client(specs, behaviors=behaviors, binary=True)
    ours = omcache_pylibmc.Client(specs, behaviors=behaviors, binary=True)
    # (libmemcached reports the kernel's socket buffer sizes of a live
    # server; omcache 0: see docs/pylibmc.md.)
    unasked = {"_socket_send_size", "_socket_recv_size"}
    assert {k: v for k, v in ours.behaviors.items() if k not in unasked} == {
        k: v for k, v in theirs.behaviors.items() if k not in unasked
    }
    assert [ours.hash(k) for k in KEYS] == [theirs.hash(k) for k in KEYS]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize(
    "behaviors",
    [None, {"ketama": True}, {"ketama_weighted": True}, {"hash": "crc"}, {"_sort_hosts": 1}, {"ketama": 1, "_sort_hosts": 1}],
    ids=repr,
)
def test_items_land_where_pylibmc_looks(servers: List[MemcachedProcess], behaviors: Any, binary: bool) -> None:
    specs = _specs(servers, "weights")
    assert len({s.split(":")[1] for s in specs}) == len(specs)
    for p in servers:
        omcache.Client([p.address]).flush_all()
    theirs = real.Client(specs, behaviors=behaviors, binary=binary)
    ours = omcache_pylibmc.Client(specs, behaviors=behaviors, binary=binary)
    keys = [f"placed:{i}" for i in range(200)]
    assert ours.set_multi({k: i for i, k in enumerate(keys)}) == []
    assert theirs.get_multi(keys) == {k: i for i, k in enumerate(keys)}
    order = sorted(specs, key=lambda s: int(s.split(":")[1])) if behaviors and behaviors.get("_sort_hosts") else specs
    singles = [omcache_pylibmc.Client([s.rsplit(":", 1)[0]], binary=binary) for s in order]
    for k in keys[:60]:
        holders = [i for i, c in enumerate(singles) if c.get(k) is not None]
        assert holders == [theirs.hash(k)], k
    # And the other way round.
    assert theirs.set_multi({k: -i for i, k in enumerate(keys)}) == []
    assert ours.get_multi(keys) == {k: -i for i, k in enumerate(keys)}


@pytest.mark.parametrize("initial", [None, {"ketama": 1}, {"distribution": "consistent ketama spy"}], ids=repr)
@pytest.mark.parametrize(
    "later",
    [{}, {"ketama": 1}, {"distribution": "consistent"}, {"distribution": "consistent weighted"},
     {"ketama_weighted": 1}, {"distribution": "consistent ketama spy"}, {"distribution": "modula"}, {"hash": "crc"}],
    ids=repr,
)
def test_behaviors_changed_after_construction_place_as_pylibmc(initial: Any, later: Any) -> None:
    """Server weights turn weighting on only while the distribution is
    consistent when the servers are added; a later "ketama" or "consistent"
    turns it off again (no server is contacted: placement only)."""
    specs = ["127.0.0.1:20001:1", "127.0.0.1:20002:3", "127.0.0.1:20003:2"]
    theirs = real.Client(specs, behaviors=initial)
    ours = omcache_pylibmc.Client(specs, behaviors=initial)
    theirs.behaviors = later
    ours.behaviors = later
    assert ours.behaviors["ketama_weighted"] == theirs.behaviors["ketama_weighted"]
    assert [ours.hash(k) for k in KEYS] == [theirs.hash(k) for k in KEYS]

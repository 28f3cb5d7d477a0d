"""get_or_set under a stampede: several processes of several threads on one key.

Each test starts worker processes (tests/stampede_worker.py), lets all their
threads call get_or_set on one key at the same moment, and checks how many
times the loader ran (counted in memcached, across processes) and what every
caller got.  Every test runs against the real memcached and the embedded
server; meta has the full contract, text and binary the add-lock fallback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, Iterator, List, NamedTuple, Tuple

import pytest

import omcache
from omcache.testing import EmbeddedServer, MemcachedProcess, find_memcached

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stampede_worker.py")
PROCS, THREADS = 3, 4


class Srv(NamedTuple):
    """A server the tests run against."""

    addr: str
    embedded: bool


@pytest.fixture(scope="module", params=["memcached", "embedded"])
def server(request: pytest.FixtureRequest) -> Iterator[Srv]:
    """A real memcached, then the embedded server."""
    if request.param == "embedded":
        with EmbeddedServer() as s:
            yield Srv(s.address, True)
        return
    if find_memcached() is None:
        if os.environ.get("CI"):
            pytest.fail("memcached is not installed, and CI must run the integration tests")
        pytest.skip("memcached is not installed")
    with MemcachedProcess() as p:
        yield Srv(p.address, False)


def _start(cfg: Dict[str, Any]) -> "subprocess.Popen[str]":
    p = subprocess.Popen(
        [sys.executable, WORKER, json.dumps(cfg)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line == "ready\n", f"worker did not start: {line!r}"
    return p


def _go(procs: List["subprocess.Popen[str]"]) -> None:
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()


def _collect(procs: List["subprocess.Popen[str]"], timeout: float = 60) -> List[Dict[str, Any]]:
    recs: List[Dict[str, Any]] = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        assert p.returncode == 0, f"worker exited with {p.returncode}"
        recs += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return recs


def stampede(server: str, protocol: str, key: str, **cfg: Any) -> Tuple[List[Dict[str, Any]], int]:
    """Run PROCS processes of THREADS callers on key; return their records and the loader runs."""
    counter = "runs-" + key
    base = {"server": server, "protocol": protocol, "key": key, "counter": counter, "threads": THREADS}
    procs = [_start({**base, **cfg}) for _ in range(PROCS)]
    _go(procs)
    recs = _collect(procs)
    return recs, _runs(server, counter)


def _runs(server: str, counter: str) -> int:
    with omcache.Client([server]) as c:
        v = c.get(counter)
    return int(v) if v is not None else 0


def _key() -> str:
    return "stampede-" + uuid.uuid4().hex[:12]


def _client(server: str, protocol: str) -> omcache.Client:
    return omcache.Client([server], protocol=protocol)


# -- cold key -------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["meta", "text", "binary"])
@pytest.mark.parametrize("client", ["omcache", "serde"])
def test_cold_key_loads_once(server: Srv, protocol: str, client: str) -> None:
    key = _key()
    recs, runs = stampede(server.addr, protocol, key, client=client, sleep=0.5)
    assert len(recs) == PROCS * THREADS
    assert runs == 1
    values = {r.get("value") for r in recs}
    assert len(values) == 1 and None not in values, recs
    (value,) = values
    assert isinstance(value, str) and value.startswith("loaded-")
    with _client(server.addr, protocol) as c:
        stored = c.get(key)
    if client == "serde":
        stored_obj = omcache.SerdeClient([server.addr], protocol=protocol).get(key)
        assert stored_obj == value
    else:
        assert stored == value.encode()


# -- invalidate: one refresh, the others served stale at once ---------------


def test_invalidate_serves_stale_to_all_but_one(server: Srv) -> None:
    key = _key()
    with _client(server.addr, "meta") as c:
        assert c.set(key, b"old", 100)
        assert c.invalidate(key, 30)
        # A plain get still returns the stale value (it does not count as a
        # refresh in this test: the reads below are get_or_set only).
    recs, runs = stampede(server.addr, "meta", key, sleep=1.0)
    assert runs == 1
    fresh = [r for r in recs if r.get("value", "").startswith("loaded-")]
    stale = [r for r in recs if r.get("value") == "old"]
    assert len(fresh) == 1 and len(stale) == len(recs) - 1, recs
    # The stale readers did not wait for the 1 s load: they were served at
    # once (0.8 s of room for a loaded machine).
    assert max(r["wait"] for r in stale) < fresh[0]["wait"]
    assert max(r["wait"] for r in stale) < 0.8, stale
    with _client(server.addr, "meta") as c:
        assert c.get(key) == fresh[0]["value"].encode()
        assert c.get_or_set(key, lambda: b"not called", 60) == fresh[0]["value"].encode()


def test_invalidate_missing_key_and_fallback(server: Srv) -> None:
    with _client(server.addr, "meta") as c:
        assert c.invalidate(_key()) is False
        k = _key()
        c.set(k, b"v", 100)
        assert c.invalidate(k, 5) is True
        assert c.get(k) == b"v"
        meta = c.get_meta(k)
        assert meta is not None and 0 < meta.ttl <= 5
    for protocol in ("text", "binary"):
        with _client(server.addr, protocol) as c:
            k = _key()
            c.set(k, b"v", 100)
            # No stale state in these protocols: invalidate deletes.
            assert c.invalidate(k) is True
            assert c.get(k) is None
            assert c.invalidate(k) is False


# -- recache_before: one early refresh, nobody misses or waits ---------------


def test_recache_before_refreshes_once_without_waits(server: Srv) -> None:
    key = _key()
    with _client(server.addr, "meta") as c:
        assert c.set(key, b"current", 20)
    # 20 s left, under recache_before=60: one caller refreshes (stored with
    # 100 s, over the threshold), the others get the current value.
    recs, runs = stampede(server.addr, "meta", key, sleep=1.0, recache_before=60, expire=100)
    assert runs == 1
    fresh = [r for r in recs if r.get("value", "").startswith("loaded-")]
    current = [r for r in recs if r.get("value") == "current"]
    assert len(fresh) == 1 and len(current) == len(recs) - 1, recs
    # Nobody waited for the 1 s refresh (0.8 s of room for a loaded machine).
    assert max(r["wait"] for r in current) < 0.8, current
    with _client(server.addr, "meta") as c:
        assert c.get(key) == fresh[0]["value"].encode()
        meta = c.get_meta(key)
        assert meta is not None and meta.ttl > 60
        # Now over the threshold: a plain hit, no refresh.
        assert c.get_or_set(key, lambda: b"not called", 100, recache_before=60) == fresh[0]["value"].encode()


# -- a raising loader ---------------------------------------------------------


@pytest.mark.parametrize("protocol", ["meta", "text", "binary"])
def test_raising_loader_releases_the_lease(server: Srv, protocol: str) -> None:
    key = _key()
    # lock_ttl 30: if the failed winner's lease were not released, the
    # others would wait 30 s and more.
    recs, runs = stampede(server.addr, protocol, key, loader="fail-first", sleep=0.3, lock_ttl=30)
    errors = [r for r in recs if "error" in r]
    served = [r for r in recs if "value" in r]
    assert len(errors) == 1 and "loader failed on purpose" in errors[0]["error"], recs
    assert runs == 2
    values = {r["value"] for r in served}
    assert len(served) == len(recs) - 1 and len(values) == 1, recs
    # Served soon after: well under the 30 s lock (10 s of room for a loaded
    # machine; the two loads take 0.6 s).
    assert max(r["wait"] for r in served) < 10, served


def test_raising_loader_in_process(server: Srv, protocol: str) -> None:
    with _client(server.addr, protocol) as c:
        key = _key()

        def boom() -> bytes:
            raise KeyError("no such row")

        with pytest.raises(KeyError):
            c.get_or_set(key, boom, 60)
        assert c.get(key) is None
        # Released at once: a wait_timeout of 0 finds no lease held.
        assert c.get_or_set(key, lambda: b"v", 60, wait_timeout=0) == b"v"
        assert c.get_or_set(key, boom, 60) == b"v"
        # A loader returning something other than bytes is a TypeError,
        # and releases the lease too.
        k2 = _key()
        with pytest.raises(TypeError):
            c.get_or_set(k2, lambda: "str", 60)  # type: ignore[arg-type, return-value]
        assert c.get_or_set(k2, lambda: b"ok", 60, wait_timeout=0) == b"ok"


def test_bad_arguments(server: Srv) -> None:
    with _client(server.addr, "meta") as c:
        with pytest.raises(ValueError):
            c.get_or_set("k", lambda: b"v", 60, lock_ttl=0)
        with pytest.raises(ValueError):
            c.get_or_set("k", lambda: b"v", -1)
        with pytest.raises(TypeError):
            c.get_or_set("k", b"v", 60)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            c.get_or_set("k", lambda: b"v", 60, wait_timeout=-1)
        with pytest.raises(omcache.InvalidKeyError):
            c.get_or_set("a b", lambda: b"v", 60)
        with pytest.raises(ValueError):
            c.invalidate("k", -1)


def test_wait_timeout_raises(server: Srv) -> None:
    with _client(server.addr, "meta") as c:
        key = _key()
        # Hold the lease as a winner that never stores would.
        lease = c._get_lease(key.encode(), 30, 0)
        assert lease.state == 1
        t0 = time.monotonic()
        with pytest.raises(omcache.LeaseTimeoutError):
            c.get_or_set(key, lambda: b"v", 60, wait_timeout=0.3)
        assert time.monotonic() - t0 >= 0.3
        # A plain get reports the held lease's placeholder as a miss.
        assert c.get(key) is None
        assert c.get_multi([key]) == {}


# -- a winner killed mid-load ---------------------------------------------------


@pytest.mark.parametrize("protocol", ["meta", "text", "binary"])
def test_dead_winner_lease_expires(server: Srv, protocol: str) -> None:
    key = _key()
    counter = "runs-" + key
    lock_ttl = 2
    base = {"server": server.addr, "protocol": protocol, "key": key, "counter": counter, "lock_ttl": lock_ttl}
    winner = _start({**base, "threads": 1, "loader": "hang"})
    _go([winner])
    assert winner.stdout is not None
    assert winner.stdout.readline() == "loading\n"
    t_won = time.monotonic()
    waiters = [_start({**base, "threads": 3, "sleep": 0.2}) for _ in range(2)]
    _go(waiters)
    time.sleep(0.3)
    winner.kill()
    winner.wait()
    recs = _collect(waiters)
    t_done = time.monotonic()
    assert _runs(server.addr, counter) == 2  # the dead winner's and one other
    values = {r.get("value") for r in recs}
    assert len(values) == 1 and None not in values, recs
    # Nobody could load before the dead winner's lease expired: lock_ttl
    # seconds after it won, less memcached's whole-second clock (1 s).
    assert t_done - t_won >= lock_ttl - 1
    assert max(r["wait"] for r in recs) < lock_ttl + 10


# -- what the add-lock fallback does not do ------------------------------------


@pytest.mark.parametrize("protocol", ["text", "binary"])
def test_fallback_has_no_early_recache(server: Srv, protocol: str) -> None:
    with _client(server.addr, protocol) as c:
        key = _key()
        c.set(key, b"current", 20)

        def not_called() -> bytes:
            raise AssertionError("the loader ran on a hit")

        # 20 s left, under recache_before=60: meta would refresh; text and
        # binary return the hit.
        assert c.get_or_set(key, not_called, 100, recache_before=60) == b"current"
        # The lock key is gone once a load is done.
        assert c.get_or_set(_key(), lambda: b"v", 60) == b"v"


def test_meta_lock_keys_are_not_used(server: Srv) -> None:
    from omcache.lease import lock_key

    with _client(server.addr, "text") as t, _client(server.addr, "meta") as m:
        key = _key()
        # A text caller holding the add lock does not block meta callers,
        # who use memcached's leases: mixing protocols on one key gives
        # each its own one-loader guarantee, not a shared one.
        assert t.add(lock_key(key.encode()), b"held", 30)
        assert m.get_or_set(key, lambda: b"meta", 60, wait_timeout=0) == b"meta"
        assert t.get_or_set(key, lambda: b"text", 60, wait_timeout=0) == b"meta"


@pytest.mark.parametrize("protocol", ["meta", "text", "binary"])
def test_unreachable_server_raises_without_loading(protocol: str) -> None:
    from omcache.testing import free_port

    ran: List[int] = []

    def load() -> bytes:
        ran.append(1)
        return b"v"

    with omcache.Client([f"127.0.0.1:{free_port()}"], protocol=protocol, connect_timeout=0.5) as c:
        with pytest.raises(omcache.ConnectionError):
            c.get_or_set("k", load, 60)
    assert ran == []

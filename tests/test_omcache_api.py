"""omcache.OMcache: OMcache's Python API (return codes, exceptions, ms timeouts)."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator

import pytest

import omcache
from omcache import OMcache
from omcache.omcache_api import DISTRIBUTION_METHODS, OMCACHE_OK
from omcache.pyclient import client_supports
from omcache.testing import free_port

try:
    import pylibmc
except ImportError:  # reported by conftest's reference_clients fixture
    pass


@pytest.fixture
def oc(memcached: Any) -> Iterator[OMcache]:
    o = OMcache([memcached.address])
    o.flush_all()
    yield o
    o.free()


def test_commands_return_omcache_ok_and_get_shapes(oc: OMcache) -> None:
    assert OMCACHE_OK == 0
    assert oc.set("k", "arsd", flags=531) == OMCACHE_OK
    assert oc.get("k") == b"arsd"
    value, flags, cas = oc.get("k", flags=True, cas=True)  # type: ignore[misc]
    assert (value, flags) == (b"arsd", 531) and cas > 0
    assert oc.get("k", flags=True) == (b"arsd", 531)
    assert oc.get("k", cas=True) == (b"arsd", cas)
    assert oc.set(b"bk", b"\x00\xff") == OMCACHE_OK
    assert oc.get("bk") == b"\x00\xff"


def test_outcomes_raise_omcache_exceptions(oc: OMcache) -> None:
    with pytest.raises(omcache.NotFoundError):
        oc.get("nope")
    with pytest.raises(omcache.NotFoundError):
        oc.replace("k", "replaced")
    assert oc.add("k", "added") == OMCACHE_OK
    with pytest.raises(omcache.KeyExistsError):
        oc.add("k", "again")
    assert oc.get("k") == b"added"
    assert oc.replace("k", "replaced") == OMCACHE_OK
    assert oc.delete("k") == OMCACHE_OK
    with pytest.raises(omcache.NotFoundError):
        oc.delete("k")
    with pytest.raises(omcache.NotStoredError):
        oc.append("k", "x")
    with pytest.raises(omcache.NotStoredError):
        oc.prepend("k", "x")
    with pytest.raises(omcache.NotFoundError):
        oc.touch("k", 10)
    for e in (omcache.NotFoundError, omcache.KeyExistsError, omcache.NotStoredError, omcache.DeltaBadValueError):
        assert issubclass(e, omcache.CommandError) and issubclass(e, omcache.Error)


def test_cas(oc: OMcache) -> None:
    with pytest.raises(omcache.NotFoundError):
        oc.set("c", "xxx", cas=42424242)
    oc.set("c", "xxx")
    with pytest.raises(omcache.KeyExistsError):
        oc.set("c", "xxx", cas=42424242)
    _, cas1 = oc.get("c", cas=True)  # type: ignore[misc]
    assert oc.set("c", "42", cas=cas1) == OMCACHE_OK
    with pytest.raises(omcache.KeyExistsError):
        oc.set("c", "zzz", cas=cas1)
    value, cas2 = oc.get("c", cas=True)  # type: ignore[misc]
    assert value == b"42" and cas2 != cas1
    oc.increment("c", 8)
    with pytest.raises(omcache.KeyExistsError):
        oc.set("c", "zzz", cas=cas2)
    assert oc.get("c") == b"50"


def test_increment_decrement(oc: OMcache) -> None:
    with pytest.raises(omcache.NotFoundError):
        oc.increment("n", 2, initial=None)
    assert oc.increment("n", 2, initial=0) == 0
    assert oc.increment("n", 2) == 2
    assert oc.increment("n", 2, initial=42) == 4
    assert oc.decrement("n", 3) == 1
    assert oc.decrement("n", 5) == 0
    oc.set("n", "100")
    assert oc.decrement("n", -5) == 105
    assert oc.increment("n", -5) == 100
    oc.set("n", "x567")
    with pytest.raises(omcache.DeltaBadValueError):
        oc.decrement("n", 5)
    with pytest.raises(omcache.Error, match="initial must be set"):
        oc.increment("n2", 2, expiration=42, initial=None)
    assert oc.increment("n3", 1, initial=7, expiration=300) == 7


def test_touch_and_gat_set_expiration(oc: OMcache) -> None:
    # An absolute expiration in the past expires the item at once; no sleeping.
    past = int(time.time()) - 3600
    oc.set("t", "v")
    assert oc.touch("t", expiration=300) == OMCACHE_OK
    assert oc.get("t") == b"v"
    assert oc.touch("t", expiration=past) == OMCACHE_OK
    with pytest.raises(omcache.NotFoundError):
        oc.get("t")
    oc.set("g", "v", flags=5)
    assert oc.gat("g", 300) == b"v"
    assert oc.gat("g", 300, flags=True) == (b"v", 5)
    assert oc.gat("g", past) == b"v"
    with pytest.raises(omcache.NotFoundError):
        oc.gat("g", 300)


def test_append_prepend(oc: OMcache) -> None:
    oc.set("ap", "asdf")
    assert oc.append("ap", "zxcvb") == OMCACHE_OK
    assert oc.prepend("ap", b"qwerty") == OMCACHE_OK
    assert oc.get("ap") == b"qwertyasdfzxcvb"
    with pytest.raises(NotImplementedError, match="cas"):
        oc.append("ap", "x", cas=123)


def test_get_multi_keys_are_bytes(oc: OMcache) -> None:
    for i in range(20):
        oc.set(f"m{i * 2}", b"val", flags=i)
    keys = [f"m{i}" for i in range(40)]
    res = oc.get_multi(keys)
    assert res == {f"m{i * 2}".encode(): b"val" for i in range(20)}
    res_f = oc.get_multi(keys, flags=True)
    assert res_f[b"m10"] == (b"val", 5)
    res_fc = oc.get_multi(iter(keys), flags=True, cas=True)
    assert len(res_fc) == 20 and all(len(v) == 3 and v[2] > 0 for v in res_fc.values())  # type: ignore[arg-type]
    assert oc.get_multi([]) == {}


def test_values_and_keys_types(oc: OMcache) -> None:
    oc.set("é", "ü")
    assert oc.get("é".encode()) == "ü".encode()
    with pytest.raises(TypeError):
        oc.set("k", 5)  # type: ignore[arg-type]
    with pytest.raises(omcache.InvalidKeyError):
        oc.set("bad key", "v")


def test_too_large_value(oc: OMcache) -> None:
    with pytest.raises(omcache.TooLargeValueError):
        oc.set("big", b"x" * (2 * 1024 * 1024))


def test_flush_all(oc: OMcache) -> None:
    oc.set("f", "v")
    assert oc.flush_all() == OMCACHE_OK
    with pytest.raises(omcache.NotFoundError):
        oc.get("f")
    assert oc.flush() == OMCACHE_OK


def test_stat_and_noop_per_server(memcached_factory: Callable[..., Any]) -> None:
    a, b = memcached_factory(), memcached_factory()
    oc = OMcache(f"{a.address}, {b.address}")
    assert oc.servers == [a.address, b.address]
    s0, s1 = oc.stat("settings", 0), oc.stat("settings", 1)
    assert s0[b"tcpport"] == str(a.port).encode() and s1[b"tcpport"] == str(b.port).encode()
    general = oc.stat()
    assert len(general) > 30 and all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in general.items())
    assert oc.noop(0) == OMCACHE_OK and oc.noop(1) == OMCACHE_OK
    with pytest.raises(omcache.CommandError, match="invalid server index"):
        oc.stat("", 2)
    b.stop()
    with pytest.raises(omcache.ConnectionError):
        oc.noop(1)
    oc.free()


def test_set_servers_rebuilds_the_client(memcached_factory: Callable[..., Any]) -> None:
    a, b = memcached_factory(), memcached_factory()
    oc = OMcache([a.address])
    oc.set("where", "a")
    assert oc.set_servers([b.address]) == OMCACHE_OK
    with pytest.raises(omcache.NotFoundError):
        oc.get("where")
    oc.set_servers(a.address)
    assert oc.get("where") == b"a"
    with pytest.raises(omcache.ConfigError):
        oc.set_servers(["127.0.0.1:notaport"])
    oc.free()
    with pytest.raises(omcache.NoServersError):
        oc.get("where")


def test_timeout_properties_are_milliseconds_with_omcache_defaults(memcached: Any) -> None:
    oc = OMcache([memcached.address])
    assert (oc.connect_timeout, oc.io_timeout) == (10000, 1000)
    assert (oc.reconnect_timeout, oc.dead_timeout) == (10000, 10000)
    oc.connect_timeout = 250
    oc.io_timeout = 300
    assert (oc.connect_timeout, oc.io_timeout) == (250, 300)
    oc.set("still", "works")
    assert oc.get("still") == b"works"
    with pytest.raises(ValueError):
        oc.connect_timeout = -1
    with pytest.raises(TypeError):
        oc.io_timeout = 1.5  # type: ignore[assignment]
    oc.free()


def test_failover_timeouts_pass_through(memcached: Any) -> None:
    oc = OMcache([memcached.address])
    for name in ("reconnect_timeout", "dead_timeout"):
        assert getattr(oc, name) == 10000
        setattr(oc, name, 500)
        assert getattr(oc, name) == 500
    # ... and reach omcache.Client, which offers both options
    assert client_supports("reconnect_timeout") and client_supports("dead_timeout")
    kw = oc._client_kwargs(1000)
    assert (kw["reconnect_timeout"], kw["dead_timeout"]) == (0.5, 0.5)
    oc.set("still", "works")
    assert oc.get("still") == b"works"
    oc.free()


def test_io_timeout_and_per_call_timeout_bound_a_stalled_server(memcached: Any) -> None:
    oc = OMcache([memcached.address])
    oc.set("k", "v")
    memcached.pause()
    try:
        oc.io_timeout = 300
        t0 = time.monotonic()
        with pytest.raises(omcache.TimeoutError):
            oc.get("k")
        assert time.monotonic() - t0 < 2.0
        oc.io_timeout = 5000
        t0 = time.monotonic()
        with pytest.raises(omcache.TimeoutError):
            oc.get("k", timeout=200)
        assert time.monotonic() - t0 < 2.0
    finally:
        memcached.resume()
    oc.free()


def test_unreachable_server_raises_connection_error() -> None:
    oc = OMcache([f"127.0.0.1:{free_port()}"])
    oc.connect_timeout = 500
    with pytest.raises(omcache.ConnectionError):
        oc.set("k", "v")
    with pytest.raises(omcache.ConnectionError):
        oc.get("k")
    oc.free()


@pytest.mark.usefixtures("reference_clients")
def test_distribution_methods(memcached_factory: Callable[..., Any]) -> None:
    a, b = memcached_factory(), memcached_factory()
    oc = OMcache([a.address, b.address])
    with pytest.raises(omcache.Error, match="invalid distribution method"):
        oc.set_distribution_method("xxx")
    assert oc.distribution_method == "libmemcached_ketama"
    # What libmemcached (through pylibmc) calls each method.
    pylibmc_behaviors = {
        "libmemcached_ketama": {"ketama": True},
        "libmemcached_ketama_weighted": {"ketama_weighted": True},
    }
    keys = [f"dist_{i}" for i in range(60)]
    assert client_supports("distribution")
    for method, behaviors in pylibmc_behaviors.items():
        assert oc.set_distribution_method(method) == OMCACHE_OK
        oc.flush_all()
        for k in keys:
            oc.set(k, method)
        # keys are where libmemcached looks for them, server by server
        plc = pylibmc.Client([a.address, b.address], behaviors=behaviors)
        assert plc.get_multi(keys) == {k: method.encode() for k in keys}
        on_a = OMcache([a.address]).get_multi(keys)
        assert 0 < len(on_a) < len(keys)
    assert set(DISTRIBUTION_METHODS) == {
        "libmemcached_ketama", "libmemcached_ketama_weighted", "libmemcached_ketama_pre1010",
    }  # fmt: skip
    oc.free()


def test_log_property(memcached: Any, caplog: pytest.LogCaptureFixture) -> None:
    mine = logging.getLogger("omcache.test.mine")
    oc = OMcache([memcached.address], log=mine)
    assert oc.log is mine
    with caplog.at_level(logging.DEBUG, logger="omcache.test.mine"):
        oc.set_servers([memcached.address])
    assert any(r.name == "omcache.test.mine" for r in caplog.records)
    oc.log = None  # type: ignore[assignment]
    assert oc.log is logging.getLogger("omcache")
    oc.free()


def test_context_manager_frees(memcached: Any) -> None:
    with OMcache([memcached.address]) as oc:
        oc.set("cm", "v")
    with pytest.raises(omcache.NoServersError):
        oc.get("cm")


def test_failover_and_reconnect_timeout(memcached_factory: Callable[..., Any]) -> None:
    """A stopped server's keys move to the other server; with a short
    reconnect_timeout they come back soon after it restarts."""
    a, b = memcached_factory(), memcached_factory()
    oc = OMcache([a.address, b.address])
    oc.connect_timeout = 300
    oc.io_timeout = 300
    oc.reconnect_timeout = 100
    keys = [f"fo{i}" for i in range(40)]
    b.stop()
    deadline = time.monotonic() + 10
    pending = set(keys)
    while pending and time.monotonic() < deadline:
        for k in sorted(pending):
            try:
                oc.set(k, "moved")
                pending.discard(k)
            except omcache.ConnectionError:
                pass
    assert not pending, "keys of the stopped server did not fail over"
    assert oc.get_multi(keys) == {k.encode(): b"moved" for k in keys}
    b.start()
    only_b = OMcache([b.address])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for k in keys:
            oc.set(k, "back")
        if only_b.get_multi(keys):
            break
        time.sleep(0.05)
    back = only_b.get_multi(keys)
    assert 0 < len(back) < len(keys), "keys did not return to the restarted server"
    oc.free()
    only_b.free()

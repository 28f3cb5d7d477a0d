"""omcache.memcache beyond the shared compatibility suite: sharing a cluster
with the real python-memcached, omcache-only behaviour, logging."""

from __future__ import annotations

import logging
from typing import Any, Callable, List

import pytest

import omcache
import omcache.memcache as om
from omcache.pyclient import client_supports
from omcache.testing import free_port

try:
    import memcache as real_memcache
except ImportError:  # reported by conftest's reference_clients fixture
    pass


@pytest.mark.usefixtures("reference_clients")
def test_module_level_exceptions_are_the_client_attributes() -> None:
    assert om.Client.MemcachedKeyError is om.MemcachedKeyError
    assert om.Client.MemcachedKeyLengthError is om.MemcachedKeyLengthError
    assert om.Client.MemcachedKeyCharacterError is om.MemcachedKeyCharacterError
    assert om.Client.MemcachedKeyNoneError is om.MemcachedKeyNoneError
    assert om.Client.MemcachedKeyTypeError is om.MemcachedKeyTypeError
    assert om.Client.MemcachedStringEncodingError is om.MemcachedStringEncodingError
    assert issubclass(om.MemcachedKeyError, omcache.Error)
    assert om.SERVER_MAX_KEY_LENGTH == real_memcache.SERVER_MAX_KEY_LENGTH
    assert om.SERVER_MAX_VALUE_LENGTH == real_memcache.SERVER_MAX_VALUE_LENGTH


@pytest.mark.usefixtures("reference_clients")
@pytest.mark.parametrize("key", [b"", b"a", b"some key", "ключ".encode(), bytes(range(256))])
def test_cmemcache_hash_matches_python_memcached(key: bytes) -> None:
    assert om.cmemcache_hash(key) == real_memcache.cmemcache_hash(key)


def _cluster(factory: Callable[..., Any], weights: List[int]) -> List[Any]:
    servers = [factory() for _ in weights]
    return [(s.address, w) if w != 1 else s.address for s, w in zip(servers, weights)]


@pytest.mark.usefixtures("reference_clients")
@pytest.mark.parametrize("weights", [[1, 1], [1, 1, 1], [1, 3]], ids=str)
def test_shares_a_cluster_with_python_memcached(memcached_factory: Callable[..., Any], weights: List[int]) -> None:
    """Keys land where python-memcached puts them, so each reads the other's."""
    assert client_supports("distribution"), "omcache.Client must offer distribution='python_memcache'"
    specs = _cluster(memcached_factory, weights)
    real = real_memcache.Client(specs)
    ours = om.Client(specs)
    keys = [f"shared:{i}" for i in range(120)]
    for k in keys[:60]:
        assert real.set(k, k) is True
    assert ours.set_multi({k: k for k in keys[60:]}) == []
    assert ours.get_multi(keys) == {k: k for k in keys}
    assert real.get_multi(keys) == {k: k for k in keys}
    assert all(ours.get(k) == k for k in keys[:60])
    # and on each server the same keys: python-memcached's buckets
    for spec in specs:
        addr = spec[0] if isinstance(spec, tuple) else spec
        alone_real = real_memcache.Client([addr]).get_multi(keys)
        alone_ours = om.Client([addr]).get_multi(keys)
        assert alone_real == alone_ours and alone_ours


def test_tuple_keys_on_several_servers_are_refused_clearly(memcached_factory: Callable[..., Any]) -> None:
    mc = om.Client([memcached_factory().address, memcached_factory().address])
    with pytest.raises(NotImplementedError, match="tuple keys"):
        mc.set((5, "k"), "v")
    with pytest.raises(NotImplementedError, match="tuple keys"):
        mc.get_multi([(5, "k")])


def test_failed_writes_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    mc = om.Client([f"127.0.0.1:{free_port()}"], socket_timeout=0.5)
    with caplog.at_level(logging.WARNING, logger="omcache"):
        assert mc.set("k", "v") == 0
    assert any("not stored" in r.getMessage() for r in caplog.records)


def test_over_size_value_is_logged_and_not_sent(memcached: Any, caplog: pytest.LogCaptureFixture) -> None:
    mc = om.Client([memcached.address])
    with caplog.at_level(logging.WARNING, logger="omcache"):
        assert mc.set("big", b"x" * (om.SERVER_MAX_VALUE_LENGTH + 1)) == 0
    assert "server_max_value_length" in caplog.text


def test_debuglog_goes_to_logging_only_with_debug(caplog: pytest.LogCaptureFixture) -> None:
    quiet = om.Client(["127.0.0.1:1"])
    loud = om.Client(["127.0.0.1:1"], debug=1)
    with caplog.at_level(logging.DEBUG, logger="omcache"):
        quiet.debuglog("hush")
        loud.debuglog("hello")
    assert "hello" in caplog.text and "hush" not in caplog.text


def test_serialisation_settings_are_attributes(memcached: Any) -> None:
    mc = om.Client([memcached.address])
    assert mc.pickleProtocol == 0 and mc.picklerIsKeyword
    mc.pickleProtocol = 2
    mc.set("p", [1])
    with omcache.Client([memcached.address]) as raw:
        it = raw.get_item("p")
    assert it is not None and it.value[:2] == b"\x80\x02"
    assert mc.get("p") == [1]


def test_one_string_is_one_server(memcached: Any) -> None:
    mc = om.Client(memcached.address)
    assert [str(h) for h in mc.servers] == [f"inet:{memcached.address}"]
    assert mc.set("s", 1) is True and mc.get("s") == 1


def test_inet6_spec_is_understood() -> None:
    h = om.Host("inet6:[::1]:11311")
    assert (h.family, h.ip, h.port, h.engine_spec, str(h)) == ("inet6", "::1", 11311, "[::1]:11311", "inet6:[::1]:11311")
    assert h.stats_name == "[::1]:11311 (1)"
    assert om.Host("unix:/tmp/x.sock").engine_spec == "/tmp/x.sock"
    assert om.Host("example.com").engine_spec == "example.com:11211"


def test_flush_on_reconnect_is_not_implemented_yet() -> None:
    # Listed as missing in the README; the day the engine offers it this
    # test must change to test the feature.
    assert not client_supports("flush_on_reconnect")
    with pytest.raises(NotImplementedError, match="flush_on_reconnect"):
        om.Client(["127.0.0.1:1"], flush_on_reconnect=1)
    om.Client(["127.0.0.1:1"], flush_on_reconnect=0)  # off is fine


def test_client_options_pass_through(memcached: Any) -> None:
    # An omcache.Client option overrides what python-memcached's settings imply.
    mc = om.Client([memcached.address], io_timeout=2.0)
    assert mc.set("o", 1) is True
    with pytest.raises(TypeError):
        om.Client([memcached.address], no_such_option=1)


def test_empty_server_list() -> None:
    mc = om.Client([])
    assert mc.get("k") is None
    assert mc.set("k", 1) == 0
    assert mc.get_multi(["k"]) == {}
    assert mc.set_multi({"k": 1}) == ["k"]
    assert mc.get_stats() == []


@pytest.mark.usefixtures("reference_clients")
def test_keys_of_a_dead_server_move_where_python_memcached_moves_them(memcached_factory: Callable[..., Any]) -> None:
    """python-memcached rehashes a dead server's keys (crc of str(hash) + str(try));
    both clients must agree on where they went."""
    live = [memcached_factory().address, memcached_factory().address]
    specs = [live[0], f"127.0.0.1:{free_port()}", live[1]]
    real = real_memcache.Client(specs, socket_timeout=0.5)
    ours = om.Client(specs, socket_timeout=0.5)
    keys = [f"moved:{i}" for i in range(90)]
    for k in keys:
        assert real.set(k, k) is True
    # The engine learns that the server is dead from a failed call; python-memcached
    # from its connect() before sending.  After that they must agree.
    ours.get_multi(keys)
    assert ours.get_multi(keys) == {k: k for k in keys}
    assert ours.set_multi({k: k + "!" for k in keys}) == []
    assert real.get_multi(keys) == {k: k + "!" for k in keys}
    per_server = [real_memcache.Client([a]).get_multi(keys) for a in live]
    assert sorted(len(d) for d in per_server)[0] > 0 and sum(len(d) for d in per_server) == len(keys)


def test_importing_the_api_modules_does_not_load_the_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys, omcache, omcache.memcache, omcache.serde, omcache.omcache_api, omcache.pyclient\n"
        "c = omcache.memcache.Client(['127.0.0.1:11211'])\n"
        "o = omcache.SerdeClient(['127.0.0.1:11211'])\n"
        "assert not omcache._engine.loaded()\n"
        "assert not any(m.startswith('omcache._gopy') for m in sys.modules), sorted(sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr

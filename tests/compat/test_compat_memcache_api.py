"""python-memcached 1.62's own API, on python-memcached itself and on omcache.memcache."""

from __future__ import annotations

import pickle
import zlib
from datetime import timedelta
from typing import Any, Callable, Iterator

import pytest
from compat_families import Family, Raises, check

import omcache
from omcache.testing import MemcachedProcess


@pytest.fixture
def raw(compat_server: MemcachedProcess) -> Iterator[omcache.Client]:
    """A bytes client on the same server, to see and plant exact flags."""
    with omcache.Client([compat_server.address]) as c:
        yield c


def test_gets_and_cas_with_cache_cas(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family, cache_cas=True)
    mc.set("c", 1)
    assert mc.gets("c") == 1  # the value only; the cas id is remembered
    assert list(mc.cas_ids) == [b"c"] and mc.cas_ids[b"c"] > 0
    assert mc.cas("c", 2) is True
    assert mc.get("c") == 2
    mc.gets("c")
    other = make(memcache_family)
    other.set("c", 3)
    assert mc.cas("c", 4) is False  # changed since gets
    assert mc.get("c") == 3
    mc.gets("c")
    other.delete("c")
    assert mc.cas("c", 5) is False  # gone since gets
    mc.reset_cas()
    assert mc.cas_ids == {}
    assert mc.cas("c", 6) is True  # no remembered id: a plain set
    assert mc.get("c") == 6


def test_cas_without_cache_cas_is_set(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family)
    mc.set("c", 1)
    assert mc.gets("c") == 1
    assert mc.cas_ids == {}
    make(memcache_family).set("c", 2)
    assert mc.cas("c", 3) is True
    assert mc.get("c") == 3


def test_get_default_and_gets_miss(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family)
    assert mc.get("none", "dflt") == "dflt"
    assert mc.gets("none") is None


def test_tuple_keys_on_one_server(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family)
    assert mc.set((12345, "tk"), "v") is True
    assert mc.get((12345, "tk")) == "v"
    assert mc.get("tk") == "v"
    assert mc.get_multi([(1, "tk")]) == {(1, "tk"): "v"}
    assert mc.delete((7, "tk")) == 1


def test_int_keys_in_multi_calls(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family)
    assert mc.set_multi({42: "a", 46: "b"}, key_prefix="num_") == []
    assert mc.get("num_42") == "a"
    assert mc.get_multi([46, 42, 7], key_prefix="num_") == {42: "a", 46: "b"}


def test_time_arguments(memcache_family: Family, make: Callable[..., Any], raw: omcache.Client) -> None:
    mc = make(memcache_family)
    assert mc.set("td", "v", time=timedelta(seconds=300)) is True
    assert mc.set_multi({"m": 1}, time=300) == []
    assert mc.add("ad", 1, time=300) is True
    assert raw.get("td") == b"v" and raw.get("m") == b"1"


def test_noreply_returns(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family)
    assert mc.set("n", 5, noreply=True) is True
    assert mc.add("n", 6, noreply=True) is True  # not stored, but nobody asked
    assert mc.get("n") == 5
    assert mc.incr("n", 1, noreply=True) is None
    assert mc.get("n") == 6
    assert mc.delete("missing", noreply=True) == 1
    assert mc.touch("missing", 5, noreply=True) == 1
    assert mc.set_multi({"x": 1}, noreply=True) == []
    assert mc.get("x") == 1


def test_delete_multi_hold_time_is_refused_by_memcached(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family)
    mc.set_multi({"a": 1, "b": 2})
    assert mc.delete_multi(["a"], time=5) == 1
    assert mc.get("a") == 1  # memcached >= 1.4 refuses "delete <key> <time>"
    assert mc.delete_multi(["a", "b"], time=0) == 1
    assert mc.get_multi(["a", "b"]) == {}


def test_get_slabs(memcache_family: Family, make: Callable[..., Any], compat_server: MemcachedProcess) -> None:
    mc = make(memcache_family)
    mc.set("s", "x")
    exp = memcache_family.expect["get_slabs"]
    if isinstance(exp, Raises):
        check(exp, mc.get_slabs)
    else:
        assert exp == "works"
        ((name, slabs),) = mc.get_slabs()
        assert name == f"{compat_server.address} (1)"
        assert int(slabs["1"]["number"]) >= 1


def test_get_slab_stats(memcache_family: Family, make: Callable[..., Any], compat_server: MemcachedProcess) -> None:
    mc = make(memcache_family)
    mc.set("s", "x")
    ((name, data),) = mc.get_slab_stats()
    assert name == f"{compat_server.address} (1)"
    assert int(data["active_slabs"]) >= 1 and int(data["total_malloced"]) > 0
    assert int(data["1"]["chunk_size"]) == 96


def test_call_counters(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family)
    mc.set("a", 1)
    mc.get("a")
    mc.get("a")
    mc.get_multi(["a"])
    mc.delete("a")
    mc.incr("a")
    assert mc.stats == {"set": 1, "get": 2, "get_multi": 1, "delete": 1, "incr": 1}


def test_undecodable_values(memcache_family: Family, make: Callable[..., Any], raw: omcache.Client) -> None:
    mc = make(memcache_family)
    raw.set("badpickle", b"not a pickle", flags=0x01)
    assert mc.get("badpickle") is None  # python-memcached swallows unpickling errors
    raw.set("badflags", b"x", flags=0x40)
    with pytest.raises(ValueError):
        mc.get("badflags")
    raw.set("pylong", b"123", flags=0x04)  # what pylibmc writes for int
    assert mc.get("pylong") == 123


def test_pickle_protocol_and_compression_on_the_wire(
    memcache_family: Family, make: Callable[..., Any], raw: omcache.Client
) -> None:
    mc = make(memcache_family, pickleProtocol=2)
    mc.set("p", [1.5])
    it = raw.get_item("p")
    assert it is not None and it.flags == 0x01 and it.value == pickle.dumps([1.5], 2)
    mc.set("z", "a" * 1000, min_compress_len=100)
    it = raw.get_item("z")
    assert it is not None and it.flags == 0x18 and zlib.decompress(it.value) == b"a" * 1000
    assert mc.get("z") == "a" * 1000
    mc.set_multi({"zm": b"b" * 1000}, min_compress_len=999)
    it = raw.get_item("zm")
    assert it is not None and it.flags == 0x08
    assert mc.get_multi(["zm"]) == {"zm": b"b" * 1000}
    mc.set("i", 10**30, min_compress_len=1)  # ints are never compressed
    it = raw.get_item("i")
    assert it is not None and it.flags == 0x02 and it.value == str(10**30).encode()


def test_custom_length_limits(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family, server_max_value_length=10, server_max_key_length=10)
    assert mc.set("k", b"x" * 10) is True
    check(0, mc.set, "k", b"x" * 11)
    assert mc.set_multi({"a": b"x" * 11, "b": b"y"}) == ["a"]
    check(Raises(memcache_family.module.Client.MemcachedKeyLengthError), mc.get, "k" * 11)
    # the prefix counts towards the length
    check(Raises(memcache_family.module.Client.MemcachedKeyLengthError), mc.get_multi, ["k" * 6], key_prefix="p" * 5)


def test_key_encoder(memcache_family: Family, make: Callable[..., Any], raw: omcache.Client) -> None:
    mc = make(memcache_family, key_encoder=lambda k: k.upper())
    mc.set("abc", b"v")
    assert raw.get("ABC") == b"v"
    assert mc.get("abc") == b"v"


def test_exception_classes(memcache_family: Family) -> None:
    C = memcache_family.module.Client
    for sub in (
        C.MemcachedKeyLengthError,
        C.MemcachedKeyCharacterError,
        C.MemcachedKeyNoneError,
        C.MemcachedKeyTypeError,
    ):
        assert issubclass(sub, C.MemcachedKeyError)
    assert issubclass(C.MemcachedStringEncodingError, Exception)
    assert (C._FLAG_PICKLE, C._FLAG_INTEGER, C._FLAG_LONG, C._FLAG_COMPRESSED, C._FLAG_TEXT) == (1, 2, 4, 8, 16)


def test_check_key(memcache_family: Family) -> None:
    mc = memcache_family.make(["127.0.0.1:1"])
    C = memcache_family.module.Client
    mc.check_key(b"fine")
    mc.check_key((5, b"fine"))
    with pytest.raises(C.MemcachedKeyNoneError, match="empty"):
        mc.check_key("")  # a str "" (not yet encoded) is "empty"
    mc.check_key("", key_extra_len=3)
    with pytest.raises(C.MemcachedKeyTypeError):
        mc.check_key("text")
    with pytest.raises(C.MemcachedKeyCharacterError):
        mc.check_key(b"a\x7fb")
    with pytest.raises(C.MemcachedKeyLengthError):
        mc.check_key(b"k" * 248, key_extra_len=3)


def test_server_spec_syntaxes(memcache_family: Family, compat_server: MemcachedProcess) -> None:
    host, port = compat_server.address.rsplit(":", 1)
    for spec in (f"inet:{host}:{port}", (f"{host}:{port}", 3)):
        mc = memcache_family.make([spec])
        assert mc.set("syn", 1) is True and mc.get("syn") == 1
        ((name, _),) = mc.get_stats()
        weight = spec[1] if isinstance(spec, tuple) else 1
        assert name == f"{host}:{port} ({weight})"
        assert str(mc.servers[0]) == f"inet:{host}:{port}"
    with pytest.raises(ValueError, match="Unable to parse connection string"):
        memcache_family.make(["host:notaport"])


def test_unix_socket_server(memcache_family: Family) -> None:
    with MemcachedProcess(unix=True) as p:
        mc = memcache_family.make([f"unix:{p.address}"])
        assert mc.set("u", "v") is True and mc.get("u") == "v"
        ((name, _),) = mc.get_stats()
        assert name == f"unix:{p.address} (1)"
        mc.disconnect_all()


def test_reconnects_after_disconnect_and_forget(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family)
    mc.set("r", 1)
    mc.disconnect_all()
    assert mc.get("r") == 1
    mc.forget_dead_hosts()
    assert mc.get("r") == 1


def test_set_multi_with_oversize_value(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family, socket_timeout=0.5)
    assert mc.set_multi({"ok": 1, "big": b"x" * (2 * 1024 * 1024)}) == ["big"]
    if memcache_family.expect["set_multi_oversize_kills_server"]:
        assert mc.get("ok") is None  # python-memcached timed out and marked the server dead
        mc.forget_dead_hosts()
    assert mc.get("ok") == 1


def test_server_restart_is_survived(memcache_family: Family) -> None:
    with MemcachedProcess() as p:
        mc = memcache_family.make([p.address], dead_retry=0, socket_timeout=1)
        assert mc.set("a", 1) is True
        p.stop()
        assert mc.get("a") is None
        assert mc.set("a", 2) == 0
        p.start()
        mc.forget_dead_hosts()
        assert mc.set("a", 3) is True
        assert mc.get("a") == 3


def test_negative_and_float_times(memcache_family: Family, make: Callable[..., Any]) -> None:
    mc = make(memcache_family)
    assert mc.set("neg", 1, time=-1) is True
    assert mc.get("neg") is None  # stored already expired
    assert mc.set_multi({"negm": 1}, time=-1) == []
    assert mc.get("negm") is None
    assert mc.set("fl", 1, time=100.7) is True
    assert mc.get("fl") == 1
    assert mc.touch("fl", -1) == 1
    assert mc.get("fl") is None


def test_key_encoder_runs_once_for_cas(memcache_family: Family, make: Callable[..., Any], raw: omcache.Client) -> None:
    calls = []

    def enc(k: Any) -> Any:
        calls.append(k)
        return "e_" + k if isinstance(k, str) else k

    mc = make(memcache_family, key_encoder=enc)
    assert mc.cas("c", 1) is True  # no remembered cas id: a set
    assert raw.get("e_c") == b"1"
    assert calls == ["c"]
    assert mc.stats == {"cas": 1, "set": 1}


def test_get_multi_plain_and_other_keys_and_value_kinds(memcache_family: Family, make: Callable[..., Any]) -> None:
    """get_multi with plain str keys (omcache.memcache's fast path) and with
    keys that take the per-key path, over bare bytes and every value kind."""
    mc = make(memcache_family)
    raw_values = {f"r{i}": bytes([i]) * (i + 1) for i in range(20)}
    kinds = {"t": "text", "n": 12, "l": [1, 2], "b": b"bytes", "z": "zz" * 2000}
    mc.set_multi(raw_values)
    mc.set_multi(kinds, min_compress_len=100)
    assert mc.get_multi(list(raw_values)) == raw_values
    assert mc.get_multi(["t", "n", "l", "b", "z", "missing", "t"]) == kinds
    assert mc.get_multi(("r1", "t")) == {"r1": raw_values["r1"], "t": "text"}
    mc.set("clé", "accent")
    mc.set(b"bk", "bytes key")
    assert mc.get_multi(["r2", "clé", b"bk"]) == {"r2": raw_values["r2"], "clé": "accent", b"bk": "bytes key"}
    check(Raises(memcache_family.module.Client.MemcachedKeyCharacterError), mc.get_multi, ["r1", "a b"])
    check(Raises(memcache_family.module.Client.MemcachedKeyLengthError), mc.get_multi, ["r1", "k" * 251])
    # A key_encoder turns the fast path off: the stored key is the encoded one.
    upper = make(memcache_family, key_encoder=lambda k: k.upper() if isinstance(k, str) else k)
    upper.set("case", "upper")
    assert mc.get_multi(["CASE", "case"]) == {"CASE": "upper"}
    assert len(upper.get_multi(["case"])) == 1

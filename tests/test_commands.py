"""Every command through omcache.Client against a real memcached, edge cases included."""

from __future__ import annotations

import time
import uuid
from typing import Callable, Dict, Union

import pytest

import omcache
from omcache.testing import EmbeddedServer, MemcachedProcess, free_port


def unique(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@pytest.fixture
def mc(memcached: MemcachedProcess, protocol: str) -> omcache.Client:
    return omcache.Client(protocol=protocol, servers=[memcached.address])


def test_get_item_returns_flags_and_cas(mc: omcache.Client) -> None:
    k = unique()
    mc.set(k, b"v", flags=0xDEADBEEF)
    it = mc.get_item(k)
    assert it is not None and it.value == b"v" and it.flags == 0xDEADBEEF and it.cas > 0
    assert mc.get_item(unique()) is None


def test_a_store_without_flags_or_expiration_resets_both(mc: omcache.Client) -> None:
    # Meta leaves F and T out when they are 0 (memcached's defaults): a plain
    # set over an item stored with flags and an expiration must clear them.
    k = unique()
    for op in (mc.set, mc.replace):
        mc.set(k, b"old", expire=1, flags=7)
        assert op(k, b"new")
        it = mc.get_item(k)
        assert it is not None and it.value == b"new" and it.flags == 0
        time.sleep(1.5)  # an expiration left behind would have dropped it by now
        assert mc.get(k) == b"new"


def test_gets_and_cas_success_mismatch_and_missing(mc: omcache.Client) -> None:
    k = unique()
    mc.set(k, b"one")
    value, cas = mc.gets(k)
    assert value == b"one" and isinstance(cas, int)
    assert mc.cas(k, b"two", cas) is True
    assert mc.get(k) == b"two"
    assert mc.cas(k, b"three", cas) is False  # cas changed by the previous store
    assert mc.get(k) == b"two"
    assert mc.cas(unique(), b"x", cas) is None  # key missing
    assert mc.gets(unique()) == (None, None)


def test_add_and_replace(mc: omcache.Client) -> None:
    k = unique()
    assert mc.replace(k, b"r") is False
    assert mc.add(k, b"a") is True
    assert mc.add(k, b"b") is False
    assert mc.get(k) == b"a"
    assert mc.replace(k, b"r") is True
    assert mc.get(k) == b"r"


def test_append_prepend_and_on_missing_key(mc: omcache.Client) -> None:
    k = unique()
    assert mc.append(k, b"x") is False
    assert mc.prepend(k, b"x") is False
    assert mc.get(k) is None
    mc.set(k, b"mid")
    assert mc.append(k, b">") and mc.prepend(k, b"<")
    assert mc.get(k) == b"<mid>"


def test_incr_decr_semantics(mc: omcache.Client) -> None:
    k = unique()
    assert mc.incr(k) is None  # missing, no initial: not created
    assert mc.get(k) is None
    assert mc.incr(k, 5, initial=10) == 10  # created with the initial value
    assert mc.incr(k, 5) == 15
    assert mc.decr(k, 100) == 0  # clamps at zero
    mc.set(k, str(2**64 - 1).encode())
    assert mc.incr(k, 2) == 1  # wraps at 2**64
    mc.set(k, b"not a number")
    with pytest.raises(omcache.DeltaBadValueError):
        mc.incr(k)
    assert mc.decr(unique()) is None


def test_incr_with_initial_and_expire(mc: omcache.Client) -> None:
    k = unique()
    assert mc.incr(k, 1, initial=7, expire=1) == 7
    time.sleep(2.1)
    assert mc.get(k) is None


def test_expiry_is_honoured(mc: omcache.Client) -> None:
    k = unique()
    mc.set(k, b"short", expire=1)
    assert mc.get(k) == b"short"
    time.sleep(2.1)
    assert mc.get(k) is None


def test_touch_and_gat_update_expiry(mc: omcache.Client) -> None:
    a, b = unique(), unique()
    # 2 s, not 1: memcached's clock ticks once a second, so an item set to
    # live 1 s may be gone at once on a loaded machine; the touch and gat
    # below come well within 1 s.
    mc.set(a, b"a", expire=2)
    mc.set(b, b"b", expire=2)
    assert mc.touch(a, 100) is True
    it = mc.gat(b, 100)
    assert it is not None and it.value == b"b"
    time.sleep(3.2)
    assert mc.get(a) == b"a"
    assert mc.get(b) == b"b"
    assert mc.touch(unique(), 10) is False
    assert mc.gat(unique(), 10) is None


def test_zero_byte_and_largest_and_over_limit_values(memcached_factory: Callable[..., MemcachedProcess], protocol: str) -> None:
    server = memcached_factory(extra_args=["-I", "1m"])
    mc = omcache.Client(protocol=protocol, servers=[server.address])
    k = unique()
    mc.set(k, b"")
    assert mc.get(k) == b""
    # memcached's limit covers the item header too; 1 MiB minus a little fits
    big = b"z" * (1024 * 1024 - 512)
    mc.set(k, big)
    assert mc.get(k) == big
    with pytest.raises(omcache.TooLargeValueError):
        mc.set(k, b"z" * (1024 * 1024 + 1))
    # memcached drops the old value when a set fails (no stale reads); the
    # connection stays usable
    assert mc.get(k) is None
    mc.set(k, b"after")
    assert mc.get(k) == b"after"


def test_flush_all_with_delay(mc: omcache.Client, memcached: Union[MemcachedProcess, EmbeddedServer]) -> None:
    k = unique()
    mc.set(k, b"v")
    # memcached makes a delayed flush due at the second delay - 1 of its own
    # clock, which ticks once a second at a moment of its own: with a delay
    # of 2 it may be due a moment later, before the get below. With 3 it is
    # at least a second away.
    assert mc.flush_all(delay=3) is True
    assert mc.get(k) == b"v"
    if isinstance(memcached, EmbeddedServer):
        memcached.advance_clock(3)
    else:
        # real time: due within 2 s (the next tick plus delay - 2 more);
        # 3.1 s leaves a second of room for a loaded machine
        time.sleep(3.1)
    assert mc.get(k) is None


def test_flush_all_now(mc: omcache.Client) -> None:
    k = unique()
    mc.set(k, b"v")
    mc.flush_all()
    assert mc.get(k) is None


def test_noop_version_and_server_addresses(mc: omcache.Client, memcached: MemcachedProcess) -> None:
    assert mc.noop() is True
    assert mc.version() == {memcached.address: "1.6.18"} or list(mc.version().values())[0].count(".") == 2
    assert mc.server_addresses() == [memcached.address]


@pytest.mark.parametrize("group,expected", [("", "curr_items"), ("settings", "item_size_max"), ("slabs", "active_slabs"), ("items", None)])
def test_stats_groups(mc: omcache.Client, memcached: MemcachedProcess, group: str, expected: str) -> None:
    mc.set(unique(), b"v")
    stats = mc.stats(group)
    s = stats[memcached.address]
    assert isinstance(s, dict)
    if expected:
        assert expected in s
    else:
        assert any(name.startswith("items:") for name in s)


def test_stats_unknown_group_is_a_server_error(mc: omcache.Client, memcached: MemcachedProcess) -> None:
    s = mc.stats("no-such-group")
    assert isinstance(s[memcached.address], omcache.Error)


def test_multi_across_three_servers(memcached_factory: Callable[..., MemcachedProcess], protocol: str) -> None:
    servers = [memcached_factory() for _ in range(3)]
    mc = omcache.Client(protocol=protocol, servers=[s.address for s in servers])
    data = {unique(f"m{i}"): (b"value-%d" % i) * (i % 7) for i in range(100)}
    assert mc.set_multi(data) == []
    got = mc.get_multi(list(data) + [unique("missing")])
    assert got == data
    # the keys really are spread over the servers
    per_server = [sum(1 for k in data if omcache.Client(protocol=protocol, servers=[s.address]).get(k) is not None) for s in servers]
    assert all(n > 0 for n in per_server) and sum(per_server) == 100
    keys = list(data)[:50]
    assert mc.delete_multi(keys + ["never-there"]) == ["never-there"]
    assert mc.get_multi(keys) == {}


def test_multi_with_a_dead_server_fails_only_its_keys(memcached_factory: Callable[..., MemcachedProcess], protocol: str) -> None:
    live = [memcached_factory() for _ in range(2)]
    dead = f"127.0.0.1:{free_port()}"
    mc = omcache.Client(protocol=protocol, servers=[live[0].address, dead, live[1].address], connect_timeout=0.5)
    data = {unique(f"d{i}"): b"v%d" % i for i in range(60)}
    errors: Dict[str, Exception] = {}
    failed = mc.set_multi(data, errors=errors)
    assert failed and len(failed) < 60
    assert set(failed) == set(errors)
    assert all(isinstance(e, omcache.ConnectionError) for e in errors.values())
    get_errors: Dict[str, Exception] = {}
    got = mc.get_multi(list(data), errors=get_errors)
    assert set(got) == set(data) - set(failed)
    assert set(get_errors) == set(failed)
    assert all(got[k] == data[k] for k in got)


def test_get_multi_items_and_gat_multi(mc: omcache.Client) -> None:
    a, b = unique(), unique()
    mc.set(a, b"A", flags=3, expire=1)
    mc.set(b, b"B", flags=4, expire=1)
    items = mc.get_multi_items([a, b], gat_expire=100)
    assert items[a].value == b"A" and items[a].flags == 3 and items[b].flags == 4
    time.sleep(2.1)
    assert mc.get_multi([a, b]) == {a: b"A", b: b"B"}


def test_multi_with_invalid_key_fails_that_key_only(mc: omcache.Client) -> None:
    good = unique()
    errors: Dict[str, Exception] = {}
    assert mc.set_multi({good: b"g", "bad key": b"b"}, errors=errors) == ["bad key"]
    assert isinstance(errors["bad key"], omcache.InvalidKeyError)
    errors = {}
    assert mc.get_multi([good, "bad key"], errors=errors) == {good: b"g"}
    assert isinstance(errors["bad key"], omcache.InvalidKeyError)


def test_empty_multi_calls(mc: omcache.Client) -> None:
    assert mc.get_multi([]) == {}
    assert mc.set_multi({}) == []
    assert mc.delete_multi([]) == []


def test_bytes_and_str_keys_in_multi_are_returned_as_given(mc: omcache.Client) -> None:
    k = unique()
    mc.set(k, b"v")
    assert mc.get_multi([k.encode()]) == {k.encode(): b"v"}
    assert mc.get_multi([k]) == {k: b"v"}


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.set("k", b"v", expire=-1),
        lambda c: c.set("k", b"v", flags=2**32),
        lambda c: c.incr("k", -1),
        lambda c: c.incr("k", 2**64),
        lambda c: c.cas("k", b"v", 0),
        lambda c: c.touch("k", -5),
        lambda c: c.flush_all(-1),
        lambda c: c.stats("bad group"),
    ],
)
def test_bad_arguments_raise_value_errors(mc: omcache.Client, call: Callable[[omcache.Client], object]) -> None:
    with pytest.raises(ValueError):
        call(mc)


def test_io_timeout_on_a_stopped_server(memcached_factory: Callable[..., MemcachedProcess], protocol: str) -> None:
    server = memcached_factory()
    mc = omcache.Client(protocol=protocol, servers=[server.address], io_timeout=0.3)
    mc.set("k", b"v")
    server.pause()
    try:
        t0 = time.monotonic()
        with pytest.raises(omcache.TimeoutError):
            mc.get("k")
        assert time.monotonic() - t0 < 2.0
    finally:
        server.resume()
    assert mc.get("k") == b"v"


def test_values_over_one_mib_when_the_server_allows_them(memcached_factory: Callable[..., MemcachedProcess], protocol: str) -> None:
    server = memcached_factory(extra_args=["-I", "4m"])
    mc = omcache.Client(protocol=protocol, servers=[server.address])
    big = bytes(range(256)) * (3_000_000 // 256)
    mc.set("big", big)
    assert mc.get("big") == big
    small_cap = omcache.Client(protocol=protocol, servers=[server.address], max_value_size=1000)
    with pytest.raises(omcache.ProtocolError):
        small_cap.get("big")


def test_ketama_weighted_needs_no_explicit_hash() -> None:
    mc = omcache.Client(["127.0.0.1:1", "127.0.0.1:2"], distribution="ketama_weighted")
    assert "md5" in mc.explain_key("x")


def test_multi_keys_with_newlines_mixed_types_and_odd_values(memcached: MemcachedProcess, protocol: str) -> None:
    """The multi calls send str keys as one joined string; anything else takes the per-key path.

    A key holding a newline must fail alone (text-safe keys) or work (binary
    keys); bytes and str keys mix; bytes-like values are stored byte for
    byte, a memoryview of wide items as its bytes.
    """
    import array

    mc = omcache.Client(protocol=protocol, servers=[memcached.address])
    a, b = unique(), unique()
    errors: Dict[object, Exception] = {}
    nl = a + "\nx"
    assert mc.set_multi({a: b"A", nl: b"N", b.encode(): b"B"}, errors=errors) == [nl]
    assert isinstance(errors[nl], omcache.InvalidKeyError)
    errors = {}
    assert mc.get_multi([a, nl, b.encode()], errors=errors) == {a: b"A", b.encode(): b"B"}
    assert list(errors) == [nl] and isinstance(errors[nl], omcache.InvalidKeyError)
    assert mc.delete_multi([nl, a]) == [nl]
    assert mc.get(a) is None and mc.get(b) == b"B"

    wide = array.array("I", [1, 2, 3])
    c, d, e = unique(), unique(), unique()
    assert mc.set_multi({c: bytearray(b"ba"), d: memoryview(wide), e: b""}) == []
    assert mc.get_multi([c, d, e]) == {c: b"ba", d: wide.tobytes(), e: b""}
    with pytest.raises(TypeError, match="value must be bytes"):
        mc.set_multi({c: "text"})  # type: ignore[dict-item]
    assert mc.get(c) == b"ba"

    binary = omcache.Client(protocol=protocol, servers=[memcached.address], binary_keys=True)
    k = unique() + "\nwith newline"
    if protocol == "text":
        # The text protocol cannot carry such a key: it fails alone.
        errors = {}
        assert binary.set_multi({k: b"v1", a: b"v2"}, errors=errors) == [k]
        assert isinstance(errors[k], omcache.InvalidKeyError) and "text protocol" in str(errors[k])
        assert binary.get_multi([k, a]) == {a: b"v2"}
        with pytest.raises(omcache.InvalidKeyError):
            binary.get(k)
        return
    assert binary.set_multi({k: b"v1", a: b"v2"}) == []
    assert binary.get_multi([k, a]) == {k: b"v1", a: b"v2"}
    assert binary.get(k) == b"v1"
    assert binary.delete_multi([k, a]) == []
    assert binary.get_multi([k, a]) == {}


def test_text_multiget_gives_what_the_binary_pipeline_gives(memcached: MemcachedProcess) -> None:
    """A binary client's get_multi over text connections (its default) and over the binary pipeline agree.

    Hits with their flags and CAS, misses, a duplicate, an empty and a large
    value, a UTF-8 key, an invalid key; the text multi-gets use connections
    of their own (the server counts one more).
    """
    text = omcache.Client([memcached.address], protocol="binary")
    binary = omcache.Client([memcached.address], protocol="binary", text_multiget=False)
    keys = [unique() for _ in range(5)] + ["clé-" + unique()]
    values = {keys[0]: b"zero", keys[1]: b"", keys[2]: bytes(range(256)) * 2000, keys[5]: b"unicode key"}
    for i, (k, v) in enumerate(values.items()):
        assert binary.set(k, v, flags=100 + i)
    asked = keys + ["bad key", keys[0]]
    for c in (text, binary):
        errors: Dict[str, Exception] = {}
        assert c.get_multi(asked, errors=errors) == values
        assert list(errors) == ["bad key"] and isinstance(errors["bad key"], omcache.InvalidKeyError)
    want = binary.get_multi_items(asked)
    assert text.get_multi_items(asked) == want
    assert {k: (it.flags, it.value) for k, it in want.items()} == {
        k: (100 + i, v) for i, (k, v) in enumerate(values.items())
    }
    assert all(it.cas > 0 for it in want.values())

    def connections() -> int:
        (st,) = binary.stats().values()
        assert isinstance(st, dict)
        return int(st["curr_connections"])

    before = connections()
    fresh = omcache.Client([memcached.address], protocol="binary")
    fresh.get(keys[0])
    assert connections() == before + 1
    assert fresh.get_multi(keys[:2]) == {keys[0]: b"zero", keys[1]: b""}
    assert connections() == before + 2, "the text multi-get has a connection of its own"
    fresh.close()


def test_get_multi_raw_columns(mc: omcache.Client) -> None:
    """get_multi_raw: the hits' keys (as given, in order), values and flags as aligned columns."""
    a, b, c = unique(), unique(), unique()
    mc.set(a, b"A", flags=7)
    mc.set(c, b"", flags=0)
    errors: Dict[object, Exception] = {}
    keys, values, flags = mc.get_multi_raw([a, b, c.encode(), "bad key"], errors=errors)
    assert keys == [a, c.encode()] and values == (b"A", b"") and flags == (7, 0)
    assert list(errors) == ["bad key"]
    given = [a, c]
    keys, values, flags = mc.get_multi_raw(given)
    assert keys == given and keys is not given and values == (b"A", b"") and flags == (7, 0)
    assert mc.get_multi_raw(iter([])) == ([], (), ())


def test_large_value_allocation_failure_leaves_nothing_pending(mc: omcache.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A MemoryError allocating a large value's bytes propagates, and the engine forgets the value."""
    import omcache.client as client_module
    from omcache import _engine

    k = unique()
    big = b"m" * 500_000  # past the 32 KiB result buffer, under the server's 1 MB items
    assert mc.set(k, big)
    core = _engine.core()

    def no_memory(_: object, size: int) -> bytes:
        raise MemoryError(f"no {size} bytes")

    monkeypatch.setattr(client_module, "_uninitialized_bytes", no_memory)
    with pytest.raises(MemoryError):
        mc.get(k)
    assert core.bind_PendingResults() == 0
    monkeypatch.undo()
    assert mc.get(k) == big
    assert core.bind_PendingResults() == 0

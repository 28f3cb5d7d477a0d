"""omcache_pylibmc against the real pylibmc 1.6.3, command by command.

Each scenario runs on the real pylibmc and on omcache_pylibmc, in text
(binary=False) and binary mode, against the same real memcached (flushed
between runs); what each returns, or the class of what it raises, must be
the same.  The deliberate differences (docs/pylibmc.md) are tested in
test_pylibmc_differences.py instead.
"""

from __future__ import annotations

import datetime
import os
import pickle
from typing import Any, Callable, Dict, List, Tuple

import pytest

import omcache
import omcache_pylibmc
from omcache.testing import MemcachedProcess


# The references' versions are checked once per session (conftest.py's
# reference_clients fixture): a wrong or missing one stops this module.
pytestmark = pytest.mark.usefixtures("reference_clients")

try:
    import pylibmc as real
except ImportError:  # reported by the reference_clients fixture
    real = None

Scenario = Callable[[Any, Any], List[Any]]
SCENARIOS: Dict[str, Scenario] = {}


def scenario(f: Scenario) -> Scenario:
    SCENARIOS[f.__name__] = f
    return f


def attempt(f: Callable[[], Any]) -> Any:
    """The result of f(), or ("raises", exception class name)."""
    try:
        return f()
    except Exception as e:  # noqa: BLE001 - the class is what is compared
        return ("raises", type(e).__name__)


class Thing:
    """A picklable object compared by value."""

    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Thing) and other.x == self.x


VALUES = [b"bytes", b"", "text \u00e9\u4e2d", "", 0, 1, -5, 2**70, -(2**70), True, False, 1.5,
          [1, "a", b"b"], {"k": (1, 2)}, None, datetime.date(2015, 12, 28), Thing(7), bytearray(b"ba")]


@scenario
def values_roundtrip(mc: Any, lib: Any) -> List[Any]:
    out = []
    for i, v in enumerate(VALUES):
        out.append(mc.set(f"v{i}", v))
        got = mc.get(f"v{i}")
        out.append((type(got).__name__, got))
    return out


@scenario
def serialize_methods(mc: Any, lib: Any) -> List[Any]:
    out = []
    for v in VALUES:
        data, flags = mc.serialize(v)
        out.append((data, flags))
        out.append(attempt(lambda: mc.deserialize(data, flags)))
    out.append(attempt(lambda: mc.deserialize(b"x", 1 | 16)))
    out.append(attempt(lambda: mc.deserialize(b"12", 2 | 4)))
    out.append(attempt(lambda: mc.deserialize(b"12", 2 | 8 | 32)))
    out.append(attempt(lambda: mc.deserialize(b"nope", 4)))
    out.append(attempt(lambda: mc.deserialize(b"\xff", 16)))
    return out


@scenario
def get_multi_value_kinds_and_key_forms(mc: Any, lib: Any) -> List[Any]:
    """get_multi with plain str keys (the fast path: all-bytes values, mixed
    kinds, compressed), from a tuple, with duplicates, and with keys that
    are not plain (non-ASCII, bytes, too long, empty) mixed in."""
    raw = {f"raw{i}": bytes([i]) * (i + 1) for i in range(30)}
    mixed = {"s": "text", "i": 42, "b": True, "p": Thing(3), "n": None, "z": b"zz" * 5000}
    mc.set_multi(raw)
    mc.set_multi(mixed, min_compress_len=100)
    every = list(raw) + list(mixed) + ["missing"]
    return [
        mc.get_multi(list(raw)) == raw,
        sorted(mc.get_multi(every).items(), key=repr),
        sorted(mc.get_multi(["raw1", "raw1", "i", "i"]).items(), key=repr),
        sorted(mc.get_multi(["raw1", "clé", b"raw2", ""]).items(), key=repr),
        attempt(lambda: mc.get_multi(["raw1", "k" * 251])),
        sorted(mc.get_multi(("raw3", "s")).items(), key=repr),
    ]


@scenario
def set_multi_plain_items_and_the_rest(mc: Any, lib: Any) -> List[Any]:
    """set_multi of plain str keys and bytes values (omcache_pylibmc's fast
    path), with compression asked for, with a bytearray value, a non-ASCII
    key, a key prefix; what each returns and what is then read back, raw
    flags included."""
    plain = {f"sp{i}": bytes([i]) * (i * 40 + 1) for i in range(25)}
    out: List[Any] = [
        mc.set_multi(plain),
        mc.get_multi(list(plain)) == plain,
        mc.set_multi(plain, min_compress_len=500),
        mc.get_multi(list(plain)) == plain,
        mc.set_multi({"ba": bytearray(b"xy"), "plain": b"p"}),
        mc.set_multi({"clé": b"v", "plain2": b"w"}),
        mc.set_multi({"a": b"1", "b": b"2"}, key_prefix="pre_"),
        mc.set_multi({"t": b"1"}, time=100),
        sorted(mc.get_multi(["ba", "plain", "clé", "plain2", "pre_a", "pre_b", "t"]).items(), key=repr),
    ]
    return out


@scenario
def get_defaults_and_misses(mc: Any, lib: Any) -> List[Any]:
    sentinel = object()
    return [
        mc.get("missing"),
        mc.get("missing", 5),
        mc.get("missing", sentinel) is sentinel,
        mc.get(""),
        mc.get("", 3),
        attempt(lambda: mc.get(None)),
        attempt(lambda: mc.get(1)),
        attempt(lambda: mc.get(bytearray(b"x"))),
        attempt(lambda: mc.get("k", default=1)),
        mc.set("none", None),
        mc.get("none", 9),
    ]


@scenario
def key_lengths(mc: Any, lib: Any) -> List[Any]:
    k250, k251 = "k" * 250, "k" * 251
    out = []
    for k in (k250, k251, "\u00e9" * 125, "\u00e9" * 126):
        out += [
            attempt(lambda: mc.set(k, 1)),
            attempt(lambda: mc.get(k)),
            attempt(lambda: mc.add(k, 2)),
            attempt(lambda: mc.touch(k, 100)),
            attempt(lambda: mc.incr(k)),
            attempt(lambda: mc.get_multi([k])),
            attempt(lambda: mc.set_multi({k: 3})),
            attempt(lambda: mc.delete(k)),
            attempt(lambda: mc.delete_multi([k])),
        ]
    return out


@scenario
def empty_keys(mc: Any, lib: Any) -> List[Any]:
    return [
        attempt(lambda: mc.set("", 1)),
        attempt(lambda: mc.add(b"", 1)),
        attempt(lambda: mc.replace("", 1)),
        attempt(lambda: mc.append("", "x")),
        attempt(lambda: mc.delete("")),
        attempt(lambda: mc.touch("", 5)),
        attempt(lambda: mc.incr("")),
        attempt(lambda: mc.decr("")),
        attempt(lambda: mc.get_multi(["", b""])),
        attempt(lambda: mc.set_multi({"": 1, "a": 2})),
        attempt(lambda: mc.delete_multi(["", "a"])),
    ]


@scenario
def add_replace_append_prepend(mc: Any, lib: Any) -> List[Any]:
    return [
        mc.add("a", "one"),
        mc.add("a", "two"),
        mc.get("a"),
        attempt(lambda: mc.replace("nope", 1)),
        mc.replace("a", "three"),
        mc.get("a"),
        mc.append("a", "+"),
        mc.prepend("a", b"-"),
        mc.get("a"),
        mc.append("nope", "x"),
        mc.prepend("nope", "x"),
        mc.set("n", 5),
        mc.prepend("n", 1),
        mc.append("n", 2),
        mc.get("n"),
        mc.set("b", b"I "),
        mc.append("b", b"Do"),
        mc.get("b"),
    ]


@scenario
def delete_touch(mc: Any, lib: Any) -> List[Any]:
    return [
        mc.set("d", 1),
        mc.delete("d"),
        mc.delete("d"),
        mc.get("d"),
        attempt(lambda: mc.delete(1)),
        mc.set("t", 1),
        mc.touch("t", 100),
        mc.touch("nope", 100),
        attempt(lambda: mc.touch("t", 1.5)),
        attempt(lambda: mc.touch("t")),
        mc.get("t"),
    ]


@scenario
def counters(mc: Any, lib: Any) -> List[Any]:
    return [
        mc.set("c", 10),
        mc.incr("c"),
        mc.incr("c", 5),
        mc.decr("c", 3),
        mc.get("c"),
        mc.incr("c", 0),
        attempt(lambda: mc.incr("c", -1)),
        attempt(lambda: mc.decr("c", -1)),
        attempt(lambda: mc.incr("c", 2**31)),
        attempt(lambda: mc.incr("c", 1.5)),
        mc.decr("c", 1000),
        mc.get("c"),
        attempt(lambda: mc.incr("missing")),
        attempt(lambda: mc.decr("missing")),
        mc.set("w", 2**64 - 1),
        mc.incr("w"),
        mc.set("s5", "5"),
        mc.incr("s5"),
        mc.get("s5"),
        mc.set("b", b"41"),
        mc.incr("b"),
        mc.get("b"),
        mc.set("txt", "text"),
        attempt(lambda: mc.incr("txt")),
        mc.set("neg", -5),
        attempt(lambda: mc.incr("neg")),
        mc.set("t", True),
        mc.incr("t"),
        mc.get("t"),
    ]


@scenario
def incr_multi(mc: Any, lib: Any) -> List[Any]:
    return [
        mc.set_multi({"a": 1, "b": 2}, key_prefix="p_"),
        mc.incr_multi(["a", "b"], key_prefix="p_"),
        mc.incr_multi(("a",), key_prefix="p_", delta=10),
        mc.get_multi(["a", "b"], key_prefix="p_"),
        attempt(lambda: mc.incr_multi(["a", "zz", "b"], key_prefix="p_")),
        mc.get_multi(["a", "b"], key_prefix="p_"),
        attempt(lambda: mc.incr_multi(["x", "y", "z"])),
        attempt(lambda: mc.incr_multi({"a": 1})),
        mc.incr_multi([]),
    ]


@scenario
def multi(mc: Any, lib: Any) -> List[Any]:
    return [
        mc.set_multi({"a": 1, b"b": "two", "c": [3]}),
        sorted(mc.get_multi(["a", b"b", "c", "missing"]).items(), key=repr),
        sorted(mc.get_multi([b"a", "b"]).items(), key=repr),
        sorted(mc.get_multi(("a", "a", b"a")).items(), key=repr),
        mc.get_multi([]),
        mc.get_multi("ab"),
        attempt(lambda: mc.get_multi([1])),
        attempt(lambda: mc.set_multi([("a", 1)])),
        attempt(lambda: mc.set_multi({1: 1})),
        mc.set_multi({}),
        mc.set_multi({"x": 1, "y": 2}, key_prefix=b"pre:"),
        mc.get("pre:x"),
        sorted(mc.get_multi(["x", "y", "z"], key_prefix="pre:").items()),
        sorted(mc.add_multi({"x": 5, "new": 6}, key_prefix="pre:")),
        mc.get_multi(["x", "new"], key_prefix="pre:"),
        mc.delete_multi(["x", "y"], key_prefix="pre:"),
        mc.delete_multi(["x", "new"], key_prefix="pre:"),
        mc.delete_multi(["new"], key_prefix="pre:"),
        attempt(lambda: mc.delete_multi({"a": 1})),
        mc.delete_multi([]),
        mc.delete_multi(["a", b"b", "c"]),
        mc.delete_multi(["a"]),
        sorted(mc.add_multi({"a": 1, "b": 2})),
        sorted(mc.add_multi({"a": 1, "q": 2})),
    ]


@scenario
def cas(mc: Any, lib: Any) -> List[Any]:
    out = [
        attempt(lambda: mc.gets("k")),
        attempt(lambda: mc.cas("k", 1, 1)),
    ]
    mc.behaviors = {"cas": True}
    out += [mc.set("k", 0), mc.gets("k")[0], mc.gets("missing"), mc.gets("")]
    v, unique = mc.gets("k")
    out += [mc.cas("k", v + 1, unique), mc.get("k"), mc.cas("k", 99, unique), mc.get("k")]
    out += [attempt(lambda: mc.cas("missing", 1, unique))]
    out += [attempt(lambda: mc.cas("", 1, 5)), attempt(lambda: mc.cas("k", 1, 2**63))]
    out += [attempt(lambda: mc.cas("k", 1, 1.5)), attempt(lambda: mc.cas(1, 1, 1))]
    return out


@scenario
def compression(mc: Any, lib: Any) -> List[Any]:
    big = "x" * 5000
    return [
        mc.set("z", big, min_compress_len=100),
        mc.get("z") == big,
        mc.set("z2", big, min_compress_len=100, compress_level=0),
        mc.set("z3", big, min_compress_len=100, compress_level=9),
        mc.get("z3") == big,
        attempt(lambda: mc.set("z4", big, compress_level=10)),
        attempt(lambda: mc.set("z4", big, compress_level=-2)),
        mc.set_multi({"m1": big, "m2": b"short"}, min_compress_len=100),
        mc.get_multi(["m1", "m2"]) == {"m1": big, "m2": b"short"},
        mc.set("incompressible", os.urandom(64), min_compress_len=10),
    ]


@scenario
def too_big(mc: Any, lib: Any) -> List[Any]:
    return [
        attempt(lambda: mc.set("big", b"x" * (1024 * 1024 + 1))),
        attempt(lambda: mc.set("big", b"x" * (1024 * 1024))),
        attempt(lambda: mc.add("big", b"x" * (2 * 1024 * 1024))),
        attempt(lambda: mc.set_multi({"big": b"x" * (1024 * 1024 + 1), "small": 1})),
        mc.get("big"),
    ]


@scenario
def expiration_arguments(mc: Any, lib: Any) -> List[Any]:
    return [
        mc.set("neg", 1, -1),
        mc.get("neg"),
        mc.set("wrap", 1, 2**32 + 100),
        mc.get("wrap"),
        attempt(lambda: mc.set("f", 1, 1.5)),
        attempt(lambda: mc.set("f", 1, "10")),
        mc.set("later", 1, 1000),
        mc.get("later"),
        mc.add("addneg", 1, -1),
        mc.get("addneg"),
        mc.set_multi({"mneg": 1}, -1),
        mc.get("mneg"),
    ]


@scenario
def mapping_interface(mc: Any, lib: Any) -> List[Any]:
    mc["k"] = "v"
    out = [mc["k"], "k" in mc, "nope" in mc]
    out.append(attempt(lambda: mc["nope"]))
    del mc["k"]
    out.append("k" in mc)

    def delete_missing() -> None:
        del mc["k"]

    out.append(attempt(delete_missing))
    mc["n"] = None
    out += [mc["n"], "n" in mc]
    return out


@scenario
def flush_and_stats(mc: Any, lib: Any) -> List[Any]:
    mc.set("a", 1)
    stats = mc.get_stats()
    return [
        mc.flush_all(),
        mc.get("a"),
        mc.flush_all(0),
        attempt(lambda: mc.flush_all(1.5)),
        mc.flush_all(time=-5),
        len(stats),
        stats[0][0],
        {type(v).__name__ for v in stats[0][1].values()},
        {type(k).__name__ for k in stats[0][1]},
        stats[0][1]["version"],
        attempt(lambda: mc.get_stats(1)),
        mc.hash("some key"),
        mc.hash(b"k"),
        attempt(lambda: mc.hash(1)),
        mc.disconnect_all(),
        mc.set("after", 1),
        mc.get("after"),
    ]


@scenario
def space_keys(mc: Any, lib: Any) -> List[Any]:
    """Keys with spaces are ordinary keys in binary mode.  (In text mode the
    real pylibmc aborts the process on the second write of such a key:
    test_pylibmc_differences.py checks that in a subprocess.)"""
    if not mc.binary:
        return []
    k = "hello world"
    out = []
    for odd in ("\x00\x01", "a\r\nb", "\x7f", "tab\there", "\u00e9 \u4e2d"):
        out += [mc.set(odd, odd), mc.get(odd), sorted(mc.get_multi([odd]).items()), mc.touch(odd, 100), mc.delete(odd)]
    return out + [
        attempt(lambda: mc.set(k, 1)),
        attempt(lambda: mc.get(k)),
        attempt(lambda: mc.add(k, 1)),
        attempt(lambda: mc.delete(k)),
        attempt(lambda: mc.touch(k, 10)),
        attempt(lambda: mc.incr(k)),
        attempt(lambda: sorted(mc.get_multi([k, "a b c", "plain"]).items())),
        attempt(lambda: mc.set_multi({k: 2})),
    ]


@scenario
def noreply(mc: Any, lib: Any) -> List[Any]:
    """With _noreply, replies are not read: soft failures look like successes."""
    mc.behaviors = {"_noreply": 1, "cas": 1}
    mc.set("x", 1)
    return [
        mc.add("x", 2),
        mc.get("x"),
        mc.replace("nope", 1),
        mc.append("nope", "a"),
        mc.delete("nope"),
        mc.delete(""),
        mc.cas("nope", 1, 5),
        mc.cas("x", 1, 5),
        mc.add_multi({"x": 1, "y": 2}),
        mc.set_multi({"": 1}),
        mc.delete_multi(["zz", "x"]),
        # (pylibmc's reads after a noreply incr return stale data: not compared.)
        attempt(lambda: mc.incr("nope")),
        attempt(lambda: mc.incr("y")),
        attempt(lambda: mc.incr_multi(["y", "nope"])),
    ]


@scenario
def verify_keys(mc: Any, lib: Any) -> List[Any]:
    """With verify_keys (text mode only), bad keys are soft failures or BadKeyProvided."""
    if mc.binary:
        return [attempt(lambda: setattr(mc, "behaviors", {"verify_keys": 1}))]
    mc.behaviors = {"verify_keys": 1, "cas": 1}
    out = []
    for k in ("a b", "\x01x", "\u00e9", "fine"):
        out += [
            attempt(lambda: mc.set(k, 1)),
            attempt(lambda: mc.get(k)),
            attempt(lambda: mc.add(k, 1)),
            attempt(lambda: mc.delete(k)),
            attempt(lambda: mc.touch(k, 5)),
            attempt(lambda: mc.incr(k)),
            attempt(lambda: mc.gets(k)),
            attempt(lambda: mc.cas(k, 1, 5)),
            attempt(lambda: mc.get_multi([k, "a"])),
            attempt(lambda: mc.set_multi({k: 1})),
            attempt(lambda: mc.delete_multi([k])),
        ]
    return out


@scenario
def pickle_protocol_behavior(mc: Any, lib: Any) -> List[Any]:
    mc.behaviors = {"pickle_protocol": 2}
    out = [mc.serialize([1, 2]), mc.set("p", [1, 2]), mc.get("p")]
    mc.behaviors = {"pickle_protocol": 99}
    out.append(attempt(lambda: mc.set("p", [1])))
    return out


@scenario
def subclass_serialization(mc: Any, lib: Any) -> List[Any]:
    class Json(type(mc)):  # type: ignore[misc]
        def serialize(self, value: Any) -> Tuple[bytes, int]:
            return repr(value).encode(), 0

        def deserialize(self, data: bytes, flags: int) -> Any:
            if data == b"'miss'":
                raise lib.CacheMiss
            return ("decoded", data, flags)

    c = Json(mc.addresses, binary=mc.binary)
    return [
        c.set("a", [1]),
        c.get("a"),
        c.set("m", "miss"),
        c.get("m", "dflt"),
        sorted(c.get_multi(["a", "m"]).items()),
        type(c.clone()).__name__,
        c.clone().get("a"),
    ]


def _bad_serializers(lib: Any) -> List[Any]:
    return [lambda self, v: b"x", lambda self, v: (b"x",), lambda self, v: (b"x", "1"),
            lambda self, v: ("str", 1), lambda self, v: (b"x", 1.0), lambda self, v: [b"x", 1]]


@scenario
def bad_serializers(mc: Any, lib: Any) -> List[Any]:
    out = []
    for f in _bad_serializers(lib):
        cls = type("Bad", (type(mc),), {"serialize": f})
        c = cls(mc.addresses, binary=mc.binary)
        out += [attempt(lambda: c.set("k", 1)), attempt(lambda: c.set_multi({"k": 1})), attempt(lambda: c.add("k2", 1))]
    return out


def run(lib: Any, name: str, address: str, binary: bool) -> List[Any]:
    omcache.Client([address]).flush_all()
    mc = lib.Client([address], binary=binary)
    try:
        return SCENARIOS[name](mc, lib)
    finally:
        mc.disconnect_all()


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_results_as_pylibmc(server: MemcachedProcess, name: str, binary: bool) -> None:
    expected = run(real, name, server.address, binary)
    got = run(omcache_pylibmc, name, server.address, binary)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"{name} step {i}: omcache_pylibmc gave {g!r}, pylibmc {e!r}"


def test_values_written_by_one_are_read_by_the_other(server: MemcachedProcess) -> None:
    """Same bytes and flags on the wire: each client reads what the other wrote."""
    raw = omcache.Client([server.address], distribution="modula")
    for binary in (False, True):
        a = real.Client([server.address], binary=binary)
        b = omcache_pylibmc.Client([server.address], binary=binary)
        for i, v in enumerate(VALUES + ["x" * 3000]):
            for writer, reader, tag in ((a, b, "r"), (b, a, "o")):
                key = f"x{tag}{i}"
                assert writer.set(key, v, min_compress_len=1000)
                assert reader.get(key) == v, (tag, v)
            # The stored item (bytes and flags) is the same whoever wrote it.
            ra, rb = raw.get_item(f"xr{i}"), raw.get_item(f"xo{i}")
            assert ra is not None and rb is not None
            if isinstance(v, (list, dict, Thing, datetime.date, float, bytearray)) or v is None:
                assert (ra.flags, pickle.loads(ra.value)) == (rb.flags, pickle.loads(rb.value))
            else:
                assert (ra.value, ra.flags) == (rb.value, rb.flags), v


def test_pickles_use_the_same_protocol(server: MemcachedProcess) -> None:
    a = real.Client([server.address])
    b = omcache_pylibmc.Client([server.address])
    for v in ([1, 2], {"a": Thing(3)}, 1.25):
        assert a.serialize(v) == b.serialize(v)


def test_unix_socket_server(memcached_unix: MemcachedProcess) -> None:
    p = memcached_unix
    for binary in (False, True):
        got = []
        for lib in (real, omcache_pylibmc):
            mc = lib.Client([p.address], binary=binary)
            got.append([mc.set("u", [1]), mc.get("u"), mc.get_stats()[0][0], mc.hash("u"), mc.delete("u")])
        assert got[0] == got[1]
        assert got[1][2] == f"{p.address}:0 (0)".encode()

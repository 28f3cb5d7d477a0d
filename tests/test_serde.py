"""omcache.serde against the real clients' own (de)serialisation code, no server needed.

pylibmc exposes its native serialiser as Client.serialize/deserialize;
python-memcached's lives in Client._val_to_store_info and _recv_value, which
reads from a server object (a stand-in holding the bytes is enough).
"""

from __future__ import annotations

import enum
import logging
import pickle
import random
import zlib
from typing import Any, List, Tuple

import pytest

import omcache
from omcache import serde
from omcache.serde import (
    FLAG_INTEGER,
    FLAG_LONG,
    FLAG_NONE,
    FLAG_PICKLE,
    FLAG_TEXT,
    FLAG_ZLIB,
    PylibmcSerde,
    PythonMemcachedSerde,
    RawSerde,
    SerdeError,
)

# The references (python-memcached 1.62, pylibmc 1.6.3 on libmemcached 1.1.4)
# are checked once per session by conftest's reference_clients fixture: a
# wrong or missing one stops this module, naming what is installed.
pytestmark = pytest.mark.usefixtures("reference_clients")

try:
    import memcache
    import pylibmc
except ImportError:  # reported by the reference_clients fixture
    pass
from omcache.testing import free_port


class Color(enum.IntEnum):
    RED = 1


class Markup(str):
    """A str subclass, like markupsafe.Markup."""


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


VALUES: List[Any] = [
    b"",
    b"raw\x00bytes\xff",
    "",
    "text é ✓",
    True,
    False,
    0,
    -7,
    2**63,
    2**200,
    -(2**70),
    Color.RED,
    Markup("<b>"),
    1.5,
    None,
    [1, "a", b"b"],
    (1, 2),
    {"k": [1, 2]},
    {1, 2},
    bytearray(b"ba"),
    Point(1, 2),
]


def _pylibmc_client() -> Any:
    # Nothing is sent: serialize/deserialize are local.
    return pylibmc.Client(["127.0.0.1:1"])


class _FakeServer:
    """What python-memcached's _recv_value reads from: recv(n) of the value + CRLF."""

    def __init__(self, data: bytes) -> None:
        self.data = data + b"\r\n"

    def recv(self, n: int) -> bytes:
        assert n == len(self.data)
        return self.data


def _pm_read(client: Any, data: bytes, flags: int) -> Any:
    return client._recv_value(_FakeServer(data), flags, len(data))


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_pylibmc_serde_serializes_like_pylibmc(value: Any) -> None:
    assert PylibmcSerde().serialize("k", value) == _pylibmc_client().serialize(value)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_python_memcached_serde_serializes_like_python_memcached(value: Any) -> None:
    real = memcache.Client(["127.0.0.1:1"])
    flags, _, data = real._val_to_store_info(value, 0)
    assert PythonMemcachedSerde().serialize("k", value) == (data, flags)


def test_pylibmc_convention_table() -> None:
    s = PylibmcSerde()
    assert s.serialize("k", b"x") == (b"x", FLAG_NONE)
    assert s.serialize("k", "é") == ("é".encode(), FLAG_TEXT)
    assert s.serialize("k", True) == (b"1", FLAG_INTEGER)
    assert s.serialize("k", False) == (b"0", FLAG_INTEGER)
    assert s.serialize("k", 2**70) == (str(2**70).encode(), FLAG_LONG)
    data, flags = s.serialize("k", 1.5)
    assert flags == FLAG_PICKLE and data[1] == pickle.HIGHEST_PROTOCOL
    # bool reads back as int, as in pylibmc
    assert s.deserialize("k", *s.serialize("k", True)) == 1
    assert type(s.deserialize("k", *s.serialize("k", True))) is int


def test_python_memcached_convention_table() -> None:
    s = PythonMemcachedSerde()
    assert s.serialize("k", b"x") == (b"x", FLAG_NONE)
    assert s.serialize("k", "é") == ("é".encode(), FLAG_TEXT)
    assert s.serialize("k", 2**70) == (str(2**70).encode(), FLAG_INTEGER)
    data, flags = s.serialize("k", True)
    assert flags == FLAG_PICKLE and pickle.loads(data) is True
    assert data == pickle.dumps(True, 0)
    assert s.deserialize("k", data, flags) is True


# Every combination of the five known bits, plus unknown high bits, on data
# each type can and cannot decode.
FLAG_CASES = list(range(32)) + [0x20, 0x21, 0x100, 0x110, 0x102, 0x10000, 0xFFFFFFFF]
DATA_CASES: List[Tuple[str, bytes]] = [
    ("digits", b"42"),
    ("text", "é".encode()),
    ("pickle", pickle.dumps([1, 2], 2)),
    ("pickle0", pickle.dumps({"a": 1}, 0)),
    ("junk", b"\xff\xfe"),
]


def _zlibbed(flags: int, data: bytes) -> bytes:
    return zlib.compress(data) if flags & FLAG_ZLIB else data


def _outcome(fn: Any, *args: Any) -> Tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as e:  # noqa: BLE001 - the kind of failure is compared below
        return "error", type(e)


@pytest.mark.parametrize("flags", FLAG_CASES, ids=hex)
@pytest.mark.parametrize("name,data", DATA_CASES, ids=[d[0] for d in DATA_CASES])
def test_pylibmc_serde_reads_like_pylibmc(flags: int, name: str, data: bytes) -> None:
    """Same value, or an error where pylibmc errors (compression is handled
    by pylibmc's get, not its deserialize, so only uncompressed flags here)."""
    if flags & FLAG_ZLIB:
        flags &= ~FLAG_ZLIB
    ours = _outcome(PylibmcSerde().deserialize, "k", data, flags)
    theirs = _outcome(_pylibmc_client().deserialize, data, flags)
    if theirs[0] == "error":
        assert ours[0] == "error" and issubclass(ours[1], SerdeError), (ours, theirs)
        # Text that is not UTF-8: a UnicodeDecodeError in both (SerdeDecodeError is one).
        assert issubclass(ours[1], UnicodeDecodeError) == issubclass(theirs[1], UnicodeDecodeError), (ours, theirs)
    else:
        assert ours == theirs


@pytest.mark.parametrize("flags", FLAG_CASES, ids=hex)
@pytest.mark.parametrize("name,data", DATA_CASES, ids=[d[0] for d in DATA_CASES])
def test_python_memcached_serde_reads_like_python_memcached(flags: int, name: str, data: bytes) -> None:
    real = memcache.Client(["127.0.0.1:1"])
    wire = _zlibbed(flags, data)
    ours = _outcome(PythonMemcachedSerde().deserialize, "k", wire, flags)
    theirs = _outcome(_pm_read, real, wire, flags)
    if theirs[0] == "error":
        # python-memcached raises ValueError (unknown flags, bad int/text); SerdeError is one.
        assert issubclass(theirs[1], ValueError)
        assert ours[0] == "error" and issubclass(ours[1], SerdeError), (ours, theirs)
        assert issubclass(ours[1], UnicodeDecodeError) == issubclass(theirs[1], UnicodeDecodeError), (ours, theirs)
    else:
        assert ours == theirs


def test_pylibmc_serde_compression_threshold_is_inclusive() -> None:
    s = PylibmcSerde(min_compress_len=100)
    text = "a" * 100
    data, flags = s.serialize("k", text)
    assert flags == FLAG_TEXT | FLAG_ZLIB and zlib.decompress(data) == text.encode()
    assert s.serialize("k", "a" * 99) == (b"a" * 99, FLAG_TEXT)
    assert s.deserialize("k", data, flags) == text


def test_pylibmc_serde_does_not_keep_useless_compression() -> None:
    incompressible = random.Random(7).randbytes(512)
    s = PylibmcSerde(min_compress_len=1)
    assert s.serialize("k", incompressible) == (incompressible, FLAG_NONE)


def test_pylibmc_serde_compress_level_zero_disables_and_bad_levels_raise() -> None:
    assert PylibmcSerde(min_compress_len=1, compress_level=0).serialize("k", "a" * 500) == (b"a" * 500, FLAG_TEXT)
    data, flags = PylibmcSerde(min_compress_len=1, compress_level=9).serialize("k", "a" * 500)
    assert data == zlib.compress(b"a" * 500, 9) and flags == FLAG_TEXT | FLAG_ZLIB
    for bad in (10, -2):
        with pytest.raises(ValueError):
            PylibmcSerde(compress_level=bad)
    with pytest.raises(ValueError):
        PylibmcSerde(min_compress_len=-1)


def test_pylibmc_serde_per_call_compression_override() -> None:
    s = PylibmcSerde()
    assert s.serialize("k", "a" * 500)[1] == FLAG_TEXT
    assert s.serialize("k", "a" * 500, min_compress_len=10)[1] == FLAG_TEXT | FLAG_ZLIB
    assert s.serialize("k", "a" * 500, min_compress_len=10, compress_level=0)[1] == FLAG_TEXT


@pytest.mark.parametrize("mcl", [0, 1, 99, 100, 101, 5000])
@pytest.mark.parametrize("value", ["a" * 100, b"b" * 100, 10**120, [1] * 60], ids=["str", "bytes", "int", "list"])
def test_python_memcached_serde_compresses_like_python_memcached(mcl: int, value: Any) -> None:
    """python-memcached compresses strictly longer values, and never ints."""
    real = memcache.Client(["127.0.0.1:1"])
    flags, _, data = real._val_to_store_info(value, mcl)
    assert PythonMemcachedSerde(min_compress_len=mcl).serialize("k", value) == (data, flags)
    assert PythonMemcachedSerde().serialize("k", value, min_compress_len=mcl) == (data, flags)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_protocol_is_configurable(protocol: int) -> None:
    value = {"a": [1.5]}
    data, flags = PylibmcSerde(pickle_protocol=protocol).serialize("k", value)
    assert flags == FLAG_PICKLE and data == pickle.dumps(value, protocol)
    data, flags = PythonMemcachedSerde(pickle_protocol=protocol).serialize("k", value)
    real_flags, _, real_data = memcache.Client(["127.0.0.1:1"], pickleProtocol=protocol)._val_to_store_info(value, 0)
    assert (data, flags) == (real_data, real_flags)


def test_python_memcached_serde_custom_pickler_hooks() -> None:
    store = {"ref": object()}

    def pid(obj: Any) -> Any:
        return "ref" if obj is store["ref"] else None

    def pload(ident: Any) -> Any:
        return store[ident]

    s = PythonMemcachedSerde(persistent_id=pid, persistent_load=pload, pickle_protocol=2)
    data, flags = s.serialize("k", [store["ref"], 1])
    out = s.deserialize("k", data, flags)
    assert out[0] is store["ref"] and out[1] == 1

    class PositionalPickler(pickle.Pickler):
        def __init__(self, file: Any, protocol: int) -> None:  # no keyword
            super().__init__(file, protocol)

    s2 = PythonMemcachedSerde(pickler=PositionalPickler)
    assert s2.serialize("k", 1.5) == (pickle.dumps(1.5, 0), FLAG_PICKLE)


def test_python_memcached_serde_bad_pickle_reads_none_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="omcache"):
        assert PythonMemcachedSerde().deserialize("k", b"not a pickle", FLAG_PICKLE) is None
    assert "cannot unpickle" in caplog.text
    with pytest.raises(SerdeError) as ei:
        PythonMemcachedSerde(strict=True).deserialize("k", b"not a pickle", FLAG_PICKLE)
    assert ei.value.__cause__ is not None


def test_errors_are_serde_errors_and_value_errors() -> None:
    for s in (PylibmcSerde(), PythonMemcachedSerde()):
        with pytest.raises(SerdeError):
            s.deserialize("k", b"not zlib", FLAG_TEXT | FLAG_ZLIB)
        with pytest.raises(ValueError):
            s.deserialize("k", b"12x", FLAG_INTEGER)
        with pytest.raises(SerdeError):
            s.deserialize("k", b"\xff", FLAG_TEXT)
    with pytest.raises(SerdeError, match="unknown memcached key flags 3"):
        PylibmcSerde().deserialize("k", b"1", FLAG_PICKLE | FLAG_INTEGER)
    with pytest.raises(SerdeError, match="Unknown flags on get: 20"):
        PythonMemcachedSerde().deserialize("k", b"1", 0x20)


def test_raw_serde() -> None:
    r = RawSerde()
    assert r.serialize("k", b"x") == (b"x", 0)
    assert r.serialize("k", bytearray(b"y")) == (b"y", 0)
    assert r.serialize("k", memoryview(b"z")) == (b"z", 0)
    with pytest.raises(TypeError):
        r.serialize("k", "text")
    assert r.deserialize("k", b"\x80\x04", FLAG_PICKLE) == b"\x80\x04"


def test_get_serde() -> None:
    assert isinstance(serde.get_serde(None), PylibmcSerde)
    assert isinstance(serde.get_serde("pylibmc"), PylibmcSerde)
    assert isinstance(serde.get_serde("python-memcached"), PythonMemcachedSerde)
    assert isinstance(serde.get_serde("raw"), RawSerde)
    mine = RawSerde()
    assert serde.get_serde(mine) is mine
    with pytest.raises(ValueError, match="unknown serde"):
        serde.get_serde("json")
    with pytest.raises(TypeError):
        serde.get_serde(object())  # type: ignore[arg-type]


# -- omcache.SerdeClient on a server -------------------------------------------

@pytest.fixture
def sc(memcached: Any) -> Any:
    with omcache.SerdeClient([memcached.address], key_prefix="app:") as c:
        c.flush_all()
        yield c


def test_serde_client_round_trips_python_objects(sc: Any) -> None:
    for i, v in enumerate([b"b", "s", 3, 2**80, 1.5, [1], {"a": Point(1, 2)}, None]):
        assert sc.set(f"k{i}", v) is True
        assert sc.get(f"k{i}") == v
    assert sc.get("k0") == b"b"
    assert sc.get("missing") is None and sc.get("missing", 7) == 7
    assert sc.get(b"k1") == "s"  # str and bytes keys are the same key


def test_serde_client_prefix_is_on_the_wire_only(sc: Any, memcached: Any) -> None:
    sc.set("u", "v")
    with omcache.Client([memcached.address]) as raw:
        assert raw.get("app:u") == b"v" and raw.get("u") is None
    assert sc.set_multi({"a": 1, b"b": 2}) == []
    assert sc.get_multi(["a", b"b", "c"]) == {"a": 1, b"b": 2}
    assert sc.delete_multi(["a", "c"]) == ["c"]
    assert sc.get_multi(["a", b"b"]) == {b"b": 2}


def test_serde_client_commands(sc: Any) -> None:
    assert sc.add("a", 1) is True and sc.add("a", 2) is False
    assert sc.replace("r", 1) is False and sc.replace("a", 5) is True
    assert sc.append("a", "0") is True and sc.prepend("a", b"1") is True
    assert sc.get("a") == 150
    assert sc.append("nope", "x") is False
    with pytest.raises(TypeError):
        sc.append("a", 5)
    assert sc.incr("a", 10) == 160 and sc.decr("a", 200) == 0
    assert sc.incr("n") is None and sc.incr("n", initial=3) == 3
    value, cas = sc.gets("a")
    assert value == 0 and cas
    assert sc.cas("a", 9, cas) is True and sc.cas("a", 10, cas) is False
    assert sc.gets("none") == (None, None)
    assert sc.touch("a", 100) is True and sc.touch("none", 100) is False
    assert sc.gat("a", 100) == 9 and sc.gat("none", 100, "d") == "d"
    assert sc.delete("a") is True and sc.delete("a") is False
    (stats,) = sc.stats().values()
    assert int(stats["cmd_set"]) > 0


def test_serde_client_serde_choice_and_options(memcached: Any) -> None:
    with omcache.SerdeClient([memcached.address], serde="python-memcached", io_timeout=2.0) as c:
        c.set("b", True)
        assert c.get("b") is True
        with omcache.Client([memcached.address]) as raw:
            it = raw.get_item("b")
        assert it is not None and it.flags == FLAG_PICKLE and it.value == pickle.dumps(True, 0)
    with omcache.SerdeClient([memcached.address], serde=PylibmcSerde(min_compress_len=10)) as c:
        c.set("z", "z" * 100)
        assert c.get("z") == "z" * 100
        with omcache.Client([memcached.address]) as raw:
            it = raw.get_item("z")
        assert it is not None and it.flags == FLAG_TEXT | FLAG_ZLIB


def test_serde_client_errors_are_raised(memcached: Any) -> None:
    with omcache.SerdeClient([f"127.0.0.1:{free_port()}"], connect_timeout=0.5) as dead:
        with pytest.raises(omcache.ConnectionError):
            dead.set("k", 1)
    with omcache.SerdeClient([memcached.address]) as c:
        with pytest.raises(omcache.TooLargeValueError):
            c.set("big", b"x" * (2 * 1024 * 1024))
        with omcache.Client([memcached.address]) as raw:
            raw.set("weird", b"x", flags=FLAG_PICKLE | FLAG_TEXT)
        with pytest.raises(SerdeError):
            c.get("weird")
    with pytest.raises(omcache.ClientClosedError):
        c.get("k")

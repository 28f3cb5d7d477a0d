"""Interop matrix: values written by each client are read by every other one.

Writers and readers share one real memcached: the real pylibmc 1.6.3, the
real python-memcached 1.62, omcache.memcache, and omcache.SerdeClient with
each serde.  Where a client cannot read another's encoding as the same
Python value by design, the test states what it gets instead:

- pylibmc stores bool as the integer flag (0x02, b"1"), so every reader,
  pylibmc included, reads True back as the int 1;
- python-memcached pickles bool, so every reader gets True;
- the raw serde returns the stored bytes as they are, whoever wrote them.

It also checks that each omcache writer puts exactly the same bytes and flags
on the wire as the real client whose convention it follows.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import pytest

import omcache
import omcache.memcache as om_memcache
from omcache.serde import PylibmcSerde, PythonMemcachedSerde, RawSerde
from omcache.testing import MemcachedProcess

# The references (python-memcached 1.62, pylibmc 1.6.3 on libmemcached 1.1.4)
# are checked once per session by conftest's reference_clients fixture: a
# wrong or missing one stops this module, naming what is installed.
pytestmark = pytest.mark.usefixtures("reference_clients")

try:
    import memcache
    import pylibmc
except ImportError:  # reported by the reference_clients fixture
    pass

COMPRESS_AT = 1000


class Point:
    """A user class every client pickles."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


VALUES: Dict[str, Any] = {
    "bytes": b"\x00raw\xffbytes",
    "str": "text é ✓",
    "int": 42,
    "large_int": 2**100 + 1,
    "bool": True,
    "float": 2.5,
    "list": [1, "two", b"three", None],
    "dict": {"a": 1, "b": [2.5]},
    "object": Point(3, 4),
    "compressed_str": "compress me " * 5000,
}

# Flags each convention stores, per value.
FLAGS = {
    "pylibmc": {
        "bytes": 0x00, "str": 0x10, "int": 0x04, "large_int": 0x04, "bool": 0x02, "float": 0x01,
        "list": 0x01, "dict": 0x01, "object": 0x01, "compressed_str": 0x18,
    },
    "python-memcached": {
        "bytes": 0x00, "str": 0x10, "int": 0x02, "large_int": 0x02, "bool": 0x01, "float": 0x01,
        "list": 0x01, "dict": 0x01, "object": 0x01, "compressed_str": 0x18,
    },
}  # fmt: skip


class Endpoint(NamedTuple):
    """A client under test: its convention, how it writes and how it reads."""

    convention: str  # "pylibmc", "python-memcached" or "raw"
    real: bool
    write: Callable[[str, Any, bool], Any]
    read: Callable[[str], Any]


def _endpoints(address: str) -> Dict[str, Endpoint]:
    plc = pylibmc.Client([address])
    pmc = memcache.Client([address])
    omm = om_memcache.Client([address])
    sc_plc = omcache.SerdeClient([address], serde=PylibmcSerde())
    sc_plc_z = omcache.SerdeClient([address], serde=PylibmcSerde(min_compress_len=COMPRESS_AT))
    sc_pm = omcache.SerdeClient([address], serde=PythonMemcachedSerde())
    sc_pm_z = omcache.SerdeClient([address], serde=PythonMemcachedSerde(min_compress_len=COMPRESS_AT))
    sc_raw = omcache.SerdeClient([address], serde=RawSerde())

    def mcl(compress: bool) -> int:
        return COMPRESS_AT if compress else 0

    return {
        "pylibmc": Endpoint(
            "pylibmc", True, lambda k, v, z: plc.set(k, v, min_compress_len=mcl(z)), plc.get
        ),
        "python-memcached": Endpoint(
            "python-memcached", True, lambda k, v, z: pmc.set(k, v, min_compress_len=mcl(z)), pmc.get
        ),
        "omcache.memcache": Endpoint(
            "python-memcached", False, lambda k, v, z: omm.set(k, v, min_compress_len=mcl(z)), omm.get
        ),
        "SerdeClient(pylibmc)": Endpoint(
            "pylibmc", False, lambda k, v, z: (sc_plc_z if z else sc_plc).set(k, v), sc_plc.get
        ),
        "SerdeClient(python-memcached)": Endpoint(
            "python-memcached", False, lambda k, v, z: (sc_pm_z if z else sc_pm).set(k, v), sc_pm.get
        ),
        "SerdeClient(raw)": Endpoint("raw", False, lambda k, v, z: sc_raw.set(k, v), sc_raw.get),
    }


WRITERS = ["pylibmc", "python-memcached", "omcache.memcache", "SerdeClient(pylibmc)",
           "SerdeClient(python-memcached)", "SerdeClient(raw)"]  # fmt: skip


def _expected_read(writer: Endpoint, reader: Endpoint, name: str, wire: bytes) -> Any:
    if reader.convention == "raw":
        return wire
    if name == "bool" and writer.convention == "pylibmc":
        return 1
    return VALUES[name]


@pytest.mark.parametrize("name", list(VALUES))
@pytest.mark.parametrize("writer_name", WRITERS)
def test_every_reader_reads_every_writer(server: MemcachedProcess, writer_name: str, name: str) -> None:
    eps = _endpoints(server.address)
    writer = eps[writer_name]
    key = f"interop:{writer_name}:{name}".replace(" ", "_")
    value = VALUES[name]
    if writer.convention == "raw" and not isinstance(value, bytes):
        with pytest.raises(TypeError):
            writer.write(key, value, False)
        return
    writer.write(key, value, name.startswith("compressed"))
    with omcache.Client([server.address]) as raw:
        item = raw.get_item(key)
    assert item is not None, f"{writer_name} did not store {name}"
    if writer.convention != "raw":
        assert item.flags == FLAGS[writer.convention][name]
    for reader_name, reader in eps.items():
        got = reader.read(key)
        want = _expected_read(writer, reader, name, item.value)
        assert got == want and type(got) is type(want), (
            f"{reader_name} read {got!r:.60} from {writer_name}'s {name}, expected {want!r:.60}"
        )


def _wire(address: str, key: str) -> Tuple[bytes, int]:
    with omcache.Client([address]) as raw:
        it = raw.get_item(key)
    assert it is not None
    return it.value, it.flags


@pytest.mark.parametrize("name", list(VALUES))
@pytest.mark.parametrize(
    "ours,real",
    [
        ("SerdeClient(pylibmc)", "pylibmc"),
        ("SerdeClient(python-memcached)", "python-memcached"),
        ("omcache.memcache", "python-memcached"),
    ],
)
def test_omcache_writes_what_the_real_client_writes(server: MemcachedProcess, ours: str, real: str, name: str) -> None:
    eps = _endpoints(server.address)
    compress = name.startswith("compressed")
    eps[real].write("wire:real", VALUES[name], compress)
    eps[ours].write("wire:ours", VALUES[name], compress)
    assert _wire(server.address, "wire:ours") == _wire(server.address, "wire:real")


def test_python_memcached_reads_pylibmc_bool_as_int_and_pylibmc_reads_pickled_bool(server: MemcachedProcess) -> None:
    """The by-design asymmetry, stated on its own."""
    eps = _endpoints(server.address)
    eps["pylibmc"].write("b1", False, False)
    got: Optional[Any] = eps["python-memcached"].read("b1")
    assert got == 0 and type(got) is int
    eps["python-memcached"].write("b2", False, False)
    got = eps["pylibmc"].read("b2")
    assert got is False

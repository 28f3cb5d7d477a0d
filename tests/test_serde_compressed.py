"""omcache.serde.CompressedSerde wraps any serde with zlib, and pylibmc's
convention has one implementation that omcache_pylibmc shares."""

from __future__ import annotations

import random
import zlib

import pytest

import omcache_pylibmc._pylibmc as dropin
from omcache import serde


def test_compressed_serde_compresses_when_it_pays_and_reads_back() -> None:
    s = serde.CompressedSerde(serde.PythonMemcachedSerde(), min_compress_len=64, compress_level=6)
    data, flags = s.serialize("k", "a" * 1000)
    assert flags == serde.FLAG_TEXT | serde.FLAG_ZLIB and zlib.decompress(data) == b"a" * 1000
    assert s.deserialize("k", data, flags) == "a" * 1000
    assert s.serialize("k", "short") == (b"short", serde.FLAG_TEXT)  # under min_compress_len
    incompressible = random.Random(1).randbytes(512)
    assert s.serialize("k", incompressible) == (incompressible, serde.FLAG_NONE)  # would grow


def test_compressed_serde_reports_corrupt_data() -> None:
    s = serde.CompressedSerde(serde.RawSerde(), min_compress_len=1)
    with pytest.raises(serde.SerdeError, match="failed to decompress"):
        s.deserialize("k", b"not zlib", serde.FLAG_ZLIB)


def test_pylibmc_dropin_uses_serde_implementation() -> None:
    assert dropin._deflate is serde.compress
    for value in (b"raw", "text", True, 42, 2**70, [1, {"a": 2}]):
        assert dropin._serialize(value, -1) == serde.pylibmc_encode(value, -1)
    for value in (b"raw", "text", True, 42, 2**70, [1, {"a": 2}]):
        data, flags = serde.pylibmc_encode(value, -1)
        assert serde.PylibmcSerde().deserialize("k", data, flags) == value
        assert dropin._deserialize(data, flags) == value
    with pytest.raises(dropin.Error, match="unknown memcached key flags 3"):
        dropin._deserialize(b"x", 3)
    with pytest.raises(dropin.Error, match="Failed to decompress value"):
        dropin._inflate(b"not zlib", 1000)

"""Hostile servers against the engine's reply reading: every reply has a size
bound and every call one deadline, whatever the peer streams.

(The issue's case: a server streaming 150,000 STAT lines of ~2 KB made
stats() take 6.8 s with io_timeout=1.0 and grew the process to 2.2 GB.)
"""

from __future__ import annotations

import resource
import socket
import struct
import threading
import time
from typing import Callable, Iterator

import pytest

import omcache


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class Streamer:
    """A fake server that answers any request with an endless stream made by
    ``chunk()`` (until the client goes away), and answers nothing else."""

    def __init__(self, chunk: Callable[[int], bytes]) -> None:
        self.chunk = chunk
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.lsock.getsockname()[1]}"
        self.sent = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        try:
            c.recv(65536)
            i = 0
            while True:
                data = self.chunk(i)
                c.sendall(data)
                self.sent += len(data)
                i += 1
        except OSError:
            pass
        finally:
            c.close()

    def close(self) -> None:
        self.lsock.close()


def stat_lines(i: int) -> bytes:
    return b"".join(b"STAT name%d %s\r\n" % (i * 64 + j, b"v" * 2000) for j in range(64))


def stat_packets(i: int) -> bytes:
    out = []
    for j in range(64):
        key, value = b"name%d" % (i * 64 + j), b"v" * 2000
        out.append(struct.pack(">BBHBBHIIQ", 0x81, 0x10, len(key), 0, 0, 0, len(key) + len(value), 1, 0) + key + value)
    return b"".join(out)


@pytest.fixture(params=["meta", "text", "binary"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def streamer(protocol: str) -> Iterator[Streamer]:
    s = Streamer(stat_packets if protocol == "binary" else stat_lines)
    yield s
    s.close()


def test_endless_stats_stream_is_cut_in_bounded_time_and_memory(streamer: Streamer, protocol: str, memcached_factory) -> None:  # type: ignore[no-untyped-def]
    good = memcached_factory()
    mc = omcache.Client([streamer.address, good.address], protocol=protocol, io_timeout=1.0, connect_timeout=1.0)
    before = rss_mb()
    t0 = time.monotonic()
    res = mc.stats()
    elapsed = time.monotonic() - t0
    grown = rss_mb() - before
    bad = res[streamer.address]
    assert isinstance(bad, omcache.ProtocolError), bad
    assert "8388608 bytes" in str(bad) or "65536 entries" in str(bad), str(bad)
    # The cap (8 MiB of statistics) ends the call long before the 1 s I/O
    # timeout would; the bound leaves room for a loaded machine.
    assert elapsed < 1.0 + 1.0, elapsed
    assert grown < 100, f"RSS grew by {grown:.0f} MiB"
    # The healthy server answered in the same call, and keeps serving.
    assert isinstance(res[good.address], dict) and "pid" in res[good.address]
    direct = omcache.Client([good.address], protocol=protocol)
    assert direct.set("k", b"v") and direct.get("k") == b"v"


def test_a_trickling_server_cannot_stretch_a_call_past_its_deadline(protocol: str) -> None:
    """One STAT line every 50 ms forever: each read makes progress, but the
    exchange has one deadline, the I/O timeout."""

    def trickle(i: int) -> bytes:
        time.sleep(0.05)
        if protocol == "binary":
            key = b"n%d" % i
            return struct.pack(">BBHBBHIIQ", 0x81, 0x10, len(key), 0, 0, 0, len(key) + 1, 1, 0) + key + b"v"
        return b"STAT n%d v\r\n" % i

    s = Streamer(trickle)
    try:
        mc = omcache.Client([s.address], protocol=protocol, io_timeout=0.5, connect_timeout=0.5)
        t0 = time.monotonic()
        res = mc.stats()
        elapsed = time.monotonic() - t0
        assert isinstance(res[s.address], omcache.TimeoutError), res[s.address]
        # 0.5 s of I/O timeout, plus room for scheduling on a loaded machine.
        assert 0.4 < elapsed < 1.5, elapsed
    finally:
        s.close()

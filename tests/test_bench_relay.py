"""The benchmark's latency relay (omcache.benchmark.relay): replies arrive late, intact, and in flight together.

The bounds on time here are lower bounds (a reply held back D cannot come
sooner than D) or upper bounds with seconds of room, never speed targets.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

import omcache
from omcache.benchmark.relay import DelayRelay
from omcache.testing import MemcachedProcess, free_port


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    src = str(Path(omcache.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


@pytest.fixture
def relay(server: MemcachedProcess) -> Iterator[DelayRelay]:
    r = DelayRelay(server.address, 0.2).start()
    yield r
    r.stop()


def _version(address: str) -> float:
    """Seconds one `version` round trip takes through ADDRESS."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        t0 = time.monotonic()
        s.sendall(b"version\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            chunk = s.recv(100)
            assert chunk, "the relay closed the connection"
            got += chunk
        elapsed = time.monotonic() - t0
    assert got.startswith(b"VERSION "), got
    return elapsed


def test_a_reply_comes_no_sooner_than_the_delay(relay: DelayRelay) -> None:
    assert _version(relay.address) >= 0.2


def test_replies_in_flight_together_wait_together(relay: DelayRelay) -> None:
    # Four connections each waiting for a reply: one after the other that
    # would take 0.8 s; held back together, 0.2 s plus the relay's own cost.
    # The bound leaves 0.5 s for a loaded machine.
    times: List[float] = []
    t0 = time.monotonic()
    threads = [threading.Thread(target=lambda: times.append(_version(relay.address))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    total = time.monotonic() - t0
    assert len(times) == 4 and min(times) >= 0.2
    assert total < 0.7, total


def test_a_pipelined_connection_is_not_held_back_per_reply(server: MemcachedProcess) -> None:
    # Two requests on one connection, the second 0.25 s after the first,
    # each reply held back 0.5 s: the second comes ~0.75 s after the first
    # request, where a server that holds back one reply batch after another
    # would answer at 1.0 s or later.  The bound leaves 0.2 s of room.
    relay = DelayRelay(server.address, 0.5).start()
    try:
        host, port = relay.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            t0 = time.monotonic()
            s.sendall(b"version\r\n")
            time.sleep(0.25)
            s.sendall(b"version\r\n")
            got, arrivals = b"", []
            while got.count(b"\r\n") < 2:
                chunk = s.recv(100)
                assert chunk
                got += chunk
                arrivals += [time.monotonic() - t0] * chunk.count(b"\r\n")
    finally:
        relay.stop()
    assert arrivals[0] >= 0.5 and arrivals[-1] >= 0.75
    assert arrivals[-1] < 0.95, arrivals


def test_values_pass_intact_both_ways(server: MemcachedProcess) -> None:
    r = DelayRelay(server.address, 0.001).start()
    try:
        c = omcache.Client([r.address])
        items = {f"relay:{i}": os.urandom(i * 997 % 300_000) for i in range(40)}
        c.set_multi(items)
        assert c.get_multi(list(items)) == items
        c.close()
    finally:
        r.stop()


def test_stop_closes_the_relayed_connections(server: MemcachedProcess) -> None:
    r = DelayRelay(server.address, 0.0).start()
    host, port = r.address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"version\r\n")
    assert s.recv(100).startswith(b"VERSION")
    r.stop()
    assert s.recv(100) == b""  # closed by the relay
    s.close()
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()


@pytest.mark.parametrize("target, delay", [("nohost", 0.001), ("127.0.0.1:11211", -1.0), ("127.0.0.1:x", 0.0)])
def test_bad_arguments_raise_value_error(target: str, delay: float) -> None:
    with pytest.raises(ValueError):
        DelayRelay(target, delay)


def test_command_prints_its_address_and_exits_when_stdin_closes(server: MemcachedProcess) -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "omcache.benchmark.relay", "--target", server.address, "--delay-ms", "50"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        assert p.stdout is not None and p.stdin is not None
        line = p.stdout.readline()
        assert line.startswith("listening 127.0.0.1:"), line
        assert _version(line.split()[1]) >= 0.05
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_command_rejects_a_bad_target() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "omcache.benchmark.relay", "--target", f"127.0.0.1:{free_port()}x"],
        capture_output=True, text=True, env=_env(), timeout=60,
    )
    assert p.returncode == 2 and "expected HOST:PORT" in p.stderr, p.stderr

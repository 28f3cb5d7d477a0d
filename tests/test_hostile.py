"""Hostile peers and inputs (issue 16): memory stays bounded, nothing is read
out of process memory, writes and reads agree after a server returns.

Each case asserts bounded time, bounded memory (this process's RSS sampled
while the call runs, or the server's VmRSS), the right exception, and that
the client or server keeps serving afterwards.  Time bounds are generous
(a loaded 2-core machine); they separate "bounded" from "inflates a GiB" or
"waits forever", not fast from slow.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import omcache
import omcache.memcache
import omcache_pylibmc
from omcache.serde import DecompressedTooLargeError, PickleRefusedError, SerdeError
from omcache.testing import MemcachedProcess

PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1 << 20
GiB = 1 << 30


def rss() -> int:
    """This process's resident set size in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def server_rss(pid: int) -> int:
    """Another process's VmRSS in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def peak_during(f: Callable[[], Any]) -> Tuple[Any, Optional[BaseException], int, float]:
    """Run f while sampling RSS every 2 ms; return (result, exception,
    peak RSS growth over the start, seconds)."""
    start = rss()
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.monotonic()
    result: Any = None
    error: Optional[BaseException] = None
    try:
        result = f()
    except Exception as e:  # the caller checks the type
        error = e.with_traceback(None)
    elapsed = time.monotonic() - t0
    done.set()
    t.join()
    peak[0] = max(peak[0], rss())
    return result, error, peak[0] - start, elapsed


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- servers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_memcached() -> Iterator[MemcachedProcess]:
    """A real memcached that takes 2 MB items (a 1 GiB zlib bomb is ~1 MB)."""
    p = MemcachedProcess(extra_args=["-I", "2m"], memory_mb=64).start()
    yield p
    p.stop()


def raw_set(addr: str, key: str, data: bytes, flags: int) -> None:
    """Store data under key with flags through a plain socket (text protocol)."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"set %s %d 0 %d\r\n" % (key.encode(), flags, len(data)) + data + b"\r\n")
        assert s.recv(100) == b"STORED\r\n"


# -- item 2: decompression bombs ---------------------------------------------------


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A zlib stream of about 1 MB that inflates to 1 GiB of zeros (built in
    1 MiB steps: the GiB never exists here)."""
    c = zlib.compressobj(9)
    chunk = bytes(MiB)
    parts = [c.compress(chunk) for _ in range(GiB // MiB)]
    parts.append(c.flush())
    data = b"".join(parts)
    assert len(data) < 2 * MiB
    return data


# Default max_value_size is 128 MiB: inflating up to it (zlib's output blocks,
# then their join) may hold about twice that at the peak.  Unbounded, the
# bomb takes 1 GiB to 2 GiB.
DEFAULT_PEAK = 400 * MiB
SMALL_LIMIT = 4 * MiB
SMALL_PEAK = 64 * MiB
BOMB_TIME = 20.0  # seconds; the whole GiB takes ~1-3 s, a bounded inflate far less


def _serde_client(addr: str, **kw: Any) -> Any:
    return omcache.SerdeClient([addr], **kw)


def _pylibmc_client(addr: str, **kw: Any) -> Any:
    return omcache_pylibmc.Client([addr], binary=True, **kw)


def _pylibmc_text_client(addr: str, **kw: Any) -> Any:
    return omcache_pylibmc.Client([addr], binary=False, **kw)


def _memcache_client(addr: str, **kw: Any) -> Any:
    return omcache.memcache.Client([addr], **kw)


LAYERS: Dict[str, Tuple[Callable[..., Any], type]] = {
    "SerdeClient": (_serde_client, DecompressedTooLargeError),
    "pylibmc-binary": (_pylibmc_client, omcache_pylibmc.DecompressedTooLarge),
    "pylibmc-text": (_pylibmc_text_client, omcache_pylibmc.DecompressedTooLarge),
    "memcache": (_memcache_client, DecompressedTooLargeError),
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("multi", [False, True], ids=["get", "get_multi"])
def test_zlib_bomb_is_refused_with_bounded_memory(big_memcached: MemcachedProcess, bomb: bytes, layer: str, multi: bool) -> None:
    make, error = LAYERS[layer]
    key = unique("bomb")
    raw_set(big_memcached.address, key, bomb, 0x08)
    mc = make(big_memcached.address, max_value_size=SMALL_LIMIT)
    call = (lambda: mc.get_multi([key])) if multi else (lambda: mc.get(key))
    _, err, grown, took = peak_during(call)
    assert isinstance(err, error), f"{layer}: {err!r}"
    assert "max_value_size" in str(err)
    assert grown < SMALL_PEAK, f"{layer}: RSS grew {grown >> 20} MiB"
    assert took < BOMB_TIME
    # The client keeps serving: a compressed value under the limit still inflates.
    ok = unique("ok")
    raw_set(big_memcached.address, ok, zlib.compress(b"x" * (SMALL_LIMIT - 1)), 0x08)
    assert mc.get(ok) == b"x" * (SMALL_LIMIT - 1)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_zlib_bomb_with_the_default_limit(big_memcached: MemcachedProcess, bomb: bytes, layer: str) -> None:
    make, error = LAYERS[layer]
    key = unique("bomb")
    raw_set(big_memcached.address, key, bomb, 0x08)
    mc = make(big_memcached.address)
    _, err, grown, took = peak_during(lambda: mc.get(key))
    assert isinstance(err, error), f"{layer}: {err!r}"
    assert grown < DEFAULT_PEAK, f"{layer}: RSS grew {grown >> 20} MiB"
    assert took < BOMB_TIME


def test_bounded_inflate_refuses_truncated_and_corrupt_streams() -> None:
    from omcache.serde import PylibmcSerde

    s = PylibmcSerde()
    good = zlib.compress(b"hello" * 100)
    assert s.deserialize(b"k", good, 0x08) == b"hello" * 100
    with pytest.raises(SerdeError, match="truncated"):
        s.deserialize(b"k", good[:-5], 0x08)
    with pytest.raises(SerdeError, match="decompress"):
        s.deserialize(b"k", b"not zlib at all", 0x08)
    exact = PylibmcSerde(max_value_size=500)
    assert exact.deserialize(b"k", good, 0x08) == b"hello" * 100  # exactly the limit
    with pytest.raises(DecompressedTooLargeError):
        PylibmcSerde(max_value_size=499).deserialize(b"k", good, 0x08)


# -- item 3: process memory sent as a key ----------------------------------------------


class ListEncodingStr(str):
    """The issue's key: encode() returns a list (whose address is not bytes)."""

    def encode(self, *a: Any, **k: Any) -> Any:  # type: ignore[override]
        return [1, 2, 3] * 40


class OtherEncodingStr(str):
    """encode() returns bytes of another string: the key is the str's own text."""

    def encode(self, *a: Any, **k: Any) -> bytes:  # type: ignore[override]
        return b"something-else"


class LongBytes(bytes):
    """A bytes subclass that claims to be much longer than it is."""

    def __len__(self) -> int:
        return 100_000


def _metadump_keys(addr: str) -> List[str]:
    host, port = addr.rsplit(":", 1)
    keys = []
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"lru_crawler metadump all\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            assert chunk, "connection closed during metadump"
            buf += chunk
    for line in buf.decode("latin-1").splitlines():
        if line.startswith("key="):
            keys.append(line.split()[0][4:])
    return keys


@pytest.fixture
def fresh_memcached(memcached_factory: Callable[..., MemcachedProcess]) -> MemcachedProcess:
    return memcached_factory()


# Every omcache.Client method that hands the engine a key's address.
KEY_CALLS: Dict[str, Callable[[omcache.Client, Any], Any]] = {
    "get": lambda mc, k: mc.get(k),
    "get_item": lambda mc, k: mc.get_item(k),
    "gets": lambda mc, k: mc.gets(k),
    "gat": lambda mc, k: mc.gat(k, 100),
    "touch": lambda mc, k: mc.touch(k, 100),
    "set": lambda mc, k: mc.set(k, b"v"),
    "add": lambda mc, k: mc.add(k, b"v"),
    "replace": lambda mc, k: mc.replace(k, b"v"),
    "append": lambda mc, k: mc.append(k, b"v"),
    "prepend": lambda mc, k: mc.prepend(k, b"v"),
    "cas": lambda mc, k: mc.cas(k, b"v", 12345),
    "delete": lambda mc, k: mc.delete(k),
    "incr": lambda mc, k: mc.incr(k, 1, initial=1),
    "decr": lambda mc, k: mc.decr(k, 1, initial=1),
    "get_multi": lambda mc, k: mc.get_multi([k, "other"]),
    "get_multi_raw": lambda mc, k: mc.get_multi_raw([k, "other"]),
    "get_multi_items": lambda mc, k: mc.get_multi_items([k, "other"]),
    "set_multi": lambda mc, k: mc.set_multi({k: b"v", "other": b"w"}),
    "set_multi_items": lambda mc, k: mc.set_multi_items([(k, b"v", 1), ("other", b"w", 2)]),
    "delete_multi": lambda mc, k: mc.delete_multi([k, "other"]),
    "server_for_key": lambda mc, k: mc.server_for_key(k),
    "explain_key": lambda mc, k: mc.explain_key(k),
}


@pytest.mark.parametrize("binary_keys", [True, False], ids=["binary_keys", "text_keys"])
@pytest.mark.parametrize("call", sorted(KEY_CALLS))
def test_hostile_key_objects_never_reach_the_engine_as_addresses(
    fresh_memcached: MemcachedProcess, call: str, binary_keys: bool
) -> None:
    mc = omcache.Client([fresh_memcached.address], binary_keys=binary_keys)
    hostile = [ListEncodingStr("list-key"), OtherEncodingStr("own-key"), LongBytes(b"long-key")]
    for key in hostile:
        before = rss()
        KEY_CALLS[call](mc, key)
        assert rss() - before < 32 * MiB
    # Only the keys' own text ever reached the server.
    allowed = {"list-key", "own-key", "long-key", "other"}
    stored = set(_metadump_keys(fresh_memcached.address))
    assert stored <= allowed, f"unexpected keys on the server: {sorted(stored - allowed)[:5]}"
    # The client keeps serving.
    assert mc.set("after", b"ok") and mc.get("after") == b"ok"


@pytest.mark.parametrize("binary_keys", [True, False], ids=["binary_keys", "text_keys"])
def test_hostile_value_objects_are_copied_by_their_real_length(fresh_memcached: MemcachedProcess, binary_keys: bool) -> None:
    mc = omcache.Client([fresh_memcached.address], binary_keys=binary_keys)
    v = LongBytes(b"12345")
    assert mc.set("single", v)
    assert mc.get("single") == b"12345"
    assert mc.set_multi({"m1": v, "m2": b"plain", "m3": LongBytes(b"xyz")}) == []
    assert mc.get_multi(["m1", "m2", "m3"]) == {"m1": b"12345", "m2": b"plain", "m3": b"xyz"}
    assert mc.set_multi_items([("i1", v, 3)]) == []
    assert mc.get_item("i1") is not None and mc.get_item("i1").value == b"12345"  # type: ignore[union-attr]


def test_engine_addr_refuses_anything_but_exact_bytes() -> None:
    from omcache import _engine

    assert _engine.addr(b"abc") > 0
    for bad in (LongBytes(b"x"), bytearray(b"x"), "x", [1]):
        with pytest.raises(TypeError, match="exact bytes"):
            _engine.addr(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "text"])
def test_hostile_keys_through_the_drop_ins(fresh_memcached: MemcachedProcess, binary: bool) -> None:
    addr = fresh_memcached.address
    p = omcache_pylibmc.Client([addr], binary=binary)
    assert p.set(ListEncodingStr("pl-list"), "v")
    assert p.get("pl-list") == "v"
    assert p.set(LongBytes(b"pl-long"), "w") and p.get(b"pl-long") == "w"
    assert p.get_multi([OtherEncodingStr("pl-list")]) == {"pl-list": "v"}
    s = omcache.SerdeClient([addr], binary_keys=binary)
    assert s.set(ListEncodingStr("sc-list"), "v") and s.get("sc-list") == "v"
    m = omcache.memcache.Client([addr])
    assert m.set(OtherEncodingStr("pm-own"), "v") and m.get("pm-own") == "v"
    stored = set(_metadump_keys(addr))
    assert stored == {"pl-list", "pl-long", "sc-list", "pm-own"}, sorted(stored)


# -- item 4: the embedded server under a client that does not read ------------------------


@pytest.fixture
def omcache_serve() -> Iterator[Tuple[subprocess.Popen[bytes], str]]:
    """`omcache serve -m 64` in its own process (its RSS is measured)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "omcache", "serve", "--listen", "127.0.0.1:0", "-m", "64"],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().split()
        assert line and line[0] == "tcp", line
        yield proc, line[1]
    finally:
        proc.terminate()
        proc.wait(10)


def test_unread_multi_get_keeps_the_embedded_server_bounded(omcache_serve: Tuple[subprocess.Popen[bytes], str]) -> None:
    proc, addr = omcache_serve
    host, port = addr.rsplit(":", 1)
    mc = omcache.Client([addr])
    value = b"v" * (1024 * 1024 - 100)
    mc.set("b", value)
    before = server_rss(proc.pid)
    hostile = socket.create_connection((host, int(port)), timeout=5)
    try:
        hostile.sendall(b"get" + b" b" * 300 + b"\r\n")  # 605 bytes, 300 MB of replies, never read
        time.sleep(1.0)
        grown = server_rss(proc.pid) - before
        # Before the fix: +1 GB, kept.  Now: the pending output and socket buffers.
        assert grown < 64 * MiB, f"server RSS grew {grown >> 20} MiB"
        # Others are served meanwhile.
        t0 = time.monotonic()
        assert mc.get("b") == value
        assert time.monotonic() - t0 < 5.0
    finally:
        hostile.close()


def test_binary_set_announcing_a_huge_body_is_answered_at_once(omcache_serve: Tuple[subprocess.Popen[bytes], str]) -> None:
    proc, addr = omcache_serve
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        header = struct.pack(">BBHBBHIIQ", 0x80, 0x01, 1, 8, 0, 0, 0xFFFFFFF0, 42, 0)
        s.sendall(header + bytes(8) + b"k")  # the 4 GB body never comes
        s.settimeout(3.0)
        reply = s.recv(24)
        assert len(reply) == 24
        magic, opcode, _, _, _, status, _, opaque, _ = struct.unpack(">BBHBBHIIQ", reply)
        assert (magic, opcode, status, opaque) == (0x81, 0x01, 0x03, 42)  # E2BIG, at once
    assert server_rss(proc.pid) < 256 * MiB
    assert omcache.Client([addr]).set("after", b"ok")


# -- item 5: after a server returns ------------------------------------------------------------


FAILOVER_BEHAVIORS = {"ketama": True, "remove_failed": 1, "failure_limit": 2, "retry_timeout": 2, "dead_timeout": 2}


def test_writes_and_reads_agree_after_a_server_returns_while_idle(memcached_factory: Callable[..., MemcachedProcess]) -> None:
    """The issue's scenario: kill -9 one server, SIGSTOP then SIGCONT a
    second (with calls going on, so both are declared dead), restart the
    first, let the client idle, then set and get 300 keys in order.  Before
    the probe timer, the first call after the idle time started the probes
    and was routed around the returned servers; the probes then revived them
    and the next call for the same key went there (one miss in 3 of 7 runs)."""
    procs = [memcached_factory() for _ in range(3)]
    # The behaviors, with a 1 s socket timeout so the stopped
    # server's failures take seconds, not libmemcached's default 5 s each.
    behaviors = dict(FAILOVER_BEHAVIORS, _poll_timeout=1000, connect_timeout=1000)
    addrs = [p.address for p in procs]
    mc = omcache_pylibmc.Client(addrs, binary=True, behaviors=behaviors)
    keys = [unique(f"ret{i}") for i in range(300)]
    # The keys of the two servers that return go first: the moment of
    # their revival is then inside the loop below if it is late.
    home = omcache_pylibmc.Client(addrs, binary=True, behaviors=behaviors)._om_mc.server_for_key
    keys.sort(key=lambda k: home(k) == 2)

    def calls_for(seconds: float) -> None:
        """Keep writing every key for a while (retry_timeout is 2 s: a
        server needs failures 2 s apart to reach failure_limit 2)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            for k in keys:
                try:
                    mc.set(k, "x")
                except omcache_pylibmc.Error:
                    pass
            time.sleep(0.1)

    calls_for(0.1)
    first, second = procs[0], procs[1]
    assert first.proc is not None and second.proc is not None
    port = first.port
    first.proc.kill()
    first.proc.wait(5)
    calls_for(4.5)
    second.proc.send_signal(signal.SIGSTOP)
    try:
        calls_for(4.5)
    finally:
        second.proc.send_signal(signal.SIGCONT)
    restarted = memcached_factory(port=port)
    time.sleep(5.0)  # idle: no call at all
    misses = []
    t0 = time.monotonic()
    for k in keys:
        assert mc.set(k, k)
        if mc.get(k) != k:
            misses.append(k)
    assert time.monotonic() - t0 < 30.0
    assert misses == [], f"{len(misses)} keys read from another server than they were written to"
    # Every server holds its share of the final values again, the restarted
    # one included (the third also keeps stale copies written during failover).
    counts = []
    for p in (restarted, procs[1], procs[2]):
        held = omcache.Client([p.address]).get_multi(keys)
        counts.append(sum(1 for k, v in held.items() if v == k.encode()))
    assert all(c > 0 for c in counts) and sum(counts) == len(keys), counts


# -- item 6: pickles ----------------------------------------------------------------------------


UNPICKLED: List[str] = []


def _record_unpickle(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class RunsCodeWhenUnpickled:
    """A pickle that calls a function of the writer's choosing when loaded."""

    def __reduce__(self) -> Any:
        return (_record_unpickle, ("ran",))


PICKLE_LAYERS: Dict[str, Tuple[Callable[..., Any], type]] = {
    "SerdeClient": (_serde_client, PickleRefusedError),
    "pylibmc-binary": (_pylibmc_client, omcache_pylibmc.PickleRefused),
    "pylibmc-text": (_pylibmc_text_client, omcache_pylibmc.PickleRefused),
    "memcache": (_memcache_client, PickleRefusedError),
}


@pytest.mark.parametrize("layer", sorted(PICKLE_LAYERS))
def test_allow_pickle_false_refuses_pickles(big_memcached: MemcachedProcess, layer: str) -> None:
    make, error = PICKLE_LAYERS[layer]
    key = unique("pickle")
    raw_set(big_memcached.address, key, pickle.dumps(RunsCodeWhenUnpickled(), 2), 0x01)
    UNPICKLED.clear()
    safe = make(big_memcached.address, allow_pickle=False)
    for call in (lambda: safe.get(key), lambda: safe.get_multi([key])):
        _, err, _, took = peak_during(call)
        assert isinstance(err, error), f"{layer}: {err!r}"
        assert "allow_pickle" in str(err)
        assert took < 5.0
    assert UNPICKLED == []
    # Writes that would need a pickle are refused too; the rest is served.
    with pytest.raises(error):
        safe.set(unique("obj"), {"a": 1})
    assert safe.set(key + "s", "text") and safe.get(key + "s") == "text"
    assert safe.set(key + "i", 42) and safe.get(key + "i") == 42
    # The default unpickles, as pylibmc and python-memcached do.
    default = make(big_memcached.address)
    assert default.get(key) == "ran" and UNPICKLED == ["ran"]


def test_allow_pickle_with_a_serde_object_is_an_error(big_memcached: MemcachedProcess) -> None:
    from omcache.serde import PylibmcSerde

    with pytest.raises(ValueError, match="allow_pickle"):
        omcache.SerdeClient([big_memcached.address], serde=PylibmcSerde(), allow_pickle=False)
    safe = omcache.SerdeClient([big_memcached.address], serde=PylibmcSerde(allow_pickle=False))
    with pytest.raises(PickleRefusedError):
        safe.set("o", object())


# -- item 7: messages and silent acceptance ---------------------------------------------------------


def test_unix_scheme_server_specs(memcached_factory: Callable[..., MemcachedProcess]) -> None:
    p = memcached_factory(unix=True)
    assert p.socket_path is not None
    spec = "unix:" + p.socket_path
    mc = omcache.Client([spec])
    assert mc.set("u", b"1") and mc.get("u") == b"1"
    pl = omcache_pylibmc.Client([spec], binary=True)
    assert pl.get("u") == b"1"
    assert omcache.Client(["unix://" + p.socket_path]).get("u") == b"1"
    with pytest.raises(omcache.ConfigError, match="absolute path"):
        omcache.Client(["unix:relative.sock"])
    # A host named "unix" keeps working, as in pylibmc.
    assert omcache.Client(["unix:11211"]).servers == ["unix:11211"]
    assert omcache_pylibmc.client.translate_server_spec("unix:11211") == (omcache_pylibmc.server_type_tcp, "unix", 11211, 1)
    with pytest.raises(ValueError, match="absolute path"):
        omcache_pylibmc.Client(["unix:relative.sock"])


@pytest.mark.parametrize("behaviors, bad", [({"hash": "nonsense"}, "nonsense"), ({"distribution": 5}, 5)])
def test_unknown_hash_and_distribution_raise_pylibmc_s_keyerror_with_a_message(behaviors: Dict[str, Any], bad: object) -> None:
    try:
        import pylibmc
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("the real pylibmc (a test reference) is not installed, and CI must compare against it")
        pytest.skip("the real pylibmc is not installed (pip install pylibmc==1.6.3)")
    assert pylibmc is not omcache_pylibmc
    with pytest.raises(KeyError) as real:
        pylibmc.Client(["127.0.0.1:1"], behaviors=behaviors)
    with pytest.raises(KeyError) as ours:
        omcache_pylibmc.Client(["127.0.0.1:1"], behaviors=behaviors)
    assert real.value.args == ours.value.args == (bad,)  # the same KeyError as pylibmc
    assert "choose one of" in str(ours.value) and repr(bad) in str(ours.value)
    mc = omcache_pylibmc.Client(["127.0.0.1:1"])
    with pytest.raises(KeyError, match="choose one of"):
        mc.behaviors = behaviors


def test_time_beyond_64_bits_raises_overflow(fresh_memcached: MemcachedProcess) -> None:
    for binary in (True, False):
        mc = omcache_pylibmc.Client([fresh_memcached.address], binary=binary)
        for t in (2**64, -(2**63) - 1, 2**100):
            with pytest.raises(OverflowError, match="64-bit"):
                mc.set("t", "v", time=t)
            with pytest.raises(OverflowError):
                mc.set_multi({"t": "v"}, time=t)
            with pytest.raises(OverflowError):
                mc.touch("t", t)
        # Values that fit 64 bits wrap to 32 as in pylibmc; the client keeps serving.
        assert mc.set("t", "v", time=2**32 + 100) and mc.get("t") == "v"

"""gevent: under monkey.patch_all() the synchronous clients yield to the hub
while they wait for a server. Each scenario runs in a fresh interpreter
(monkey-patching must not leak into the rest of the suite)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("gevent")  # in the test extras


def run(code: str, timeout: float = 120) -> str:
    src = "from gevent import monkey; monkey.patch_all()\n" + textwrap.dedent(code)
    r = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"stdout={r.stdout}\nstderr={r.stderr}"
    return r.stdout


def test_100_greenlets_against_a_50ms_server_run_concurrently() -> None:
    out = run(
        """
        import time, gevent, omcache
        from omcache.testing import EmbeddedServer
        with EmbeddedServer() as s:
            c = omcache.Client([s.address], io_timeout=5)
            for i in range(100):
                c.set(f"g{i}", str(i).encode())
            assert type(c._core).__name__ == "GreenCore"
            s.set_fault("delay=50ms")
            t = time.perf_counter()
            gs = [gevent.spawn(c.get, f"g{i}") for i in range(100)]
            gevent.joinall(gs, timeout=30)
            elapsed = time.perf_counter() - t
            assert [g.value for g in gs] == [str(i).encode() for i in range(100)]
            print(f"{elapsed:.3f}")
        """
    )
    # One after another they would take 100 x 50 ms = 5 s (what pylibmc does);
    # waiting together, about one delay. 1.5 s leaves room for a loaded machine.
    assert float(out) < 1.5, out


def test_every_command_through_the_hub_and_a_timeout_leaves_the_connection_clean(memcached_factory) -> None:  # type: ignore[no-untyped-def]
    mc = memcached_factory()
    run(
        f"""
        import gevent, omcache, omcache_pylibmc
        from omcache.testing import EmbeddedServer
        c = omcache.Client([{mc.address!r}])
        assert c.set("a", b"1", flags=3) and c.get("a") == b"1" and c.get("none") is None
        it = c.get_item("a"); assert it.flags == 3
        assert c.cas("a", b"2", it.cas) is True and c.cas("a", b"3", it.cas) is False
        assert c.add("a", b"x") is False and c.replace("a", b"4") is True
        assert c.append("a", b"5") and c.prepend("a", b"3") and c.get("a") == b"345"
        assert c.touch("a", 100) and c.gat("a", 100).value == b"345"
        assert c.incr("n", initial=7) == 7 and c.decr("n", 2) == 5
        try:
            c.set("nn", b"abc"); c.incr("nn"); raise AssertionError("incr of a non-number")
        except omcache.DeltaBadValueError:
            pass
        big = b"v" * 100000
        assert c.set("big", big) and c.get("big") == big
        assert c.set_multi({{f"m{{i}}": b"x" * i for i in range(1, 40)}}) == []
        assert c.get_multi([f"m{{i}}" for i in range(1, 40)]) == {{f"m{{i}}": b"x" * i for i in range(1, 40)}}
        assert c.delete_multi(["m1", "nothere"]) == ["nothere"]
        assert c.delete("a") and not c.delete("a")
        assert c.get_or_set("gos", lambda: b"L", 60) == b"L" and c.invalidate("gos") is True
        assert c.get_meta("big").size == 100000
        assert set(c.stats()) == set(c.version()) and c.flush_all() and c.noop() and c.verbosity(0)
        try:
            c.set("x" * 300, b"v"); raise AssertionError("long key")
        except omcache.InvalidKeyError as e:
            assert "250" in str(e), e
        p = omcache_pylibmc.Client([{mc.address!r}], binary=True)
        p.set("pl", {{"a": 1}}); assert p.get("pl") == {{"a": 1}}
        with EmbeddedServer() as s:
            e = omcache.Client([s.address], io_timeout=5)
            e.set("k", b"v")
            s.set_fault("delay=300ms")
            for _ in range(5):
                try:
                    with gevent.Timeout(0.05):
                        e.get("k")
                    raise AssertionError("no timeout")
                except gevent.Timeout:
                    pass
            s.set_fault("")
            gs = [gevent.spawn(e.get, "k") for _ in range(20)]
            gevent.joinall(gs, timeout=10)
            assert [g.value for g in gs] == [b"v"] * 20
        print("ok")
        """
    )


def test_OMCACHE_GEVENT_0_turns_it_off() -> None:
    import os

    src = textwrap.dedent(
        """
        from gevent import monkey; monkey.patch_all()
        import omcache
        from omcache.testing import EmbeddedServer
        with EmbeddedServer() as s:
            c = omcache.Client([s.address]); c.set("k", b"v")
            print(type(c._core).__name__)
        """
    )
    r = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "OMCACHE_GEVENT": "0"})
    assert r.returncode == 0 and r.stdout.strip() == "module", r.stderr

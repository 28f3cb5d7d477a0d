"""omcache.aio: every command as a coroutine, concurrency, cancellation,
timeouts, uvloop, several event loops, fork, and a flat thread count."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable, Coroutine, Iterator, List, TypeVar

import pytest

import omcache
import omcache.aio as aio
from omcache.testing import EmbeddedServer, MemcachedProcess

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def servers() -> Iterator[List[MemcachedProcess]]:
    """Three real memcached servers, shared by the module."""
    ps = [MemcachedProcess().start() for _ in range(3)]
    try:
        yield ps
    finally:
        for p in ps:
            p.stop()


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.parametrize("protocol", ["meta", "text", "binary"])
def test_every_command_matches_the_sync_client(servers: List[MemcachedProcess], protocol: str) -> None:
    addrs = [s.address for s in servers]
    sync = omcache.Client(addrs, protocol=protocol)

    async def main() -> None:
        async with aio.Client(addrs, protocol=protocol) as mc:
            assert await mc.flush_all() is True
            p = protocol[0]
            assert await mc.set(f"{p}a", b"1", flags=7) is True
            assert await mc.get(f"{p}a") == b"1"
            assert await mc.get(f"{p}missing") is None
            it = await mc.get_item(f"{p}a")
            assert it is not None and it.value == b"1" and it.flags == 7 and it == sync.get_item(f"{p}a")
            value, cas = await mc.gets(f"{p}a")
            assert value == b"1" and cas == it.cas
            assert await mc.cas(f"{p}a", b"2", cas) is True
            assert await mc.cas(f"{p}a", b"3", cas) is False
            assert await mc.cas(f"{p}gone", b"3", 12345) is None
            assert await mc.add(f"{p}a", b"x") is False
            assert await mc.add(f"{p}b", b"x") is True
            assert await mc.replace(f"{p}b", b"y") is True
            assert await mc.replace(f"{p}nob", b"y") is False
            assert await mc.append(f"{p}b", b"z") is True
            assert await mc.prepend(f"{p}b", b"w") is True
            assert await mc.append(f"{p}nob", b"z") is False
            assert await mc.get(f"{p}b") == b"wyz" == sync.get(f"{p}b")
            assert await mc.touch(f"{p}b", 100) is True
            assert await mc.touch(f"{p}nob", 100) is False
            g = await mc.gat(f"{p}b", 200)
            assert g is not None and g.value == b"wyz"
            assert await mc.gat(f"{p}nob", 200) is None
            assert await mc.incr(f"{p}n") is None
            assert await mc.incr(f"{p}n", 5, initial=10) == 10
            assert await mc.incr(f"{p}n", 5) == 15
            assert await mc.decr(f"{p}n", 20) == 0
            with pytest.raises(omcache.DeltaBadValueError):
                await mc.incr(f"{p}b")
            assert await mc.delete(f"{p}b") is True
            assert await mc.delete(f"{p}b") is False
            data = {f"{p}m{i}": str(i).encode() * 3 for i in range(50)}
            assert await mc.set_multi(data, flags=3) == []
            got = await mc.get_multi(list(data) + [f"{p}nothere"])
            assert got == data == sync.get_multi(list(data))
            items = await mc.get_multi_items(list(data)[:5])
            assert all(i.flags == 3 for i in items.values()) and len(items) == 5
            assert sorted(await mc.delete_multi(list(data)[:10] + [f"{p}nothere"])) == [f"{p}nothere"]
            assert await mc.get_multi(list(data)[:10]) == {}
            st = await mc.stats()
            assert set(st) == set(sync.server_addresses()) and all(isinstance(d, dict) and "pid" in d for d in st.values())
            assert await mc.version() == sync.version()
            assert await mc.noop() is True
            if protocol != "binary":  # memcached leaves a binary VERBOSITY unanswered
                assert await mc.verbosity(0) is True
            else:
                with pytest.raises(NotImplementedError):
                    await mc.verbosity(0)
            hit_keys, vals, fls = await mc.get_multi_raw([f"{p}m20", f"{p}nothere", f"{p}m21"])
            assert hit_keys == [f"{p}m20", f"{p}m21"] and vals == (b"202020", b"212121") and fls == (3, 3)
            with pytest.raises(omcache.InvalidKeyError, match="space"):
                await mc.get("has space")
            with pytest.raises(TypeError):
                await mc.set(f"{p}a", "not bytes")  # type: ignore[arg-type]
            loads: List[int] = []

            async def loader() -> bytes:
                loads.append(1)
                await asyncio.sleep(0.05)
                return b"loaded"

            res = await asyncio.gather(*(mc.get_or_set(f"{p}gos", loader, 60) for _ in range(10)))
            assert res == [b"loaded"] * 10 and len(loads) == 1
            assert await mc.invalidate(f"{p}gos") is True
            assert await mc.invalidate(f"{p}gos-missing") is False
            if protocol == "meta":
                m = await mc.get_meta(f"{p}a")
                assert m is not None and m.value == b"2"
        with pytest.raises(omcache.ClientClosedError):
            await mc.get(f"{p}a")

    run(main())
    sync.close()


def test_serde_client_round_trips_objects(servers: List[MemcachedProcess]) -> None:
    async def main() -> None:
        async with aio.SerdeClient([servers[0].address], key_prefix="s:") as mc:
            assert await mc.set("obj", {"a": [1, 2]}) is True
            assert await mc.get("obj") == {"a": [1, 2]}
            assert await mc.get("nothing", default=5) == 5
            assert await mc.set_multi({"x": 1, "y": "two"}) == []
            assert await mc.get_multi(["x", "y", "z"]) == {"x": 1, "y": "two"}
            v, cas = await mc.gets("x")
            assert v == 1 and cas is not None and await mc.cas("x", 2, cas) is True
            assert await mc.incr("n", initial=1) == 1
            assert await mc.add("x", 0) is False and await mc.replace("x", 3) is True
            assert await mc.append("y", "!") is True and await mc.get("y") == "two!"
            assert await mc.touch("x", 10) is True and await mc.gat("x", 10) == 3
            assert await mc.get_or_set("lazy", lambda: [1], 60) == [1]
            assert await mc.get_or_set("lazy", lambda: [2], 60) == [1]
            assert await mc.delete_multi(["x", "y", "nope"]) == ["nope"]
            assert await mc.delete("lazy") is True
            assert isinstance(await mc.stats(), dict) and await mc.flush_all() is True
        # the sync SerdeClient reads what the async one wrote
        async with aio.SerdeClient([servers[0].address]) as mc:
            await mc.set("shared", ("t", 1))
        assert omcache.SerdeClient([servers[0].address]).get("shared") == ("t", 1)

    run(main())


def test_2000_concurrent_tasks_over_3_servers_each_get_their_own_value(servers: List[MemcachedProcess]) -> None:
    addrs = [s.address for s in servers]

    async def main() -> None:
        async with aio.Client(addrs) as mc:
            await asyncio.gather(*(mc.set(f"own{i}", f"value-{i}".encode()) for i in range(2000)))
            counts = {i: 0 for i in range(3)}
            for i in range(2000):
                counts[mc.server_for_key(f"own{i}")] += 1
            assert min(counts.values()) > 300  # the keys really span the three servers

            async def one(i: int) -> bool:
                await asyncio.sleep(random.random() / 100)
                return await mc.get(f"own{i}") == f"value-{i}".encode()

            assert all(await asyncio.gather(*(one(i) for i in range(2000))))

    run(main())


def test_cancellation_storm_never_misdelivers_and_the_client_keeps_working() -> None:
    with EmbeddedServer() as srv:
        seed = omcache.Client([srv.address])
        for i in range(400):
            seed.set(f"c{i}", f"v{i}".encode())
        srv.set_fault("delay=30ms")

        async def main() -> None:
            async with aio.Client([srv.address], io_timeout=5) as mc:
                results: dict = {}

                async def one(i: int) -> None:
                    if i % 2:
                        results[i] = await mc.get(f"c{i}")
                    else:
                        assert await mc.set(f"c{i}", f"v{i}".encode())
                        results[i] = await mc.get(f"c{i}")

                tasks = [asyncio.ensure_future(one(i)) for i in range(400)]
                victims = random.sample(range(400), 200)
                for v in victims:
                    await asyncio.sleep(random.random() / 500)
                    tasks[v].cancel()
                done = await asyncio.gather(*tasks, return_exceptions=True)
                cancelled = sum(isinstance(d, asyncio.CancelledError) for d in done)
                assert cancelled > 0
                assert not [d for d in done if isinstance(d, BaseException) and not isinstance(d, asyncio.CancelledError)]
                assert results and all(v == f"v{i}".encode() for i, v in results.items())
                srv.set_fault("")
                # the connections are still good: every key reads its own value
                got = await asyncio.gather(*(mc.get(f"c{i}") for i in range(400)))
                assert got == [f"v{i}".encode() for i in range(400)]
                # and cancelled requests left nothing behind in the engine
                q = aio._queue_for(asyncio.get_running_loop())
                for _ in range(100):
                    if q.core.bind_AsyncPending(q.qid) == 0 and not q.futures:
                        break
                    await asyncio.sleep(0.05)
                assert q.core.bind_AsyncPending(q.qid) == 0 and not q.futures

            async def cut_by_wait_for() -> None:
                srv.set_fault("delay=200ms")
                async with aio.Client([srv.address], io_timeout=5) as mc:
                    for i in range(20):
                        with pytest.raises(asyncio.TimeoutError):
                            await asyncio.wait_for(mc.get(f"c{i}"), 0.01)
                    srv.set_fault("")
                    assert await asyncio.gather(*(mc.get(f"c{i}") for i in range(20))) == [
                        f"v{i}".encode() for i in range(20)
                    ]

            await cut_by_wait_for()

        run(main())


def test_a_stalled_server_times_out_while_another_task_keeps_ticking() -> None:
    with EmbeddedServer() as stalled, EmbeddedServer() as healthy:

        async def main() -> None:
            async with aio.Client([stalled.address], io_timeout=0.5, connect_timeout=0.5, failover=False) as bad, \
                    aio.Client([healthy.address]) as good:
                assert await bad.set("k", b"v")
                stalled.set_fault("stall")
                ticks: List[float] = []
                stop = asyncio.Event()

                async def ticker() -> None:
                    while not stop.is_set():
                        ticks.append(time.monotonic())
                        await asyncio.sleep(0.01)

                t = asyncio.ensure_future(ticker())
                start = time.monotonic()
                results = await asyncio.gather(*(bad.get("k") for _ in range(20)), return_exceptions=True)
                elapsed = time.monotonic() - start
                healthy_ok = await good.set("h", b"1") and await good.get("h") == b"1"
                stop.set()
                await t
                # The first timeouts mark the server down (failure_limit): calls
                # queued behind them may then fail fast with ServerDownError.
                assert all(isinstance(r, omcache.ConnectionError) for r in results), results
                assert any(isinstance(r, omcache.TimeoutError) for r in results), results
                # io_timeout 0.5 s; the calls wait in parallel: a generous bound for a loaded machine
                assert elapsed < 5, elapsed
                gaps = [b - a for a, b in zip(ticks, ticks[1:])]
                # the loop kept running: ticks all along, no gap near the timeout
                assert len(ticks) > 20 and max(gaps) < 0.4, (len(ticks), max(gaps))
                assert healthy_ok
                stalled.set_fault("")

        run(main())


def test_works_on_uvloop(servers: List[MemcachedProcess]) -> None:
    uvloop = pytest.importorskip("uvloop")  # in the test extras

    async def main() -> str:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        async with aio.Client([s.address for s in servers]) as mc:
            await asyncio.gather(*(mc.set(f"uv{i}", str(i).encode()) for i in range(500)))
            got = await asyncio.gather(*(mc.get(f"uv{i}") for i in range(500)))
            assert got == [str(i).encode() for i in range(500)]
            return "ok"

    assert uvloop.run(main()) == "ok"


def test_one_client_on_several_event_loops(servers: List[MemcachedProcess]) -> None:
    mc = aio.Client([servers[0].address])

    async def work(tag: str) -> bool:
        await mc.set(tag, tag.encode())
        return await mc.get(tag) == tag.encode()

    assert run(work("loop1"))
    assert run(work("loop2"))  # a second loop after the first closed
    out: List[bool] = []

    def in_thread(i: int) -> None:
        out.append(run(work(f"thread{i}")))

    ts = [threading.Thread(target=in_thread, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert out == [True] * 4
    run(mc.close())


def test_thread_count_flat_after_10000_concurrent_calls(servers: List[MemcachedProcess]) -> None:
    addrs = [s.address for s in servers]

    async def main() -> int:
        async with aio.Client(addrs) as mc:
            await mc.set("warm", b"1")
            counts = []
            for _ in range(2):
                res = await asyncio.gather(*(mc.set(f"t{i}", b"x") if i % 3 == 0 else mc.get("warm") for i in range(10000)))
                assert res.count(b"1") == 10000 - len(range(0, 10000, 3))
                counts.append(_threads())
            # 10,000 calls in flight at once, twice: the engine's workers are
            # bounded (4 per server), so the second round starts no more
            # threads than the first (a few for the Go runtime's GC at most),
            # and the total stays far from one per call.
            assert counts[1] - counts[0] <= 8 and counts[1] < 100, counts
            return counts[1]

    run(main())


def test_fork_child_gets_a_fresh_engine_and_queue(servers: List[MemcachedProcess]) -> None:
    code = f"""
import asyncio, os, omcache.aio as aio
mc = aio.Client([{servers[0].address!r}])
async def work(tag):
    await mc.set(tag, tag.encode())
    got = await asyncio.gather(*(mc.get(tag) for _ in range(50)))
    assert got == [tag.encode()] * 50, got
asyncio.run(work("parent"))
pids = []
for i in range(2):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            asyncio.run(work(f"child{{i}}"))
            code = 0
        except BaseException:
            import traceback; traceback.print_exc()
        os._exit(code)
    pids.append(pid)
for pid in pids:
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0
asyncio.run(work("parent-again"))
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_memory_stays_flat_over_many_calls_with_cancellations(servers: List[MemcachedProcess]) -> None:
    async def round_(mc: aio.Client) -> None:
        tasks = [asyncio.ensure_future(mc.get(f"mem{i % 50}")) for i in range(4000)]
        await asyncio.sleep(0)
        for t in tasks[::4]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def main() -> List[int]:
        async with aio.Client([servers[0].address]) as mc:
            await mc.set_multi({f"mem{i}": b"v" * 1000 for i in range(50)})
            samples = []
            for r in range(12):
                await round_(mc)
                if r >= 2:
                    samples.append(_rss_kib())
            q = aio._queue_for(asyncio.get_running_loop())
            for _ in range(100):
                if q.core.bind_AsyncPending(q.qid) == 0:
                    break
                await asyncio.sleep(0.05)
            assert q.core.bind_AsyncPending(q.qid) == 0 and not q.futures
            return samples

    samples = run(main())
    # 40,000 more calls after warm-up; a leak of even 100 bytes per call would
    # add ~4 MiB. Allocator noise on a loaded machine stays well under 8 MiB.
    assert samples[-1] - samples[0] < 8 * 1024, samples

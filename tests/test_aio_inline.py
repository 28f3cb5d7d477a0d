"""omcache.aio's inline path: a lone single-key call is written by the event
loop's thread and its answer read when its socket (in the engine's epoll
descriptor) is readable.  Each reply reaches its own caller, a cancelled
inline call leaves its connection clean, and a server that answers late
times out without blocking the loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Coroutine, Iterator, List, TypeVar

import pytest

import omcache
import omcache.aio as aio
from omcache import _engine
from omcache.testing import EmbeddedServer, MemcachedProcess

T = TypeVar("T")


def _inline_started() -> int:
    n: int = _engine.core().bind_AsyncInlineStarted()
    return n


@pytest.fixture(scope="module")
def servers() -> Iterator[List[MemcachedProcess]]:
    ps = [MemcachedProcess().start() for _ in range(3)]
    try:
        yield ps
    finally:
        for p in ps:
            p.stop()


def _runners() -> List[Callable[[Coroutine[Any, Any, T]], T]]:
    runners: List[Callable[[Coroutine[Any, Any, T]], T]] = [asyncio.run]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the test extras
        return runners
    runners.append(uvloop.run)
    return runners


@pytest.mark.parametrize("runner", _runners(), ids=lambda r: r.__module__)
@pytest.mark.parametrize("nservers", [1, 3])
def test_lone_calls_go_inline_and_each_gets_its_own_answer(
    servers: List[MemcachedProcess], runner: Callable[[Coroutine[Any, Any, None]], None], nservers: int
) -> None:
    addrs = [p.address for p in servers[:nservers]]
    sync = omcache.Client(addrs)

    async def main() -> None:
        async with aio.Client(addrs) as mc:
            # one call per server opens its connection (through a lane)
            warm = {mc.server_for_key(f"warm{j}"): f"warm{j}" for j in range(100)}
            assert len(warm) == nservers
            for k in warm.values():
                await mc.get(k)
            before = _inline_started()
            calls = 0
            for i in range(200):
                k = f"inl{i}"
                assert await mc.set(k, f"v{i}".encode(), flags=i) is True
                assert await mc.get(k) == f"v{i}".encode()
                calls += 2
            for i in range(200):
                it = await mc.get_item(f"inl{i}")
                assert it is not None and it.value == f"v{i}".encode() and it.flags == i
                calls += 1
            assert await mc.add("inl0", b"x") is False
            assert await mc.replace("inl0", b"r0") is True
            assert await mc.touch("inl0", 100) is True
            assert await mc.touch("inl-missing", 100) is False
            assert await mc.delete("inl1") is True
            assert await mc.delete("inl1") is False
            assert await mc.get("inl1") is None
            calls += 7
            # every one of them went inline (the lanes were idle each time)
            assert _inline_started() - before == calls
            # and the server holds what the sync client sees
            assert sync.get("inl0") == b"r0" and sync.get("inl1") is None and sync.get("inl2") == b"v2"

    runner(main())


def test_concurrent_and_lone_calls_mix_without_misdelivery(servers: List[MemcachedProcess]) -> None:
    addrs = [p.address for p in servers]

    async def main() -> None:
        async with aio.Client(addrs) as mc:
            await mc.set_multi({f"mix{i}": f"m{i}".encode() for i in range(300)})
            before = _inline_started()

            async def one(i: int) -> bytes:
                # bursts of concurrent calls with pauses, so that some go
                # inline and the others through the lanes behind them
                if i % 10 == 0:
                    await asyncio.sleep(0.001)
                v = await mc.get(f"mix{i}")
                assert v is not None
                return v

            for _ in range(3):
                got = await asyncio.gather(*(one(i) for i in range(300)))
                assert got == [f"m{i}".encode() for i in range(300)]
            assert _inline_started() > before

    asyncio.run(main())


def test_cancel_in_the_middle_of_an_inline_call_leaves_the_connection_clean() -> None:
    with EmbeddedServer() as srv:
        seed = omcache.Client([srv.address])
        seed.set("a", b"value-a")
        seed.set("b", b"value-b")

        async def main() -> None:
            async with aio.Client([srv.address], io_timeout=5) as mc:
                assert await mc.get("a") == b"value-a"  # a pooled connection
                srv.set_fault("delay=200ms")
                before = _inline_started()
                task = asyncio.ensure_future(mc.get("a"))
                await asyncio.sleep(0.05)  # written, its answer held back by the server
                assert _inline_started() - before == 1
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                # asyncio.wait_for cuts one the same way
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(mc.get("a"), 0.05)
                srv.set_fault("")
                # the answers to the cancelled calls go to nobody: each call
                # gets its own key's value
                for _ in range(20):
                    assert await mc.get("b") == b"value-b"
                    assert await mc.get("a") == b"value-a"
                q = aio._queue_for(asyncio.get_running_loop())
                for _ in range(100):
                    if q.core.bind_AsyncPending(q.qid) == 0 and not q.futures:
                        break
                    await asyncio.sleep(0.05)
                assert q.core.bind_AsyncPending(q.qid) == 0 and not q.futures

        asyncio.run(main())


def test_a_late_answer_on_the_inline_path_times_out_and_never_blocks_the_loop() -> None:
    with EmbeddedServer() as srv:

        async def main() -> None:
            async with aio.Client([srv.address], io_timeout=0.3, failover=False) as mc:
                assert await mc.set("k", b"v")
                srv.set_fault("delay=2s")
                ticks: List[float] = []
                stop = asyncio.Event()

                async def ticker() -> None:
                    while not stop.is_set():
                        ticks.append(time.monotonic())
                        await asyncio.sleep(0.01)

                t = asyncio.ensure_future(ticker())
                await asyncio.sleep(0.05)
                before = _inline_started()
                start = time.monotonic()
                with pytest.raises(omcache.TimeoutError):
                    await mc.get("k")
                elapsed = time.monotonic() - start
                assert _inline_started() - before == 1
                stop.set()
                await t
                # io_timeout 0.3 s: not before it; the upper bound is room
                # for a loaded machine, well under the server's 2 s delay
                assert 0.29 <= elapsed < 1.5, elapsed
                gaps = [b - a for a, b in zip(ticks, ticks[1:])]
                # the loop kept running while the call waited
                assert len(ticks) > 15 and max(gaps) < 0.2, (len(ticks), max(gaps))
                srv.set_fault("")
                # the timed-out connection was dropped; a new one works
                assert await mc.get("k") == b"v"

        asyncio.run(main())

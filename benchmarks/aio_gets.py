"""Gets per second of omcache.aio at concurrency 1, 16 and 256 (docs/asyncio.md).

Starts one memcached on a free port; 20,000 gets of a 10-byte value spread
over N tasks, each awaiting its gets one after another.
Usage: python benchmarks/aio_gets.py [--uvloop]
"""

from __future__ import annotations

import asyncio
import sys
import time

import omcache.aio as aio
from omcache.testing import MemcachedProcess


async def run(addrs: list, conc: int, n: int = 20000) -> float:
    async with aio.Client(addrs) as mc:
        await mc.set("k", b"x" * 10)

        async def worker(m: int) -> None:
            for _ in range(m):
                await mc.get("k")

        t = time.perf_counter()
        await asyncio.gather(*(worker(n // conc) for _ in range(conc)))
        return n / (time.perf_counter() - t)


def main() -> None:
    runner = asyncio.run
    if "--uvloop" in sys.argv:
        import uvloop

        runner = uvloop.run
    with MemcachedProcess() as p:
        for conc in (1, 16, 256):
            print(f"{conc:>4} tasks: {int(runner(run([p.address], conc))):>7} gets/s")


if __name__ == "__main__":
    main()

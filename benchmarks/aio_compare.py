"""omcache.aio against aiomcache and emcache (docs/asyncio.md).

    python benchmarks/aio_compare.py [--ops 20000] [--uvloop]

10-byte gets and sets at concurrency 1, 16 and 256 on 1 and 3 local
memcached servers (started here on free ports). aiomcache talks to one host
only, so it runs on 1 server; aiomcache and emcache get pools of up to 32
connections, and emcache's own timeout is off. Each cell is the best of 3
runs, in operations per second. `make bench-async` runs it on both loops.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

from omcache.testing import MemcachedProcess

Op = Callable[[bytes], Awaitable[Any]]


async def _omcache(addrs: List[str]) -> Any:
    import omcache.aio

    mc = omcache.aio.Client(addrs)

    async def close() -> None:
        await mc.close()

    return (lambda k: mc.get(k)), (lambda k: mc.set(k, b"x" * 10)), close


async def _aiomcache(addrs: List[str]) -> Optional[Any]:
    if len(addrs) != 1:
        return None
    import aiomcache

    host, port = addrs[0].rsplit(":", 1)
    mc = aiomcache.Client(host, int(port), pool_size=32)

    async def close() -> None:
        await mc.close()

    return (lambda k: mc.get(k)), (lambda k: mc.set(k, b"x" * 10)), close


async def _emcache(addrs: List[str]) -> Any:
    import emcache

    nodes = [emcache.MemcachedHostAddress(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in addrs]
    mc = await emcache.create_client(nodes, timeout=None, max_connections=32)

    async def close() -> None:
        await mc.close()

    return (lambda k: mc.get(k)), (lambda k: mc.set(k, b"x" * 10)), close


CLIENTS: Dict[str, Callable[[List[str]], Awaitable[Optional[Any]]]] = {
    "omcache.aio": _omcache,
    "aiomcache": _aiomcache,
    "emcache": _emcache,
}


async def measure(make: Callable[[List[str]], Awaitable[Optional[Any]]], addrs: List[str], op: str, conc: int, ops: int) -> Optional[float]:
    made = await make(addrs)
    if made is None:
        return None
    get, set_, close = made
    keys = [f"bench{i}".encode() for i in range(100)]
    for k in keys:
        await set_(k)
    fn = get if op == "get" else set_

    async def worker(w: int, n: int) -> None:
        for i in range(n):
            await fn(keys[(w + i) % 100])

    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        await asyncio.gather(*(worker(w, ops // conc) for w in range(conc)))
        best = max(best, (ops // conc) * conc / (time.perf_counter() - t))
    await close()
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=20000)
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    runner: Callable[[Any], Any] = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    procs = [MemcachedProcess().start() for _ in range(3)]
    try:
        print(f"loop: {'uvloop' if args.uvloop else 'asyncio'}; ops/s, best of 3")
        print("| servers | op | tasks | " + " | ".join(CLIENTS) + " |")
        print("|---:|---|---:|" + "---:|" * len(CLIENTS))
        for nserv in (1, 3):
            addrs = [p.address for p in procs[:nserv]]
            for op in ("get", "set"):
                for conc in (1, 16, 256):
                    cells = []
                    for make in CLIENTS.values():
                        r = runner(measure(make, addrs, op, conc, args.ops))
                        cells.append("-" if r is None else f"{int(r):,}")
                    print(f"| {nserv} | {op} | {conc} | " + " | ".join(cells) + " |", flush=True)
    finally:
        for p in procs:
            p.stop()


if __name__ == "__main__":
    main()

"""omcache under gevent against pymemcache (docs/asyncio.md).

    python benchmarks/gevent_compare.py [--ops 20000]

gevent.monkey.patch_all(), one local memcached; 100 greenlets share one
client and do 10-byte gets (then sets) until --ops are done. pymemcache is
its PooledClient (pure Python over gevent's sockets, one connection per
greenlet: its pool raises instead of waiting when it is exhausted);
omcache.Client waits through the engine's completion queue. Best of 3, ops/s.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import gevent  # noqa: E402

from omcache.testing import MemcachedProcess  # noqa: E402


def measure(get: Callable[[str], Any], set_: Callable[[str, bytes], Any], op: str, ops: int, greenlets: int = 100) -> float:
    for i in range(100):
        set_(f"g{i}", b"x" * 10)
    per = ops // greenlets

    def worker(w: int) -> None:
        for i in range(per):
            k = f"g{(w + i) % 100}"
            if op == "get":
                get(k)
            else:
                set_(k, b"x" * 10)

    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        gevent.joinall([gevent.spawn(worker, w) for w in range(greenlets)])
        best = max(best, per * greenlets / (time.perf_counter() - t))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=20000)
    args = ap.parse_args()
    import omcache
    from pymemcache.client.base import PooledClient

    with MemcachedProcess() as p:
        host, port = p.address.rsplit(":", 1)
        om = omcache.Client([p.address])
        pm = PooledClient((host, int(port)), max_pool_size=100)
        print("| op | omcache | pymemcache (PooledClient, 100) |")
        print("|---|---:|---:|")
        for op in ("get", "set"):
            a = measure(om.get, om.set, op, args.ops)
            b = measure(pm.get, pm.set, op, args.ops)
            print(f"| {op} | {int(a):,} | {int(b):,} |", flush=True)


if __name__ == "__main__":
    main()

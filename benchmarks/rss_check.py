"""Check that RSS stays flat over many calls across the Python/Go boundary.

    python benchmarks/rss_check.py [--calls 1000000] [--unix]

Starts a real memcached, warms up, then does N set+get pairs (plus misses,
deletes, error paths and the multi-key calls in smaller numbers: get_multi
over text connections and over the binary pipeline, results that fit the
per-thread buffer and ones that do not, set_multi and delete_multi, values
read into the engine's reused large buffers) and
prints RSS before and after.
Exits non-zero if RSS grew by 5 MB or more.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

import omcache
from omcache.testing import MemcachedProcess


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1_000_000, help="set+get pairs")
    ap.add_argument("--unix", action="store_true", help="use a unix socket (faster)")
    ap.add_argument("--limit-mb", type=float, default=5.0)
    args = ap.parse_args()
    with MemcachedProcess(unix=args.unix) as server:
        c = omcache.Client([server.address])
        binary = omcache.Client([server.address], text_multiget=False)
        value = b"v" * 100
        multi = [f"rss-{i}" for i in range(10)] + ["rss-missing", "bad key"]
        big = {f"rss-big-{i}": b"b" * 5000 for i in range(10)}  # 50 KB: past the 32 KiB buffer
        large = b"L" * 600_000  # read apart into a reused engine buffer
        c.set_multi(big)

        def round_(n: int) -> None:
            for i in range(n):
                k = f"rss-{i % 1000}"
                c.set(k, value)
                c.get(k)
                if i % 10 == 0:
                    c.get("rss-missing")
                    c.delete("rss-nothing")
                    c.get_multi(multi)
                    binary.get_multi_items(multi)
                    c.set_multi({k: value for k in multi[:5]})
                    c.delete_multi(["rss-gone-1", "rss-gone-2"])
                if i % 100 == 0:
                    try:
                        c.get("bad key")
                    except omcache.InvalidKeyError:
                        pass
                    c.get_multi(list(big))
                if i % 1000 == 0:
                    c.set("rss-large", large)
                    c.get("rss-large")
                    c.get_multi(["rss-large", "rss-0"])

        round_(50_000)  # warm-up: pools, buffers, handle maps reach steady state
        gc.collect()
        before = rss_kb()
        t0 = time.perf_counter()
        round_(args.calls)
        dt = time.perf_counter() - t0
        gc.collect()
        after = rss_kb()
    grew = (after - before) / 1024
    print(
        f"{args.calls} set+get pairs in {dt:.1f} s ({dt / args.calls / 2 * 1e6:.1f} us per call); "
        f"RSS {before / 1024:.1f} MB -> {after / 1024:.1f} MB (grew {grew:+.2f} MB)"
    )
    return 0 if grew < args.limit_mb else 1


if __name__ == "__main__":
    sys.exit(main())

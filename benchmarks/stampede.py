"""Cold-key stampede: loader runs and worst caller wait, omcache get_or_set vs get/miss/set.

    .venv/bin/python benchmarks/stampede.py [--procs 3] [--threads 8] [--rounds 5] [--load-ms 200] [--cpu]

Starts a memcached (Debian's, on a free port), then for each contender and
round: a fresh key, ``procs`` processes of ``threads`` threads
(tests/stampede_worker.py) released at the same moment, each calling once.
The loader sleeps ``load-ms`` (a slow query), or with ``--cpu`` computes
for that much CPU time (a slow render), and counts its runs in memcached.  Reported per contender: loader runs per round (min/max over the
rounds) and the worst caller wait (median over the rounds of each round's
slowest caller, and the slowest of all).  Contenders:

- omcache get_or_set, meta protocol (memcached leases);
- omcache get_or_set, text protocol (the add-lock fallback);
- the usual get / on a miss load and set, on omcache and on the real pylibmc.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import uuid
from typing import Any, Dict, List, Tuple

from omcache.testing import MemcachedProcess

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "stampede_worker.py")

CONTENDERS: List[Tuple[str, Dict[str, Any]]] = [
    ("omcache get_or_set (meta leases)", {"client": "omcache", "protocol": "meta"}),
    ("omcache get_or_set (text, add lock)", {"client": "omcache", "protocol": "text"}),
    ("omcache get/miss/set", {"client": "omcache", "protocol": "meta", "pattern": "getset"}),
    ("pylibmc get/miss/set", {"client": "pylibmc", "protocol": "text", "pattern": "getset"}),
]


def one_round(server: str, cfg: Dict[str, Any], procs: int) -> Tuple[int, float, List[str]]:
    """Run one stampede; return loader runs, the slowest caller's wait, and the errors."""
    key = "bench-" + uuid.uuid4().hex[:12]
    cfg = {**cfg, "server": server, "key": key, "counter": "runs-" + key}
    ps = [
        subprocess.Popen([sys.executable, WORKER, json.dumps(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(procs)
    ]
    for p in ps:
        assert p.stdout is not None
        if p.stdout.readline() != "ready\n":
            raise RuntimeError("a worker did not start")
    for p in ps:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    recs = []
    for p in ps:
        out, _ = p.communicate(timeout=120)
        recs += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    import omcache

    with omcache.Client([server]) as c:
        runs = int(c.get("runs-" + key) or 0)
    return runs, max(r["wait"] for r in recs), [r["error"] for r in recs if "error" in r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--procs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--load-ms", type=float, default=200)
    ap.add_argument("--cpu", action="store_true", help="a CPU-bound loader (spins) instead of one that sleeps (waits on I/O)")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    results = []
    with MemcachedProcess() as mc:
        for name, cfg in CONTENDERS:
            runs: List[int] = []
            waits: List[float] = []
            errors: List[str] = []
            for _ in range(args.rounds):
                r, w, e = one_round(mc.address, {**cfg, "threads": args.threads, "sleep": args.load_ms / 1000, "loader": "cpu" if args.cpu else "ok"}, args.procs)
                runs.append(r)
                waits.append(w)
                errors += e
            results.append({"contender": name, "runs": runs, "worst_waits": waits, "errors": errors})
            print(
                f"{name:38s} loader runs {min(runs)}-{max(runs)} per round; worst caller wait: "
                f"median {statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms"
                + (f"; {len(errors)} errors: {errors[:2]}" if errors else ""),
                flush=True,
            )
    print(
        f"{args.procs} processes x {args.threads} threads, one cold key, "
        f"loader {args.load_ms:g} ms {'of CPU' if args.cpu else 'asleep'}, "
        f"{args.rounds} rounds; {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()

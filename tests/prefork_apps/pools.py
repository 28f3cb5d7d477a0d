"""Run tasks in a fork-based process pool whose parent has used omcache.

Usage: python pools.py KIND SERVER NTASKS
  KIND     "multiprocessing" (multiprocessing.Pool, fork start method) or
           "billiard" (billiard.Pool, the pool under Celery's prefork workers)
  SERVER   memcached address

The parent creates an omcache.Client and uses it (so the engine's Go runtime
is running when the pool forks), then maps NTASKS tasks over a pool of 4
workers that are replaced every 4 tasks (maxtasksperchild, as Celery's
--max-tasks-per-child does): replacement workers are forked from a pool
thread of the parent while its engine is in use.  Each worker arms the
forkcheck tripwire before its first omcache call.  Each task uses the
parent's client object (created before fork) and a client of its own.
Prints one JSON object: the tasks' reports and what the parent saw after.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, Optional

import omcache

import forkcheck

# Set in the parent before the pool forks: the stale object every task uses.
CLIENT: Optional[omcache.Client] = None
SERVER = ""
PARENT_KEY = ""


def task(key: str) -> Dict[str, Any]:
    tripwire = forkcheck.arm()
    assert CLIENT is not None
    value = f"{key}@{os.getpid()}".encode()
    CLIENT.set(key, value)
    got = CLIENT.get(key)
    own = omcache.Client([SERVER], connect_timeout=2.0, io_timeout=2.0)
    own.set(key + "-own", value[::-1])
    own_got = own.get_multi([key, key + "-own"])
    own.close()
    from omcache import _engine

    return {
        "key": key,
        "pid": os.getpid(),
        "value": got.decode() if got is not None else None,
        "own": {k: v.decode() for k, v in own_got.items()},
        "parent_value": (CLIENT.get(PARENT_KEY) or b"").decode(),
        "engine_module": _engine.core().__name__,
        "engine_file": _engine.core().__file__,
        "tripwire": tripwire,
    }


def make_pool(kind: str) -> Any:
    if kind == "multiprocessing":
        import multiprocessing

        return multiprocessing.get_context("fork").Pool(4, maxtasksperchild=4)
    if kind == "billiard":
        import billiard  # type: ignore[import-not-found]

        if billiard.get_start_method() != "fork":
            raise RuntimeError(f"billiard's start method is {billiard.get_start_method()!r}, not fork")
        return billiard.Pool(4, maxtasksperchild=4)
    raise ValueError(f"unknown pool kind {kind!r}")


def main(argv: list) -> None:
    global CLIENT, SERVER, PARENT_KEY
    kind, SERVER, ntasks = argv[0], argv[1], int(argv[2])
    run = f"{kind}-{os.getpid()}-{time.time_ns()}"
    PARENT_KEY = f"pool-parent-{run}"
    CLIENT = omcache.Client([SERVER], connect_timeout=2.0, io_timeout=2.0)
    CLIENT.set(PARENT_KEY, str(os.getpid()).encode())
    if CLIENT.get(PARENT_KEY) != str(os.getpid()).encode():
        raise RuntimeError("omcache does not work in the parent")
    keys = [f"pool-{run}-{i}" for i in range(ntasks)]
    pool = make_pool(kind)
    try:
        reports = pool.map_async(task, keys, chunksize=1).get(timeout=60)
    except BaseException:
        pool.terminate()
        raise
    # Workers must also leave cleanly.
    pool.close()
    pool.join()
    # The parent's own engine and connections are untouched by its children.
    after = {k: v.decode() for k, v in CLIENT.get_multi(keys).items()}
    print(
        json.dumps(
            {
                "parent_pid": os.getpid(),
                "parent_key": PARENT_KEY,
                "keys": keys,
                "reports": reports,
                "parent_sees": after,
                "parent_engine_module": __import__("omcache._engine")._engine.core().__name__,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])

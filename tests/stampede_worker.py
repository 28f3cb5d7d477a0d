"""A process of callers for tests/test_stampede.py and benchmarks/stampede.py.

    python stampede_worker.py CONFIG_JSON

It starts ``threads`` threads, prints ``ready``, waits for a line on stdin,
then every thread calls get_or_set on the same key at once and prints one
JSON line: the value it got (or the error it saw) and how long it waited.
Every loader run increments ``counter`` in memcached, so the parent counts
runs across processes.  Loader kinds: ``ok`` sleeps ``sleep`` seconds and
returns ``loaded-<pid>-<n>``; ``fail-first``: the first run across all
processes sleeps and raises, the others are ``ok``; ``cpu`` spins for
``sleep`` seconds of CPU time instead of sleeping; ``hang`` prints
``loading`` and sleeps for ever (the parent kills the process).
``pattern="getset"`` runs the usual get / on a miss load and set instead,
on omcache or on the real pylibmc (``client="pylibmc"``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List


def main() -> None:
    cfg: Dict[str, Any] = json.loads(sys.argv[1])
    kind = cfg.get("client", "omcache")
    local = threading.local()
    if kind == "pylibmc":
        import pylibmc

        # A pylibmc client is not thread-safe: one per thread, as
        # applications do (pylibmc.ThreadMappedPool).
        def lib() -> Any:
            c = getattr(local, "mc", None)
            if c is None:
                c = local.mc = pylibmc.Client([cfg["server"]])
            return c
    else:
        import omcache

        mc: Any
        if kind == "serde":
            mc = omcache.SerdeClient([cfg["server"]], protocol=cfg["protocol"])
        else:
            mc = omcache.Client([cfg["server"]], protocol=cfg["protocol"])
        counter_mc = omcache.Client([cfg["server"]], protocol=cfg["protocol"])

        def lib() -> Any:
            return mc
    key = cfg["key"]
    loader_kind = cfg.get("loader", "ok")
    sleep = float(cfg.get("sleep", 0.3))
    lock = threading.Lock()
    out: List[str] = []

    def count() -> int:
        if kind == "pylibmc":
            try:
                return int(lib().incr(cfg["counter"]))
            except pylibmc.NotFound:
                if lib().add(cfg["counter"], "1"):
                    return 1
                return int(lib().incr(cfg["counter"]))
        n = counter_mc.incr(cfg["counter"], 1, initial=1)
        assert n is not None
        return int(n)

    def loader() -> Any:
        n = count()
        if loader_kind == "hang":
            print("loading", flush=True)
            time.sleep(1000)
        if loader_kind == "cpu":
            # A CPU-bound loader: `sleep` seconds of this thread's CPU time.
            end = time.thread_time() + sleep
            while time.thread_time() < end:
                pass
        else:
            time.sleep(sleep)
        if loader_kind == "fail-first" and n == 1:
            raise RuntimeError("loader failed on purpose")
        v = f"loaded-{os.getpid()}-{n}"
        return v if kind == "serde" else v.encode()

    def call() -> Any:
        if cfg.get("pattern") == "getset":
            v = lib().get(key)
            if v is None:
                v = loader()
                lib().set(key, v, cfg.get("expire", 60))
            return v
        kw: Dict[str, Any] = {"lock_ttl": cfg.get("lock_ttl", 30), "recache_before": cfg.get("recache_before", 0)}
        if "wait_timeout" in cfg:
            kw["wait_timeout"] = cfg["wait_timeout"]
        return lib().get_or_set(key, loader, cfg.get("expire", 60), **kw)

    go = threading.Event()

    def run() -> None:
        # Connect before the start, so that the waits measure the calls.
        lib().get("warmup")
        go.wait()
        t0 = time.monotonic()
        rec: Dict[str, Any] = {"pid": os.getpid()}
        try:
            v = call()
            rec["value"] = v if isinstance(v, str) else v.decode()
        except Exception as e:  # noqa: BLE001 - reported to the parent
            rec["error"] = f"{type(e).__name__}: {e}"
        rec["wait"] = time.monotonic() - t0
        with lock:
            out.append(json.dumps(rec))

    threads = [threading.Thread(target=run) for _ in range(int(cfg.get("threads", 4)))]
    for t in threads:
        t.start()
    time.sleep(0.2)  # let every thread connect and reach go.wait()
    print("ready", flush=True)
    sys.stdin.readline()
    go.set()
    for t in threads:
        t.join()
    for line in out:
        print(line, flush=True)


if __name__ == "__main__":
    main()

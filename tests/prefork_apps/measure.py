"""Measure what prefork costs per child (the numbers in docs/prefork.md).

Usage: python tests/prefork_apps/measure.py [--servers] [SERVER]
  SERVER     memcached address; by default a real memcached is started.
  --servers  measure gunicorn and uWSGI workers instead (see servers()).

Four scenarios, each a parent that forks 4 children kept alive together
(like 4 workers), each child doing 200 set+get round trips unless it does
not use omcache at all:
  base      parent never used omcache, children do not use it
  lazy      parent never used omcache, children do (gunicorn without --preload,
            uWSGI --lazy-apps): each child loads the engine from the package
  fresh     parent used omcache, children do (gunicorn --preload, uWSGI
            master mode, Celery): each child loads a fresh copy (memfd)
  idle      parent used omcache, children do not use it
Reported per child: the first operation's latency split into engine load
and connect+round trip (median of 20 children, forked one at a time), and,
with 4 children alive at once after their work, Pss and RSS from
/proc/self/smaps_rollup and VmSize (address space) from /proc/self/status.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Callable, Dict, List

import omcache
from omcache import _engine
from omcache.testing import MemcachedProcess, free_port


def memory() -> Dict[str, int]:
    """Pss and Rss (smaps_rollup) and VmSize, VmRSS (status) of this process, in kB."""
    out = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Pss", "Rss"):
                out[k] = int(v.split()[0])
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmSize", "VmRSS"):
                out[k] = int(v.split()[0])
    return out


def fork_and_collect(n: int, child: Callable[[], Dict[str, float]], together: bool) -> List[Dict[str, float]]:
    """Run child() in n forked children, return their reports.  together=True
    keeps all n alive until each has reported (so Pss shares are comparable)."""
    reports = []
    pipes, pids = [], []
    release_r, release_w = os.pipe()
    for _ in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(r)
                rep = child()
                if together:
                    rep.update(memory_after_siblings(release_r, w))
                else:
                    os.write(w, json.dumps(rep).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        pipes.append(r)
        pids.append(pid)
        if not together:
            reports.append(json.loads(read_all(r)))
            os.waitpid(pid, 0)
    if together:
        # every child has done its work and waits: let them measure, then read
        time.sleep(0.3)
        os.write(release_w, b"x" * n)
        for r, pid in zip(pipes, pids):
            reports.append(json.loads(read_all(r)))
            os.waitpid(pid, 0)
    os.close(release_r)
    os.close(release_w)
    return reports


def memory_after_siblings(release_r: int, w: int) -> Dict[str, float]:
    os.read(release_r, 1)  # all siblings have done their work
    rep = memory()
    os.write(w, json.dumps(rep).encode())
    return {}


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return b"".join(chunks)


def proc_memory(pid: int) -> Dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Pss", "Rss"):
                out[k] = int(v.split()[0])
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "VmSize":
                out[k] = int(v.split()[0])
    return out


def servers(server: str) -> None:
    """4 workers of each server, app.py (omcache used at import and per
    request), 200 requests one at a time; then each worker's memory and the
    median request time (a set+get and JSON over HTTP on loopback)."""
    here = os.path.dirname(os.path.abspath(__file__))
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(omcache.__file__)))
    env = dict(os.environ, OMCACHE_PREFORK_SERVER=server, OMCACHE_PREFORK_TRIPWIRE="0")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, pkg, env.get("PYTHONPATH", "")) if p)
    uwsgi = shutil.which("uwsgi", path=os.pathsep.join((os.path.dirname(sys.executable), os.environ["PATH"])))
    configs = {}
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", "4", "--no-control-socket", "app:application", "-b"]
    configs["gunicorn --preload"] = gunicorn[:3] + ["--preload"] + gunicorn[3:]
    configs["gunicorn (no preload)"] = gunicorn
    if uwsgi:
        u = [uwsgi, "--master", "--processes", "4", "--die-on-term", "--module", "app:application", "--disable-logging", "--http-socket"]
        configs["uWSGI master mode"] = u
        configs["uWSGI --lazy-apps"] = u[:1] + ["--lazy-apps"] + u[1:]
    print("4 workers after 200 requests (median per worker, MiB; request median, ms):")
    print(f"  {'':24} {'Pss':>6} {'RSS':>6} {'VmSize':>7} {'request':>8}")
    for name, argv in configs.items():
        port = free_port()
        p = subprocess.Popen(argv + [f"127.0.0.1:{port}"], env=env, cwd=here, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url + "measure-first", timeout=10).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            later = []
            for i in range(200):
                t = time.perf_counter()
                urllib.request.urlopen(url + f"measure-{i}", timeout=10).read()
                later.append((time.perf_counter() - t) * 1000)
            workers = [int(x) for x in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                                      text=True).stdout.split()]
            mems = [proc_memory(w) for w in workers]
            med = lambda k: statistics.median(m[k] for m in mems) / 1024  # noqa: E731
            print(f"  {name:24} {med('Pss'):6.1f} {med('Rss'):6.1f} {med('VmSize'):7.0f}"
                  f" {statistics.median(later):8.2f}")
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=10)


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--servers"]
    mc = None
    if args:
        server = args[0]
    else:
        mc = MemcachedProcess().start()
        server = mc.address
    try:
        servers(server) if "--servers" in sys.argv else run(server)
    finally:
        if mc is not None:
            mc.stop()


def run(server: str) -> None:
    client = omcache.Client([server], connect_timeout=2.0, io_timeout=2.0)

    def first_use() -> Dict[str, float]:
        t0 = time.perf_counter()
        _engine.core()
        t1 = time.perf_counter()
        client.get("measure")
        t2 = time.perf_counter()
        return {"load_ms": (t1 - t0) * 1000, "first_get_ms": (t2 - t1) * 1000}

    def work() -> Dict[str, float]:
        rep = first_use()
        for i in range(200):
            k = f"measure-{os.getpid()}-{i}"
            client.set(k, b"x" * 100)
            client.get(k)
        return rep

    def no_work() -> Dict[str, float]:
        return {}

    results = {}
    # Parent has not loaded the engine yet: base and lazy.
    assert not _engine.loaded()
    results["lazy_latency"] = fork_and_collect(20, first_use, together=False)
    results["base"] = fork_and_collect(4, no_work, together=True)
    results["lazy"] = fork_and_collect(4, work, together=True)
    # Parent loads and uses the engine: fresh and idle.
    client.set("measure", b"parent")
    assert _engine.loaded()
    results["fresh_latency"] = fork_and_collect(20, first_use, together=False)
    results["fresh"] = fork_and_collect(4, work, together=True)
    results["idle"] = fork_and_collect(4, no_work, together=True)

    def med(rows: List[Dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print("first operation in a child (median of 20 children, ms):")
    for name in ("lazy_latency", "fresh_latency"):
        rows = results[name]
        print(
            f"  {name[:-8]:6} engine load {med(rows, 'load_ms'):6.1f}"
            f" (min {min(r['load_ms'] for r in rows):.1f}, max {max(r['load_ms'] for r in rows):.1f})"
            f"   connect + first get {med(rows, 'first_get_ms'):5.2f}"
        )
    print("memory per child, 4 children alive at once (median, MiB):")
    print(f"  {'':6} {'Pss':>7} {'RSS':>7} {'VmSize':>8}")
    for name in ("base", "lazy", "fresh", "idle"):
        rows = results[name]
        print(
            f"  {name:6} {med(rows, 'Pss') / 1024:7.1f} {med(rows, 'Rss') / 1024:7.1f}"
            f" {med(rows, 'VmSize') / 1024:8.0f}"
        )
    print(f"parent: {json.dumps({k: round(v / 1024, 1) for k, v in memory().items()})} MiB")


if __name__ == "__main__":
    main()

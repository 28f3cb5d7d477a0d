"""omcache in prefork servers (issue 11): fork pools, gunicorn --preload, uWSGI master mode.

In every scenario the parent (the pool's parent, the server's master) has
used omcache before forking, so its Go runtime is running when the children
are made: the case that hangs with a naively loaded engine
(shared/fork-notes.md).  The children use objects created in the parent and
clients of their own against a real memcached, and each child first arms
prefork_apps/forkcheck.py's tripwire: the engine code inherited from the
parent is made non-executable, so a call into it kills the child with SIGSEGV
instead of passing by luck.

Every server and pool runs as a subprocess with deadlines on start, on each
request and on shutdown: a hang fails the test within seconds.  The tests
need gunicorn, billiard and uWSGI (pip); without them a test is skipped, or
fails when the environment variable CI is set.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set

import pytest

import omcache
from omcache.testing import MemcachedProcess, free_port

from references import in_ci

APPS = Path(__file__).resolve().parent / "prefork_apps"
PACKAGE_ROOT = str(Path(omcache.__file__).resolve().parent.parent)
START_TIMEOUT = 20.0  # a server must accept connections within this
REQUEST_TIMEOUT = 10.0  # one request (a hung worker fails it)
STOP_TIMEOUT = 5.0  # SIGTERM to exit of the master and every worker

MemcachedFactory = Callable[..., MemcachedProcess]


def require_module(name: str) -> None:
    try:
        __import__(name)
    except ImportError:
        if in_ci():
            pytest.fail(f"{name} is not installed, and CI must run the prefork tests (pip install {name})")
        pytest.skip(f"{name} is not installed (pip install {name})")


def uwsgi_binary() -> str:
    path = os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))
    exe = shutil.which("uwsgi", path=path)
    if exe is None:
        if in_ci():
            pytest.fail("uwsgi is not installed, and CI must run the prefork tests (pip install uwsgi)")
        pytest.skip("uwsgi is not installed (pip install uwsgi)")
    return exe


def child_env(server: str, *, tripwire: bool = True) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APPS), PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    env["OMCACHE_PREFORK_SERVER"] = server
    env["OMCACHE_PREFORK_TRIPWIRE"] = "1" if tripwire else "0"
    env.pop("OMCACHE_NO_MEMFD", None)
    return env


def process_state(pid: int) -> Optional[str]:
    """The state letter of a process (R, S, Z...), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def alive(pid: int) -> bool:
    return process_state(pid) not in (None, "Z", "X")


def children_of(pid: int) -> Set[int]:
    out = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(name))
    return out


def http_get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body)
        return body
    finally:
        conn.close()


class PreforkServer:
    """A prefork server run as a subprocess in its own session (process group)."""

    def __init__(self, argv: Sequence[str], port: int, env: Dict[str, str], log: Path) -> None:
        self.port = port
        self.log = log
        self._logf = open(log, "wb")
        self.proc = subprocess.Popen(
            list(argv), env=env, stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=str(APPS),
        )
        self.seen: Set[int] = set()  # every worker PID that answered or was listed

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode} before accepting:\n{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not accept within {START_TIMEOUT}s:\n{self.log_text()}")
                time.sleep(0.05)

    def workers(self) -> Set[int]:
        pids = children_of(self.proc.pid)
        self.seen |= pids
        return pids

    def get_all(self, keys: Sequence[str], delay: float, concurrency: int) -> List[dict]:
        """Request /<key>?delay= for each key, concurrency at a time; return the JSON reports."""
        with concurrent.futures.ThreadPoolExecutor(concurrency) as ex:
            bodies = list(ex.map(lambda k: http_get(self.port, f"/{k}?delay={delay}"), keys))
        reports = [json.loads(b) for b in bodies]
        self.seen |= {r["pid"] for r in reports}
        return reports

    def stop(self, group: bool) -> float:
        """SIGTERM the master (or, group=True, every process of the group as
        systemd and supervisors do); return the seconds until all exited."""
        self.workers()
        t0 = time.monotonic()
        if group:
            os.killpg(self.proc.pid, signal.SIGTERM)
        else:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"master still running {STOP_TIMEOUT}s after SIGTERM:\n{self.log_text()}")
        while any(alive(p) for p in self.seen):
            if time.monotonic() - t0 > STOP_TIMEOUT:
                left = sorted(p for p in self.seen if alive(p))
                pytest.fail(f"workers {left} still running {STOP_TIMEOUT}s after SIGTERM:\n{self.log_text()}")
            time.sleep(0.02)
        return time.monotonic() - t0

    def kill(self) -> None:
        """Cleanup: SIGKILL whatever is left of the group."""
        if self.proc.poll() is None or any(alive(p) for p in self.seen):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
            pass
        for p in self.seen:
            if alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._logf.close()

    def log_text(self) -> str:
        self._logf.flush()
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., PreforkServer]]:
    servers: List[PreforkServer] = []

    def start(argv: Sequence[str], port: int, env: Dict[str, str]) -> PreforkServer:
        s = PreforkServer(argv, port, env, tmp_path / f"server{len(servers)}.log")
        servers.append(s)
        s.wait_ready()
        return s

    yield start
    for s in servers:
        s.kill()


def check_reports(reports: List[dict], keys: Sequence[str], master_pid: int) -> None:
    """Each request got its own key's value, written and read back by a worker
    that loaded a fresh engine (the master had loaded one before forking)."""
    assert [r["key"] for r in reports] == list(keys)
    for r in reports:
        pid = r["pid"]
        assert r["value"] == f"{r['key']}@{pid}", r
        assert r["master_pid"] == master_pid, r
        assert pid != master_pid, r
        assert r["master_value"] == str(master_pid), r
        assert r["engine_pid"] == pid, r
        assert r["engine_module"] == f"omcache._gopy_pid{pid}._core", r
        assert r["tripwire"] >= 1, r


# Signs of a crashed, aborted or hung-and-killed worker in gunicorn's and
# uWSGI's logs.  Not "was sent SIGTERM": gunicorn logs that when its shutdown
# SIGTERM reaches a worker already finalizing after --max-requests (Python has
# restored SIG_DFL by then), a gunicorn race unrelated to omcache.
BAD_LOG_LINES = (
    "Traceback", "SIGSEGV", "SIGABRT", "SIGKILL", "SIGBUS", "WORKER TIMEOUT", "Segmentation",
    "killed by signal", "signal 11", "signal 6", "signal 9",
)  # fmt: skip


def assert_clean_log(server: PreforkServer) -> None:
    text = server.log_text()
    for bad in BAD_LOG_LINES:
        assert bad not in text, f"{bad!r} in the server log:\n{text}"


def unique_keys(tag: str, n: int) -> List[str]:
    run = uuid.uuid4().hex[:12]
    return [f"{tag}-{run}-{i}" for i in range(n)]


# -- fork pools: multiprocessing (fork) and billiard (Celery's prefork pool) ---


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["multiprocessing", "billiard", "multiprocessing-tempfile"])
def test_fork_pool_tasks_get_correct_results(memcached_factory: MemcachedFactory, kind: str) -> None:
    if kind == "billiard":
        require_module("billiard")
    mc = memcached_factory()
    env = child_env(mc.address)
    origin = "/proc/self/fd/"  # the workers' fresh copies come from memfds
    if kind.endswith("-tempfile"):  # or from temp files
        kind = kind.split("-")[0]
        env["OMCACHE_NO_MEMFD"] = "1"
        origin = os.path.join(tempfile.gettempdir(), "omcache-engine-")
    ntasks = 48
    r = subprocess.run(
        [sys.executable, str(APPS / "pools.py"), kind, mc.address, str(ntasks)],
        env=env, capture_output=True, text=True, timeout=75,
    )
    assert r.returncode == 0, f"stdout={r.stdout}\nstderr={r.stderr}"
    out = json.loads(r.stdout)
    reports, keys, parent = out["reports"], out["keys"], out["parent_pid"]
    assert len(reports) == ntasks and [t["key"] for t in reports] == keys
    for t in reports:
        pid, key = t["pid"], t["key"]
        assert pid != parent
        assert t["value"] == f"{key}@{pid}", t  # through the parent's client object
        assert t["own"] == {key: f"{key}@{pid}", key + "-own": f"{key}@{pid}"[::-1]}, t
        assert t["parent_value"] == str(parent), t
        assert t["engine_module"] == f"omcache._gopy_pid{pid}._core", t
        assert t["engine_file"].startswith(origin), t
        assert t["tripwire"] >= 1, t
    # maxtasksperchild=4: workers were replaced, forked while the parent's engine ran.
    assert len({t["pid"] for t in reports}) >= ntasks // 4
    assert out["parent_sees"] == {t["key"]: t["value"] for t in reports}
    assert out["parent_engine_module"] == "omcache._gopy._core"


# -- gunicorn --preload ---------------------------------------------------------


_GUNICORN_HELP: Optional[str] = None


def gunicorn_argv(port: int, extra: Sequence[str]) -> List[str]:
    global _GUNICORN_HELP
    if _GUNICORN_HELP is None:
        _GUNICORN_HELP = subprocess.run(
            [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, timeout=30
        ).stdout
    argv = [sys.executable, "-m", "gunicorn", "--preload", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "3"]
    if "--no-control-socket" in _GUNICORN_HELP:  # gunicorn >= 24 would make one in $HOME
        argv.append("--no-control-socket")
    return argv + list(extra) + ["app:application"]


GUNICORN_CONFIGS = {
    "sync": ["-w", "2", "-k", "sync"],
    # --worker-connections 2: a busy worker stops accepting, so both answer.
    "gthread": ["-w", "2", "-k", "gthread", "--threads", "2", "--worker-connections", "2"],
    # Workers replaced every 6 requests, forked by a master whose engine is long up.
    "sync-max-requests": ["-w", "2", "-k", "sync", "--max-requests", "6"],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("config", sorted(GUNICORN_CONFIGS))
def test_gunicorn_preload_answers_every_request_and_stops_on_sigterm(
    memcached_factory: MemcachedFactory, start_server: Callable[..., PreforkServer], config: str
) -> None:
    require_module("gunicorn")
    mc = memcached_factory()
    port = free_port()
    server = start_server(gunicorn_argv(port, GUNICORN_CONFIGS[config]), port, child_env(mc.address))
    keys = unique_keys(f"gunicorn-{config}", 32)
    reports = server.get_all(keys, delay=0.05, concurrency=8)
    check_reports(reports, keys, server.proc.pid)
    answered = {r["pid"] for r in reports}
    if config.endswith("max-requests"):
        assert len(answered) > 2, answered  # replacement workers answered too
    else:
        assert server.workers() <= answered, (server.workers(), answered)  # every worker works
    elapsed = server.stop(group=False)
    assert server.proc.returncode == 0, server.log_text()
    assert elapsed < STOP_TIMEOUT
    assert_clean_log(server)


# -- uWSGI master mode ----------------------------------------------------------


def uwsgi_argv(port: int, extra: Sequence[str], module: str = "app:application") -> List[str]:
    # Master mode loads the app in the master and forks the workers from it
    # (no --lazy-apps); --die-on-term: SIGTERM stops uWSGI 2.0 instead of
    # reloading it, as under systemd, Docker or supervisord.
    return [
        uwsgi_binary(), "--strict", "--master", "--die-on-term", "--need-app",
        "--http-socket", f"127.0.0.1:{port}", "--module", module, "--disable-logging",
        *extra,
    ]  # fmt: skip


UWSGI_CONFIGS = {
    "processes": ["--processes", "2"],
    "threads": ["--processes", "2", "--threads", "2"],
    # One round of replacements (a second within a second makes uWSGI sleep 2 s).
    "max-requests": ["--processes", "2", "--max-requests", "10", "--min-worker-lifetime", "0"],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("config", sorted(UWSGI_CONFIGS))
def test_uwsgi_master_mode_answers_every_request_and_stops_on_sigterm(
    memcached_factory: MemcachedFactory, start_server: Callable[..., PreforkServer], config: str
) -> None:
    uwsgi_binary()
    mc = memcached_factory()
    port = free_port()
    server = start_server(uwsgi_argv(port, UWSGI_CONFIGS[config]), port, child_env(mc.address))
    keys = unique_keys(f"uwsgi-{config}", 32)
    reports = server.get_all(keys, delay=0.05, concurrency=8)
    check_reports(reports, keys, server.proc.pid)
    answered = {r["pid"] for r in reports}
    if config == "max-requests":
        assert len(answered) > 2, answered  # replacement workers answered too
    else:
        assert server.workers() <= answered, (server.workers(), answered)
    elapsed = server.stop(group=False)
    assert server.proc.returncode == 0, server.log_text()
    assert elapsed < STOP_TIMEOUT
    assert_clean_log(server)


def uwsgi_cycle(port: int, env: Dict[str, str], log: Path, tag: str, module: str) -> Optional[float]:
    """Start uWSGI (2 workers), make both workers load the engine, SIGTERM the
    whole process group; return the seconds to a full stop, or None if some
    process was still there after STOP_TIMEOUT (then it is SIGKILLed)."""
    server = PreforkServer(uwsgi_argv(port, ["--processes", "2"], module), port, env, log)
    try:
        server.wait_ready()
        deadline = time.monotonic() + START_TIMEOUT
        answered: Set[int] = set()
        n = 0
        while len(answered) < 2:
            assert time.monotonic() < deadline, f"both workers did not answer:\n{server.log_text()}"
            keys = [f"{tag}-{n + i}" for i in range(4)]
            n += 4
            answered |= {r["pid"] for r in server.get_all(keys, delay=0.05, concurrency=4)}
        try:
            return server.stop(group=True)
        except pytest.fail.Exception:
            return None
    finally:
        server.kill()


def run_uwsgi_cycles(cycles: int, lanes: int, server: str, tmp_path: Path, module: str) -> List[Optional[float]]:
    env = child_env(server)

    def lane(i: int) -> List[Optional[float]]:
        out = []
        for c in range(i, cycles, lanes):
            tag = f"cycle-{uuid.uuid4().hex[:8]}-{c}"
            out.append(uwsgi_cycle(free_port(), env, tmp_path / f"uwsgi-cycle{c}.log", tag, module))
        return out

    # The ~1 s a uWSGI master takes to bury its workers is idle time: run lanes side by side.
    with concurrent.futures.ThreadPoolExecutor(lanes) as ex:
        return [t for ts in ex.map(lane, range(lanes)) for t in ts]


@pytest.mark.timeout(120)
def test_uwsgi_group_sigterm_never_deadlocks_in_20_shutdowns(
    memcached_factory: MemcachedFactory, tmp_path: Path
) -> None:
    """SIGTERM to every process (systemd's default KillMode) reaches each worker
    twice (directly and as the master's SIGINT); a signal that lands on a Go
    thread runs uWSGI's exit() there, which deadlocks in PyGILState_Ensure.
    The engine is loaded with signals blocked, so Go threads never take them."""
    uwsgi_binary()
    mc = memcached_factory()
    times = run_uwsgi_cycles(20, 4, mc.address, tmp_path, "app:application")
    hung = [i for i, t in enumerate(times) if t is None]
    assert not hung, f"{len(hung)} of 20 shutdowns hung (cycles {hung}); stop times {times}"
    assert max(t for t in times if t is not None) < STOP_TIMEOUT


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_uwsgi_shutdown_deadlocks_when_the_engine_loads_without_blocking_signals(
    memcached_factory: MemcachedFactory, tmp_path: Path
) -> None:
    """Negative control for the test above: with the signal mask removed from
    the engine's load (prefork_apps/unmasked.py), shutdowns do hang (9 of 12
    measured), so the 20-shutdown test can see the deadlock it rules out."""
    uwsgi_binary()
    mc = memcached_factory()
    times = run_uwsgi_cycles(8, 4, mc.address, tmp_path, "unmasked:application")
    assert any(t is None for t in times), f"no shutdown hung without the signal mask: {times}"


# -- objects made in the parent, used in a child ---------------------------------


STALE_OBJECTS = r"""
import json, os, signal, sys
import omcache, forkcheck
from omcache import _engine

server = sys.argv[1]
run = sys.argv[2]
# Made and used in the parent: the engine is loaded, connections are open.
plain = omcache.Client([server], connect_timeout=2.0, io_timeout=2.0)
pymc = omcache.memcache.Client([server])
om = omcache.OMcache([server])
plain.set(f"{run}-parent", b"p")
pymc.set(f"{run}-pymc", {"parent": 1})
om.set(f"{run}-om", b"o")
parent_core = _engine.core()

def work(tag):
    # Every inherited engine copy is made non-executable before any call.
    assert forkcheck.arm() >= 1
    me = str(os.getpid()).encode()
    assert plain.get(f"{run}-parent") == b"p"
    assert plain.set(f"{run}-{tag}", me) and plain.get(f"{run}-{tag}") == me
    assert plain.get_multi([f"{run}-parent", f"{run}-{tag}"]) == {f"{run}-parent": b"p", f"{run}-{tag}": me}
    assert plain.set_multi({f"{run}-{tag}-m{i}": b"%d" % i for i in range(20)}) == []
    assert plain.incr(f"{run}-{tag}-n", 1, initial=5) == 5 and plain.incr(f"{run}-{tag}-n", 2) == 7
    assert plain.delete(f"{run}-{tag}-m0") and plain.get(f"{run}-{tag}-m0") is None
    assert pymc.get(f"{run}-pymc") == {"parent": 1}
    assert pymc.set(f"{run}-{tag}-pymc", [tag]) and pymc.get(f"{run}-{tag}-pymc") == [tag]
    assert om.get(f"{run}-om") == b"o"
    assert _engine.core() is not parent_core

def fork(fn):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException:
            import traceback; traceback.print_exc()
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    return pid

def child(i):
    work(f"child{i}")
    if i == 0:  # a grandchild: its parent's engine is the child's fresh copy
        _, st = os.waitpid(fork(lambda: work("grandchild")), 0)
        assert st == 0, f"grandchild wait status {st}"

pids = [fork(lambda i=i: child(i)) for i in range(3)]
statuses = [os.waitpid(p, 0)[1] for p in pids]
# The parent's engine and connections still work.
assert plain.get(f"{run}-parent") == b"p"
seen = plain.get_multi([f"{run}-child{i}" for i in range(3)] + [f"{run}-grandchild"])
print(json.dumps({"statuses": statuses, "seen": len(seen)}))
"""


@pytest.mark.timeout(60)
def test_objects_made_in_the_parent_work_in_children_without_calling_its_engine(
    memcached_factory: MemcachedFactory,
) -> None:
    mc = memcached_factory()
    r = subprocess.run(
        [sys.executable, "-c", STALE_OBJECTS, mc.address, uuid.uuid4().hex[:12]],
        env=child_env(mc.address), capture_output=True, text=True, timeout=45,
    )
    assert r.returncode == 0, f"stdout={r.stdout}\nstderr={r.stderr}"
    out = json.loads(r.stdout)
    # A status of 11 (SIGSEGV) would mean a child executed the parent's engine code.
    assert out == {"statuses": [0, 0, 0], "seen": 4}, r.stderr


SIGPIPE_IN_CHILD = r"""
import os, sys
import omcache, forkcheck

c = omcache.Client([sys.argv[1]], connect_timeout=2.0, io_timeout=2.0)
c.set("sigpipe", b"x")
pid = os.fork()
if pid == 0:
    forkcheck.arm()
    assert c.get("sigpipe") == b"x"  # loads the child's engine
    r, w = os.pipe()
    os.close(r)
    try:
        os.write(w, b"x")  # raises SIGPIPE in Python code
    except BrokenPipeError:
        print("EPIPE", flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.timeout(60)
def test_sigpipe_in_a_child_is_not_forwarded_to_the_parents_engine(memcached_factory: MemcachedFactory) -> None:
    """A Go runtime forwards signals raised outside Go code (SIGPIPE from a
    Python write to a closed socket, as when a web client goes away) to the
    handler it found at load.  The child's fresh copy must not find the
    parent's copy's handler there."""
    mc = memcached_factory()
    r = subprocess.run(
        [sys.executable, "-c", SIGPIPE_IN_CHILD, mc.address],
        env=child_env(mc.address), capture_output=True, text=True, timeout=45,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["EPIPE", "0"], r.stdout + r.stderr


THREE_GENERATIONS = r"""
import os, sys
import omcache, forkcheck
from omcache import _engine

server = sys.argv[1]
c = omcache.Client([server], connect_timeout=2.0, io_timeout=2.0)
c.set("generations", b"0")

def lowest_free_fd():
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd

def fork(fn):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException:
            import traceback; traceback.print_exc()
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

def grandchild(x):
    forkcheck.arm()
    # Make the child's copy's descriptor number the lowest free one again, as
    # it is whenever the child holds no more descriptors than when it loaded:
    # move away whatever holds it now, fill the free ones below it.
    try:
        os.fstat(x)
    except OSError:
        pass
    else:
        os.dup(x)
        os.close(x)
    while True:
        fd = os.open(os.devnull, os.O_RDONLY)
        if fd >= x:
            os.close(fd)
            break
    assert lowest_free_fd() == x, (lowest_free_fd(), x)
    g = omcache.Client([server], connect_timeout=2.0, io_timeout=2.0)
    assert g.set("generations", b"2") and g.get("generations") == b"2"
    assert _engine.core().__name__ == f"omcache._gopy_pid{os.getpid()}._core"

def child():
    forkcheck.arm()
    own = omcache.Client([server], connect_timeout=2.0, io_timeout=2.0)
    assert own.get("generations") == b"0"
    origin = _engine.core().__file__  # the child's copy, e.g. /proc/self/fd/5
    assert origin.startswith("/proc/self/fd/") or "omcache-engine-" in origin, origin
    own.close()
    if origin.startswith("/proc/self/fd/"):
        status = fork(lambda: grandchild(int(origin.rsplit("/", 1)[1])))
        assert status == 0, f"grandchild exit status {status}"
    print("child", origin, flush=True)

print("status", fork(child))
"""


@pytest.mark.timeout(60)
def test_grandchild_whose_memfd_gets_the_childs_descriptor_number_loads_its_own_copy(
    memcached_factory: MemcachedFactory,
) -> None:
    """glibc's dlopen matches an already-loaded library by the path it was
    opened with before it compares inodes: a grandchild loading its memfd
    copy as /proc/self/fd/N, the very path of the child's copy, was handed
    the child's (dead) copy and hung."""
    mc = memcached_factory()
    r = subprocess.run(
        [sys.executable, "-c", THREE_GENERATIONS, mc.address],
        env=child_env(mc.address), capture_output=True, text=True, timeout=45,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "status 0", r.stdout + r.stderr
    assert r.stdout.splitlines()[0].startswith("child /proc/self/fd/"), r.stdout


TRIPWIRE_CONTROL = r"""
import os, sys
import omcache, forkcheck
from omcache import _engine

c = omcache.Client([sys.argv[1]], connect_timeout=2.0, io_timeout=2.0)
c.set("tripwire-control", b"x")
parent_core = _engine.core()
pid = os.fork()
if pid == 0:
    forkcheck.arm()
    assert c.get("tripwire-control") == b"x"  # the child's own engine: fine
    print("child ok", flush=True)
    parent_core.bind_ErrorDetail(0)  # the parent's engine: must crash here
    os._exit(0)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.timeout(60)
def test_tripwire_kills_a_child_that_calls_the_parents_engine(memcached_factory: MemcachedFactory) -> None:
    """Control for the tests above: the tripwire does catch a direct call."""
    mc = memcached_factory()
    r = subprocess.run(
        [sys.executable, "-c", TRIPWIRE_CONTROL, mc.address],
        env=child_env(mc.address), capture_output=True, text=True, timeout=45,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["child", "ok", str(-signal.SIGSEGV)], r.stdout + r.stderr

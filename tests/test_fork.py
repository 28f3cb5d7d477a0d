"""fork(): children of a process that imported (or used) omcache get a working engine.

Each scenario runs in a fresh interpreter under a timeout, so a hang (the
failure mode of a Go runtime inherited through fork) fails the test instead of
blocking the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from omcache.testing import MemcachedProcess

CHILD_WORK = """
def child_work(addr, tag):
    import os, omcache
    c = omcache.Client([addr])
    for i in range(200):
        k = f"{tag}-{os.getpid()}-{i}"
        assert c.set(k, (k * 3).encode())
        assert c.get(k) == (k * 3).encode(), k
    return 0

def fork_children(n, fn):
    import os
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = fn(i)
            except BaseException as e:
                import traceback; traceback.print_exc()
            finally:
                os._exit(code)
        pids.append(pid)
    bad = []
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            bad.append(pid)
    return bad
"""


def run(code: str, timeout: float = 60) -> str:
    src = CHILD_WORK + textwrap.dedent(code)
    r = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"stdout={r.stdout}\nstderr={r.stderr}"
    return r.stdout


def test_import_then_fork_children_work(memcached: MemcachedProcess) -> None:
    out = run(
        f"""
        import omcache
        bad = fork_children(4, lambda i: child_work({memcached.address!r}, "imp"))
        assert not bad, bad
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_use_then_fork_children_and_grandchild_work(memcached: MemcachedProcess) -> None:
    out = run(
        f"""
        import os, omcache
        parent = omcache.Client([{memcached.address!r}])
        assert parent.set("fork-parent", b"p")

        def child(i):
            # the client object made before fork keeps working (it reconnects)
            assert parent.get("fork-parent") == b"p"
            assert parent.set(f"from-child-{{i}}", b"c")
            child_work({memcached.address!r}, "use")
            if i == 0:
                bad = fork_children(1, lambda j: child_work({memcached.address!r}, "grand"))
                assert not bad
            return 0

        bad = fork_children(4, child)
        assert not bad, bad
        # the parent's engine is untouched by its children
        assert parent.get("fork-parent") == b"p"
        assert all(parent.get(f"from-child-{{i}}") == b"c" for i in range(4))
        print("ok")
        """
    )
    assert out.strip() == "ok"


@pytest.mark.parametrize("env", [{"OMCACHE_NO_MEMFD": "1"}], ids=["tempfile-fallback"])
def test_fresh_copy_without_memfd(memcached: MemcachedProcess, env: dict[str, str]) -> None:
    import os

    full_env = dict(os.environ, **env)
    src = CHILD_WORK + textwrap.dedent(
        f"""
        import omcache
        omcache.Client([{memcached.address!r}]).set("x", b"y")
        bad = fork_children(2, lambda i: child_work({memcached.address!r}, "nomemfd"))
        assert not bad, bad
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=60, env=full_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_child_closes_sockets_inherited_from_parent_engine(memcached: MemcachedProcess, protocol: str) -> None:
    # A binary client keeps a text connection of its own for get_multi.
    parent_conns = 2 if protocol == "binary" else 1
    out = run(
        f"""
        import os, socket, stat, omcache
        c = omcache.Client([{memcached.address!r}], protocol={protocol!r})
        assert c.set("fd-check", b"x")
        # The parent's connections: the client's, and a binary client's text
        # one for get_multi.
        assert c.get_multi(["fd-check", "fd-none"]) == {{"fd-check": b"x"}}

        def socket_fds():
            # (fd, inode): a closed socket's number may be reused by the new one
            out = set()
            for name in os.listdir("/proc/self/fd"):
                try:
                    st = os.fstat(int(name))
                    if stat.S_ISSOCK(st.st_mode):
                        out.add((int(name), st.st_ino))
                except OSError:
                    pass
            return out

        mine = socket.socketpair()  # the child's own sockets must survive
        before = socket_fds()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                assert c.get("fd-check") == b"x"  # loads a fresh engine, reconnects
                after = socket_fds()
                inherited = before - after
                fds_after = {{fd for fd, _ in after}}
                assert mine[0].fileno() in fds_after and mine[1].fileno() in fds_after
                # the parent engine's connections were closed
                assert len(inherited) >= {parent_conns}, (before, after)
                assert c.get_multi(["fd-check", "fd-none"]) == {{"fd-check": b"x"}}
                os.write(w, b"ok")
                code = 0
            except BaseException:
                import traceback; traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert os.read(r, 2) == b"ok"
        assert c.get("fd-check") == b"x"  # the parent's connections still work
        assert c.get_multi(["fd-check", "fd-none"]) == {{"fd-check": b"x"}}
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_threads_first_calls_after_fork_open_one_engine_client(memcached: MemcachedProcess) -> None:
    out = run(
        f"""
        import os, threading, omcache
        from omcache import _engine
        c = omcache.Client([{memcached.address!r}])
        c.set("k", b"v")
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                barrier = threading.Barrier(8)
                def first_call():
                    barrier.wait()
                    assert c.get("k") == b"v"
                ts = [threading.Thread(target=first_call) for _ in range(8)]
                [t.start() for t in ts]
                [t.join() for t in ts]
                assert _engine.core().bind_ClientCount() == 1, _engine.core().bind_ClientCount()
                code = 0
            except BaseException:
                import traceback; traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        print("ok")
        """
    )
    assert out.strip() == "ok"

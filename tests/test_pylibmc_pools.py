"""Pools, clones, threads and forks with omcache_pylibmc, and the
``pylibmc.test``/``autoconf`` helpers."""

from __future__ import annotations

import os
import queue
import socket
import threading
from typing import Any, Dict, List

import pytest

import omcache_pylibmc as pylibmc
from omcache.testing import MemcachedProcess, free_port
from omcache_pylibmc import autoconf
from omcache_pylibmc.test import NotAliveError, is_alive, make_test_client


def test_client_pool_lends_distinct_clones(server: MemcachedProcess) -> None:
    mc = pylibmc.Client([server.address], behaviors={"ketama": True})
    pool = pylibmc.ClientPool(mc, 2)
    assert pool.qsize() == 2
    with pool.reserve() as a, pool.reserve() as b:
        assert a is not b and a is not mc
        assert a.behaviors["distribution"] == "consistent ketama"
        assert a.set("pooled", 1) and b.get("pooled") == 1
        with pytest.raises(queue.Empty):
            with pool.reserve():
                pass
    assert pool.qsize() == 2
    empty = pylibmc.ClientPool()
    empty.fill(mc, 1)
    with empty.reserve(block=True) as c:
        assert c.get("pooled") == 1


def test_client_pool_blocking_reserve_waits_for_a_return(server: MemcachedProcess) -> None:
    pool = pylibmc.ClientPool(pylibmc.Client([server.address]), 1)
    got: List[Any] = []
    with pool.reserve() as held:
        t = threading.Thread(target=lambda: got.append(pool.reserve(block=True).__enter__()))
        t.start()
        t.join(0.2)
        assert t.is_alive() and not got
    t.join(5)
    assert got == [held]


def test_thread_mapped_pool_gives_each_thread_its_client(server: MemcachedProcess) -> None:
    pool = pylibmc.ThreadMappedPool(pylibmc.Client([server.address]))
    seen: Dict[int, Any] = {}
    errors: List[BaseException] = []

    def work(i: int) -> None:
        try:
            with pool.reserve() as mc:
                mc.set(f"t{i}", i)
                with pool.reserve() as again:
                    assert again is not mc  # the first one is out
                seen[i] = mc
            with pool.reserve() as mc2:
                assert mc2 is seen[i]
                assert mc2.get(f"t{i}") == i
            assert pool.relinquish() is seen[i]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert len({id(c) for c in seen.values()}) == 8
    assert pool == {}


def test_one_client_shared_by_many_threads(server: MemcachedProcess) -> None:
    """Unlike pylibmc's, one client may be used by several threads at once."""
    mc = pylibmc.Client([server.address], binary=True)
    errors: List[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(200):
                k = f"s{i}:{j}"
                assert mc.set(k, [i, j])
                assert mc.get(k) == [i, j]
            assert mc.get_multi([f"s{i}:{j}" for j in range(50)]) == {f"s{i}:{j}": [i, j] for j in range(50)}
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


def test_disconnect_all_keeps_the_client_usable(server: MemcachedProcess) -> None:
    mc = pylibmc.Client([server.address])
    mc.set("d", 1)
    for _ in range(3):
        assert mc.disconnect_all() is None
        assert mc.get("d") == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_client_created_before_fork_works_in_the_child(server: MemcachedProcess) -> None:
    mc = pylibmc.Client([server.address])
    mc.set("fork", "parent")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            assert mc.get("fork") == "parent"
            assert mc.set("fork", "child")
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert mc.get("fork") == "child"


def test_make_test_client_honours_the_environment(server: MemcachedProcess) -> None:
    env = {"MEMCACHED_HOST": server.host, "MEMCACHED_PORT": str(server.port)}
    mc = make_test_client(env=env, binary=True)
    assert isinstance(mc, pylibmc.Client) and mc.binary is True
    assert is_alive((pylibmc.server_type_tcp, server.host, server.port))[0]
    dead = (pylibmc.server_type_tcp, "127.0.0.1", free_port())
    assert is_alive(dead) == (False, None)
    with pytest.raises(NotAliveError, match="not alive"):
        make_test_client(env={"MEMCACHED_PORT": str(dead[2])})


def test_autoconf_from_the_published_key(server: MemcachedProcess) -> None:
    mc = pylibmc.Client([server.address])
    mc.set("AmazonElastiCache:cluster", f"12\nlocalhost|127.0.0.1|{server.port}\n".encode())
    auto = autoconf.elasticache(address=server.address)
    assert auto.addresses == [f"127.0.0.1:{server.port}"]
    mc.delete("AmazonElastiCache:cluster")
    with pytest.raises(autoconf.NoAutoconfFound):
        autoconf.elasticache(address=server.address)


def test_autoconf_from_config_get() -> None:
    """An ElastiCache configuration endpoint answers ``config get cluster``."""
    body = b"7\nhost-a|10.0.0.1|11211 host-b||11212\n"
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    port = lst.getsockname()[1]

    def serve() -> None:
        conn, _ = lst.accept()
        with conn:
            assert conn.recv(100) == b"config get cluster\r\n"
            conn.sendall(b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(body), body))

    t = threading.Thread(target=serve)
    t.start()
    try:
        auto = autoconf.elasticache(address=f"127.0.0.1:{port}")
    finally:
        t.join(5)
        lst.close()
    assert auto.addresses == ["10.0.0.1:11211", "host-b:11212"]


def test_interactive_shell(server: MemcachedProcess) -> None:
    """``python -m omcache_pylibmc`` asks for servers, then gives a console with ``mc``."""
    import subprocess
    import sys

    script = f"{server.address}\n\nmc.set('shell', 41)\nprint('got', mc.incr('shell'), pylibmc.__name__)\n"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-m", "omcache_pylibmc", "--binary"], input=script,
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "got 42 omcache_pylibmc" in r.stdout
    assert pylibmc.Client([server.address]).get("shell") == 42

"""The deliberate differences between omcache_pylibmc and pylibmc 1.6.3
(docs/pylibmc.md, "Deliberate differences"), and failure handling.

Where pylibmc crashes, hangs or answers wrongly, omcache_pylibmc raises a
clear exception or answers right; each test states which.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

import omcache
import omcache_pylibmc as pylibmc
from omcache.testing import MemcachedProcess, free_port

from references import in_ci


@pytest.fixture
def dead() -> str:
    return f"127.0.0.1:{free_port()}"


def _have_real_pylibmc() -> bool:
    r = subprocess.run([sys.executable, "-c", "import pylibmc"], capture_output=True, timeout=60)
    return r.returncode == 0


# -- keys -----------------------------------------------------------------------

_SPACE_KEY_SEQUENCE = """
import sys
lib = __import__(sys.argv[1])
mc = lib.Client([sys.argv[2]])
k = "hello world"
for op in ("set", "get", "add", "set", "delete", "touch"):
    try:
        r = getattr(mc, op)(k, *((1,) if op in ("set", "add", "touch") else ()))
        print(op, "->", r, flush=True)
    except lib.Error as e:
        print(op, "raises", type(e).__name__, flush=True)
"""


def test_text_mode_space_key_raises_where_pylibmc_aborts(server: MemcachedProcess) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    ours = subprocess.run(
        [sys.executable, "-c", _SPACE_KEY_SEQUENCE, "omcache_pylibmc", server.address],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.split("\n")[:6] == [
        "set raises ClientError", "get -> None", "add raises ClientError",
        "set raises ClientError", "delete raises ClientError", "touch raises ClientError",
    ]
    if not _have_real_pylibmc():
        if in_ci():
            pytest.fail("the real pylibmc (a test reference) is not installed")
        return
    theirs = subprocess.run(
        [sys.executable, "-c", _SPACE_KEY_SEQUENCE, "pylibmc", server.address],
        capture_output=True, text=True, timeout=60, env=env,
    )
    # libmemcached's assertion in memcached_send_ascii kills the process on
    # the second write of the key.
    assert theirs.returncode == -signal.SIGABRT, (theirs.returncode, theirs.stdout, theirs.stderr)
    assert theirs.stdout.split("\n")[:2] == ["set raises ClientError", "get -> None"]
    assert "Assertion" in theirs.stderr


@pytest.mark.parametrize("key", ["a\nb", "a\r\nb", "\x00", "\x01x", "\x7f", "tab\there"])
def test_text_mode_control_character_keys_raise_clearly(server: MemcachedProcess, key: str) -> None:
    mc = pylibmc.Client([server.address])
    for call in (lambda: mc.set(key, 1), lambda: mc.add(key, 1), lambda: mc.replace(key, 1),
                 lambda: mc.append(key, "x"), lambda: mc.delete(key), lambda: mc.touch(key, 5),
                 lambda: mc.incr(key), lambda: mc.set_multi({key: 1}), lambda: mc.delete_multi([key])):
        with pytest.raises(pylibmc.ClientError, match="text protocol"):
            call()
    assert mc.get(key) is None
    assert mc.get(key, 7) == 7
    assert mc.get_multi([key, "other"]) == {}
    mc.behaviors = {"cas": True}
    assert mc.gets(key) == (None, None)
    # The same key is an ordinary key in binary mode.
    b = pylibmc.Client([server.address], binary=True)
    assert b.set(key, "v") and b.get(key) == "v" and b.get_multi([key]) == {key: "v"}


def test_text_mode_keys_never_reach_the_server_malformed(server: MemcachedProcess) -> None:
    mc = pylibmc.Client([server.address])
    before = omcache.Client([server.address]).stats()[server.address]
    for _ in range(3):
        with pytest.raises(pylibmc.ClientError):
            mc.set("a b", 1)
    after = omcache.Client([server.address]).stats()[server.address]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["cmd_set"] == before["cmd_set"]
    assert mc.set("fine", 1) and mc.get("fine") == 1


# -- configuration ----------------------------------------------------------------


def test_sasl_arguments_checked_as_pylibmc(server: MemcachedProcess) -> None:
    # SASL itself is tested against memcached -S in test_tls_auth.py.
    for kw, msg in (({"username": "u"}, "both"), ({"password": "p"}, "both"), ({"username": "u", "password": "p"}, "binary")):
        with pytest.raises(TypeError, match=msg):
            pylibmc.Client([server.address], **kw)  # type: ignore[arg-type]
    assert pylibmc.support_sasl is True


def test_udp_is_refused_clearly() -> None:
    with pytest.raises(pylibmc.NotSupportedError, match="UDP"):
        pylibmc.Client(["udp:127.0.0.1:11211"])


@pytest.mark.parametrize(
    "behaviors, match",
    [
        ({"distribution": "random"}, "random"),
        ({"distribution": "virtual bucket"}, "virtual bucket"),
        ({"num_replicas": 1}, "num_replicas"),
        ({"ketama_hash": 10}, "custom hash"),
    ],
)
def test_unsupported_behaviors_are_refused(behaviors: Any, match: str) -> None:
    mc = pylibmc.Client(["127.0.0.1:9"])
    with pytest.raises(pylibmc.NotSupportedError, match=match):
        mc.behaviors = behaviors
    with pytest.raises(pylibmc.NotSupportedError, match=match):
        pylibmc.Client(["127.0.0.1:9"], behaviors=behaviors)


def test_servers_as_one_string_are_refused() -> None:
    with pytest.raises(TypeError, match="list of server specs"):
        pylibmc.Client("127.0.0.1:11211")  # type: ignore[arg-type]


def test_namespace(server: MemcachedProcess) -> None:
    mc = pylibmc.Client([server.address], binary=True, behaviors={"namespace": b"ns:"})
    assert mc.set("a", 1) and mc.get("a") == 1 and mc.get_multi(["a", "b"]) == {"a": 1}
    assert omcache.Client([server.address]).get("ns:a") == b"1"
    assert pylibmc.Client([server.address]).get("a") is None
    mc.behaviors = {"namespace": "other:"}
    assert mc.get("a") is None
    with pytest.raises(pylibmc.NotSupportedError, match="_hash_with_prefix_key"):
        pylibmc.Client([server.address, "127.0.0.1:9"], behaviors={"namespace": b"ns:"})
    two = pylibmc.Client([server.address, server.address], behaviors={"namespace": b"ns:", "_hash_with_prefix_key": 1})
    assert two.get("a") == 1


def test_stats_are_the_servers_own(server: MemcachedProcess) -> None:
    mc = pylibmc.Client([server.address])
    with MemcachedProcess() as fresh:
        mc = pylibmc.Client([fresh.address])
        mc.set("s", 1)
        ((label, general),) = mc.get_stats()
        ((_, items),) = mc.get_stats("items")
        ((_, settings),) = mc.get_stats("settings")
        with pytest.raises(pylibmc.Error):
            mc.get_stats("bogus")
    server = fresh
    assert label == f"{server.address} (0)".encode()
    # libmemcached keeps 22 names; the server has many more.
    assert {"pid", "uptime", "version", "curr_items", "get_hits", "threads", "evictions"} <= set(general)
    assert len(general) > 22 and general["curr_items"] == b"1"
    assert items["items:1:number"] == b"1"
    assert settings["maxbytes"] == str(64 * 1024 * 1024).encode()


def test_socket_sizes_read_back_zero(server: MemcachedProcess) -> None:
    mc = pylibmc.Client([server.address])
    assert mc.behaviors["_socket_send_size"] == 0 and mc.behaviors["_socket_recv_size"] == 0
    mc.behaviors = {"_socket_send_size": 4096}
    assert mc.behaviors["_socket_send_size"] == 4096


def test_buffer_requests_does_not_break_writes(server: MemcachedProcess) -> None:
    # pylibmc raises Error 32 (MEMCACHED_BUFFERED) from every write.
    mc = pylibmc.Client([server.address], behaviors={"buffer_requests": 1, "no_block": 1, "tcp_nodelay": 1})
    assert mc.set("b", 1) and mc.get("b") == 1


def test_cas_with_zero_unique_is_a_replace_in_text_mode(server: MemcachedProcess) -> None:
    # pylibmc's text mode breaks the connection (SocketCreateError); its
    # binary mode treats 0 as no condition, as here in both modes.
    for binary in (False, True):
        mc = pylibmc.Client([server.address], binary=binary, behaviors={"cas": True})
        mc.delete("c0")
        with pytest.raises(pylibmc.NotFound):
            mc.cas("c0", 1, 0)
        mc.set("c0", 5)
        assert mc.cas("c0", 7, 0) and mc.get("c0") == 7


def test_get_multi_takes_any_iterable(server: MemcachedProcess) -> None:
    mc = pylibmc.Client([server.address])
    mc.set_multi({"g1": 1, "g2": 2})
    assert mc.get_multi(k for k in ("g1", "g2", "g3")) == {"g1": 1, "g2": 2}
    assert mc.delete_multi(k for k in ("g1", "g2"))


def test_errors_chain_the_engine_exception(dead: str) -> None:
    mc = pylibmc.Client([dead])
    with pytest.raises(pylibmc.ConnectionError) as ei:
        mc.get("k")
    assert isinstance(ei.value.__cause__, omcache.ConnectionError)
    assert "error 3 from memcached_get(k)" in str(ei.value)


# -- failures -----------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_dead_server(dead: str, binary: bool) -> None:
    mc = pylibmc.Client([dead], binary=binary)
    # The first failure is a ConnectionError; then, for retry_timeout (2 s),
    # calls fail fast with ServerDown (the classes are compared with
    # pylibmc's in test_pylibmc_failure_differential.py; the messages are
    # omcache's).
    with pytest.raises(pylibmc.ConnectionError, match="error 3 from memcached_get"):
        mc.get("k")
    for call in (lambda: mc.get("k"), lambda: mc.set("k", 1), lambda: mc.delete("k"),
                 lambda: mc.touch("k", 1), lambda: mc.add("k", 1), lambda: mc.set_multi({"k": 1}),
                 lambda: mc.delete_multi(["k"]), lambda: mc.add_multi({"k": 1})):
        with pytest.raises(pylibmc.ServerDown, match="is down after a failure"):
            call()
    with pytest.raises(pylibmc.ServerDown, match="1 keys failed"):
        mc.incr("k")
    with pytest.raises(pylibmc.Error, match="2 keys failed"):
        mc.incr_multi(["a", "b"])
    with pytest.raises(pylibmc.SomeErrors):
        mc.flush_all()
    with pytest.raises(pylibmc.SomeErrors):
        mc.get_stats()
    # Every server failed: get_multi raises in text mode too.
    with pytest.raises(pylibmc.ServerDown):
        mc.get_multi(["a", "b"])


# The sequences of failures, retries and ejection (refused, killed and
# stalled servers) run on the real pylibmc and on omcache_pylibmc side by
# side in test_pylibmc_failure_differential.py, with the deliberate
# differences listed there.


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_one_dead_server_of_two(server: MemcachedProcess, dead: str, binary: bool) -> None:
    mc = pylibmc.Client([server.address, dead], binary=binary)
    keys = [f"k{i}" for i in range(40)]
    live = [k for k in keys if mc.hash(k) == 0]
    assert live and len(live) < len(keys)
    with pytest.raises(pylibmc.ConnectionError):
        mc.set_multi({k: 1 for k in keys})
    # Unlike pylibmc (which stops at the first failure), every item of the
    # live server was stored before the error was raised.
    single = pylibmc.Client([server.address], binary=binary)
    assert single.get_multi(live) == {k: 1 for k in live}
    if binary:
        with pytest.raises(pylibmc.ServerDown):
            mc.get_multi(keys)
    else:
        assert mc.get_multi(keys) == {k: 1 for k in live}


def test_paused_server_times_out_with_pylibmcs_error(server: MemcachedProcess) -> None:
    # (retry_timeout 0: a timeout is a failure here, not in libmemcached,
    # so the default 2 s back-off would make the next call fail fast.)
    mc = pylibmc.Client([server.address], behaviors={"_poll_timeout": 300, "retry_timeout": 0})
    mc.set("p", 1)
    server.pause()  # returns once the server is stopped
    try:
        t0 = time.monotonic()
        with pytest.raises(pylibmc.Error) as ei:
            mc.get("p")
        elapsed = time.monotonic() - t0
    finally:
        server.resume()
    assert type(ei.value) is pylibmc.Error and "error 31 from memcached_get(p)" in str(ei.value)
    assert isinstance(ei.value.__cause__, omcache.TimeoutError)
    assert 0.25 <= elapsed < 2.0
    time.sleep(0.2)
    assert mc.get("p") == 1


def test_receive_timeout_bounds_a_call_even_when_poll_timeout_is_infinite(server: MemcachedProcess) -> None:
    # libmemcached waits forever with _poll_timeout=-1 and ignores
    # receive_timeout on its non-blocking sockets; omcache honours it.
    mc = pylibmc.Client([server.address], behaviors={"_poll_timeout": -1, "receive_timeout": 200_000})
    mc.set("r", 1)
    server.pause()  # returns once the server is stopped
    try:
        t0 = time.monotonic()
        with pytest.raises(pylibmc.Error):
            mc.get("r")
        elapsed = time.monotonic() - t0
    finally:
        server.resume()
    assert elapsed < 1.5
    assert mc.behaviors["_poll_timeout"] == -1 and mc.behaviors["receive_timeout"] == 200_000

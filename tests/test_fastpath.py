"""omcache._fastpath: the single-key hot path in C over the engine's C table.

The C path must give exactly what the Python path gives (values, misses,
errors, large values, odd key and value types), must not be used in a
process other than the one that opened the engine, and must refuse a table
it does not know.  The Python path stays reachable with OMCACHE_NO_FASTPATH=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import omcache
from omcache import _engine
from omcache import _fastpath as fastpath  # setup.py always builds it
from omcache import client as client_mod
from omcache.testing import MemcachedProcess


def test_constants_match_the_engine_and_the_python_layer() -> None:
    assert fastpath.STATUS_OK == _engine.OK
    assert fastpath.STATUS_MISS == _engine.MISS
    assert fastpath.GET_HEADER_LEN == client_mod._GET_HEADER_LEN
    core = _engine.core()
    assert core.bind_FastPathVersion() == fastpath.VERSION
    assert core.bind_FastPathTable() != 0


def test_a_default_client_uses_the_fast_path(server: MemcachedProcess) -> None:
    c = omcache.Client([server.address])
    try:
        assert c._fe is None  # opened lazily
        c.set("fp-k", b"v")
        assert c._fe is not None
        assert c._fe.get("fp-k") == b"v"
        assert c._fe.get(b"fp-k") == b"v"
        assert c._fe.get("fp-missing") is None
        # Types the fast path leaves to the Python layer.
        assert c._fe.get(bytearray(b"fp-k")) is NotImplemented
        assert c._fe.store(client_mod._OP_SET, "fp-k", bytearray(b"x"), 0, 0, 0) is NotImplemented
        assert c.get(bytearray(b"fp-k")) == b"v"
    finally:
        c.close()
    assert c._fe is None


def test_a_table_of_another_version_is_refused() -> None:
    fake = (0).to_bytes(8, "little") * 4  # version 0, no entry points
    with pytest.raises(ValueError, match="version 0"):
        fastpath.Engine(id(fake) + _engine.BYTES_DATA_OFFSET, 1, os.getpid())
    with pytest.raises(ValueError):
        fastpath.Engine(0, 1, os.getpid())


def test_getpid_without_a_system_call_follows_fork() -> None:
    assert fastpath.getpid() == os.getpid()
    if sys.platform.startswith("linux"):
        assert fastpath.wipe_on_fork()  # Linux >= 4.14
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        os.write(w, json.dumps([fastpath.getpid(), os.getpid()]).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        seen, real = json.loads(f.read())
    os.waitpid(pid, 0)
    assert seen == real == pid
    assert fastpath.getpid() == os.getpid()


def test_an_engine_of_another_process_is_not_used(server: MemcachedProcess) -> None:
    c = omcache.Client([server.address])
    c.set("fp-fork", b"parent")
    fe = fastpath.Engine(_engine.core().bind_FastPathTable(), c._h, os.getpid() + 1)
    assert fe.get("fp-fork") is NotImplemented
    assert fe.store(client_mod._OP_SET, "fp-fork", b"x", 0, 0, 0) is NotImplemented
    assert fe.delta(False, "fp-fork", 1, 0, False, 0) is NotImplemented
    assert c.get("fp-fork") == b"parent"  # untouched
    c.close()


# Every outcome through both paths, compared: the C path is an optimisation,
# never a behaviour change.
_DIFFERENTIAL = """
import json, sys, omcache
addr, prefix = sys.argv[1], sys.argv[2]
c = omcache.Client([addr], max_value_size=4 << 20)
out = []
def run(name, f):
    try:
        r = f()
        if isinstance(r, bytes):
            r = ["bytes", len(r), r[:40].hex()]
        elif isinstance(r, tuple):
            r = [x if not isinstance(x, bytes) else ["bytes", len(x), x[:40].hex()] for x in r]
            r[-1] = "cas" if name.startswith(("get_item", "gets", "gat")) and r[-1] else r[-1]
        out.append([name, r])
    except Exception as e:
        out.append([name, type(e).__name__, str(e)])
k = prefix + "-"
sizes = [0, 1, 10, 16370, 16371, 16372, 16384, 16400, 100000, 1 << 20]
for n in sizes:
    v = bytes(i % 251 for i in range(n))
    run(f"set {n}", lambda: c.set(k + str(n), v, flags=n & 0xFFFF))
    run(f"get {n}", lambda: c.get(k + str(n)))
    run(f"get_item {n}", lambda: c.get_item(k + str(n)))
    run(f"gat {n}", lambda: c.gat(k + str(n), 100))
run("get miss", lambda: c.get(k + "nothing"))
run("get_item miss", lambda: c.get_item(k + "nothing"))
run("set too large", lambda: c.set(k + "big", b"x" * (2 << 20)))
run("get after too large", lambda: c.get(k + "big"))
run("bytes key", lambda: c.set((k + "b").encode(), b"bv"))
run("get bytes key", lambda: c.get((k + "b").encode()))
run("bytearray value", lambda: c.set(k + "ba", bytearray(b"bav")))
run("memoryview key", lambda: c.get(memoryview((k + "b").encode())))
run("unicode key", lambda: c.set(k + "\\u00e9\\u4e2d", b"u"))
run("get unicode key", lambda: c.get(k + "\\u00e9\\u4e2d"))
run("surrogate key", lambda: c.get(k + "\\udcff"))
run("space key", lambda: c.get(k + " x"))
run("long key", lambda: c.get("x" * 251))
run("int key", lambda: c.get(12))
run("add existing", lambda: c.add(k + "10", b"x"))
run("replace missing", lambda: c.replace(k + "nothing", b"x"))
run("append", lambda: c.append(k + "10", b"-tail"))
run("prepend missing", lambda: c.prepend(k + "nothing", b"x"))
run("get appended", lambda: c.get(k + "10"))
run("cas wrong", lambda: c.cas(k + "10", b"x", 1))
run("expire negative", lambda: c.set(k + "e", b"x", expire=-1))
run("flags too big", lambda: c.set(k + "e", b"x", flags=1 << 32))
run("set counter", lambda: c.set(k + "n", b"41"))
run("incr", lambda: c.incr(k + "n"))
run("incr 2**63", lambda: c.incr(k + "n", 1 << 63))
run("incr wraps", lambda: c.incr(k + "n", (1 << 64) - 1))
run("decr", lambda: c.decr(k + "n", 5))
run("decr clamps", lambda: c.decr(k + "n", 1 << 62))
run("incr missing", lambda: c.incr(k + "nothing"))
run("incr initial", lambda: c.incr(k + "init", initial=7))
run("incr non-numeric", lambda: c.incr(k + "10"))
run("incr negative", lambda: c.incr(k + "n", -1))
run("incr bool", lambda: c.incr(k + "n", True))
run("incr bad key", lambda: c.incr(k + " x"))
c.close()
run("get closed", lambda: c.get(k + "10"))
run("set closed", lambda: c.set(k + "10", b"x"))
run("incr closed", lambda: c.incr(k + "n"))
print(json.dumps(out))
"""


@pytest.mark.parametrize("protocol", ["meta", "text", "binary"])
def test_fast_and_python_paths_agree(server: MemcachedProcess, protocol: str) -> None:
    src = _DIFFERENTIAL.replace("omcache.Client([addr]", f"omcache.Client([addr], protocol={protocol!r}")
    results = {}
    for mode in ("fast", "slow"):  # names of one length: messages hold positions
        env = dict(os.environ)
        env.pop("OMCACHE_NO_FASTPATH", None)
        if mode == "slow":
            env["OMCACHE_NO_FASTPATH"] = "1"
        r = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(src), server.address, f"fp-{protocol}-{mode}"],
            capture_output=True, text=True, timeout=60, env=env,
        )
        assert r.returncode == 0, r.stderr
        results[mode] = [
            [step[0]] + [str(x).replace(f"fp-{protocol}-{mode}", "P") for x in step[1:]] for step in json.loads(r.stdout)
        ]
    assert results["fast"] == results["slow"]
    outcomes = dict((step[0], step[1:]) for step in results["fast"])
    assert outcomes["get miss"] == ["None"]
    assert outcomes["incr"] == ["42"]
    assert outcomes["incr wraps"] == [str((42 + (1 << 63) + (1 << 64) - 1) % (1 << 64))]
    assert outcomes["get 100000"][0].startswith("['bytes', 100000")
    assert outcomes["incr non-numeric"][0] == "DeltaBadValueError"
    assert outcomes["set too large"][0] == "TooLargeValueError"
    assert outcomes["get closed"][0] == "ClientClosedError"


def test_the_python_path_is_used_when_disabled(server: MemcachedProcess) -> None:
    code = (
        "import omcache, sys; c = omcache.Client([sys.argv[1]]); c.set('fp-off', b'1'); "
        "assert c.get('fp-off') == b'1'; print(c._fe is None)"
    )
    env = dict(os.environ, OMCACHE_NO_FASTPATH="1")
    r = subprocess.run([sys.executable, "-c", code, server.address], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


# The same comparison for omcache_pylibmc, whose get, set, incr and decr
# take the C path for the keys and values it accepts.
_PYLIBMC_DIFFERENTIAL = """
import json, sys, omcache_pylibmc as pylibmc
addr, prefix, binary, verify = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
behaviors = {"verify_keys": 1} if verify else {}
c = pylibmc.Client([addr], binary=binary, behaviors=behaviors)
out = []
def run(name, f):
    try:
        r = f()
        out.append([name, repr(r)[:80]])
    except Exception as e:
        out.append([name, type(e).__name__, str(e)])
k = prefix + "-"
for n in (0, 1, 16370, 16400, 100000):
    run(f"set {n}", lambda: c.set(k + str(n), bytes(n)))
    run(f"get {n}", lambda: c.get(k + str(n)))
run("set str", lambda: c.set(k + "s", "text"))
run("get str", lambda: c.get(k + "s"))
run("set int", lambda: c.set(k + "i", 41))
run("incr", lambda: c.incr(k + "i"))
run("decr", lambda: c.decr(k + "i", 50))
run("incr missing", lambda: c.incr(k + "missing"))
run("incr text", lambda: c.incr(k + "s"))
run("incr 2**31", lambda: c.incr(k + "i", 1 << 31))
run("get missing", lambda: c.get(k + "missing", "dflt"))
run("get space", lambda: c.get(k + " x"))
run("set space", lambda: c.set(k + " x", b"v"))
run("get high byte", lambda: c.get((k + "\\u00e9")))
run("set high byte", lambda: c.set((k + "\\u00e9"), b"v"))
run("get empty", lambda: c.get(""))
run("set empty", lambda: c.set("", b"v"))
run("get long", lambda: c.get("x" * 251))
run("set long", lambda: c.set("x" * 251, b"v"))
run("set too large", lambda: c.set(k + "big", bytes(2 << 20)))
run("set time", lambda: c.set(k + "t", b"v", time=(1 << 31) + 5))
run("get time", lambda: c.get(k + "t"))
run("set float time", lambda: c.set(k + "t", b"v", time=1.5))
run("set bytes key", lambda: c.set((k + "b").encode(), b"bv"))
run("get bytes key", lambda: c.get((k + "b").encode()))
run("set compress level", lambda: c.set(k + "c", b"v", compress_level=10))
print(json.dumps(out))
"""


@pytest.mark.parametrize("binary,verify", [(False, False), (False, True), (True, False)])
def test_pylibmc_fast_and_python_paths_agree(server: MemcachedProcess, binary: bool, verify: bool) -> None:
    results = {}
    for mode in ("fast", "slow"):
        env = dict(os.environ)
        env.pop("OMCACHE_NO_FASTPATH", None)
        if mode == "slow":
            env["OMCACHE_NO_FASTPATH"] = "1"
        r = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_PYLIBMC_DIFFERENTIAL), server.address, f"pl-{int(binary)}{int(verify)}-{mode}",
             str(int(binary)), str(int(verify))],
            capture_output=True, text=True, timeout=60, env=env,
        )
        assert r.returncode == 0, r.stderr
        results[mode] = [[str(x).replace(f"pl-{int(binary)}{int(verify)}-{mode}", "P") for x in step] for step in json.loads(r.stdout)]
    assert results["fast"] == results["slow"]
    outcomes = {step[0]: step[1:] for step in results["fast"]}
    assert outcomes["incr"] == ["42"]
    assert outcomes["incr missing"][0] == "NotFound"
    assert outcomes["get missing"] == ["'dflt'"]


# omcache.aio starts and collects through the same table: the results are
# the Python path's, and results bigger than the C buffer take the token way.
_AIO_DIFFERENTIAL = """
import asyncio, json, sys, omcache.aio
addr, prefix = sys.argv[1], sys.argv[2]
out = []
used = []
async def main():
    async with omcache.aio.Client([addr]) as mc:
        k = prefix + "-"
        for n in (0, 10, 16370, 16400, 100000):
            v = bytes(i % 251 for i in range(n))
            out.append(["set", n, await mc.set(k + str(n), v, flags=n & 0xFFFF)])
            it = await mc.get_item(k + str(n))
            out.append(["get_item", n, len(it.value), it.value == v, it.flags])
        out.append(["miss", await mc.get(k + "nothing")])
        out.append(["add existing", await mc.add(k + "10", b"x")])
        out.append(["incr missing", await mc.incr(k + "nothing")])
        out.append(["delete", await mc.delete(k + "10"), await mc.delete(k + "10")])
        try:
            await mc.get(k + " space")
        except Exception as e:
            out.append([type(e).__name__])
        vals = await asyncio.gather(*(mc.get(k + str(n)) for n in (0, 16370, 16400, 100000) * 3))
        out.append(["gather", [len(v) for v in vals]])
        used.append(omcache.aio._queue_for(asyncio.get_running_loop()).fe is not None)
asyncio.run(main())
print(json.dumps([out, used[0]]))
"""


def test_aio_through_the_c_path_gives_what_the_python_path_gives(server: MemcachedProcess) -> None:
    def run(env_extra: dict, prefix: str) -> list:
        env = {k: v for k, v in os.environ.items() if k != "OMCACHE_NO_FASTPATH"}
        env.update(env_extra)
        p = subprocess.run([sys.executable, "-c", _AIO_DIFFERENTIAL, server.address, prefix],
                           capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    fast, fast_used = run({}, "aio-c")
    slow, slow_used = run({"OMCACHE_NO_FASTPATH": "1"}, "aio-py")
    assert (fast_used, slow_used) == (True, False)
    assert fast == slow
    assert ["gather", [0, 16370, 16400, 100000] * 3] in fast


def test_aio_collect_larger_than_the_c_buffer_takes_the_token(server: MemcachedProcess) -> None:
    import asyncio

    import omcache.aio as aio

    seen: list = []

    class Recording:
        def __init__(self, fe: object) -> None:
            self.fe = fe

        def async_start(self, *args: object) -> object:
            return self.fe.async_start(*args)  # type: ignore[attr-defined]

        def async_collect(self, q: int) -> object:
            r = self.fe.async_collect(q)  # type: ignore[attr-defined]
            seen.append(type(r).__name__)
            return r

    values = {f"fp-big{i}": bytes([65 + i]) * 6000 for i in range(8)}

    async def main() -> None:
        async with aio.Client([server.address]) as mc:
            for k, v in values.items():
                assert await mc.set(k, v)
            q = aio._queue_for(asyncio.get_running_loop())
            assert q.fe is not None  # the C path was taken
            q.fe = mc._sync._fe = Recording(q.fe)
            tasks = [asyncio.ensure_future(mc.get(k)) for k in values]
            await asyncio.sleep(0)  # every request submitted
            time.sleep(0.3)  # the loop blocked: the answers wait to be collected together
            assert await asyncio.gather(*tasks) == list(values.values())

    asyncio.run(main())
    assert "int" in seen, seen  # 8 x 6000 bytes do not fit 16 KiB: the token way

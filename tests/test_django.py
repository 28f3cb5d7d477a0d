"""Django's cache API on omcache: PyLibMCCache on omcache_pylibmc, and OMcacheCache.

Django's own backend (django.core.cache.backends.memcached.PyLibMCCache)
does ``import pylibmc``; here that import gives omcache_pylibmc, installed
as ``pylibmc`` for the duration of each test only, against a real memcached.
The same tests run on omcache's own backend,
``omcache.contrib.django.OMcacheCache``, in each protocol; more tests check
its stampede-safe get_or_set (threads and processes) and that it shares a
cache with PyLibMCCache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest

import omcache
import omcache_pylibmc
from omcache.testing import MemcachedProcess

from references import References, require_module  # noqa: E402

django = require_module("django", "pip install django (a test extra)")

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(USE_TZ=True, INSTALLED_APPS=[], CACHES={})
    django.setup()

from django.core.cache import caches  # noqa: E402
from django.core.cache.backends.memcached import PyLibMCCache  # noqa: E402
from django.test.utils import override_settings  # noqa: E402


_BACKENDS = {
    "pylibmc-text": ("django.core.cache.backends.memcached.PyLibMCCache", {}),
    "pylibmc-binary": (
        "django.core.cache.backends.memcached.PyLibMCCache",
        {"binary": True, "behaviors": {"ketama": True, "tcp_nodelay": True}},
    ),
    "omcache-meta": ("omcache.contrib.django.OMcacheCache", {}),
    "omcache-text": ("omcache.contrib.django.OMcacheCache", {"protocol": "text"}),
    "omcache-binary": ("omcache.contrib.django.OMcacheCache", {"protocol": "binary"}),
}


@pytest.fixture(params=list(_BACKENDS))
def cache(request: pytest.FixtureRequest, server: MemcachedProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Django's PyLibMCCache on omcache_pylibmc (text, binary), and omcache's
    own OMcacheCache (per protocol): every test below runs on each."""
    from omcache.contrib.django import OMcacheCache

    monkeypatch.setitem(sys.modules, "pylibmc", omcache_pylibmc)
    omcache.Client([server.address]).flush_all()
    backend, options = _BACKENDS[request.param]
    conf = {
        "default": {
            "BACKEND": backend,
            "LOCATION": f"{server.address};{server.address}",
            "OPTIONS": options,
            "KEY_PREFIX": "site",
        }
    }
    with override_settings(CACHES=conf):
        c = caches["default"]
        if request.param.startswith("pylibmc"):
            assert isinstance(c, PyLibMCCache)
            assert isinstance(c._cache, omcache_pylibmc.Client)
        else:
            assert isinstance(c, OMcacheCache)
            assert isinstance(c._cache, omcache.SerdeClient)
        yield c
        c.close()


def test_get_set_add_delete(cache: Any) -> None:
    assert cache.get("k") is None
    assert cache.get("k", "dflt") == "dflt"
    cache.set("k", {"a": [1, 2]})
    assert cache.get("k") == {"a": [1, 2]}
    assert cache.add("k", "other") is False
    assert cache.add("new", "v") is True
    assert cache.get("new") == "v"
    assert cache.has_key("new")
    assert cache.delete("new") is True
    assert cache.delete("new") is False
    assert cache.get_or_set("gos", lambda: 42) == 42
    assert cache.get("gos") == 42


def test_values_keep_their_types(cache: Any) -> None:
    for v in (b"raw", "text \u00e9", 7, 2**80, True, None, 1.5, ["x"]):
        cache.set("t", v)
        assert cache.get("t", "miss") == v


def test_incr_decr(cache: Any) -> None:
    cache.set("n", 10)
    assert cache.incr("n") == 11
    assert cache.incr("n", 5) == 16
    assert cache.decr("n", 6) == 10
    assert cache.incr("n", -3) == 7
    with pytest.raises(ValueError, match="not found"):
        cache.incr("missing")
    with pytest.raises(ValueError, match="not found"):
        cache.decr("missing")


def test_many(cache: Any) -> None:
    assert cache.set_many({"a": 1, "b": "two", "c": [3]}) == []
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": "two", "c": [3]}
    cache.delete_many(["a", "b"])
    assert cache.get_many(["a", "b", "c"]) == {"c": [3]}


def test_timeouts_and_touch(cache: Any) -> None:
    cache.set("gone", 1, timeout=0)  # Django sends -1: "expire at once"...
    # ...which the text protocol carries as -1; pylibmc's binary mode sends
    # 0xffffffff, a date in 2106 (kept as in pylibmc: test_pylibmc_differential).
    # OMcacheCache stores nothing (and drops an old value).
    pylibmc_binary = isinstance(cache, PyLibMCCache) and cache._options.get("binary")
    assert cache.get("gone") == (1 if pylibmc_binary else None)
    if not pylibmc_binary:
        assert cache.add("gone0", 1, timeout=0) is True and cache.get("gone0") is None
        assert cache.get_or_set("gone1", 5, timeout=0) == 5 and cache.get("gone1") is None
    cache.set("forever", 1, timeout=None)
    assert cache.get("forever") == 1
    cache.set("long", 1, timeout=60 * 60 * 24 * 60)  # > 30 days: absolute time
    assert cache.get("long") == 1
    cache.set("short", 1, timeout=1)
    assert cache.touch("short", 100) is True
    time.sleep(1.5)
    assert cache.get("short") == 1
    assert cache.touch("missing", 10) is False
    assert cache.touch("short", 0)  # timeout 0 deletes
    assert cache.get("short") is None


def test_versions_and_clear(cache: Any) -> None:
    cache.set("v", "one", version=1)
    cache.set("v", "two", version=2)
    assert cache.get("v", version=1) == "one" and cache.get("v", version=2) == "two"
    assert cache.incr_version("v", version=2) == 3
    assert cache.get("v", version=3) == "two"
    cache.clear()
    assert cache.get("v", version=1) is None


def test_invalid_keys_are_refused_by_django(cache: Any) -> None:
    from django.core.cache.backends.base import InvalidCacheKey

    with pytest.raises(InvalidCacheKey):
        cache.set("a key with spaces", 1)
    with pytest.raises(InvalidCacheKey):
        cache.get("k" * 300)


@pytest.fixture
def omcache_cache(server: MemcachedProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """OMcacheCache (meta) beside PyLibMCCache (omcache_pylibmc) on the same server."""
    monkeypatch.setitem(sys.modules, "pylibmc", omcache_pylibmc)
    omcache.Client([server.address]).flush_all()
    conf = {
        "default": {"BACKEND": "omcache.contrib.django.OMcacheCache", "LOCATION": server.address,
                    "OPTIONS": {"lock_ttl": 10}},
        "pylibmc": {"BACKEND": "django.core.cache.backends.memcached.PyLibMCCache", "LOCATION": server.address},
    }
    with override_settings(CACHES=conf):
        yield caches["default"]


def test_omcache_backend_get_or_set_runs_the_loader_once(omcache_cache: Any) -> None:
    runs: List[int] = []
    lock = threading.Lock()

    def load() -> Dict[str, int]:
        with lock:
            runs.append(1)
        time.sleep(0.3)
        return {"answer": 42}

    got: List[Any] = []
    threads = [threading.Thread(target=lambda: got.append(omcache_cache.get_or_set("hot", load, 60))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1
    assert got == [{"answer": 42}] * 8
    assert omcache_cache.get("hot") == {"answer": 42}
    # A loader that raises: its caller sees the error, the lease is released.
    with pytest.raises(ZeroDivisionError):
        omcache_cache.get_or_set("cold", lambda: 1 / 0, 60)
    assert omcache_cache.get_or_set("cold", "plain default", 60, wait_timeout=0) == "plain default"
    # invalidate: get_or_set serves the stale value while one caller refreshes.
    assert omcache_cache.invalidate("hot", 30) is True
    assert omcache_cache.get_or_set("hot", lambda: {"answer": 43}, 60) == {"answer": 43}
    assert omcache_cache.get("hot") == {"answer": 43}


def test_omcache_backend_async_get_or_set(omcache_cache: Any) -> None:
    import asyncio

    runs: List[int] = []

    def load() -> str:
        runs.append(1)
        time.sleep(0.2)
        return "async value"

    async def main() -> List[Any]:
        return list(await asyncio.gather(*(omcache_cache.aget_or_set("async-hot", load, 60) for _ in range(6))))

    assert asyncio.run(main()) == ["async value"] * 6
    assert len(runs) == 1


def test_omcache_backend_shares_the_cache_with_pylibmccache(omcache_cache: Any) -> None:
    other = caches["pylibmc"]
    assert isinstance(other, PyLibMCCache)
    other.set("from-pylibmc", {"x": [1, 2]}, 60)
    other.set("n", 5)
    assert omcache_cache.get("from-pylibmc") == {"x": [1, 2]}
    assert omcache_cache.incr("n") == 6
    omcache_cache.set("from-omcache", ("t", 1.5), 60)
    assert other.get("from-omcache") == ("t", 1.5)
    assert other.get("n") == 6


def test_omcache_backend_get_or_set_across_processes(server: MemcachedProcess) -> None:
    """3 processes x 4 threads, Django configured with OMcacheCache, one cold key."""
    code = (
        "import sys, threading, time, django\n"
        "from django.conf import settings\n"
        "settings.configure(CACHES={'default': {'BACKEND': 'omcache.contrib.django.OMcacheCache',"
        " 'LOCATION': sys.argv[1]}})\n"
        "django.setup()\n"
        "from django.core.cache import cache\n"
        "import omcache\n"
        "counter = omcache.Client([sys.argv[1]])\n"
        "def load():\n"
        "    n = counter.incr('django-runs', 1, initial=1); time.sleep(0.5); return {'by': n}\n"
        "out = []\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.readline()\n"
        "ts = [threading.Thread(target=lambda: out.append(cache.get_or_set('django-hot', load, 60))) for _ in range(4)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(out)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    procs = [subprocess.Popen([sys.executable, "-c", code, server.address], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs == ["[{'by': 1}, {'by': 1}, {'by': 1}, {'by': 1}]"] * 3
    assert omcache.Client([server.address]).get("django-runs") == b"1"


def test_shares_the_cache_with_the_real_pylibmc(server: MemcachedProcess, reference_clients: References) -> None:
    """A project half on pylibmc, half on omcache_pylibmc sees one cache."""
    code = (
        "import sys, django\n"
        "from django.conf import settings\n"
        "if sys.argv[1] == 'omcache':\n"
        "    import omcache_pylibmc; omcache_pylibmc.install_as_pylibmc()\n"
        "settings.configure(CACHES={'default': {'BACKEND': 'django.core.cache.backends.memcached.PyLibMCCache',"
        " 'LOCATION': sys.argv[2]}})\n"
        "django.setup()\n"
        "from django.core.cache import cache\n"
        "import pylibmc\n"
        "if sys.argv[3] == 'write':\n"
        "    cache.set_many({'shared': {'x': 1}, 'n': 5, 's': 'txt'}); print('written by', pylibmc.__name__)\n"
        "else:\n"
        "    print(pylibmc.__name__, sorted(cache.get_many(['shared', 'n', 's']).items()), cache.incr('n'))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))

    def run(lib: str, mode: str) -> str:
        r = subprocess.run([sys.executable, "-c", code, lib, server.address, mode],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    assert run("real", "write") == "written by pylibmc"
    assert run("omcache", "read") == "omcache_pylibmc [('n', 5), ('s', 'txt'), ('shared', {'x': 1})] 6"
    assert run("omcache", "write") == "written by omcache_pylibmc"
    assert run("real", "read") == "pylibmc [('n', 5), ('s', 'txt'), ('shared', {'x': 1})] 6"


def test_omcache_backend_native_async_methods_share_the_cache_with_the_sync_ones(omcache_cache: Any) -> None:
    import asyncio

    async def main() -> None:
        c = omcache_cache
        await c.aset("a1", {"x": 1})
        assert await c.aget("a1") == {"x": 1} == c.get("a1")
        assert await c.aget("a-missing", "dflt") == "dflt"
        assert await c.ahas_key("a1") and not await c.ahas_key("a-missing")
        assert await c.aadd("a1", 2) is False and await c.aadd("a2", 2) is True
        assert await c.aset_many({"m1": 1, "m2": [2]}) == []
        assert await c.aget_many(["m1", "m2", "m3"]) == {"m1": 1, "m2": [2]}
        assert await c.atouch("m1", 100) is True and await c.atouch("m-missing", 100) is False
        await c.aset("n", 10)
        assert await c.aincr("n", 5) == 15 and await c.adecr("n", 20) == 0
        with pytest.raises(ValueError):
            await c.aincr("n-missing")
        assert await c.adelete("m1") is True and await c.adelete("m1") is False
        await c.adelete_many(["m2", "a2"])
        assert await c.aget_many(["m2", "a2"]) == {}
        await c.aset("gone-at-once", 1, timeout=0)
        assert await c.aget("gone-at-once") is None

        async def load() -> str:
            await asyncio.sleep(0.05)
            return "coro value"

        assert await c.aget_or_set("a-coro", load, 60) == "coro value"
        assert c.get("a-coro") == "coro value"
        assert await c.ainvalidate("a-coro") is True
        await c.aclear()
        assert c.get("a1") is None

    asyncio.run(main())

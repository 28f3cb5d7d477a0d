"""A Django project configured with PyLibMCCache works on omcache_pylibmc.

Django's own backend (django.core.cache.backends.memcached.PyLibMCCache)
does ``import pylibmc``; here that import gives omcache_pylibmc, installed
as ``pylibmc`` for the duration of each test only, against a real memcached.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any, Iterator

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


@pytest.fixture(params=[{}, {"binary": True, "behaviors": {"ketama": True, "tcp_nodelay": True}}], ids=["text", "binary"])
def cache(request: pytest.FixtureRequest, server: MemcachedProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setitem(sys.modules, "pylibmc", omcache_pylibmc)
    omcache.Client([server.address]).flush_all()
    conf = {
        "default": {
            "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache",
            "LOCATION": f"{server.address};{server.address}",
            "OPTIONS": request.param,
            "KEY_PREFIX": "site",
        }
    }
    with override_settings(CACHES=conf):
        c = caches["default"]
        assert isinstance(c, PyLibMCCache)
        assert isinstance(c._cache, omcache_pylibmc.Client)
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
    assert cache.get("gone") == (1 if cache._options.get("binary") else None)
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

"""Flask-Caching's memcached backends work on omcache_pylibmc.

Flask-Caching's MemcachedCache (through cachelib) and SASLMemcachedCache
(used without credentials) do ``import pylibmc``; here that gives
omcache_pylibmc, installed as ``pylibmc`` for each test only, against a real
memcached.
"""

from __future__ import annotations

import sys
from typing import Any, Iterator, List

import pytest

import omcache
import omcache_pylibmc
from omcache.testing import MemcachedProcess

from references import require_module  # noqa: E402

flask = require_module("flask", "pip install flask-caching (a test extra)")
flask_caching = require_module("flask_caching", "pip install flask-caching (a test extra)")


@pytest.fixture(params=["MemcachedCache", "SASLMemcachedCache"])
def app_cache(request: pytest.FixtureRequest, server: MemcachedProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setitem(sys.modules, "pylibmc", omcache_pylibmc)
    omcache.Client([server.address]).flush_all()
    app = flask.Flask(__name__)
    cache = flask_caching.Cache(
        app,
        config={
            "CACHE_TYPE": request.param,
            "CACHE_MEMCACHED_SERVERS": [server.address],
            "CACHE_KEY_PREFIX": "app:",
            "CACHE_DEFAULT_TIMEOUT": 300,
            "CACHE_MEMCACHED_USERNAME": None,
            "CACHE_MEMCACHED_PASSWORD": None,
        },
    )
    with app.app_context():
        backend = cache.cache
        with backend._client_context() as client:
            assert isinstance(client, omcache_pylibmc.Client)
        yield app, cache


def test_basic_operations(app_cache: Any) -> None:
    _, cache = app_cache
    assert cache.get("k") is None
    assert cache.set("k", {"v": [1, 2]})
    assert cache.get("k") == {"v": [1, 2]}
    assert cache.add("k", 1) is False
    assert cache.add("n", 1) is True
    assert cache.has("n")
    assert cache.delete("n") is True
    assert not cache.has("n")
    assert cache.set_many({"a": 1, "b": "two"}) == ["a", "b"]
    assert cache.get_many("a", "b", "c") == [1, "two", None]
    assert cache.get_dict("a", "b") == {"a": 1, "b": "two"}
    assert cache.delete_many("a", "b") == ["a", "b"]
    assert cache.cache.inc("counter") == 1 and cache.cache.inc("counter", 4) == 5 and cache.cache.dec("counter") == 4
    assert cache.clear()
    assert cache.get("k") is None


def test_keys_carry_the_prefix_on_the_wire(app_cache: Any, server: MemcachedProcess) -> None:
    _, cache = app_cache
    cache.set("wire", "x")
    assert omcache_pylibmc.Client([server.address]).get("app:wire") == "x"


def test_view_and_memoize_decorators(app_cache: Any) -> None:
    app, cache = app_cache
    calls: List[int] = []

    @app.route("/hello")
    @cache.cached(timeout=60)
    def hello() -> str:
        calls.append(1)
        return f"hello {len(calls)}"

    @cache.memoize(timeout=60)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    client = app.test_client()
    assert client.get("/hello").data == b"hello 1"
    assert client.get("/hello").data == b"hello 1"
    assert square(3) == 9 and square(3) == 9
    assert calls == [1, 3]
    cache.delete_memoized(square, 3)
    assert square(3) == 9
    assert calls == [1, 3, 3]

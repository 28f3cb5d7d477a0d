"""Shared fixtures: real memcached servers started on free ports / unix sockets."""

from __future__ import annotations

import os
from typing import Callable, Iterator, List, Union

import pytest

from omcache.testing import EmbeddedServer, MemcachedNotFound, MemcachedProcess, find_memcached


def _require_memcached() -> None:
    if find_memcached() is None:
        if os.environ.get("CI"):
            pytest.fail("memcached is not installed, and CI must run the integration tests")
        pytest.skip("memcached is not installed (apt-get install memcached)")


@pytest.fixture
def memcached_factory() -> Iterator[Callable[..., MemcachedProcess]]:
    """Start real memcached servers on demand; all are stopped at teardown."""
    _require_memcached()
    started: List[MemcachedProcess] = []

    def start(**kwargs: object) -> MemcachedProcess:
        try:
            p = MemcachedProcess(**kwargs).start()  # type: ignore[arg-type]
        except MemcachedNotFound as e:  # pragma: no cover - checked above
            pytest.fail(str(e))
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture(scope="module", params=["memcached", "embedded"])
def memcached(request: pytest.FixtureRequest) -> Iterator[Union[MemcachedProcess, EmbeddedServer]]:
    """A server on a free TCP port, shared by a test module: every test using it
    runs against the real memcached AND against omcache's embedded server."""
    if request.param == "embedded":
        with EmbeddedServer() as s:
            yield s
        return
    _require_memcached()
    with MemcachedProcess() as p:
        yield p


@pytest.fixture(scope="module")
def memcached_unix() -> Iterator[MemcachedProcess]:
    """One real memcached on a unix socket, shared by a test module."""
    _require_memcached()
    with MemcachedProcess(unix=True) as p:
        yield p


@pytest.fixture(params=["meta", "text", "binary"])
def protocol(request: pytest.FixtureRequest) -> str:
    """The protocol a test's clients speak: a test using it runs once per
    protocol (meta, the default; classic text; binary)."""
    return str(request.param)

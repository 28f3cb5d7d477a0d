"""Shared fixtures: real memcached servers started on free ports / unix sockets,
and the check of the reference clients the comparison tests use."""

from __future__ import annotations

from typing import Callable, Iterator, List, Union

import pytest

from omcache.testing import EmbeddedServer, MemcachedNotFound, MemcachedProcess, find_memcached

from references import References, check_references, unavailable


def _require_memcached() -> None:
    if find_memcached() is None:
        unavailable("memcached is not installed (apt-get install memcached)")


@pytest.fixture(scope="session")
def reference_clients() -> References:
    """pylibmc 1.6.3 on libmemcached 1.1.4 and python-memcached 1.62, checked
    once per session: every comparison module uses this fixture,
    and stops (fails in CI, skips elsewhere) naming what is installed and what
    is needed."""
    return check_references()


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


@pytest.fixture(scope="module")
def server() -> Iterator[MemcachedProcess]:
    """One real memcached on a free TCP port, shared by a test module."""
    _require_memcached()
    with MemcachedProcess() as p:
        yield p


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

"""Fixtures of the compatibility suite: client families and a real memcached."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from compat_families import COMMON_KEYS, FAMILY_BUILDERS, Family, families  # noqa: E402

import omcache  # noqa: E402
from omcache.testing import MemcachedProcess, find_memcached, free_port  # noqa: E402

from references import References, unavailable  # noqa: E402


@pytest.fixture(scope="module")
def compat_server(reference_clients: References) -> Iterator[MemcachedProcess]:
    """One real memcached (default 1 MB item size) shared by a test module;
    the reference clients are checked first."""
    if find_memcached() is None:
        unavailable("memcached is not installed (apt-get install memcached)")
    with MemcachedProcess() as p:
        yield p


@pytest.fixture
def dead_address() -> str:
    """A loopback address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


def _family(name: str) -> Family:
    fam = FAMILY_BUILDERS[name]()
    missing = [k for k in COMMON_KEYS if k not in fam.expect]
    assert not missing, f"family {name} lacks expectations {missing}"
    return fam


@pytest.fixture(params=families())
def family(request: pytest.FixtureRequest, reference_clients: References) -> Family:
    """Every client family (all APIs): for tests of behaviour common to them."""
    return _family(request.param)


@pytest.fixture(params=families("memcache"))
def memcache_family(request: pytest.FixtureRequest, reference_clients: References) -> Family:
    """python-memcached and omcache.memcache: for python-memcached's own API."""
    return _family(request.param)


@pytest.fixture
def make(compat_server: MemcachedProcess) -> Iterator[Callable[..., Any]]:
    """make(family, **options): a client of that family on the empty shared server."""
    made = []
    with omcache.Client([compat_server.address]) as c:
        c.flush_all()

    def build(fam: Family, **options: Any) -> Any:
        c = fam.make([compat_server.address], **options)
        made.append(c)
        return c

    yield build
    for c in made:
        c.disconnect_all()

"""The reference clients omcache is compared with, and the one check that they
are the versions whose behaviour omcache matches.

Every comparison module (key placement, the pylibmc differential run, the
compatibility suite, interop) uses the session-scoped ``reference_clients``
fixture of conftest.py, which calls :func:`check_references`: with a missing
or wrong reference the module stops with a message naming what is installed
and what is needed; in CI that is a failure, elsewhere a skip.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any, List, Mapping, NoReturn, Optional

import pytest

PYLIBMC = "1.6.3"
#: pylibmc built against Debian's libmemcached (``pip install --no-binary
#: pylibmc``); the PyPI wheel bundles 1.0.16, which places keys differently.
LIBMEMCACHED = "1.1.4"
PYTHON_MEMCACHED = "1.62"
# pymemcache (a test extra too) is compared by the benchmark harness only,
# never by a test: it is not checked here.

REINSTALL = (
    f"pip install --no-binary pylibmc --force-reinstall pylibmc=={PYLIBMC} "
    f"python-memcached=={PYTHON_MEMCACHED} "
    f"(with Debian's libmemcached-dev {LIBMEMCACHED} and zlib1g-dev installed; `make build` does this)"
)


def in_ci() -> bool:
    """True when running in CI (.ci/run exports CI=true), where nothing may be skipped."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Stop the test for a missing prerequisite: a failure in CI, a skip elsewhere."""
    if in_ci():
        pytest.fail(f"{reason}; CI must run this test", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class References:
    """The checked reference modules."""

    pylibmc: ModuleType
    memcache: ModuleType


def _load(name: str, modules: Optional[Mapping[str, Any]]) -> Any:
    if modules is not None and name in modules:
        m = modules[name]
        if m is None:
            raise ImportError(f"No module named {name!r}")
        return m
    return importlib.import_module(name)


def reference_problems(modules: Optional[Mapping[str, Any]] = None) -> List[str]:
    """What is wrong with the installed references, one line each ([] if nothing).

    ``modules`` maps module names (pylibmc, _pylibmc, memcache) to
    stand-ins; a name it lacks is imported (a None value is a missing module).
    """
    problems: List[str] = []
    try:
        pylibmc = _load("pylibmc", modules)
    except ImportError as e:
        problems.append(f"pylibmc is not installed ({e}); pylibmc {PYLIBMC} on libmemcached {LIBMEMCACHED} is needed")
    else:
        if getattr(pylibmc, "__name__", "") == "omcache_pylibmc" or "omcache_pylibmc" in str(getattr(pylibmc, "__file__", "")):
            problems.append(f"the module imported as pylibmc is omcache_pylibmc; the real pylibmc {PYLIBMC} is needed")
        else:
            v = getattr(pylibmc, "__version__", None)
            if v != PYLIBMC:
                problems.append(f"pylibmc {v} is installed; pylibmc {PYLIBMC} is needed")
            try:
                ext = _load("_pylibmc", modules)
            except ImportError as e:
                problems.append(f"pylibmc's C extension _pylibmc does not import ({e})")
            else:
                lib = getattr(ext, "libmemcached_version", None)
                if lib != LIBMEMCACHED:
                    problems.append(
                        f"pylibmc is built on libmemcached {lib}; libmemcached {LIBMEMCACHED} is needed "
                        "(the PyPI wheel bundles 1.0.16: build from source against Debian's libmemcached-dev)"
                    )
                if not getattr(ext, "support_compression", False):
                    problems.append("pylibmc is built without zlib compression (support_compression False); it is needed")
    try:
        memcache = _load("memcache", modules)
    except ImportError as e:
        problems.append(f"python-memcached is not installed ({e}); python-memcached {PYTHON_MEMCACHED} is needed")
    else:
        v = getattr(memcache, "__version__", None)
        if v != PYTHON_MEMCACHED:
            problems.append(f"python-memcached {v} is installed; python-memcached {PYTHON_MEMCACHED} is needed")
    return problems


def check_references(modules: Optional[Mapping[str, Any]] = None) -> References:
    """The reference modules, or stop (fail in CI, skip elsewhere) naming the problems."""
    problems = reference_problems(modules)
    if problems:
        unavailable("wrong reference clients for the comparison tests: " + "; ".join(problems) + f". Fix: {REINSTALL}")
    return References(
        pylibmc=_load("pylibmc", modules),
        memcache=_load("memcache", modules),
    )


def require_module(name: str, install: str) -> ModuleType:
    """Import ``name`` for a whole test module: without it the module is a
    collection failure in CI and skipped elsewhere (never silently)."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        reason = f"{name} is not installed ({e}): {install}"
        if in_ci():
            pytest.fail(f"{reason}; CI must run these tests", pytrace=False)
        pytest.skip(reason, allow_module_level=True)

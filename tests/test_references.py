"""The check of the reference clients (tests/references.py), with stand-in modules.

A comparison module must stop, naming what is installed and what is needed,
when a reference is the wrong version: a failure in CI, a skip elsewhere.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Dict

import pytest

import references
from references import check_references, in_ci, reference_problems, require_module


def _stand_ins(**overrides: Any) -> Dict[str, Any]:
    """Modules with the right versions, as the real references report them."""
    mods: Dict[str, Any] = {
        "pylibmc": types.SimpleNamespace(__name__="pylibmc", __file__="/x/pylibmc/__init__.py", __version__="1.6.3"),
        "_pylibmc": types.SimpleNamespace(libmemcached_version="1.1.4", support_compression=True),
        "memcache": types.SimpleNamespace(__version__="1.62"),
    }
    mods.update(overrides)
    return mods


def test_right_versions_pass() -> None:
    assert reference_problems(_stand_ins()) == []
    refs = check_references(_stand_ins())
    assert refs.memcache.__version__ == "1.62"


@pytest.mark.parametrize(
    "override, words",
    [
        ({"pylibmc": types.SimpleNamespace(__name__="pylibmc", __version__="1.6.1")}, ["pylibmc 1.6.1 is installed", "pylibmc 1.6.3 is needed"]),
        # pylibmc's PyPI wheel: the right pylibmc, the wrong libmemcached
        ({"_pylibmc": types.SimpleNamespace(libmemcached_version="1.0.16", support_compression=True)},
         ["built on libmemcached 1.0.16", "libmemcached 1.1.4 is needed"]),
        ({"_pylibmc": types.SimpleNamespace(libmemcached_version="1.1.4", support_compression=False)}, ["support_compression"]),
        ({"memcache": types.SimpleNamespace(__version__="1.59")}, ["python-memcached 1.59 is installed", "python-memcached 1.62 is needed"]),
        ({"memcache": None}, ["python-memcached is not installed", "python-memcached 1.62 is needed"]),
        ({"pylibmc": types.SimpleNamespace(__name__="omcache_pylibmc", __version__="1.6.3")}, ["is omcache_pylibmc"]),
    ],
    ids=["pylibmc", "libmemcached", "zlib", "python-memcached", "missing", "aliased"],
)
def test_a_wrong_reference_is_named(override: Dict[str, Any], words: Any) -> None:
    problems = reference_problems(_stand_ins(**override))
    assert len(problems) == 1, problems
    for w in words:
        assert w in problems[0]


def test_stops_with_a_skip_locally_and_a_failure_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in pylibmc with a wrong __version__ in sys.modules, as a
    comparison module would import it."""
    fake = types.ModuleType("pylibmc")
    fake.__version__ = "1.5.2"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pylibmc", fake)
    monkeypatch.setitem(sys.modules, "_pylibmc", types.SimpleNamespace(libmemcached_version="1.0.16", support_compression=True))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        check_references()
    msg = str(skipped.value)
    assert "pylibmc 1.5.2 is installed; pylibmc 1.6.3 is needed" in msg
    assert "built on libmemcached 1.0.16; libmemcached 1.1.4 is needed" in msg
    assert references.REINSTALL in msg
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        check_references()
    assert "pylibmc 1.5.2 is installed" in str(failed.value) and "CI must run this test" in str(failed.value)


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("yes", True), ("", False), ("0", False), ("false", False)])
def test_ci_detection(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_a_missing_module_fails_in_ci_and_skips_the_module_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "no_such_reference", None)  # import raises ImportError
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no_such_reference is not installed"):
        require_module("no_such_reference", "pip install it")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="pip install it") as skipped:
        require_module("no_such_reference", "pip install it")
    # allow_module_level: a module-level skip is a skip, not a collection error
    assert skipped.value.allow_module_level


def test_the_installed_references_are_the_right_ones(reference_clients: references.References) -> None:
    """The installed references pass (or this test stops, naming them)."""
    assert reference_clients.pylibmc.__version__ == references.PYLIBMC
    assert reference_clients.memcache.__version__ == references.PYTHON_MEMCACHED

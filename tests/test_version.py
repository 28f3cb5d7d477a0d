"""The version lives in one place (python/omcache/__init__.py): the package
metadata and the engine built by setup.py carry the same."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import omcache


def test_metadata_version_is_omcache_version() -> None:
    assert importlib.metadata.version("omcache") == omcache.__version__


def test_engine_version_is_omcache_version() -> None:
    # The gopy wrapper of go/bind holds the engine's Version constant, which
    # setup.py writes from omcache.__version__ (read as text: no engine load).
    wrapper = Path(omcache.__file__).parent / "_gopy" / "bind.py"
    m = re.search(r'^Version = "([^"]*)"$', wrapper.read_text(), re.M)
    assert m is not None, wrapper
    assert m.group(1) == omcache.__version__


def test_changelog_and_pyproject_do_not_restate_the_version() -> None:
    root = Path(__file__).resolve().parents[1]
    pyproject = (root / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and not re.search(r'^version\s*=\s*"', pyproject, re.M)
    assert (root / "CHANGELOG.md").read_text().startswith("# Changelog")

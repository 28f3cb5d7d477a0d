"""pytest plugin (``-p pylibmc_alias``): run pylibmc's own tests on omcache_pylibmc.

Loaded before collection, it registers omcache_pylibmc as ``pylibmc`` and its
``_pylibmc`` as ``_pylibmc`` (with every submodule), and refuses to run if
the real pylibmc was imported first.
"""

from __future__ import annotations

import sys
from typing import Any, List

if "pylibmc" in sys.modules or "_pylibmc" in sys.modules:
    raise RuntimeError("the real pylibmc was imported before the omcache_pylibmc alias was installed")

import omcache_pylibmc  # noqa: E402

omcache_pylibmc.install_as_pylibmc()


def pytest_report_header(config: Any) -> List[str]:
    """Say, at the top of the run, which module stands in for pylibmc."""
    import _pylibmc  # noqa: F401 - the alias
    import pylibmc

    return [
        f"pylibmc -> {pylibmc.__name__} from {pylibmc.__file__}",
        f"build_info: {pylibmc.build_info()}",
        f"_pylibmc -> {_pylibmc.__name__}",
    ]

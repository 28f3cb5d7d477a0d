#!/usr/bin/env python3
"""Print the requirements of one of pyproject.toml's optional-dependency extras.

    python scripts/extras.py test

The Makefile installs the test references with it without building omcache
(``pip install ".[test]"`` would build the engine once more).
"""

import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
print(" ".join(pyproject["project"]["optional-dependencies"][sys.argv[1]]))

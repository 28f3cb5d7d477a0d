"""``python -m omcache``: the omcache command-line interface (see omcache.cli and docs/cli.md).

The ``omcache`` console script points at :func:`main` here.
"""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

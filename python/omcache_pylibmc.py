"""A pylibmc-compatible layer on top of omcache (``import omcache_pylibmc as pylibmc``).

Not implemented yet: constructing a client raises NotImplementedError (see README).
"""

from __future__ import annotations

from typing import Any


class Client:
    """pylibmc.Client stand-in; the drop-in layer is not implemented yet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "omcache_pylibmc is not implemented yet; use omcache.Client (see README)"
        )

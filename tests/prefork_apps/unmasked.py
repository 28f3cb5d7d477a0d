"""Fault injection for a negative control in tests/test_prefork.py: app.py with
the engine loaded WITHOUT blocking signals (what omcache._engine must not do).

omcache._engine blocks every signal in the loading thread while the Go
runtime starts, so that Go's threads inherit a mask that keeps
process-directed signals away from them.  This module replaces the
``signal`` module that _engine sees with a copy whose pthread_sigmask blocks
nothing, then serves app.py's application: Go's threads then accept SIGTERM
and SIGINT, and uWSGI's shutdown can deadlock.  Never used outside that test.
"""

from __future__ import annotations

import signal
import types
from typing import Any, Iterable

from omcache import _engine


def _no_mask(how: int, mask: Iterable[int]) -> Any:
    return signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the current mask, unchanged


_unmasked_signal = types.SimpleNamespace(**{n: getattr(signal, n) for n in dir(signal) if not n.startswith("__")})
_unmasked_signal.pthread_sigmask = _no_mask
_engine.signal = _unmasked_signal  # type: ignore[attr-defined]

from app import application  # noqa: E402  (after the patch: app.py loads the engine at import)

__all__ = ["application"]

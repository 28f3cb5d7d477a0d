"""Client pools (``pylibmc.pools``): ``ClientPool`` and ``ThreadMappedPool``.

An omcache_pylibmc client may be shared by threads (the engine is
thread-safe), but these pools keep code written for pylibmc working as is.
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional


class ClientPool(queue.Queue):  # type: ignore[type-arg]
    """A queue of clients: ``reserve()`` lends one for a ``with`` block.

    ``ClientPool(mc, n)`` fills the pool with n clones of mc.
    """

    def __init__(self, mc: Optional[Any] = None, n_slots: int = 0) -> None:
        super().__init__(n_slots)
        if mc is not None and n_slots:
            self.fill(mc, n_slots)

    @contextmanager
    def reserve(self, block: bool = False) -> Iterator[Any]:
        """Lend a client for the block and put it back afterwards.

        Without ``block`` an exhausted pool raises queue.Empty; with it the
        call waits until another thread returns a client.
        """
        mc = self.get(block)
        try:
            yield mc
        finally:
            self.put(mc)

    def fill(self, mc: Any, n_slots: int) -> None:
        """Put n_slots clones of mc into the pool."""
        for _ in range(n_slots):
            self.put(mc.clone())


class ThreadMappedPool(dict):  # type: ignore[type-arg]
    """One client per thread, cloned from ``master`` on a thread's first
    ``reserve()``.  Call ``relinquish()`` before a thread ends."""

    def __new__(cls, master: Any) -> "ThreadMappedPool":
        return super().__new__(cls)

    def __init__(self, master: Any) -> None:
        super().__init__()
        self.master = master

    @property
    def current_key(self) -> Optional[int]:
        """The key of the calling thread in this mapping (its ident)."""
        return threading.current_thread().ident

    @contextmanager
    def reserve(self) -> Iterator[Any]:
        """Lend the calling thread its client (cloning the master the first time)."""
        key = self.current_key
        mc = self.pop(key, None)
        if mc is None:
            mc = self.master.clone()
        try:
            yield mc
        finally:
            self[key] = mc

    def relinquish(self) -> Optional[Any]:
        """Forget (and return) the calling thread's client, if it has one."""
        return self.pop(self.current_key, None)

"""pylibmc's constants (``pylibmc.consts``): exception classes, behavior
names, the hasher and distribution name tables, and ``BehaviorDict``."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple, Type

from omcache_pylibmc import _pylibmc

#: Every pylibmc exception class (Error first).
errors: Tuple[Type[_pylibmc.Error], ...] = tuple(cls for _, cls in _pylibmc.exceptions)

# The exception classes are attributes of this module too, as in pylibmc.
for _name, _cls in _pylibmc.exceptions:
    globals()[_name] = _cls
del _name, _cls

#: Every behavior name (see _pylibmc.all_behaviors).
all_behaviors = _pylibmc.all_behaviors
#: Callback names settable as behaviors ("namespace").
all_callbacks = _pylibmc.all_callbacks

#: Hasher name -> libmemcached number ("default", "md5", "crc", ...).
hashers: Dict[str, int] = {
    name[len("hash_"):]: getattr(_pylibmc, name) for name in dir(_pylibmc) if name.startswith("hash_")
}
#: libmemcached hash number -> name.
hashers_rvs: Dict[int, str] = {v: k for k, v in hashers.items()}
#: Distribution name -> libmemcached number ("modula", "consistent", "consistent ketama", ...).
distributions: Dict[str, int] = {
    name[len("distribution_"):].replace("_", " "): getattr(_pylibmc, name)
    for name in dir(_pylibmc)
    if name.startswith("distribution_")
}
#: libmemcached distribution number -> name.
distributions_rvs: Dict[int, str] = {v: k for k, v in distributions.items()}


class BehaviorDict(dict):  # type: ignore[type-arg]
    """The dict ``Client.behaviors`` returns: setting an item (or update())
    also applies it to the client it came from."""

    def __init__(self, client: Any, *args: Any, **kwds: Any) -> None:
        super().__init__(*args, **kwds)
        self.client = client

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, value)
        self.client.set_behaviors({name: value})

    def update(self, d: Mapping[str, Any]) -> None:  # type: ignore[override]
        """Update the dict and apply the behaviors in d to the client."""
        super().update(d)
        self.client.set_behaviors(dict(d))

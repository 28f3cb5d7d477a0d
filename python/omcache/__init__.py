"""omcache: a memcached client for Python with a Go core.

``import omcache`` is cheap and does not start the Go runtime: the engine is
loaded by the first client operation (and afresh in each forked child).

    >>> import omcache
    >>> mc = omcache.Client(["127.0.0.1:11211"])
    >>> mc.set("greeting", b"hello")
    True
    >>> mc.get("greeting")
    b'hello'
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .client import Client, Item, ItemMeta
from .exceptions import (
    AuthenticationError,
    ClientClosedError,
    CommandError,
    ConfigError,
    ConnectionError,
    DeltaBadValueError,
    EngineError,
    Error,
    InvalidArgumentsError,
    InvalidKeyError,
    KeyExistsError,
    LeaseTimeoutError,
    NoServersError,
    NotFoundError,
    NotStoredError,
    ProtocolError,
    WrongProtocolError,
    ServerDeadError,
    ServerDownError,
    ServerError,
    TimeoutError,
    TLSError,
    TooLargeValueError,
)

if TYPE_CHECKING:
    from . import memcache, serde
    from .omcache_api import OMcache
    from .pyclient import SerdeClient
    from .serde import PylibmcSerde, PythonMemcachedSerde, RawSerde, SerdeError

# The API layers above Client import pickle, zlib, inspect...: they load on
# first use, which keeps `import omcache` fast for programs that use Client.
_LAZY = {
    "memcache": (".memcache", None),
    "serde": (".serde", None),
    "OMcache": (".omcache_api", "OMcache"),
    "SerdeClient": (".pyclient", "SerdeClient"),
    "SerdeError": (".serde", "SerdeError"),
    "PylibmcSerde": (".serde", "PylibmcSerde"),
    "PythonMemcachedSerde": (".serde", "PythonMemcachedSerde"),
    "RawSerde": (".serde", "RawSerde"),
}


def __getattr__(name: str) -> Any:
    """Load the lazily imported names of ``__all__`` on first access."""
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'omcache' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value

__version__ = "0.1.0"

logging.getLogger("omcache").addHandler(logging.NullHandler())

__all__ = [
    "Client",
    "Item",
    "ItemMeta",
    "ClientClosedError",
    "CommandError",
    "ConfigError",
    "ConnectionError",
    "DeltaBadValueError",
    "EngineError",
    "Error",
    "InvalidArgumentsError",
    "InvalidKeyError",
    "KeyExistsError",
    "LeaseTimeoutError",
    "NoServersError",
    "NotFoundError",
    "NotStoredError",
    "ProtocolError",
    "WrongProtocolError",
    "AuthenticationError",
    "TLSError",
    "ServerError",
    "ServerDeadError",
    "ServerDownError",
    "TimeoutError",
    "TooLargeValueError",
    "OMcache",
    "SerdeClient",
    "SerdeError",
    "PylibmcSerde",
    "PythonMemcachedSerde",
    "RawSerde",
    "memcache",
    "serde",
    "__version__",
]

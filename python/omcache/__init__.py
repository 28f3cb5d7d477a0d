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

import logging

from . import memcache, serde
from .client import Client, Item
from .exceptions import (
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
    NoServersError,
    NotFoundError,
    NotStoredError,
    ProtocolError,
    ServerError,
    TimeoutError,
    TooLargeValueError,
)
from .omcache_api import OMcache
from .pyclient import SerdeClient
from .serde import PylibmcSerde, PythonMemcachedSerde, RawSerde, SerdeError

__version__ = "0.1.0"

logging.getLogger("omcache").addHandler(logging.NullHandler())

__all__ = [
    "Client",
    "Item",
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
    "NoServersError",
    "NotFoundError",
    "NotStoredError",
    "ProtocolError",
    "ServerError",
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

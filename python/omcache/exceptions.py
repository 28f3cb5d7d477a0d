"""omcache's exceptions, in one flat module.

The hierarchy follows OMcache's (``Error`` -> ``CommandError`` -> the command
outcomes) plus connection, timeout and input errors.  Classes that mirror a
builtin concept also derive from that builtin, so ``except ValueError`` or
``except TimeoutError`` keep working for callers that do not know omcache.
"""

from __future__ import annotations

import builtins

__all__ = [
    "Error",
    "CommandError",
    "NotFoundError",
    "KeyExistsError",
    "TooLargeValueError",
    "NotStoredError",
    "DeltaBadValueError",
    "InvalidArgumentsError",
    "ServerError",
    "ConnectionError",
    "TimeoutError",
    "LeaseTimeoutError",
    "ServerDownError",
    "ServerDeadError",
    "ProtocolError",
    "WrongProtocolError",
    "AuthenticationError",
    "TLSError",
    "NoServersError",
    "InvalidKeyError",
    "ConfigError",
    "ClientClosedError",
    "EngineError",
]


class Error(Exception):
    """Base class of every exception omcache raises."""


class CommandError(Error):
    """The server answered, and the answer was a refusal of the command."""


class NotFoundError(CommandError):
    """The key does not exist (for commands where a miss is an error, e.g. incr)."""


class KeyExistsError(CommandError):
    """The key exists with a different CAS value than the one given."""


class TooLargeValueError(CommandError, ValueError):
    """The value is larger than the server's item size limit."""


class NotStoredError(CommandError):
    """The item was not stored (add on an existing key, replace/append on a missing one)."""


class DeltaBadValueError(CommandError):
    """incr/decr on a value that is not a decimal number."""


class InvalidArgumentsError(CommandError):
    """The server rejected the arguments of the command."""


class ServerError(CommandError):
    """The server reported an error of its own (out of memory, unknown command, ...)."""


class ConnectionError(Error, builtins.ConnectionError):
    """A server could not be reached, or the connection broke during a call."""


class TimeoutError(ConnectionError, builtins.TimeoutError):
    """A server did not answer within the configured timeout."""


class LeaseTimeoutError(TimeoutError):
    """get_or_set waited ``wait_timeout`` seconds for another caller's load and got no value."""


class ServerDownError(ConnectionError):
    """Not sent: the key's server failed moments ago and is skipped until its retry timeout."""


class ServerDeadError(ConnectionError):
    """Not sent: the key's server is marked dead (and failover is off, or no server is live)."""


class ProtocolError(Error):
    """A server sent a response that is not valid memcached protocol."""


class WrongProtocolError(ProtocolError):
    """The server does not speak the client's protocol.

    It answered in another protocol, refused the protocol's commands
    (memcached older than 1.6 answers ERROR to meta commands), or closed a new
    connection at its first request (what twemproxy does with meta and binary
    requests).  The message names the server; choose another ``protocol``
    ("text" for proxies and old servers).  Failover does not count it as a
    failure of the server.
    """


class NoServersError(Error):
    """The client has no (live) server to send the key to."""


class InvalidKeyError(Error, ValueError):
    """The key is empty, longer than 250 bytes, or contains spaces or control characters."""


class ConfigError(Error, ValueError):
    """A server specification or an option is invalid."""


class AuthenticationError(Error):
    """The server refused the client's ``username``/``password``, or did not take them.

    SASL PLAIN (binary protocol, memcached ``-S``) or memcached's ASCII
    authentication (text and meta, ``-Y``) failed on a new connection.  It is
    a configuration error: not retried, not counted as a failure of the
    server.  The message names the server and the user, never the password.
    """


class TLSError(ConfigError):
    """A TLS handshake failed in a way a retry cannot mend.

    The server's certificate is not trusted (unknown authority, a name that
    does not match, expired), the server does not speak TLS, or there is no
    common version.  The message names the server; failover does not count it
    as a failure of the server.  A handshake that times out is a
    TimeoutError instead, like a connect timeout.
    """


class ClientClosedError(Error):
    """The client was closed; create a new one."""


class EngineError(Error):
    """The Go engine could not be loaded, or failed internally (a bug: please report it)."""

"""TLS and authentication options: validation and the engine's config lines.

Checked in the constructor, in Python, without loading the engine: files
exist and are readable, versions are known, credentials hold nothing the
wire formats cannot carry.  No message ever shows the password.
"""

from __future__ import annotations

import os
from typing import List, Optional

from . import exceptions as exc

TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")


def _path(name: str, value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str path, not {type(value).__name__}")
    if not value or "\n" in value or "\x00" in value:
        raise exc.ConfigError(f"invalid {name} {value!r}")
    if not os.path.isfile(value):
        raise exc.ConfigError(f"{name} {value!r} does not exist or is not a file")
    if not os.access(value, os.R_OK):
        raise exc.ConfigError(f"{name} {value!r} is not readable")
    return os.path.abspath(value)


def config_lines(
    *,
    tls: bool,
    tls_ca_file: Optional[str],
    tls_cert_file: Optional[str],
    tls_key_file: Optional[str],
    tls_server_name: Optional[str],
    tls_verify: bool,
    tls_min_version: str,
    username: Optional[str],
    password: Optional[str],
) -> List[str]:
    """Return the engine config lines for these options; raise ConfigError/TypeError for bad ones."""
    for name, flag in (("tls", tls), ("tls_verify", tls_verify)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, not {type(flag).__name__}")
    lines: List[str] = []
    ca = _path("tls_ca_file", tls_ca_file)
    cert = _path("tls_cert_file", tls_cert_file)
    key = _path("tls_key_file", tls_key_file)
    if tls_min_version not in TLS_VERSIONS:
        raise exc.ConfigError(f"tls_min_version must be one of {', '.join(TLS_VERSIONS)}, got {tls_min_version!r}")
    if tls_server_name is not None:
        if not isinstance(tls_server_name, str):
            raise TypeError(f"tls_server_name must be a str, not {type(tls_server_name).__name__}")
        if not tls_server_name or any(c in tls_server_name for c in "\n\x00 /"):
            raise exc.ConfigError(f"invalid tls_server_name {tls_server_name!r}")
    if (cert is None) != (key is None):
        raise exc.ConfigError("a TLS client certificate needs both tls_cert_file and tls_key_file")
    given = [n for n, v in (("tls_ca_file", ca), ("tls_cert_file", cert), ("tls_server_name", tls_server_name)) if v is not None]
    if not tls and (given or not tls_verify or tls_min_version != "1.2"):
        raise exc.ConfigError(f"{', '.join(given) or 'TLS options'} given without tls=True")
    if tls:
        lines.append("tls=1")
        if ca is not None:
            lines.append(f"tls_ca_file={ca}")
        if cert is not None and key is not None:
            lines.append(f"tls_cert_file={cert}")
            lines.append(f"tls_key_file={key}")
        if tls_server_name is not None:
            lines.append(f"tls_server_name={tls_server_name}")
        lines.append(f"tls_verify={int(tls_verify)}")
        lines.append(f"tls_min_version={tls_min_version}")
    if username is None and password is None:
        return lines
    if not isinstance(username, str) or not username:
        raise exc.ConfigError("a password needs a username" if username is None else "username must be a non-empty str")
    if not isinstance(password, str):
        raise exc.ConfigError("a username needs a password (a str)")
    if any(c in username for c in " \r\n\x00"):
        raise exc.ConfigError(f"username {username!r} holds a space, a line break or NUL")
    if any(c in password for c in "\r\n\x00"):
        # Never show the password itself.
        raise exc.ConfigError("the password holds a line break or NUL")
    lines.append(f"username={username}")
    lines.append(f"password={password}")
    return lines

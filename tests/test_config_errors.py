"""Bad configuration raises from omcache.Client's constructor, without loading
the engine (prefork masters create clients before forking), and the Python
checks agree with the engine's own (go/dist) on what is acceptable."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Dict, List

import pytest

import omcache
from omcache import _config_check, _engine
from omcache import exceptions as exc

BAD = [
    (["bogus:port"], {}, "server 0: bad server spec 'bogus:port': port 'port' is not a decimal number"),
    (["h:1", "h:0"], {}, "server 1: bad server spec 'h:0': port 0 is out of range 1..65535"),
    ([":11211"], {}, "empty host"),
    (["[::1"], {}, "missing ']'"),
    (["udp:h:1"], {}, "UDP is not supported"),
    (["h:1:x"], {}, "weight 'x' is not a decimal number"),
    (["h:1"], {"distribution": "bogus"}, "unknown distribution 'bogus' (known: 'modula', 'consistent'"),
    (["h:1"], {"hash": "bogus"}, "unknown hash 'bogus' (known: 'default', 'md5'"),
    (["h:1"], {"ketama_hash": "sha1"}, "unknown ketama_hash 'sha1'"),
    (["h:1"], {"hash": "hsieh"}, "hsieh is not built into Debian's libhashkit"),
    (["h:1"], {"behaviors": {"no_such": 1}}, "unknown behavior 'no_such'"),
    (["h:1"], {"behaviors": {"hash": "bogus"}}, "unknown behavior hash 'bogus'"),
    (["h:1"], {"behaviors": {"distribution": "python-memcached"}}, "is not a pylibmc distribution"),
    (["h:1"], {"behaviors": {"ketama": "yes"}}, "behavior ketama: 'yes' is not a number"),
    (["inet:h:"], {"weights": [1]}, "empty port"),
    (["h:1"], {"distribution": "python-memcached", "hash": "md5"}, "python-memcached always hashes keys with crc, not md5"),
    (["h:1"], {"distribution": "python-memcached", "sort_hosts": True}, "python-memcached does not sort hosts"),
    (["h:1"], {"distribution": "ketama_weighted", "hash": "crc"}, "ketama_weighted hashes keys with md5, not crc"),
]


def _in_fresh_interpreter(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize("servers,options,says", BAD)
def test_constructor_raises_config_error(servers: List[str], options: Dict[str, Any], says: str) -> None:
    with pytest.raises(omcache.ConfigError) as ei:
        omcache.Client(servers, **options)
    assert says in str(ei.value)


def test_unimplemented_distribution_raises_not_implemented() -> None:
    for name in ("random", "virtual bucket", "consistent max", "3"):
        with pytest.raises(NotImplementedError, match="is not implemented in omcache"):
            omcache.Client(["h:1"], distribution=name)


def test_constructor_checks_do_not_load_the_engine() -> None:
    out = _in_fresh_interpreter(
        "import omcache, omcache._engine as e\n"
        "for kw in ({'distribution': 'bogus'}, {'hash': 'bogus'}, {}):\n"
        "    try:\n"
        "        omcache.Client(['bogus:port'] if not kw else ['h:1'], **kw)\n"
        "    except omcache.ConfigError:\n"
        "        pass\n"
        "omcache.Client(['127.0.0.1:1'], distribution='modula', hash='md5', behaviors={'ketama': 1})\n"
        "print(e.loaded())\n"
    )
    assert out == "False"


def _engine_accepts(servers: List[str], **options: Any) -> bool:
    """Whether the engine itself builds a client for this configuration."""
    client = omcache.Client.__new__(omcache.Client)
    # The config text exactly as the constructor would build it, minus the Python checks.
    checks = (_config_check.check_servers, _config_check.check_distribution, _config_check.check_hash,
              _config_check.check_behaviors, _config_check.check_combination)
    saved = [getattr(_config_check, f.__name__) for f in checks]
    try:
        for f in checks:
            setattr(_config_check, f.__name__, lambda *a, **k: None)
        try:
            client.__init__(servers, **options)  # type: ignore[misc]
        except exc.ConfigError as e:
            # parse_servers refuses a "unix:" spec without a path before any
            # config text exists; the engine's own parser refuses it too
            # (dist.ParsePythonMemcacheSpec: "empty socket path"), so this is
            # the engine's verdict.
            if "unix socket needs an absolute path" in str(e):
                return False
            raise
    finally:
        for f, orig in zip(checks, saved):
            setattr(_config_check, f.__name__, orig)
    c = _engine.core()
    r = _engine.take_bytes(c, c.bind_ClientNew(client._config))
    if r[0] == _engine.OK:
        c.bind_ClientClose(int.from_bytes(r[1:9], "little"))
        return True
    return False


def _python_accepts(servers: List[str], **options: Any) -> bool:
    try:
        omcache.Client(servers, **options)
    except (omcache.ConfigError, NotImplementedError):
        return False
    return True


SPECS = [
    "h", "h:1", "h:65535", "h:65536", "h:0", "h:1:0", "h:1:65535", "h:1:65536", "h:+1", "h:1_0", "h:",
    ":1", "[::1]", "[::1]:2", "[::1]:2:3", "[::1]:", "[::1]x", "[]:1", "[a[b]:1", "::1", "/sock",
    "/with space", "h h:1", "h\t:1", "udp:h:1", "h/x:1", "h:1:2:3", "h:0012", "h:1234567890", "hé:1",
]
PM_SPECS = ["h", "h:1", "inet:h:1", "inet6:[::1]:2", "inet6:::1", "inet6:[::1]x", "unix:/s", "unix:",
            "h:", "h:1:2", "h h", "inet:h:", "h:x"]
NAMES = ["modula", "consistent", "consistent ketama", "ketama", "ketama_weighted", "ketama_pre1010",
         "python-memcached", "consistent weighted", "consistent ketama spy", "0", "1", "2", "4", "5", "8",
         "bogus", "Modula"]
HASHES = ["default", "md5", "crc", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "murmur", "jenkins",
          "hsieh", "0", "9", "10", "bogus", "MD5"]


def test_python_checks_agree_with_the_engine() -> None:
    """Drift check: for each case, Python accepts exactly what go/dist accepts."""
    cases: List[Dict[str, Any]] = [{"servers": [s]} for s in SPECS]
    cases += [{"servers": [s], "weights": [1]} for s in PM_SPECS]
    cases += [{"servers": ["h:1"], "distribution": d} for d in NAMES]
    cases += [{"servers": ["h:1"], "distribution": "modula", "hash": h} for h in HASHES]
    cases += [{"servers": ["h:1"], "ketama_hash": h} for h in HASHES]
    cases += [{"servers": ["h:1"], "behaviors": {"hash": h}} for h in HASHES]
    cases += [{"servers": ["h:1"], "behaviors": {"distribution": d}} for d in NAMES]
    cases += [{"servers": ["h:1"], "behaviors": {n: 1}} for n in _config_check.BEHAVIORS + ("sort_hosts", "nope")]
    cases += [{"servers": ["h:1"], "behaviors": {"ketama": v}} for v in ("1", "0", "true", "False", "", "-3", "x")]
    cases += [{"servers": ["h:1"], "distribution": d, "hash": h}
              for d in ("python-memcached", "ketama_weighted", "consistent weighted") for h in HASHES]
    cases += [{"servers": ["h:1"], "distribution": d, "sort_hosts": True} for d in ("python-memcached", "modula")]
    disagree = []
    for case in cases:
        opts = dict(case)
        servers = opts.pop("servers")
        if _python_accepts(servers, **opts) != _engine_accepts(servers, **opts):
            disagree.append(case)
    assert disagree == []


def test_cli_empty_servers_is_a_usage_error() -> None:
    r = subprocess.run([sys.executable, "-m", "omcache", "--servers", "", "get", "k"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "--servers is empty" in r.stderr

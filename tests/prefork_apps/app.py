"""A WSGI app for tests/test_prefork.py: omcache used in the master and in every request.

Configured by the environment:
  OMCACHE_PREFORK_SERVER    memcached address ("127.0.0.1:port"), required
  OMCACHE_PREFORK_TRIPWIRE  "1": in each worker, before its first omcache call,
                            make the engine copies inherited from the master
                            non-executable (forkcheck.arm)

At import (in the master, before the server forks its workers, when run with
gunicorn --preload or uWSGI without --lazy-apps) the module creates a client
and uses it, so the engine is loaded and its Go runtime running when the
workers are forked.  Every request to /<key>?delay=<seconds> stores a value
made of the key and the worker's PID with that same module-level client (an
object created in the master), reads it back, also reads the master's key,
and answers with a JSON report that the test checks.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable, Iterable
from urllib.parse import parse_qs

import omcache
from omcache import _engine

import forkcheck

SERVER = os.environ["OMCACHE_PREFORK_SERVER"]
TRIPWIRE = os.environ.get("OMCACHE_PREFORK_TRIPWIRE") == "1"
MASTER_PID = os.getpid()
MASTER_KEY = f"prefork-master-{MASTER_PID}-{time.time_ns()}"

cache = omcache.Client([SERVER], connect_timeout=2.0, io_timeout=2.0)
cache.set(MASTER_KEY, str(MASTER_PID).encode())
if cache.get(MASTER_KEY) != str(MASTER_PID).encode():
    raise RuntimeError("omcache does not work in the master")
if not _engine.loaded():
    raise RuntimeError("the engine should be loaded in the master before the workers fork")


def application(environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
    tripwire = forkcheck.arm() if TRIPWIRE and os.getpid() != MASTER_PID else 0
    key = environ.get("PATH_INFO", "/").lstrip("/")
    delay = float(parse_qs(environ.get("QUERY_STRING", "")).get("delay", ["0"])[0])
    if not key:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"no key\n"]
    value = f"{key}@{os.getpid()}".encode()
    cache.set(key, value)
    if delay:
        time.sleep(delay)
    got = cache.get(key)
    core = _engine.core()
    report = {
        "key": key,
        "value": got.decode() if got is not None else None,
        "master_value": (cache.get(MASTER_KEY) or b"").decode(),
        "pid": os.getpid(),
        "master_pid": MASTER_PID,
        "engine_pid": _engine._core_pid,
        "engine_module": core.__name__,
        "tripwire": tripwire,
    }
    body = json.dumps(report).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]

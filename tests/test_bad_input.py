"""Bad input across the APIs: each case raises a clear exception, nothing is
sent that could confuse a server, the process lives on and the client keeps
working (pylibmc aborts the whole interpreter on some of these)."""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import threading
from typing import Any, Callable, Dict, Iterator, List, Tuple, Type, Union

import pytest

import omcache
import omcache.memcache as memcache
import omcache_pylibmc as pylibmc
from omcache.pyclient import SerdeClient
from omcache.testing import EmbeddedServer

ITEM_SIZE = 64 * 1024
Exc = Union[Type[BaseException], Tuple[Type[BaseException], ...]]
# What pickle itself raises for objects it cannot pickle (a lambda gives
# AttributeError "Can't pickle local object", a lock TypeError).
UNPICKLABLE = (TypeError, AttributeError, pickle.PicklingError)


@pytest.fixture(autouse=True)
def _collect_clients() -> Iterator[None]:
    """Free this test's clients now rather than during a later test (some
    tests count the engine's live clients)."""
    yield
    gc.collect()


class Env:
    """One client of each API against one embedded server."""

    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.c = omcache.Client([addr], connect_timeout=0.5, io_timeout=0.5)
        self.sc = SerdeClient([addr], connect_timeout=0.5, io_timeout=0.5)
        self.oc = omcache.OMcache([addr])
        self.mc = memcache.Client([addr])
        self.pl = pylibmc.Client([addr], binary=True)

    def close(self) -> None:
        self.c.close()
        self.sc.close()
        self.oc.free()


def _client(servers: Any, **kw: Any) -> None:
    """Build an omcache.Client and use it (some specs are checked by the engine)."""
    options: Dict[str, Any] = {"connect_timeout": 0.5, "io_timeout": 0.5}
    options.update(kw)
    omcache.Client(servers, **options).get("k")


def _set_multi_bad_key(e: Env) -> None:
    errors: Dict[str, Exception] = {}
    assert e.c.set_multi({"fine": b"v", "a b": b"v"}, errors=errors) == ["a b"]
    raise errors["a b"]


def _get_multi_bad_key(e: Env) -> None:
    errors: Dict[str, Exception] = {}
    e.c.get_multi(["fine", "k" * 251], errors=errors)
    raise errors["k" * 251]


def _delete_multi_bad_key(e: Env) -> None:
    errors: Dict[str, Exception] = {}
    assert e.c.delete_multi(["a\nb"], errors=errors) == ["a\nb"]
    raise errors["a\nb"]


CASES: List[Tuple[str, Exc, Callable[[Env], object]]] = [
    # -- keys, omcache.Client ------------------------------------------------
    ("key-space", omcache.InvalidKeyError, lambda e: e.c.get("a b")),
    ("key-newline", omcache.InvalidKeyError, lambda e: e.c.set("a\nb", b"v")),
    ("key-crlf-injection", omcache.InvalidKeyError, lambda e: e.c.set("k\r\nflush_all", b"v")),
    ("key-tab", omcache.InvalidKeyError, lambda e: e.c.delete("a\tb")),
    ("key-nul", omcache.InvalidKeyError, lambda e: e.c.get("a\x00b")),
    ("key-control-char", omcache.InvalidKeyError, lambda e: e.c.incr("a\x01b")),
    ("key-del-char", omcache.InvalidKeyError, lambda e: e.c.touch("a\x7fb", 10)),
    ("key-251-bytes", omcache.InvalidKeyError, lambda e: e.c.get("k" * 251)),
    ("key-126-two-byte-chars", omcache.InvalidKeyError, lambda e: e.c.get("é" * 126)),
    ("key-empty-str", omcache.InvalidKeyError, lambda e: e.c.get("")),
    ("key-empty-bytes", omcache.InvalidKeyError, lambda e: e.c.add(b"", b"v")),
    ("key-none", TypeError, lambda e: e.c.get(None)),
    ("key-int", TypeError, lambda e: e.c.get(42)),
    ("key-float", TypeError, lambda e: e.c.set(1.5, b"v")),
    ("key-list", TypeError, lambda e: e.c.get(["a"])),
    ("key-tuple", TypeError, lambda e: e.c.delete(("a",))),
    ("key-dict", TypeError, lambda e: e.c.get({"a": 1})),
    ("multi-key-none", TypeError, lambda e: e.c.get_multi(["ok", None])),
    ("multi-key-nested-list", TypeError, lambda e: e.c.get_multi([["a", "b"]])),
    ("multi-key-nested-in-set-multi", TypeError, lambda e: e.c.set_multi({("a",): b"v"})),
    ("set-multi-bad-key-reported", omcache.InvalidKeyError, _set_multi_bad_key),
    ("get-multi-long-key-reported", omcache.InvalidKeyError, _get_multi_bad_key),
    ("delete-multi-bad-key-reported", omcache.InvalidKeyError, _delete_multi_bad_key),
    # -- values ----------------------------------------------------------------
    ("value-str-for-raw-client", TypeError, lambda e: e.c.set("k", "text")),
    ("value-none", TypeError, lambda e: e.c.set("k", None)),
    ("value-int-for-raw-client", TypeError, lambda e: e.c.append("k", 1)),
    ("value-over-item-size", omcache.TooLargeValueError, lambda e: e.c.set("k", b"x" * (ITEM_SIZE + 1))),
    ("value-over-item-size-multi", omcache.TooLargeValueError, lambda e: _raise_failed(e.c, {"big": b"x" * (ITEM_SIZE + 1)})),
    ("serde-unpicklable-lambda", UNPICKLABLE, lambda e: e.sc.set("k", lambda: 1)),
    ("serde-unpicklable-lock", UNPICKLABLE, lambda e: e.sc.set("k", threading.Lock())),
    ("serde-unpicklable-generator", UNPICKLABLE, lambda e: e.sc.set("k", (i for i in range(3)))),
    ("serde-over-item-size", omcache.TooLargeValueError, lambda e: e.sc.set("k", os.urandom(ITEM_SIZE + 1))),
    ("serde-key-none", TypeError, lambda e: e.sc.get(None)),
    # -- numbers: expirations, flags, deltas, cas ------------------------------
    ("expire-negative", ValueError, lambda e: e.c.set("k", b"v", -1)),
    ("expire-2**32", ValueError, lambda e: e.c.set("k", b"v", 2**32)),
    ("expire-float", TypeError, lambda e: e.c.set("k", b"v", 1.5)),
    ("expire-str", TypeError, lambda e: e.c.set("k", b"v", "10")),
    ("touch-negative", ValueError, lambda e: e.c.touch("k", -5)),
    ("gat-huge", ValueError, lambda e: e.c.gat("k", 2**40)),
    ("flags-negative", ValueError, lambda e: e.c.set("k", b"v", flags=-1)),
    ("flags-2**32", ValueError, lambda e: e.c.set("k", b"v", flags=2**32)),
    ("incr-negative-delta", ValueError, lambda e: e.c.incr("k", -1)),
    ("incr-delta-2**64", ValueError, lambda e: e.c.incr("k", 2**64)),
    ("incr-delta-str", TypeError, lambda e: e.c.incr("k", "1")),
    ("cas-zero", ValueError, lambda e: e.c.cas("k", b"v", 0)),
    ("flush-negative-delay", ValueError, lambda e: e.c.flush_all(-1)),
    ("stats-group-with-space", ValueError, lambda e: e.c.stats("a b")),
    # -- server specifications ---------------------------------------------------
    ("servers-empty-list", omcache.ConfigError, lambda e: _client([])),
    ("servers-none", TypeError, lambda e: _client(None)),
    ("servers-int-entry", TypeError, lambda e: _client([11211])),
    ("server-port-too-big", omcache.ConfigError, lambda e: _client(["127.0.0.1:99999"])),
    ("server-port-zero", omcache.ConfigError, lambda e: _client(["127.0.0.1:0"])),
    ("server-port-not-a-number", omcache.ConfigError, lambda e: _client(["127.0.0.1:abc"])),
    ("server-unclosed-bracket", omcache.ConfigError, lambda e: _client(["[::1"])),
    ("server-with-space", omcache.ConfigError, lambda e: _client(["a b:11211"])),
    ("server-with-newline", omcache.ConfigError, lambda e: _client(["host\n:11211"])),
    ("server-bad-weight", omcache.ConfigError, lambda e: _client(["127.0.0.1:11211:x"])),
    ("server-negative-weight", omcache.ConfigError, lambda e: _client(["127.0.0.1:11211:-1"])),
    ("server-unresolvable", omcache.ConnectionError, lambda e: _client(["no-such-host.invalid:11211"])),
    # -- options and behaviors -----------------------------------------------------
    ("behavior-unknown-name", omcache.ConfigError, lambda e: _client([e.addr], behaviors={"no_such_behavior": 1})),
    ("behavior-wrong-type", omcache.ConfigError, lambda e: _client([e.addr], behaviors={"ketama": "yes"})),
    ("behavior-unknown-hash", omcache.ConfigError, lambda e: _client([e.addr], behaviors={"hash": "nope"})),
    ("distribution-unknown", omcache.ConfigError, lambda e: _client([e.addr], distribution="nope")),
    ("hash-hsieh-not-in-libhashkit", omcache.ConfigError, lambda e: _client([e.addr], hash="hsieh")),
    ("weights-count-mismatch", omcache.ConfigError, lambda e: _client([e.addr], weights=[1, 2])),
    ("connect-timeout-negative", omcache.ConfigError, lambda e: _client([e.addr], connect_timeout=-1)),
    ("io-timeout-huge", omcache.ConfigError, lambda e: omcache.Client([e.addr], io_timeout=1e12)),
    ("io-timeout-zero", omcache.ConfigError, lambda e: omcache.Client([e.addr], io_timeout=0)),
    ("io-timeout-nan", omcache.ConfigError, lambda e: omcache.Client([e.addr], io_timeout=float("nan"))),
    ("io-timeout-str", TypeError, lambda e: omcache.Client([e.addr], io_timeout="1")),
    ("failure-limit-negative", omcache.ConfigError, lambda e: omcache.Client([e.addr], failure_limit=-1)),
    ("failure-limit-float", TypeError, lambda e: omcache.Client([e.addr], failure_limit=1.5)),
    ("retry-timeout-negative", omcache.ConfigError, lambda e: omcache.Client([e.addr], retry_timeout=-0.1)),
    ("reconnect-timeout-huge", omcache.ConfigError, lambda e: omcache.Client([e.addr], reconnect_timeout=1e9)),
    ("dead-timeout-inf", omcache.ConfigError, lambda e: omcache.Client([e.addr], dead_timeout=float("inf"))),
    ("failover-not-bool", TypeError, lambda e: omcache.Client([e.addr], failover="yes")),
    ("unknown-keyword", TypeError, lambda e: omcache.Client([e.addr], no_such_option=1)),
    # -- omcache.OMcache (OMcache's API, milliseconds) ------------------------------
    ("omcache-key-space", omcache.InvalidKeyError, lambda e: e.oc.get("a b")),
    ("omcache-value-none", TypeError, lambda e: e.oc.set("k", None)),
    ("omcache-expiration-negative", ValueError, lambda e: e.oc.set("k", b"v", expiration=-1)),
    ("omcache-connect-timeout-negative", ValueError, lambda e: setattr(e.oc, "connect_timeout", -1)),
    ("omcache-reconnect-timeout-negative", ValueError, lambda e: setattr(e.oc, "reconnect_timeout", -5)),
    ("omcache-dead-timeout-str", TypeError, lambda e: setattr(e.oc, "dead_timeout", "x")),
    ("omcache-unknown-distribution", omcache.Error, lambda e: e.oc.set_distribution_method("nope")),
    ("omcache-call-timeout-str", TypeError, lambda e: e.oc.get("k", timeout="1")),
    # -- omcache.memcache (python-memcached's API) -----------------------------------
    ("memcache-key-space", memcache.MemcachedKeyCharacterError, lambda e: e.mc.set("a b", 1)),
    ("memcache-key-too-long", memcache.MemcachedKeyLengthError, lambda e: e.mc.get("k" * 300)),
    ("memcache-key-none", memcache.MemcachedKeyNoneError, lambda e: e.mc.get(None)),
    ("memcache-key-int", memcache.MemcachedKeyTypeError, lambda e: e.mc.get(5)),
    # -- omcache_pylibmc (pylibmc's API) ----------------------------------------------
    ("pylibmc-key-too-long", ValueError, lambda e: e.pl.get("k" * 300)),
    ("pylibmc-key-none", TypeError, lambda e: e.pl.get(None)),
    ("pylibmc-key-nested", TypeError, lambda e: e.pl.get_multi([["a"]])),
    ("pylibmc-unpicklable", UNPICKLABLE, lambda e: e.pl.set("k", threading.Lock())),
    ("pylibmc-over-item-size", pylibmc.TooBig, lambda e: e.pl.set("k", b"x" * (ITEM_SIZE + 1))),
    ("pylibmc-unknown-behavior", ValueError, lambda e: pylibmc.Client([e.addr], behaviors={"nope": 1})),
    ("pylibmc-behavior-wrong-type", TypeError, lambda e: pylibmc.Client([e.addr], behaviors={"connect_timeout": "x"})),
    ("pylibmc-incr-negative", ValueError, lambda e: e.pl.incr("k", -1)),
]


def _raise_failed(c: omcache.Client, mapping: Dict[str, bytes]) -> None:
    errors: Dict[str, Exception] = {}
    failed = c.set_multi(mapping, errors=errors)
    assert failed == list(mapping)
    raise errors[failed[0]]


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with EmbeddedServer(item_size_max=ITEM_SIZE) as server:
        e = Env(server.address)
        yield e
        e.close()


def test_the_table_is_large_and_its_ids_unique() -> None:
    ids = [c[0] for c in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("name,exc,call", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_exception_and_the_client_keeps_working(
    env: Env, name: str, exc: Exc, call: Callable[[Env], object]
) -> None:
    with pytest.raises(exc) as info:
        call(env)
    assert str(info.value), f"{name}: {type(info.value).__name__} without a message"
    # Nothing reached a server that could have confused it: the clients work.
    key = f"alive-{name}"
    assert env.c.set(key, b"1") and env.c.get(key) == b"1"
    assert env.sc.get(key) == b"1"
    assert env.pl.get(key) == b"1"


_CHILD = """
import faulthandler, sys
faulthandler.enable()
sys.path[:0] = [{tests!r}, {python!r}]
import test_bad_input as t
from omcache.testing import EmbeddedServer
raised = 0
with EmbeddedServer(item_size_max=t.ITEM_SIZE) as server:
    env = t.Env(server.address)
    for name, exc, call in t.CASES:
        try:
            call(env)
        except exc:
            raised += 1
    assert env.c.set("after", b"ok") and env.c.get("after") == b"ok"
    env.close()
print("raised", raised, "of", len(t.CASES))
"""


def test_the_whole_table_in_one_fresh_interpreter_which_exits_normally() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    # the omcache under test: the installed package, or the source tree when built in place
    code = _CHILD.format(tests=here, python=os.path.dirname(os.path.dirname(os.path.abspath(omcache.__file__))))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    assert r.stdout.decode().split() == ["raised", str(len(CASES)), "of", str(len(CASES))]

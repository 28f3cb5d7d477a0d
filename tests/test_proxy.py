"""Through a real proxy: twemproxy (Debian's nutcracker) in front of two memcached.

twemproxy speaks only memcached's classic text protocol and closes the
connection on anything else (meta, binary, and the commands it does not
route: flush_all, stats, gat, verbosity).  The drop-ins must do there what
the real pylibmc (binary=False) and python-memcached do, call for call, and
every value must land on a backend as the proxy placed it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

import omcache
import omcache.memcache
import omcache_pylibmc
from omcache.testing import MemcachedProcess, free_port

NUTCRACKER = shutil.which("nutcracker") or "/usr/sbin/nutcracker"


class Twemproxy:
    """A nutcracker process in front of backends, on a free port."""

    def __init__(self, backends: List[MemcachedProcess]) -> None:
        self.dir = tempfile.mkdtemp(prefix="omcache-twemproxy-")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        conf = os.path.join(self.dir, "nutcracker.yml")
        with open(conf, "w") as f:
            f.write(
                "pool:\n"
                f"  listen: 127.0.0.1:{self.port}\n"
                "  hash: fnv1a_64\n"
                "  distribution: modula\n"
                "  timeout: 2000\n"
                "  auto_eject_hosts: false\n"
                "  servers:\n" + "".join(f"   - {b.address}:1\n" for b in backends)
            )
        self.proc = subprocess.Popen(
            [NUTCRACKER, "-c", conf, "-s", str(free_port()), "-a", "127.0.0.1", "-o", os.path.join(self.dir, "log"),
             "-p", os.path.join(self.dir, "pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nutcracker did not start: {open(os.path.join(self.dir, 'log')).read()}")
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def proxy() -> Iterator[Tuple[Twemproxy, List[MemcachedProcess]]]:
    if not os.path.exists(NUTCRACKER):
        if os.environ.get("CI"):
            pytest.fail("nutcracker (twemproxy) is not installed, and CI must run the proxy tests")
        pytest.skip("nutcracker is not installed (apt-get install nutcracker)")
    backends = [MemcachedProcess().start(), MemcachedProcess().start()]
    p = Twemproxy(backends)
    yield p, backends
    p.stop()
    for b in backends:
        b.stop()


def raw(address: str, request: bytes) -> bytes:
    """One text request straight to a server, reading until END/a status line."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.sendall(request)
        out = b""
        while not out.endswith((b"END\r\n", b"STORED\r\n", b"DELETED\r\n", b"NOT_FOUND\r\n", b"OK\r\n")):
            d = s.recv(65536)
            if not d:
                break
            out += d
        return out


def on_backends(backends: List[MemcachedProcess], key: str) -> List[Optional[bytes]]:
    """The value each backend holds for key (None: not there), read directly."""
    found: List[Optional[bytes]] = []
    for b in backends:
        r = raw(b.address, b"get " + key.encode() + b"\r\n")
        if r.startswith(b"VALUE "):
            head, rest = r.split(b"\r\n", 1)
            n = int(head.split()[3])
            found.append(rest[:n])
        else:
            found.append(None)
    return found


def outcome(f: Callable[[], Any], prefix: str) -> Tuple[str, Any]:
    """What a call did: ("ok", result) or ("raised", the exception's class
    name); the clients' key prefix is taken off keys in results."""
    try:
        r = f()
    except Exception as e:  # noqa: BLE001 - the class is the outcome
        return ("raised", type(e).__name__)
    if isinstance(r, dict):
        r = {k.replace(prefix, "P-", 1) if isinstance(k, str) else k: v for k, v in r.items()}
    elif isinstance(r, list) and all(isinstance(k, str) for k in r):
        r = [k.replace(prefix, "P-", 1) for k in r]
    return ("ok", r)


def pylibmc_calls(mc: Any, p: str) -> List[Tuple[str, Tuple[str, Any]]]:
    """pylibmc's API, call by call, through the proxy; keys prefixed with p."""
    k = p + "k"
    calls: List[Tuple[str, Callable[[], Any]]] = [
        ("set", lambda: mc.set(k, "v1")),
        ("get", lambda: mc.get(k)),
        ("get miss", lambda: mc.get(p + "missing")),
        ("add existing", lambda: mc.add(k, "x")),
        ("add new", lambda: mc.add(p + "new", 5)),
        ("get int", lambda: mc.get(p + "new")),
        ("replace missing", lambda: mc.replace(p + "missing", "x")),
        ("replace", lambda: mc.replace(k, "v2")),
        ("append", lambda: mc.append(k, "+a")),
        ("prepend", lambda: mc.prepend(k, "p+")),
        ("get after concat", lambda: mc.get(k)),
        ("gets+cas", lambda: mc.cas(k, "v3", mc.gets(k)[1])),
        ("cas stale", lambda: mc.cas(k, "v4", 1)),
        ("get after cas", lambda: mc.get(k)),
        ("set counter", lambda: mc.set(p + "n", 10)),
        ("incr", lambda: mc.incr(p + "n", 5)),
        ("decr", lambda: mc.decr(p + "n", 100)),
        ("incr missing", lambda: mc.incr(p + "missing", 1)),
        ("incr non-number", lambda: mc.incr(k, 1)),
        ("touch", lambda: mc.touch(k, 100)),
        ("touch missing", lambda: mc.touch(p + "missing", 100)),
        ("set_multi", lambda: mc.set_multi({p + "a": "1", p + "b": b"2", p + "c": [3]})),
        ("get_multi", lambda: mc.get_multi([p + "a", p + "b", p + "c", p + "missing"])),
        ("delete_multi", lambda: mc.delete_multi([p + "a", p + "missing"])),
        ("get_multi after", lambda: mc.get_multi([p + "a", p + "b"])),
        ("delete", lambda: mc.delete(k)),
        ("delete missing", lambda: mc.delete(k)),
        ("large value", lambda: mc.set(p + "big", b"x" * 500_000)),
        ("get large", lambda: len(mc.get(p + "big"))),
    ]
    return [(name, outcome(f, p)) for name, f in calls]


def memcache_calls(mc: Any, p: str) -> List[Tuple[str, Tuple[str, Any]]]:
    """python-memcached's API, call by call, through the proxy."""
    k = p + "k"
    calls: List[Tuple[str, Callable[[], Any]]] = [
        ("set", lambda: mc.set(k, "v1")),
        ("get", lambda: mc.get(k)),
        ("get miss", lambda: mc.get(p + "missing")),
        ("add existing", lambda: mc.add(k, "x")),
        ("add new", lambda: mc.add(p + "new", 5)),
        ("get int", lambda: mc.get(p + "new")),
        ("replace missing", lambda: mc.replace(p + "missing", "x")),
        ("replace", lambda: mc.replace(k, "v2")),
        ("append", lambda: mc.append(k, "+a")),
        ("prepend", lambda: mc.prepend(k, "p+")),
        ("get after concat", lambda: mc.get(k)),
        ("incr", lambda: (mc.set(p + "n", 10), mc.incr(p + "n", 5))),
        ("decr", lambda: mc.decr(p + "n", 100)),
        ("incr missing", lambda: mc.incr(p + "missing", 1)),
        ("touch", lambda: mc.touch(k, 100)),
        ("set_multi", lambda: mc.set_multi({p + "a": "1", p + "b": 2, p + "c": [3]})),
        ("get_multi", lambda: mc.get_multi([p + "a", p + "b", p + "c", p + "missing"])),
        ("delete_multi", lambda: mc.delete_multi([p + "a", p + "missing"])),
        ("get_multi after", lambda: mc.get_multi([p + "a", p + "b"])),
        ("delete", lambda: mc.delete(k)),
        ("delete missing", lambda: mc.delete(k)),
        ("large value", lambda: mc.set(p + "big", b"x" * 500_000)),
        ("get large", lambda: len(mc.get(p + "big"))),
    ]
    return [(name, outcome(f, p)) for name, f in calls]


def test_omcache_pylibmc_does_what_pylibmc_does_through_twemproxy(proxy: Tuple[Twemproxy, List[MemcachedProcess]]) -> None:
    pylibmc = pytest.importorskip("pylibmc") if not os.environ.get("CI") else __import__("pylibmc")
    p, backends = proxy
    behaviors = {"cas": True}  # else pylibmc's gets gives no CAS to use
    want = pylibmc_calls(pylibmc.Client([p.address], binary=False, behaviors=behaviors), "plm-")
    got = pylibmc_calls(omcache_pylibmc.Client([p.address], binary=False, behaviors=behaviors), "omp-")
    assert got == want
    # Not everything failed alike: the calls worked, and the values are on
    # the backends where the proxy put them.
    assert dict(got)["get after cas"] == ("ok", "v3")
    assert dict(got)["get_multi after"] == ("ok", {"P-b": b"2"})
    for key, value in (("omp-b", b"2"), ("omp-new", b"5"), ("omp-n", b"0")):
        # (memcached keeps a decremented number's width: "15" becomes "0 ")
        held = [v.rstrip() if v else v for v in on_backends(backends, key)]
        assert sorted(held, key=lambda v: v is None) == [value, None], (key, held)


def test_omcache_memcache_does_what_python_memcached_does_through_twemproxy(
    proxy: Tuple[Twemproxy, List[MemcachedProcess]],
) -> None:
    memcache = pytest.importorskip("memcache") if not os.environ.get("CI") else __import__("memcache")
    p, backends = proxy
    want = memcache_calls(memcache.Client([p.address]), "pm-")
    got = memcache_calls(omcache.memcache.Client([p.address]), "om-")
    assert got == want
    assert dict(got)["get after concat"] == ("ok", "p+v2+a")
    held = on_backends(backends, "om-b")
    assert sorted(held, key=lambda v: v is None) == [b"2", None]


def test_omcache_text_protocol_through_twemproxy(proxy: Tuple[Twemproxy, List[MemcachedProcess]]) -> None:
    p, backends = proxy
    mc = omcache.Client([p.address], protocol="text", io_timeout=2.0)
    keys = [f"om-text-{i}" for i in range(40)]
    assert mc.set_multi({k: k.encode() for k in keys}) == []
    assert mc.get_multi(keys) == {k: k.encode() for k in keys}
    # The proxy spreads them: both backends hold some, none holds a key twice.
    placed = [on_backends(backends, k) for k in keys]
    assert all(sorted(h, key=lambda v: v is None) == [k.encode(), None] for k, h in zip(keys, placed))
    assert {h.index(k.encode()) for k, h in zip(keys, placed)} == {0, 1}
    assert mc.set("om-t", b"1") and mc.add("om-t", b"2") is False
    assert mc.incr("om-t", 4) == 5 and mc.decr("om-t", 10) == 0
    assert mc.incr("om-created", 3, initial=7) == 7 and mc.incr("om-created", 3, initial=7) == 10
    assert mc.append("om-t", b"9") and mc.get("om-t") == b"09"
    v, cas = mc.gets("om-t")
    assert mc.cas("om-t", b"new", cas) is True and mc.cas("om-t", b"newer", cas) is False
    assert mc.touch("om-t", 60) is True and mc.touch("om-none", 60) is False
    assert mc.delete_multi(keys + ["om-none"]) == ["om-none"]
    assert mc.delete("om-t") is True and mc.delete("om-t") is False
    assert set(mc.version().values()) == {"1.6.18"} or all(v for v in mc.version().values())


@pytest.mark.parametrize("call", ["flush_all", "stats", "gat"])
def test_commands_twemproxy_refuses_give_a_clear_error_not_a_hang(
    proxy: Tuple[Twemproxy, List[MemcachedProcess]], call: str,
) -> None:
    p, _ = proxy
    mc = omcache.Client([p.address], protocol="text", io_timeout=1.0, connect_timeout=1.0)
    mc.set("om-refused", b"x")
    start = time.monotonic()
    err: object
    if call == "stats":
        err = mc.stats()[p.address]  # per server: the exception in place of the dict
    else:
        with pytest.raises(omcache.ServerError) as info:
            mc.gat("om-refused", 10) if call == "gat" else mc.flush_all()
        err = info.value
    # The proxy closes the connection at once: no timeout was waited for
    # (the bound leaves the io_timeout out, with room for a loaded machine).
    assert time.monotonic() - start < 0.9
    assert isinstance(err, omcache.ServerError), err
    assert p.address in str(err) and "does not support" in str(err), str(err)
    assert mc.get("om-refused") == b"x", "the client keeps working"


@pytest.mark.parametrize("protocol", ["meta", "binary"])
def test_meta_or_binary_through_twemproxy_names_the_protocol_to_choose(
    proxy: Tuple[Twemproxy, List[MemcachedProcess]], protocol: str,
) -> None:
    p, _ = proxy
    mc = omcache.Client([p.address], protocol=protocol, failure_limit=1)
    for _ in range(3):  # not mistaken for a dead server: the same clear error each time
        with pytest.raises(omcache.WrongProtocolError) as info:
            mc.get("om-any")
        assert p.address in str(info.value) and "text" in str(info.value)
        assert not isinstance(info.value, omcache.ServerDownError)

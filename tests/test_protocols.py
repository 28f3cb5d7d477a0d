"""What each protocol puts on the wire, and what only the meta protocol offers.

A recording relay sits between the client and a real memcached and keeps
both directions' bytes, so the tests see exactly what is sent and answered.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator, List, Tuple, Union

import pytest

import omcache
from omcache.testing import EmbeddedServer, MemcachedProcess


class Relay:
    """A TCP relay on a free port that records what passes each way."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.lsock.getsockname()[1]}"
        self.sent = bytearray()  # client -> server
        self.answered = bytearray()  # server -> client
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(c, s, self.sent), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, self.answered), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bytearray) -> None:
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                with self.lock:
                    record += d
                dst.sendall(d)
        except OSError:
            pass
        finally:
            for x in (src, dst):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def take(self) -> Tuple[bytes, bytes]:
        """Both directions' bytes since the last take, once the relay is idle."""
        time.sleep(0.05)  # let the pumps forward what is in flight
        with self.lock:
            out = bytes(self.sent), bytes(self.answered)
            self.sent.clear()
            self.answered.clear()
        return out

    def close(self) -> None:
        self.lsock.close()


@pytest.fixture
def relay(memcached: Union[MemcachedProcess, EmbeddedServer]) -> Iterator[Relay]:
    r = Relay(memcached.address)
    yield r
    r.close()


def commands(stream: bytes) -> List[bytes]:
    """The command lines of a text/meta request stream, skipping stored data."""
    out: List[bytes] = []
    while stream:
        line, _, stream = stream.partition(b"\r\n")
        out.append(line)
        words = line.split(b" ")
        if words[0] == b"ms":
            stream = stream[int(words[2]) + 2 :]
        elif words[0] in (b"set", b"add", b"replace", b"append", b"prepend", b"cas"):
            stream = stream[int(words[4]) + 2 :]
    return out


def test_default_client_puts_only_meta_commands_on_the_wire(relay: Relay) -> None:
    mc = omcache.Client([relay.address])
    assert mc.protocol == "meta"
    keys = [f"wire-{i}" for i in range(10)]
    mc.set("w", b"1", expire=100, flags=3)
    mc.get("w")
    mc.get_item("nope")
    mc.add("w", b"2")
    mc.replace("w", b"3")
    mc.append("w", b"4")
    mc.prepend("w", b"5")
    _, cas = mc.gets("w")
    mc.cas("w", b"6", cas)
    mc.touch("w", 10)
    mc.gat("w", 10)
    mc.incr("n", 1, initial=5)
    mc.decr("n", 1)
    mc.get_meta("w", bump=False)
    mc.set_multi({k: b"v" for k in keys})
    mc.get_multi(keys + ["missing"])
    mc.delete_multi(keys)
    mc.delete("w")
    mc.noop()
    sent, _ = relay.take()
    verbs = {c.split(b" ")[0] for c in commands(sent)}
    assert verbs <= {b"mg", b"ms", b"md", b"ma", b"mn"}, verbs
    assert verbs == {b"mg", b"ms", b"md", b"ma", b"mn"}


def test_meta_set_and_delete_multi_of_100_get_back_only_the_end_marker(relay: Relay) -> None:
    mc = omcache.Client([relay.address])
    keys = [f"quiet-{i}" for i in range(100)]
    relay.take()
    assert mc.set_multi({k: b"value" for k in keys}) == []
    sent, answered = relay.take()
    assert answered == b"MN\r\n"
    assert [c.split(b" ")[0] for c in commands(sent)] == [b"ms"] * 100 + [b"mn"]
    assert all(b" q" in c and b" O" in c for c in commands(sent)[:-1])
    assert mc.delete_multi(keys) == []
    sent, answered = relay.take()
    assert answered == b"MN\r\n"
    # Failures still come back, one line each, and are reported per key.
    errors: dict = {}
    assert mc.delete_multi(keys[:3] + ["never-set"], errors=errors) == keys[:3] + ["never-set"]
    _, answered = relay.take()
    assert answered.count(b"NF ") == 4 and answered.endswith(b"MN\r\n")
    assert all(isinstance(e, omcache.NotFoundError) for e in errors.values())


def test_meta_get_multi_is_one_quiet_pipeline_misses_silent(relay: Relay) -> None:
    mc = omcache.Client([relay.address])
    mc.set_multi({"gm-a": b"A", "gm-b": b"B"})
    relay.take()
    assert mc.get_multi(["gm-a", "gm-none", "gm-b"]) == {"gm-a": b"A", "gm-b": b"B"}
    sent, answered = relay.take()
    cmds = commands(sent)
    assert [c.split(b" ")[:2] for c in cmds] == [[b"mg", b"gm-a"], [b"mg", b"gm-none"], [b"mg", b"gm-b"], [b"mn"]]
    assert all(b" q" in c and b" k" in c and b" O" in c for c in cmds[:-1])
    assert b"EN" not in answered and answered.endswith(b"MN\r\n") and answered.count(b"VA ") == 2


def test_binary_keys_travel_base64_in_meta(relay: Relay) -> None:
    mc = omcache.Client([relay.address], binary_keys=True)
    key = b"sp ace\x00\xff\n"
    relay.take()
    assert mc.set(key, b"v") and mc.get(key) == b"v"
    assert mc.get_multi([key, "plain"]) == {key: b"v"}
    sent, _ = relay.take()
    assert key not in sent
    assert all(b" b" in c for c in commands(sent) if c.startswith((b"ms", b"mg")) and b"plain" not in c)


@pytest.mark.parametrize("protocol,verbs", [
    ("text", {b"gets", b"set", b"delete", b"incr", b"add"}),
    ("binary", None),
])
def test_text_and_binary_clients_speak_their_protocol(relay: Relay, protocol: str, verbs: object) -> None:
    mc = omcache.Client([relay.address], protocol=protocol)
    relay.take()
    mc.set("p", b"1")
    mc.get("p")
    mc.get_multi(["p", "q"])
    mc.delete("p")
    mc.incr("pn", 1, initial=1)  # text: incr misses, then add creates
    sent, _ = relay.take()
    if protocol == "binary":
        assert sent[0] == 0x80 and b"\r\n" not in sent[:24]
    else:
        assert {c.split(b" ")[0] for c in commands(sent)} == verbs


def test_get_meta_ttl_size_fetched_and_peek(memcached: Union[MemcachedProcess, EmbeddedServer]) -> None:
    mc = omcache.Client([memcached.address])
    mc.set("meta-1", b"hello", expire=100, flags=7)
    m = mc.get_meta("meta-1", bump=False)
    assert m is not None and (m.value, m.flags, m.size, m.fetched) == (b"hello", 7, 5, False)
    assert 98 <= m.ttl <= 100 and m.cas > 0
    peek = mc.get_meta("meta-1", bump=False)
    assert peek is not None and peek.fetched is False, "a peek does not count as a fetch"
    mc.get("meta-1")
    again = mc.get_meta("meta-1")
    assert again is not None and again.fetched is True
    mc.set("meta-2", b"x")
    forever = mc.get_meta("meta-2")
    assert forever is not None and forever.ttl == -1
    assert mc.get_meta("meta-none") is None


def test_get_meta_last_access_and_no_bump(memcached: Union[MemcachedProcess, EmbeddedServer]) -> None:
    mc = omcache.Client([memcached.address])
    mc.set("meta-la", b"v")
    if isinstance(memcached, EmbeddedServer):
        memcached.advance_clock(3.0)
    else:
        time.sleep(2.2)  # memcached's clock ticks once a second
    peek = mc.get_meta("meta-la", bump=False)
    assert peek is not None and peek.last_access >= 2
    still = mc.get_meta("meta-la", bump=False)
    assert still is not None and still.last_access >= 2, "a peek leaves the access time alone"
    # (A bumping read need not reset it: memcached updates an item's access
    # time at most once a minute.)


@pytest.mark.parametrize("protocol", ["text", "binary"])
def test_get_meta_needs_the_meta_protocol(memcached: Union[MemcachedProcess, EmbeddedServer], protocol: str) -> None:
    mc = omcache.Client([memcached.address], protocol=protocol)
    with pytest.raises(NotImplementedError, match="meta protocol"):
        mc.get_meta("k")


def test_verbosity_in_text_and_meta(memcached: Union[MemcachedProcess, EmbeddedServer], protocol: str) -> None:
    mc = omcache.Client([memcached.address], protocol=protocol)
    if protocol == "binary":
        # memcached leaves a binary VERBOSITY unanswered: refused unsent.
        with pytest.raises(NotImplementedError, match="verbosity"):
            mc.verbosity(1)
        return
    assert mc.verbosity(1) is True and mc.verbosity(0) is True
    with pytest.raises(ValueError):
        mc.verbosity(-1)


def test_unknown_protocol_is_a_config_error() -> None:
    with pytest.raises(omcache.ConfigError, match="protocol"):
        omcache.Client(["127.0.0.1:1"], protocol="ascii")


@pytest.mark.parametrize("protocol,verb", [("meta", b"ms "), ("text", b"set "), ("binary", b"\x80\x01")])
def test_cli_protocol_option(relay: Relay, protocol: str, verb: bytes) -> None:
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "omcache", "--servers", relay.address, "--protocol", protocol]
    relay.take()
    subprocess.run(cmd + ["set", "cli-p", "value"], check=True, capture_output=True, timeout=60)
    out = subprocess.run(cmd + ["get", "cli-p"], check=True, capture_output=True, timeout=60)
    assert out.stdout.strip() == b"value"
    sent, _ = relay.take()
    assert sent.startswith(verb), sent[:20]

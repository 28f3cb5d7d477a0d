"""Errors say why: the refused key and the reason, a too-large value's size and
the limits, an unknown stats group, no Go package names; the same helper
words it for omcache.Client, SerdeClient, OMcache, omcache.memcache and
omcache_pylibmc."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator, Union

import pytest

import omcache
import omcache.memcache as om_memcache
import omcache_pylibmc
from omcache import _messages
from omcache.testing import EmbeddedServer, MemcachedProcess

Server = Union[MemcachedProcess, EmbeddedServer]

# (key, what the message must say about it)
BAD_KEYS = [
    ("", "invalid key '': it is empty"),
    ("k" * 251, "it is 251 bytes long, over the 250-byte limit"),
    ("é" * 126, "it is 252 bytes long in UTF-8, over the 250-byte limit"),
    ("user 42", "invalid key 'user 42': it holds a space ' ' (0x20) at position 4"),
    ("tab\there", "it holds a tab '\\t' (0x09) at position 3"),
    ("line\n", "it holds a newline '\\n' (0x0a) at position 4"),
    ("x\x01", "it holds a control character '\\x01' (0x01) at position 1"),
    ("del\x7f", "it holds a DEL '\\x7f' (0x7f) at position 3"),
    (b"\x00nul", "invalid key b'\\x00nul': it holds a NUL '\\x00' (0x00) at byte 0"),
]


@pytest.fixture(scope="module")
def mc(memcached: Server) -> Iterator[omcache.Client]:
    with omcache.Client([memcached.address]) as c:
        yield c


@pytest.mark.parametrize("key,says", BAD_KEYS)
def test_single_key_commands_name_the_key_and_the_reason(mc: omcache.Client, key: Union[str, bytes], says: str) -> None:
    for call in (lambda: mc.get(key), lambda: mc.set(key, b"v"), lambda: mc.delete(key),
                 lambda: mc.incr(key), lambda: mc.touch(key, 1), lambda: mc.get_item(key)):
        with pytest.raises(omcache.InvalidKeyError) as ei:
            call()
        assert says in str(ei.value)
        assert "malformed" not in str(ei.value)


def test_long_key_repr_is_cut(mc: omcache.Client) -> None:
    key = "k" * 5000
    with pytest.raises(omcache.InvalidKeyError) as ei:
        mc.get(key)
    msg = str(ei.value)
    assert len(msg) < 200, msg
    assert "5000 bytes long" in msg and "characters of repr" in msg


def test_multi_key_errors_name_each_bad_key(mc: omcache.Client) -> None:
    errors: dict = {}
    assert mc.set_multi({"fine": b"1", "bad key": b"2"}, errors=errors) == ["bad key"]
    assert "invalid key 'bad key': it holds a space ' ' (0x20) at position 3" in str(errors["bad key"])
    errors = {}
    mc.get_multi(["fine", "x" * 300], errors=errors)
    assert "it is 300 bytes long" in str(errors["x" * 300])


def test_binary_keys_still_refuse_length_but_not_spaces(memcached: Server) -> None:
    with omcache.Client([memcached.address], binary_keys=True) as c:
        assert c.set("with space", b"v")
        with pytest.raises(omcache.InvalidKeyError, match="it is 251 bytes long"):
            c.get("s" * 251)


def test_too_large_value_says_size_and_limits(memcached: Server) -> None:
    with omcache.Client([memcached.address], max_value_size=4 << 20) as c:
        value = b"x" * (2 << 20)  # both servers run with memcached's default -I 1m
        with pytest.raises(omcache.TooLargeValueError) as ei:
            c.set("big", value)
        msg = str(ei.value)
        assert f"value of {len(value)} bytes for key 'big'" in msg
        assert "item size limit" in msg and f"max_value_size is {4 << 20} bytes" in msg
        errors: dict = {}
        assert c.set_multi({"big": value}, errors=errors) == ["big"]
        assert f"value of {len(value)} bytes" in str(errors["big"])


def test_serde_client_and_omcache_api_use_the_same_words(memcached: Server) -> None:
    with omcache.SerdeClient([memcached.address]) as sc:
        with pytest.raises(omcache.InvalidKeyError, match=r"invalid key b'a b': it holds a space ' ' \(0x20\) at byte 1"):
            sc.set("a b", {"x": 1})
    om = omcache.OMcache([memcached.address])
    with pytest.raises(omcache.InvalidKeyError, match=r"it holds a newline '\\n' \(0x0a\) at position 1"):
        om.get("a\nb")


def test_memcache_keeps_its_exceptions_and_adds_the_reason(memcached: Server) -> None:
    c = om_memcache.Client([memcached.address])
    with pytest.raises(om_memcache.Client.MemcachedKeyCharacterError) as ei:
        c.set("a b", 1)
    assert str(ei.value).startswith("Control/space characters not allowed (key=b'a b')")
    assert "it holds a space ' ' (0x20) at byte 1" in str(ei.value)
    with pytest.raises(om_memcache.Client.MemcachedKeyLengthError) as el:
        c.set("k" * 300, 1)
    assert str(el.value).startswith("Key length is > 250")
    assert "it is 300 bytes long" in str(el.value)


def test_pylibmc_messages_name_key_and_reason(memcached: Server) -> None:
    text = omcache_pylibmc.Client([memcached.address], binary=False)
    with pytest.raises(omcache_pylibmc.ClientError) as ei:
        text.set("a b", 1)
    assert "invalid key b'a b': it holds a space ' ' (0x20) at byte 1" in str(ei.value)
    verify = omcache_pylibmc.Client([memcached.address], binary=False, behaviors={"verify_keys": True})
    with pytest.raises(omcache_pylibmc.BadKeyProvided) as eb:
        verify.get("caf\u00e9")
    assert "non-ASCII byte 0xc3 at byte 3" in str(eb.value)
    binary = omcache_pylibmc.Client([memcached.address], binary=True)
    with pytest.raises(omcache_pylibmc.TooBig) as et:
        binary.set("big", b"x" * (2 << 20))
    assert "value of 2097152 bytes" in str(et.value)


def test_unknown_stats_group_is_named(mc: omcache.Client) -> None:
    (res,) = mc.stats("nosuchgroup").values()
    assert isinstance(res, omcache.ServerError)
    assert str(res) == "the server has no stats group 'nosuchgroup'"


def test_stats_keep_the_servers_order(memcached_factory) -> None:  # type: ignore[no-untyped-def]
    server = memcached_factory()
    with omcache.Client([server.address]) as c:
        (first,) = c.stats().values()
        assert list(first)[:4] == ["pid", "uptime", "time", "version"]  # memcached's order
        for _ in range(3):
            (again,) = c.stats().values()
            assert list(again) == list(first)


def test_fault_errors_do_not_name_go_packages() -> None:
    with EmbeddedServer() as s:
        with pytest.raises(ValueError) as ei:
            s.set_fault("nosuchfault")
    msg = str(ei.value)
    assert "memcachedtest" not in msg and "embedded server: unknown fault 'nosuchfault'" in msg.replace('"', "'")


def test_engine_config_errors_do_not_name_go_packages() -> None:
    # Python checks the configuration first; the engine's own message (reached
    # when behaviors change the placement before it is resolved) must not
    # start with a Go package name.
    c = omcache.Client(["h:1"], distribution="python-memcached", behaviors={"hash": "md5"})
    with pytest.raises(omcache.ConfigError) as ei:
        c.get("k")
    assert not any(p in str(ei.value) for p in ("dist:", "hashkit:", "binprot:"))
    assert "python-memcached always hashes keys with crc" in str(ei.value)


def test_cli_stats_unknown_group_and_empty_servers(memcached: Server) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-m", "omcache", "--servers", memcached.address, "stats", "nosuchgroup"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 4, r.stderr
    assert "has no stats group 'nosuchgroup'" in r.stderr and "key not found" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "omcache", "--servers", "", "version"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2
    assert "--servers is empty" in r.stderr


def test_helper_reasons() -> None:
    assert _messages.bad_key_reason("ok") is None
    assert _messages.bad_key_reason(b"ok\xc3\xa9") is None  # UTF-8 bytes are fine in memcached keys
    assert _messages.bad_key_reason(b"ok\xc3", graphic_only=True) == "it holds a non-ASCII byte 0xc3 at byte 2"
    assert _messages.bad_key_reason("with space", binary_keys=True) is None
    assert _messages.invalid_key_message(42) == "invalid key 42: the engine refused it"
    assert _messages.too_large_message(10, 5) == (
        "value of 10 bytes is too large: over the server's item size limit (memcached -I, 1 MiB by default); "
        "this client's max_value_size is 5 bytes"
    )

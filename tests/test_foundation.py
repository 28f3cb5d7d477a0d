"""The foundation: import is cheap and clean, the engine round-trips bytes through a real memcached."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

import omcache
from omcache.testing import MemcachedProcess


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter (so import-time effects are observable)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def unique(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def test_import_does_not_load_engine_or_start_go_threads() -> None:
    r = run_python(
        """
        import os, sys
        before = len(os.listdir('/proc/self/task'))
        import omcache
        after = len(os.listdir('/proc/self/task'))
        print(before, after, any('_core' in m for m in sys.modules))
        """
    )
    assert r.returncode == 0, r.stderr
    before, after, loaded = r.stdout.split()
    assert before == after, "importing omcache started threads (the Go runtime)"
    assert loaded == "False"


def test_engine_load_leaves_gc_callbacks_and_cwd_alone(memcached: MemcachedProcess, tmp_path: object) -> None:
    r = run_python(
        f"""
        import gc, os
        start = os.getcwd()
        n = len(gc.callbacks)
        import omcache
        c = omcache.Client([{memcached.address!r}])
        c.set("cwd-check", b"x")
        # the generated gopy wrappers too (they are shipped, stripped)
        import omcache._gopy.bind, omcache._gopy.go
        names = [getattr(cb, '__name__', '') for cb in gc.callbacks]
        assert len(gc.callbacks) == n, names
        assert not any('gopy' in x for x in names), names
        assert os.getcwd() == start, (os.getcwd(), start)
        print("ok")
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_wrappers_have_no_chdir_or_gc_hook() -> None:
    import omcache._engine as eng

    d = os.path.dirname(eng.library_path())
    for name in ("bind.py", "go.py"):
        text = open(os.path.join(d, name)).read()
        assert "chdir" not in text and "_gopy_gc" not in text and "RequestGC" not in text


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_set_get_delete_round_trip(transport: str, memcached: MemcachedProcess, memcached_unix: MemcachedProcess) -> None:
    server = memcached if transport == "tcp" else memcached_unix
    c = omcache.Client([server.address])
    k = unique()
    assert c.get(k) is None
    assert c.set(k, b"value") is True
    assert c.get(k) == b"value"
    assert c.delete(k) is True
    assert c.get(k) is None
    assert c.delete(k) is False


def test_values_with_nul_bytes_empty_and_one_million_bytes(memcached: MemcachedProcess) -> None:
    c = omcache.Client([memcached.address])
    big = (b"\x00\x01abc\x00\xff" * 142858)[:1_000_000]
    assert len(big) == 1_000_000 and big.count(b"\x00") > 100_000
    for value in (b"", b"\x00", b"a\x00b", big):
        k = unique()
        assert c.set(k, value)
        assert c.get(k) == value


def test_bytearray_and_memoryview_values_are_accepted(memcached: MemcachedProcess) -> None:
    c = omcache.Client([memcached.address])
    k = unique()
    c.set(k, bytearray(b"ba"))
    assert c.get(k) == b"ba"
    c.set(k, memoryview(b"mv"))
    assert c.get(k) == b"mv"


def test_str_keys_are_utf8_on_the_wire(memcached: MemcachedProcess) -> None:
    c = omcache.Client([memcached.address])
    k = "clé-" + uuid.uuid4().hex
    c.set(k, b"v")
    assert c.get(k.encode("utf-8")) == b"v"


@pytest.mark.parametrize(
    "key",
    [
        "has space",
        "new\nline",
        "tab\tkey",
        "ctrl\x01char",
        "del\x7f",
        "nul\x00byte",
        "x" * 251,
        b"y" * 251,
        "é" * 126,  # 252 bytes in UTF-8
        "",
        b"",
    ],
)
def test_invalid_keys_raise_invalid_key_error(memcached: MemcachedProcess, key: object) -> None:
    c = omcache.Client([memcached.address])
    for op in (lambda: c.get(key), lambda: c.set(key, b"v"), lambda: c.delete(key)):
        with pytest.raises(omcache.InvalidKeyError):
            op()
    # the process and the client live on
    assert c.set("still-alive", b"yes") and c.get("still-alive") == b"yes"


def test_invalid_key_error_is_a_value_error() -> None:
    assert issubclass(omcache.InvalidKeyError, ValueError)


def test_250_byte_key_is_valid(memcached: MemcachedProcess) -> None:
    c = omcache.Client([memcached.address])
    k = "k" * 250
    assert c.set(k, b"max")
    assert c.get(k) == b"max"


@pytest.mark.parametrize("key", [None, 1, 1.5, ["a"], ("a",), {"a": 1}])
def test_non_string_keys_raise_type_error(memcached: MemcachedProcess, key: object) -> None:
    c = omcache.Client([memcached.address])
    with pytest.raises(TypeError):
        c.get(key)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, "text", 1, ["a"]])
def test_non_bytes_values_raise_type_error(memcached: MemcachedProcess, value: object) -> None:
    c = omcache.Client([memcached.address])
    with pytest.raises(TypeError):
        c.set("k", value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "servers",
    ["", [], ["127.0.0.1:0"], ["127.0.0.1:99999"], ["127.0.0.1:abc"], ["[::1"], ["a b:1"]],
)
def test_bad_server_specs_raise_config_error(servers: object) -> None:
    with pytest.raises(omcache.ConfigError):
        c = omcache.Client(servers)  # type: ignore[arg-type]
        c.get("k")


def test_dead_server_raises_connection_error_quickly() -> None:
    from omcache.testing import free_port

    c = omcache.Client([f"127.0.0.1:{free_port()}"], connect_timeout=0.5)
    with pytest.raises(omcache.ConnectionError):
        c.set("k", b"v")
    with pytest.raises(omcache.ConnectionError):
        c.get("k")


def test_value_over_item_size_raises_too_large_and_client_keeps_working(memcached: MemcachedProcess) -> None:
    c = omcache.Client([memcached.address])
    with pytest.raises(omcache.TooLargeValueError):
        c.set(unique(), b"x" * (2 * 1024 * 1024))
    k = unique()
    assert c.set(k, b"after") and c.get(k) == b"after"


def test_closed_client_raises(memcached: MemcachedProcess) -> None:
    with omcache.Client([memcached.address]) as c:
        c.set("k", b"v")
    with pytest.raises(omcache.ClientClosedError):
        c.get("k")


def test_client_is_collected_without_leaking_engine_clients(memcached: MemcachedProcess) -> None:
    from omcache import _engine

    c = omcache.Client([memcached.address])
    c.set("k", b"v")
    core = _engine.core()
    # Clients of earlier tests caught in reference cycles would otherwise be
    # freed (and counted) in the middle of the measurement.
    gc.collect()
    gc.disable()
    try:
        before = core.bind_ClientCount()
        for _ in range(50):
            c = omcache.Client([memcached.address])
            c.set("k", b"v")
            del c
        assert core.bind_ClientCount() == before - 1  # the first c was replaced too
    finally:
        gc.enable()

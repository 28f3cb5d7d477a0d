"""The ``omcache`` command line, run as a subprocess against servers the tests start."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Union

import pytest

import omcache
from omcache.testing import EmbeddedServer, MemcachedProcess, free_port

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(omcache.__file__)))
TIMEOUT = 30  # seconds for any one CLI run; they take well under one

Arg = Union[str, bytes]


def cli_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMCACHE_SERVERS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def run(
    *args: Arg,
    servers: Optional[str] = None,
    stdin: Optional[bytes] = None,
    env: Optional[Dict[str, str]] = None,
) -> "subprocess.CompletedProcess[bytes]":
    """Run ``python -m omcache [--servers S] ARGS`` and return the finished process."""
    cmd: List[Arg] = [sys.executable, "-m", "omcache"]
    if servers is not None:
        cmd += ["--servers", servers]
    cmd += list(args)
    return subprocess.run(
        cmd, input=stdin if stdin is not None else b"", capture_output=True, env=cli_env(env), timeout=TIMEOUT
    )


def assert_clean_failure(r: "subprocess.CompletedProcess[bytes]", code: int, *words: str) -> None:
    """Exit code as documented, a message on stderr naming what went wrong, and no traceback."""
    err = r.stderr.decode()
    assert r.returncode == code, (r.returncode, err)
    assert "Traceback" not in err
    assert err.startswith("omcache") or err.startswith("usage:"), err
    for w in words:
        assert w in err, (w, err)


def unique(prefix: str = "cli") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as s:
        yield s


@pytest.fixture
def three_servers() -> Iterator[List[EmbeddedServer]]:
    with EmbeddedServer() as a, EmbeddedServer() as b, EmbeddedServer() as c:
        yield [a, b, c]


# -- help and usage ---------------------------------------------------------------

COMMANDS = ["serve", "get", "set", "delete", "stats", "where", "flush", "version", "bench"]


def test_help_lists_every_command_and_the_exit_codes() -> None:
    r = run("--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    for c in COMMANDS:
        assert re.search(rf"^\s+{c}\s", out, re.M), c
    assert "exit codes" in out and "OMCACHE_SERVERS" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    r = run(command, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith(f"usage: omcache {command}")


def test_version_option_prints_the_package_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.decode().strip() == f"omcache {omcache.__version__}"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nosuchcommand"],
        ["get"],
        ["set", "k"],
        ["set", "k", "v", "--expire", "soon"],
        ["set", "k", "v", "--expire", "-1"],
        ["set", "k", "v", "--flags", str(1 << 32)],
        ["--connect-timeout", "0", "get", "k"],
        ["--io-timeout", "x", "get", "k"],
        ["flush", "--delay", "-3"],
        ["bench", "--ops", "0"],
        ["serve", "-I", "0"],
        ["serve", "-m", "0"],
        ["serve", "--listen", "nonsense"],
        ["serve", "--listen", "::1:80"],
    ],
)
def test_bad_command_lines_exit_2_with_usage(args: Sequence[str]) -> None:
    r = run(*args, servers="127.0.0.1:1")
    assert_clean_failure(r, 2, "usage: omcache")


def test_main_is_the_console_script_entry_point(server: EmbeddedServer) -> None:
    # A console script calls main() with sys.argv set and exits with its result.
    k = unique()
    omcache.Client([server.address]).set(k, b"via entry point")
    code = (
        "import sys; from omcache.__main__ import main; "
        f"sys.argv = ['omcache', '--servers', {server.address!r}, 'get', {k!r}]; sys.exit(main())"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, env=cli_env(), timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout == b"via entry point"


# -- get / set / delete, against real memcached and the embedded server -------------


def test_set_then_get_writes_the_raw_value(memcached: Union[MemcachedProcess, EmbeddedServer]) -> None:
    k = unique()
    r = run("set", k, "hello world", servers=memcached.address)
    assert r.returncode == 0 and r.stdout == b"" and r.stderr == b""
    r = run("get", k, servers=memcached.address)
    assert r.returncode == 0 and r.stdout == b"hello world" and r.stderr == b""
    assert omcache.Client([memcached.address]).get(k) == b"hello world"


def test_get_missing_key_exits_1(memcached: Union[MemcachedProcess, EmbeddedServer]) -> None:
    k = unique()
    r = run("get", k, servers=memcached.address)
    assert r.stdout == b""
    assert_clean_failure(r, 1, k, "not found")


def test_delete_exits_0_then_1_once_the_key_is_gone(memcached: Union[MemcachedProcess, EmbeddedServer]) -> None:
    k = unique()
    omcache.Client([memcached.address]).set(k, b"x")
    assert run("delete", k, servers=memcached.address).returncode == 0
    assert omcache.Client([memcached.address]).get(k) is None
    assert_clean_failure(run("delete", k, servers=memcached.address), 1, k, "not found")


def test_binary_value_with_nul_bytes_round_trips_through_stdin(memcached: Union[MemcachedProcess, EmbeddedServer]) -> None:
    k = unique()
    value = bytes(range(256)) + b"\x00\x00\r\n\x00" + os.urandom(4096) + b"\x00"
    r = run("set", k, "-", servers=memcached.address, stdin=value)
    assert r.returncode == 0, r.stderr
    assert omcache.Client([memcached.address]).get(k) == value
    r = run("get", k, servers=memcached.address)
    assert r.returncode == 0 and r.stdout == value


def test_set_dash_reads_stdin_and_an_empty_stdin_stores_an_empty_value(server: EmbeddedServer) -> None:
    k1, k2 = unique(), unique()
    assert run("set", k1, "-", servers=server.address, stdin=b"from stdin\n").returncode == 0
    assert run("set", k2, "-", servers=server.address, stdin=b"").returncode == 0
    mc = omcache.Client([server.address])
    assert mc.get(k1) == b"from stdin\n"
    assert mc.get(k2) == b""
    r = run("get", k2, servers=server.address)
    assert r.returncode == 0 and r.stdout == b""


def test_non_ascii_keys_and_values_arrive_as_the_bytes_given(server: EmbeddedServer) -> None:
    key = b"k\xff\xfe-" + uuid.uuid4().hex.encode()  # not UTF-8: passed through argv unchanged
    assert run("set", key, "h\u00e9llo", servers=server.address).returncode == 0
    assert omcache.Client([server.address]).get(key) == "h\u00e9llo".encode()
    assert run("get", key, servers=server.address).stdout == "h\u00e9llo".encode()


def test_set_flags_and_get_shows_flags_and_cas_on_stderr(server: EmbeddedServer) -> None:
    k = unique()
    assert run("set", k, "v", "--flags", "4294967295", servers=server.address).returncode == 0
    item = omcache.Client([server.address]).get_item(k)
    assert item is not None and item.flags == 0xFFFFFFFF
    r = run("get", k, "--flags", "--cas", servers=server.address)
    assert r.returncode == 0 and r.stdout == b"v"
    assert r.stderr.decode().splitlines() == ["flags: 4294967295", f"cas: {item.cas}"]
    r = run("get", k, "--cas", servers=server.address)
    assert r.stderr.decode().splitlines() == [f"cas: {item.cas}"]


def test_set_expire_makes_the_key_expire(server: EmbeddedServer) -> None:
    k, forever = unique(), unique()
    assert run("set", k, "v", "--expire", "5", servers=server.address).returncode == 0
    assert run("set", forever, "v", servers=server.address).returncode == 0
    assert run("get", k, servers=server.address).returncode == 0
    server.advance_clock(6)
    assert run("get", k, servers=server.address).returncode == 1
    assert run("get", forever, servers=server.address).returncode == 0


def test_servers_come_from_the_environment_unless_given(server: EmbeddedServer) -> None:
    k = unique()
    env = {"OMCACHE_SERVERS": server.address}
    assert run("set", k, "env", env=env).returncode == 0
    assert run("get", k, env=env).stdout == b"env"
    # --servers wins over the environment.
    r = run("get", k, servers=server.address, env={"OMCACHE_SERVERS": f"127.0.0.1:{free_port()}"})
    assert r.returncode == 0 and r.stdout == b"env"


# -- errors -------------------------------------------------------------------------


def test_unreachable_server_exits_3_with_the_address() -> None:
    addr = f"127.0.0.1:{free_port()}"
    for args in (["get", "k"], ["set", "k", "v"], ["delete", "k"], ["flush"], ["version"], ["stats"]):
        assert_clean_failure(run(*args, servers=addr), 3, addr)


def test_unreachable_default_server_hints_at_servers_option() -> None:
    # With no --servers, a refused connection to 127.0.0.1:11211 says how to
    # point the command elsewhere.
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", 11211)) == 0:
            pytest.skip("something listens on 127.0.0.1:11211, the CLI's default server")
    r = run("get", unique())
    assert_clean_failure(r, 3, "127.0.0.1:11211", "--servers", "OMCACHE_SERVERS")


def test_stalled_server_times_out_with_exit_3(server: EmbeddedServer) -> None:
    server.set_fault("stall")
    t0 = time.monotonic()
    r = run("--io-timeout", "0.3", "get", "k", servers=server.address)
    assert_clean_failure(r, 3, "time")
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("key", ["has space", "x" * 251, "tab\there"])
def test_invalid_key_exits_2(server: EmbeddedServer, key: str) -> None:
    for args in (["get", key], ["set", key, "v"], ["delete", key]):
        assert_clean_failure(run(*args, servers=server.address), 2, "key")


def test_value_larger_than_the_item_size_exits_4() -> None:
    with EmbeddedServer(item_size_max=1024) as s:
        k = unique()
        r = run("set", k, "-", servers=s.address, stdin=b"x" * 4096)
        assert_clean_failure(r, 4, "too large")
        assert omcache.Client([s.address]).get(k) is None


@pytest.mark.parametrize(
    "global_args",
    [["--servers", "127.0.0.1:notaport"], ["--distribution", "bogus"], ["--hash", "bogus"]],
)
def test_bad_client_configuration_exits_2(global_args: List[str]) -> None:
    r = run(*global_args, "get", "k")
    assert_clean_failure(r, 2)


def test_closing_stdout_early_exits_quietly(server: EmbeddedServer) -> None:
    k = unique()
    omcache.Client([server.address]).set(k, b"v" * 1_000_000)
    p = subprocess.Popen(
        [sys.executable, "-m", "omcache", "--servers", server.address, "get", k],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # before the child can start writing
    try:
        p.wait(TIMEOUT)
    finally:
        p.kill()
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.returncode == 141 and "Traceback" not in err, (p.returncode, err)


# -- stats, version, flush, where ---------------------------------------------------


def test_stats_prints_one_column_per_server(three_servers: List[EmbeddedServer]) -> None:
    a, b, c = three_servers
    for i in range(2):
        omcache.Client([a.address]).set(unique(), b"x")
    omcache.Client([b.address]).set(unique(), b"x")
    r = run("stats", servers=",".join(s.address for s in three_servers))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["stat", a.address, b.address, c.address]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["curr_items"] == ["2", "1", "0"]
    assert rows["version"] == ["1.6.18-memcachedtest"] * 3


def test_stats_group_and_json(server: EmbeddedServer) -> None:
    r = run("stats", "settings", servers=server.address)
    assert r.returncode == 0
    rows = {line.split()[0]: line.split()[1:] for line in r.stdout.decode().splitlines()[1:]}
    assert rows["item_size_max"] == ["1048576"]
    r = run("stats", "--json", servers=server.address)
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert list(data) == [server.address] and data[server.address]["curr_items"] == "0"


def test_stats_with_a_dead_server_shows_the_live_ones_and_exits_3(server: EmbeddedServer) -> None:
    dead = f"127.0.0.1:{free_port()}"
    r = run("stats", servers=f"{server.address},{dead}")
    assert_clean_failure(r, 3, dead)
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["stat", server.address, dead]
    assert any(line.split()[0] == "pid" and line.split()[2] == "-" for line in lines[1:])


def test_stats_invalid_group_exits_2(server: EmbeddedServer) -> None:
    assert_clean_failure(run("stats", "two words", servers=server.address), 2, "stats group")


def test_stats_against_real_memcached(memcached_factory: Callable[..., MemcachedProcess]) -> None:
    m = memcached_factory()
    assert m.proc is not None
    r = run("stats", servers=m.address)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1:] for line in r.stdout.decode().splitlines()[1:]}
    assert rows["pid"] == [str(m.proc.pid)]


def test_version_prints_each_server(three_servers: List[EmbeddedServer], memcached_factory: Callable[..., MemcachedProcess]) -> None:
    m = memcached_factory()
    addrs = [s.address for s in three_servers[:2]] + [m.address]
    r = run("version", servers=",".join(addrs))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        f"{addrs[0]} 1.6.18-memcachedtest",
        f"{addrs[1]} 1.6.18-memcachedtest",
        f"{m.address} 1.6.18",
    ]


def test_flush_empties_every_server(three_servers: List[EmbeddedServer]) -> None:
    servers = ",".join(s.address for s in three_servers)
    mc = omcache.Client(servers)
    keys = [unique() for _ in range(30)]
    mc.set_multi({k: b"v" for k in keys})
    assert all(s.item_count() > 0 for s in three_servers)
    r = run("flush", servers=servers)
    assert r.returncode == 0 and r.stdout == b"" and r.stderr == b""
    assert mc.get_multi(keys) == {}


def test_flush_delay_invalidates_later(server: EmbeddedServer) -> None:
    k = unique()
    omcache.Client([server.address]).set(k, b"v")
    assert run("flush", "--delay", "30", servers=server.address).returncode == 0
    assert run("get", k, servers=server.address).returncode == 0
    server.advance_clock(31)
    assert run("get", k, servers=server.address).returncode == 1


@pytest.mark.parametrize("options", [[], ["--distribution", "modula", "--hash", "md5"], ["--distribution", "ketama_pre1010"]])
def test_where_names_the_server_that_stores_the_key(three_servers: List[EmbeddedServer], options: List[str]) -> None:
    servers = ",".join(s.address for s in three_servers)
    seen: Set[int] = set()
    for n in range(12):
        if n >= 4 and len(seen) > 1:
            break
        k = unique()
        r = run(*options, "where", k, servers=servers)
        assert r.returncode == 0, r.stderr
        first, why = r.stdout.decode().splitlines()
        m = re.fullmatch(r"(\S+) \(server index (\d) of 3\)", first)
        assert m, first
        i = int(m.group(2))
        assert m.group(1) == three_servers[i].address
        assert k in why and "hash" in why
        if options:
            assert options[1] in why
        # Independent check: a set through the CLI lands on that server only.
        assert run(*options, "set", k, "v", servers=servers).returncode == 0
        holders = [j for j, s in enumerate(three_servers) if omcache.Client([s.address]).get(k) is not None]
        assert holders == [i]
        seen.add(i)
    assert len(seen) > 1  # random keys spread over the servers (all on one: odds 3 in 3**12)


def test_where_contacts_no_server() -> None:
    dead = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    r = run("where", "somekey", servers=",".join(dead))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split()[0] in dead


# -- bench --------------------------------------------------------------------------


def bench_rows(out: str) -> Dict[str, Dict[str, float]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["op", "ops/s"])
    header = re.split(r"\s{2,}", lines[start].strip())
    rows = {}
    for line in lines[start + 1 :]:
        cells = line.split()
        rows[cells[0]] = dict(zip(header[1:], map(float, cells[1:])))
    return rows


def test_bench_measures_sets_and_gets_and_cleans_up(server: EmbeddedServer) -> None:
    r = run("bench", "--ops", "600", "--size", "64", "--threads", "3", servers=server.address)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "600 sets then 600 gets of 64-byte values, 3 thread(s)" in out and server.address in out
    rows = bench_rows(out)
    assert set(rows) == {"set", "get"}
    for op in ("set", "get"):
        row = rows[op]
        assert row["ops/s"] > 0 and row["errors"] == 0 and row["misses"] == 0
        assert 0 < row["p50 us"] <= row["p90 us"] <= row["p99 us"] <= row["p99.9 us"] <= row["max us"]
    stats = omcache.Client([server.address]).stats()[server.address]
    assert isinstance(stats, dict)
    assert int(stats["cmd_set"]) == 600 and int(stats["get_hits"]) == 600
    assert server.item_count() == 0  # the bench deleted its keys


def test_bench_without_servers_starts_an_embedded_server() -> None:
    r = run("bench", "--ops", "200")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "embedded server" in out
    rows = bench_rows(out)
    assert rows["get"]["misses"] == 0 and rows["set"]["errors"] == 0


def test_bench_reports_failed_operations_with_exit_4() -> None:
    with EmbeddedServer(item_size_max=1024) as s:
        r = run("bench", "--ops", "50", "--size", "2000", servers=s.address)
        assert_clean_failure(r, 4, "50 set operations failed", "TooLargeValueError")
        assert bench_rows(r.stdout.decode())["set"]["errors"] == 50


def test_bench_against_unreachable_server_exits_3() -> None:
    assert_clean_failure(run("bench", "--ops", "10", servers=f"127.0.0.1:{free_port()}"), 3)


def test_bench_ctrl_c_exits_130(server: EmbeddedServer) -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "omcache", "--servers", server.address, "bench", "--ops", "100000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        # A shell starting the test run in the background leaves SIGINT
        # ignored, and an ignored SIGINT is inherited through exec: the CLI
        # would then never see the Ctrl-C this test sends.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert p.stdout is not None
        first = read_line(p, 20)
        assert first.startswith("omcache bench:")
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        p.wait(10)
        assert p.returncode == 130
        assert p.stderr is not None and "interrupted" in p.stderr.read().decode()
    finally:
        p.kill()
        p.wait(10)
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()


# -- serve --------------------------------------------------------------------------


def read_line(p: "subprocess.Popen[bytes]", timeout: float) -> str:
    """Read one line of p's stdout within timeout seconds (fails the test otherwise)."""
    assert p.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError(f"no line from {p.args!r} within {timeout}s (got {buf!r})")
            chunk = os.read(p.stdout.fileno(), 1)
            if not chunk:
                raise AssertionError(f"{p.args!r} closed stdout after {buf!r}, exit {p.wait(5)}")
            buf += chunk
    finally:
        sel.close()
    return buf.decode()


def start_serve(*args: str) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        [sys.executable, "-m", "omcache", "serve", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )


def stop_serve(p: "subprocess.Popen[bytes]", sig: int) -> float:
    """Send sig to a serve process; return how long it took to exit (it must exit 0)."""
    t0 = time.monotonic()
    p.send_signal(sig)
    try:
        code = p.wait(10)
    finally:
        p.kill()
        p.wait(10)
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()
    elapsed = time.monotonic() - t0
    assert code == 0, code
    return elapsed


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_prints_its_address_serves_clients_and_stops_cleanly(sig: int) -> None:
    p = start_serve("--listen", "127.0.0.1:0", "-m", "16", "-I", "2m")
    try:
        line = read_line(p, 20)
        m = re.fullmatch(r"tcp (127\.0\.0\.1:\d+)\n", line)
        assert m, line
        addr = m.group(1)
        mc = omcache.Client([addr])
        # Over the default 1m item size: stored only because -I 2m was applied.
        assert mc.set("served", os.urandom(1_500_000))
        settings = mc.stats("settings")[addr]
        assert isinstance(settings, dict)
        assert settings["maxbytes"] == str(16 << 20) and settings["item_size_max"] == str(2 << 20)
        assert mc.set("small", b"value") and mc.get("small") == b"value"
        # The CLI talks to the CLI-run server too.
        assert run("set", "cli-key", "cli-value", servers=addr).returncode == 0
        assert run("get", "cli-key", servers=addr).stdout == b"cli-value"
    except BaseException:
        p.kill()
        p.wait(10)
        raise
    # mc's open connection does not hold the server up, and is closed by it.
    assert stop_serve(p, sig) < 2.5
    with pytest.raises(omcache.ConnectionError):
        mc.get("small")
    with pytest.raises(omcache.ConnectionError):
        omcache.Client([addr], connect_timeout=0.5).get("small")


def test_serve_on_a_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "mc.sock")
    p = start_serve("--unix", path)
    try:
        assert read_line(p, 20) == f"unix {path}\n"
        assert run("set", "k", "over unix", servers=path).returncode == 0
        r = run("get", "k", servers=path)
        assert r.returncode == 0 and r.stdout == b"over unix"
    except BaseException:
        p.kill()
        p.wait(10)
        raise
    assert stop_serve(p, signal.SIGTERM) < 2.5


def test_serve_on_tcp_and_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "mc.sock")
    port = free_port()
    p = start_serve("--unix", path, "--listen", f"127.0.0.1:{port}")
    try:
        lines = {read_line(p, 20), read_line(p, 20)}
        assert lines == {f"tcp 127.0.0.1:{port}\n", f"unix {path}\n"}
        omcache.Client([f"127.0.0.1:{port}"]).set("k", b"shared")
        assert omcache.Client([path]).get("k") == b"shared"
    except BaseException:
        p.kill()
        p.wait(10)
        raise
    assert stop_serve(p, signal.SIGINT) < 2.5


def test_serve_fault_option_injects_a_delay() -> None:
    p = start_serve("--listen", "127.0.0.1:0", "--fault", "delay=300ms")
    try:
        addr = read_line(p, 20).split()[1]
        mc = omcache.Client([addr], io_timeout=5)
        t0 = time.monotonic()
        mc.set("k", b"v")
        assert time.monotonic() - t0 >= 0.25
    except BaseException:
        p.kill()
        p.wait(10)
        raise
    assert stop_serve(p, signal.SIGTERM) < 2.5


def test_serve_on_a_busy_port_fails_cleanly(server: EmbeddedServer) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "omcache", "serve", "--listen", server.address],
        capture_output=True,
        env=cli_env(),
        timeout=TIMEOUT,
    )
    assert_clean_failure(r, 2, "address already in use")


def test_serve_rejects_item_size_below_1k_and_port_0_with_unix(tmp_path: Path) -> None:
    assert_clean_failure(run("serve", "--listen", "127.0.0.1:0", "-I", "512"), 2, "1024")
    r = run("serve", "--unix", str(tmp_path / "s"), "--listen", "127.0.0.1:0")
    assert_clean_failure(r, 2, "port")

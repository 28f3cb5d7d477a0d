"""omcache's command-line interface: ``omcache`` / ``python -m omcache``.

::

    omcache [--servers H:P,H:P] [--connect-timeout S] [--io-timeout S]
            [--distribution NAME] [--hash NAME] [--tls ...] [--username U]
            [-v] COMMAND ...

Commands: ``serve``, ``get``, ``set``, ``delete``, ``stats``, ``where``,
``flush``, ``version``, ``bench`` (``omcache COMMAND --help`` for each).
docs/cli.md is the full reference.  Exit codes are the ``EXIT_*`` constants:
scripts can tell a miss (1) from bad usage (2), an unreachable server (3) and
a server refusing the command (4).

Unlike the library modules, this one prints: values and tables to stdout,
messages to stderr.  Expected failures (a miss, a dead server, a bad option)
end with a one-line message and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from . import __version__
from . import exceptions as exc
from .client import Client

log = logging.getLogger("omcache")

__all__ = [
    "DEFAULT_SERVERS",
    "EXIT_CONNECTION",
    "EXIT_ENGINE",
    "EXIT_INTERRUPTED",
    "EXIT_MISS",
    "EXIT_OK",
    "EXIT_PIPE",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "SERVERS_ENV",
    "build_parser",
    "main",
    "parse_listen",
    "parse_size",
]

EXIT_OK = 0
"""The command succeeded."""
EXIT_MISS = 1
"""``get``/``delete``: the key does not exist."""
EXIT_USAGE = 2
"""Bad usage: unknown option, bad number, invalid key or server spec, unknown distribution."""
EXIT_CONNECTION = 3
"""A server could not be reached or did not answer in time."""
EXIT_SERVER = 4
"""A server answered with a refusal or an error (value too large, out of memory, bad protocol)."""
EXIT_ENGINE = 5
"""omcache itself failed: the Go engine is not built or failed internally, or the server lacks a feature."""
EXIT_INTERRUPTED = 130
"""Interrupted by Ctrl-C (128 + SIGINT), for every command but ``serve``."""
EXIT_PIPE = 141
"""stdout was closed early (``omcache stats | head``): 128 + SIGPIPE, as for C tools."""

SERVERS_ENV = "OMCACHE_SERVERS"
"""Environment variable giving the server list when ``--servers`` is absent."""
DEFAULT_SERVERS = "127.0.0.1:11211"
"""The server list when neither ``--servers`` nor $OMCACHE_SERVERS is given."""

_BENCH_EXPIRE = 600
_BENCH_OPS = 10000
_BENCH_SIZE = 100
_BENCH_THREADS = 1
_COMPARE = "omcache bench --compare"
#: The clients ``bench --compare`` knows (omcache.benchmark.worker.CLIENTS; listed here so
#: that ``omcache --help`` does not import the benchmark harness).
_COMPARE_CLIENTS = (
    "omcache",
    "omcache binary",
    "omcache text",
    "omcache tls",
    "omcache_pylibmc",
    "omcache.memcache",
    "pylibmc",
    "pylibmc tcp_nodelay",
    "pymemcache",
    "pymemcache noreply=False",
    "pymemcache tls",
    "python-memcached",
    "raw floor",
)
#: bench --compare's options that take a value (option, attribute), passed on to the runner.
_COMPARE_VALUE_OPTIONS = (
    ("--reps", "reps"),
    ("--slots", "slots"),
    ("--scale", "scale"),
    ("--batches", "batches"),
    ("--clients", "clients"),
    ("--workloads", "workloads"),
    ("--import-runs", "import_runs"),
    ("--out-dir", "out_dir"),
    ("--json", "json"),
    ("--analysis", "analysis"),
)
_U32_MAX = 0xFFFFFFFF


class _UsageError(Exception):
    """A problem with the command line found after parsing (exit 2)."""


# -- argument types ------------------------------------------------------------


def _u32(text: str) -> int:
    try:
        n = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= n <= _U32_MAX:
        raise argparse.ArgumentTypeError(f"{n} is out of range (0 to {_U32_MAX})")
    return n


def _positive_int(text: str) -> int:
    try:
        n = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


def _non_negative_int(text: str) -> int:
    try:
        n = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} must not be negative")
    return n


def _positive_float(limit: float, unit: str = "") -> Callable[[str], float]:
    """An argparse type: a number more than 0 and at most limit (of unit, as the messages say)."""
    what = f" of {unit}" if unit else ""

    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number{what}") from None
        if not 0 < x <= limit:
            raise argparse.ArgumentTypeError(f"{text} must be more than 0 and at most {limit:g}{' ' + unit if unit else ''}")
        return x

    return parse


_scale = _positive_float(1000)
_seconds = _positive_float(86400, "seconds")


def parse_size(text: str) -> int:
    """Parse memcached's ``-I`` syntax: bytes, or a number with a ``k`` or ``m`` suffix.

    ``"1m"`` is 1048576, ``"512k"`` is 524288, ``"2000"`` is 2000.  Raises
    ValueError for anything else, zero and negative sizes included.
    """
    t = text.strip().lower()
    mult = 1
    if t.endswith("k"):
        mult, t = 1 << 10, t[:-1]
    elif t.endswith("m"):
        mult, t = 1 << 20, t[:-1]
    if not t.isdigit() or int(t) == 0:
        raise ValueError(f"bad size {text!r} (use bytes, or a number with k or m, e.g. 512k, 2m)")
    return int(t) * mult


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_listen(text: str) -> Tuple[str, int]:
    """Split a listen address ``HOST:PORT`` or ``[V6ADDR]:PORT`` into (host, port).

    Port 0 means "any free port".  Raises ValueError for a missing host or
    port, or a port outside 0-65535.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"bad listen address {text!r} (use HOST:PORT, e.g. 127.0.0.1:11211 or [::1]:0)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"bad listen address {text!r}: put an IPv6 address in brackets, e.g. [::1]:11211")
    n = int(port)
    if not host or n > 65535:
        raise ValueError(f"bad listen address {text!r}")
    return host, n


def _listen(text: str) -> Tuple[str, int]:
    try:
        return parse_listen(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# -- the parser ----------------------------------------------------------------

_EPILOG = f"""\
examples:
  omcache serve --listen 127.0.0.1:11311            run the embedded server (Ctrl-C stops it)
  omcache --servers 127.0.0.1:11311 set greeting hello --expire 60
  omcache --servers 127.0.0.1:11311 get greeting    prints: hello (exit 1 on a miss)
  echo -n data | omcache set blob -                 the value from stdin, raw bytes
  omcache --servers a:11211,b:11211 where user:42   which server holds a key, and why
  omcache --servers a:11211,b:11211 stats items     one column per server
  omcache bench --compare                           omcache against the other Python clients

servers: --servers, else ${SERVERS_ENV}, else {DEFAULT_SERVERS}; a comma-separated
list of host[:port[:weight]], [v6addr]:port or unix socket paths.

exit codes: {EXIT_OK} ok, {EXIT_MISS} key not found, {EXIT_USAGE} usage error, {EXIT_CONNECTION} server unreachable or timed out,
{EXIT_SERVER} server refused the command, {EXIT_ENGINE} omcache engine unavailable, {EXIT_INTERRUPTED} interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``omcache`` command (global options, then a command)."""
    p = argparse.ArgumentParser(
        prog="omcache",
        description="Talk to memcached servers with omcache's client, or run omcache's embedded server.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--servers",
        metavar="H:P,H:P",
        help=f"comma-separated server list (default: ${SERVERS_ENV}, else {DEFAULT_SERVERS})",
    )
    p.add_argument("--connect-timeout", type=_seconds, default=1.0, metavar="S", help="seconds to connect (default 1)")
    p.add_argument("--io-timeout", type=_seconds, default=1.0, metavar="S", help="seconds to wait for an answer (default 1)")
    p.add_argument(
        "--distribution",
        metavar="NAME",
        help="key placement: consistent (libmemcached ketama, the default), modula, ketama_weighted, "
        "ketama_pre1010, python-memcached",
    )
    p.add_argument(
        "--hash",
        metavar="NAME",
        help="key hash: default (one-at-a-time, the default), md5, crc, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, "
        "murmur, jenkins",
    )
    p.add_argument(
        "--protocol",
        choices=["meta", "text", "binary"],
        default="meta",
        help="what to speak to the servers: meta (memcached >= 1.6, the default), text (proxies such as "
        "twemproxy, older servers) or binary",
    )
    p.add_argument("--tls", action="store_true", help="encrypt connections (TLS, memcached -Z); docs/tls-auth.md")
    p.add_argument("--tls-ca-file", metavar="PEM", help="CA bundle to verify servers with (default: the system roots)")
    p.add_argument("--tls-cert-file", metavar="PEM", help="client certificate (mutual TLS), with --tls-key-file")
    p.add_argument("--tls-key-file", metavar="PEM", help="key of the client certificate")
    p.add_argument("--tls-server-name", metavar="NAME", help="name to verify (default: each server's host)")
    p.add_argument("--tls-no-verify", action="store_true", help="do not verify server certificates")
    p.add_argument("--tls-min-version", choices=["1.0", "1.1", "1.2", "1.3"], default="1.2", help="default 1.2")
    p.add_argument(
        "--username",
        metavar="USER",
        help=f"authenticate (SASL with --protocol binary, else ASCII auth); the password is read from ${PASSWORD_ENV}",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-v info, -vv debug)")
    p.add_argument("--version", action="version", version=f"omcache {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True

    s = sub.add_parser(
        "serve",
        help="run omcache's embedded memcached-compatible server in the foreground",
        description="Run omcache's embedded memcached-compatible server (binary, text and meta protocols) "
        "until Ctrl-C or SIGTERM, then exit 0. It prints where it listens on stdout, one line each: "
        "'tcp HOST:PORT' and/or 'unix PATH'. It is for demos and tests, not a memcached replacement.",
    )
    s.add_argument(
        "--listen",
        type=_listen,
        metavar="H:P",
        help="TCP address (port 0: any free port); default 127.0.0.1:11211, or none when --unix is given",
    )
    s.add_argument("--unix", metavar="PATH", help="listen on this unix socket")
    s.add_argument("-m", dest="memory_mb", type=_positive_int, default=64, metavar="MB", help="memory for items in megabytes (default 64)")
    s.add_argument("-I", dest="item_size", type=_size, default=1 << 20, metavar="SIZE", help="largest item, e.g. 512k, 2m (default 1m)")
    s.add_argument("--fault", metavar="SPEC", help='start with injected faults, e.g. "delay=200ms" (see omcache.testing)')
    s.add_argument("--tls-cert", metavar="PEM", help="serve TLS on TCP with this certificate (chain), as memcached -Z")
    s.add_argument("--tls-key", metavar="PEM", help="the key of --tls-cert")
    s.add_argument(
        "--require-user",
        metavar="USER",
        help="require authentication (SASL PLAIN in binary, ASCII auth in text and meta) as USER, "
        "with the password from $OMCACHE_PASSWORD",
    )
    s.set_defaults(run=_cmd_serve)

    s = sub.add_parser(
        "get",
        help="write a value to stdout (exit 1 on a miss)",
        description="Write KEY's value, raw bytes with nothing added, to stdout. Exit 1 if KEY does not exist.",
    )
    s.add_argument("key", metavar="KEY")
    s.add_argument("--flags", action="store_true", help="also write 'flags: N' to stderr")
    s.add_argument("--cas", action="store_true", help="also write 'cas: N' to stderr")
    s.set_defaults(run=_cmd_get)

    s = sub.add_parser(
        "set",
        help="store a value",
        description="Store VALUE under KEY. VALUE '-' reads the value from stdin as raw bytes (NUL bytes included).",
    )
    s.add_argument("key", metavar="KEY")
    s.add_argument("value", metavar="VALUE", help="the value, or - to read it from stdin")
    s.add_argument("--expire", type=_u32, default=0, metavar="N", help="0: never (default); up to 2592000: seconds; more: unix time")
    s.add_argument("--flags", type=_u32, default=0, metavar="N", help="client flags stored with the value (default 0)")
    s.set_defaults(run=_cmd_set)

    s = sub.add_parser("delete", help="delete a key (exit 1 if absent)", description="Delete KEY. Exit 1 if it did not exist.")
    s.add_argument("key", metavar="KEY")
    s.set_defaults(run=_cmd_delete)

    s = sub.add_parser(
        "stats",
        help="server statistics, one column per server",
        description="Print a stats group as a table: one row per statistic, one column per server. "
        "A server that fails shows '-' and its error goes to stderr (exit 3 or 4).",
    )
    s.add_argument("group", nargs="?", default="", metavar="GROUP", help="items, slabs, settings, sizes, conns, ... (default: general stats)")
    s.add_argument("--json", action="store_true", help='print {"server": {"stat": "value"}} as JSON instead')
    s.set_defaults(run=_cmd_stats)

    s = sub.add_parser(
        "where",
        help="which server a key maps to, and why",
        description="Print the server KEY is placed on ('ADDRESS (server I of N)'), then how: the key's hash and "
        "the continuum point or bucket that chose the server. Uses --servers, --distribution and --hash; "
        "contacts no server.",
    )
    s.add_argument("key", metavar="KEY")
    s.set_defaults(run=_cmd_where)

    s = sub.add_parser("flush", help="invalidate every item on every server", description="Invalidate every item on every server.")
    s.add_argument("--delay", type=_u32, default=0, metavar="N", help="invalidate after N seconds (default 0: now)")
    s.set_defaults(run=_cmd_flush)

    s = sub.add_parser("version", help="each server's version", description="Print 'ADDRESS VERSION' for each server.")
    s.set_defaults(run=_cmd_version)

    s = sub.add_parser(
        "bench",
        help="quick load test: sets then gets, ops/s and latency percentiles; --compare: against the other clients",
        description="Store OPS keys of SIZE random bytes, then get them back, from THREADS threads sharing "
        "one client; print ops/s and latency percentiles for each phase, then delete the keys "
        f"(they also expire after {_BENCH_EXPIRE} s). With no --servers and no ${SERVERS_ENV}, it starts "
        "omcache's embedded server in this process on a free loopback port and measures against that "
        "(client and server then share this machine's CPUs: pass --servers to measure a real memcached). "
        "Exit 4 if any operation failed. "
        "With --compare it instead compares omcache with the other Python memcached clients that are "
        "installed (pylibmc, pymemcache, python-memcached, and a raw-socket floor): it starts its own three "
        "memcached servers (--servers is not used), runs every client and workload in a fresh process per "
        "repetition, and writes benchmarks.md (medians, ratios to the best peer) and benchmarks.png to "
        "--out-dir. Exit 4 if a measurement failed.",
    )
    s.add_argument(
        "--ops", type=_positive_int, metavar="N", help=f"sets, and then gets, per run (default {_BENCH_OPS})"
    )
    s.add_argument("--size", type=_non_negative_int, metavar="B", help=f"value size in bytes (default {_BENCH_SIZE})")
    s.add_argument("--threads", type=_positive_int, metavar="T", help=f"client threads (default {_BENCH_THREADS})")
    s.add_argument(
        "--compare",
        action="store_true",
        help="compare omcache with the other Python memcached clients instead (needs memcached installed)",
    )
    g = s.add_argument_group("options of --compare")
    g.add_argument("--reps", type=_positive_int, metavar="N", help="repetitions, each measuring both states (default 3)")
    g.add_argument("--scale", type=_scale, metavar="X", help="multiply every workload's op count (default 1)")
    g.add_argument(
        "--slots",
        type=_positive_int,
        metavar="N",
        help="worker processes per client, workload and repetition, interleaved (default 3)",
    )
    g.add_argument(
        "--batches", type=_positive_int, metavar="N", help="batches per worker process; the fastest counts (default 10)"
    )
    g.add_argument(
        "--clients",
        metavar="A,B",
        help="comma-separated clients (default: all): " + ", ".join(_COMPARE_CLIENTS),
    )
    g.add_argument(
        "--workloads",
        metavar="A,B",
        help="comma-separated workloads (default: all), e.g. \"get 10 B,get_multi 100, 1 server\" "
        "(docs/cli.md lists them)",
    )
    g.add_argument(
        "--import-runs", type=_non_negative_int, metavar="N", help="runs per import timing (default 21; 0: skip)"
    )
    g.add_argument("--out-dir", metavar="DIR", help="where benchmarks.md and benchmarks.png go (default: .)")
    g.add_argument("--json", metavar="FILE", help="also write every sample as JSON")
    g.add_argument("--no-chart", action="store_true", help="no benchmarks.png (matplotlib not needed)")
    g.add_argument(
        "--no-spin",
        action="store_true",
        help="measure only the idle machine: no lowest-priority busy loop keeping a CPU out of idle "
        "(by default a run measures both the warm and the idle machine)",
    )
    g.add_argument("--analysis", metavar="FILE", help="a Markdown file to append to the report")
    s.set_defaults(run=_cmd_bench)
    return p


# -- helpers -------------------------------------------------------------------


def _servers_spec(args: argparse.Namespace) -> Optional[str]:
    """The server list from --servers or the environment, None if neither.

    An empty --servers is a usage error, not a request for the default.
    """
    if args.servers is not None:
        if not str(args.servers).strip(" ,"):
            raise _UsageError(f"--servers is empty: give host:port[,host:port...] (or leave it out for ${SERVERS_ENV}, else {DEFAULT_SERVERS})")
        return str(args.servers)
    env = os.environ.get(SERVERS_ENV, "").strip()
    return env or None


#: The environment variable holding the password for --username (never argv,
#: where other users of the machine could read it).
PASSWORD_ENV = "OMCACHE_PASSWORD"


def _security_options(args: argparse.Namespace) -> Dict[str, Any]:
    """omcache.Client's TLS and authentication keywords from the command line."""
    opts: Dict[str, Any] = {}
    if args.tls or args.tls_ca_file or args.tls_cert_file or args.tls_key_file or args.tls_server_name or args.tls_no_verify:
        opts.update(
            tls=True,
            tls_ca_file=args.tls_ca_file,
            tls_cert_file=args.tls_cert_file,
            tls_key_file=args.tls_key_file,
            tls_server_name=args.tls_server_name,
            tls_verify=not args.tls_no_verify,
            tls_min_version=args.tls_min_version,
        )
    if args.username is not None:
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            raise _UsageError(f"--username needs the password in ${PASSWORD_ENV}")
        opts.update(username=args.username, password=password)
    return opts


def _make_client(args: argparse.Namespace, servers: Optional[str] = None) -> Client:
    spec = servers or _servers_spec(args) or DEFAULT_SERVERS
    placement: Dict[str, Any] = _security_options(args)
    # Only what the user chose is passed: the client's defaults stay its own.
    if args.distribution is not None:
        placement["distribution"] = args.distribution
    if args.hash is not None:
        placement["hash"] = args.hash
    return Client(spec, connect_timeout=args.connect_timeout, io_timeout=args.io_timeout, protocol=args.protocol, **placement)


def _key(text: str) -> bytes:
    # fsencode undoes the surrogateescape decoding of argv, so any byte
    # string a shell can pass arrives unchanged.
    return os.fsencode(text)


def _message(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    for prefix in ("omcache: ", "invalid configuration: "):
        if text.startswith(prefix) and isinstance(e, exc.Error):
            text = text[len(prefix) :]
    return text


def _exit_code(e: BaseException) -> int:
    if isinstance(e, exc.NotFoundError):
        return EXIT_MISS
    if isinstance(e, (exc.ConnectionError, exc.NoServersError)):
        return EXIT_CONNECTION
    if isinstance(e, (exc.InvalidKeyError, exc.ConfigError, exc.AuthenticationError, _UsageError)):
        return EXIT_USAGE
    if isinstance(e, (exc.CommandError, exc.ProtocolError)):
        return EXIT_SERVER
    return EXIT_ENGINE


def _err(command: str, text: str) -> None:
    print(f"omcache {command}: {text}", file=sys.stderr, flush=True)


def _per_server_failures(command: str, results: Mapping[str, object]) -> int:
    """Report the servers whose result is an exception; return the exit code they call for."""
    code = EXIT_OK
    for addr, r in results.items():
        if isinstance(r, BaseException):
            _err(command, f"{addr}: {type(r).__name__}: {_message(r)}")
            code = max(code, _exit_code(r))
    return code


# -- commands ------------------------------------------------------------------


def _cmd_get(args: argparse.Namespace) -> int:
    client = _make_client(args)
    item = client.get_item(_key(args.key))
    if item is None:
        _err("get", f"{args.key!r}: not found")
        return EXIT_MISS
    if args.flags:
        print(f"flags: {item.flags}", file=sys.stderr)
    if args.cas:
        print(f"cas: {item.cas}", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.buffer.write(item.value)
    sys.stdout.buffer.flush()
    return EXIT_OK


def _cmd_set(args: argparse.Namespace) -> int:
    value = sys.stdin.buffer.read() if args.value == "-" else os.fsencode(args.value)
    client = _make_client(args)
    client.set(_key(args.key), value, args.expire, flags=args.flags)
    log.info("omcache: stored %d bytes under %r", len(value), args.key)
    return EXIT_OK


def _cmd_delete(args: argparse.Namespace) -> int:
    client = _make_client(args)
    if not client.delete(_key(args.key)):
        _err("delete", f"{args.key!r}: not found")
        return EXIT_MISS
    return EXIT_OK


def _table(rows: Sequence[Sequence[str]], out: IO[str]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        out.write("  ".join(cells).rstrip() + "\n")


def _cmd_stats(args: argparse.Namespace) -> int:
    client = _make_client(args)
    try:
        results = client.stats(args.group)
    except ValueError as e:
        if isinstance(e, exc.Error):
            raise
        raise _UsageError(str(e)) from None
    code = _per_server_failures("stats", results)
    good = {a: r for a, r in results.items() if not isinstance(r, BaseException)}
    if args.json:
        json.dump(good, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif good:
        names: Dict[str, None] = {}
        for r in good.values():
            names.update(dict.fromkeys(r))
        addrs = list(results)
        rows: List[List[str]] = [["stat"] + addrs]
        for name in names:
            row = [name]
            for a in addrs:
                stats = good.get(a)
                row.append("-" if stats is None else stats.get(name, ""))
            rows.append(row)
        _table(rows, sys.stdout)
    sys.stdout.flush()
    return code


def _cmd_where(args: argparse.Namespace) -> int:
    client = _make_client(args)
    key = _key(args.key)
    i = client.server_for_key(key)
    why = client.explain_key(key)
    if i < 0:
        raise exc.NoServersError(f"no server can hold {args.key!r}: {why}")
    servers = client.server_addresses()
    print(f"{servers[i]} (server index {i} of {len(servers)})")
    print(why)
    sys.stdout.flush()
    return EXIT_OK


def _cmd_flush(args: argparse.Namespace) -> int:
    client = _make_client(args)
    client.flush_all(args.delay)
    log.info("omcache: flushed %d server(s), delay %d s", len(client.servers), args.delay)
    return EXIT_OK


def _cmd_version(args: argparse.Namespace) -> int:
    client = _make_client(args)
    results = client.version()
    for addr, v in results.items():
        if not isinstance(v, BaseException):
            print(f"{addr} {v}")
    sys.stdout.flush()
    return _per_server_failures("version", results)


# -- serve ---------------------------------------------------------------------

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _required_user(args: argparse.Namespace) -> Dict[str, str]:
    """serve's --require-user, with the password from the environment."""
    if args.require_user is None:
        return {}
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        raise _UsageError(f"--require-user needs the password in ${PASSWORD_ENV}")
    return {"username": args.require_user, "password": password}


def _cmd_serve(args: argparse.Namespace) -> int:
    from .testing import EmbeddedServer

    if args.unix is not None and args.listen is not None and args.listen[1] == 0:
        # EmbeddedServer only adds a TCP listener next to a unix socket for an explicit port.
        raise _UsageError("--listen with port 0 cannot be combined with --unix: give a port number")
    if args.listen is None and args.unix is None:
        host, port = parse_listen(DEFAULT_SERVERS)
    elif args.listen is None:
        host, port = "127.0.0.1", 0
    else:
        host, port = args.listen
    # Block the stop signals before the engine loads: its Go threads inherit
    # the mask, so SIGINT/SIGTERM stay pending for sigwait below instead of
    # interrupting a Go call, and Ctrl-C is answered at once.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        server = EmbeddedServer(
            host=host,
            port=port,
            unix_path=args.unix,
            memory_mb=args.memory_mb,
            item_size_max=args.item_size,
            tls_cert_file=args.tls_cert,
            tls_key_file=args.tls_key,
            **_required_user(args),
        ).start()
        try:
            if args.fault:
                server.set_fault(args.fault)
            if server.tcp_address:
                print(f"tcp {server.tcp_address}")
            if server.unix_path:
                print(f"unix {server.unix_path}")
            sys.stdout.flush()
            print(
                "omcache serve: embedded memcached-compatible server (for tests and demos); "
                "stop with Ctrl-C or SIGTERM",
                file=sys.stderr,
                flush=True,
            )
            signum = signal.sigwait(_STOP_SIGNALS)
            log.info("omcache: serve: %s received, stopping", signal.Signals(signum).name)
        finally:
            server.stop()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return EXIT_OK


# -- bench ---------------------------------------------------------------------


class _Phase:
    """Latencies and outcomes of one bench phase, merged from every thread."""

    def __init__(self) -> None:
        self.latencies_ns: List[int] = []
        self.errors = 0
        self.misses = 0
        self.first_error: Optional[BaseException] = None
        self.seconds = 0.0
        self._lock = threading.Lock()

    def merge(self, lat: List[int], errors: int, misses: int, first: Optional[BaseException]) -> None:
        with self._lock:
            self.latencies_ns += lat
            self.errors += errors
            self.misses += misses
            if self.first_error is None:
                self.first_error = first


def _percentile(sorted_ns: Sequence[int], q: float) -> float:
    """Nearest-rank percentile in microseconds."""
    if not sorted_ns:
        return 0.0
    rank = max(1, -(-len(sorted_ns) * q // 100))
    return sorted_ns[min(len(sorted_ns), int(rank)) - 1] / 1000.0


def _run_phase(threads: int, body: Callable[[int, _Phase, threading.Event], None]) -> _Phase:
    phase = _Phase()
    stop = threading.Event()
    workers = [threading.Thread(target=body, args=(t, phase, stop), daemon=True) for t in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    try:
        for w in workers:
            w.join()
    finally:
        stop.set()  # on Ctrl-C the daemon workers stop at their next operation
    phase.seconds = time.perf_counter() - start
    return phase


def _bench(client: Client, ops: int, size: int, threads: int, out: IO[str]) -> int:
    client.noop()  # an unreachable server is exit 3 before any measurement
    run = f"omcache-bench:{os.getpid()}:{os.urandom(4).hex()}:"
    keys = [f"{run}{i}".encode() for i in range(ops)]
    value = os.urandom(size)

    def worker(op: Callable[[bytes], bool]) -> Callable[[int, _Phase, threading.Event], None]:
        """A phase body: thread t runs op on every threads-th key; op returns False for a miss."""

        def body(t: int, phase: _Phase, stop: threading.Event) -> None:
            lat: List[int] = []
            errors, misses, first = 0, 0, None
            clock = time.perf_counter_ns
            for i in range(t, ops, threads):
                if stop.is_set():
                    break
                t0 = clock()
                try:
                    if not op(keys[i]):
                        misses += 1
                except exc.Error as e:
                    errors += 1
                    first = first or e
                lat.append(clock() - t0)
            phase.merge(lat, errors, misses, first)

        return body

    results = [
        ("set", _run_phase(threads, worker(lambda k: client.set(k, value, _BENCH_EXPIRE)))),
        ("get", _run_phase(threads, worker(lambda k: client.get(k) is not None))),
    ]
    rows = [["op", "ops/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "errors", "misses"]]
    for name, ph in results:
        lat = sorted(ph.latencies_ns)
        rate = len(lat) / ph.seconds if ph.seconds > 0 else 0.0
        rows.append(
            [name, f"{rate:.0f}"]
            + [f"{_percentile(lat, q):.1f}" for q in (50, 90, 99, 99.9)]
            + [f"{(lat[-1] if lat else 0) / 1000.0:.1f}", str(ph.errors), str(ph.misses)]
        )
    _table([[c.rjust(8) if i else c.ljust(3) for i, c in enumerate(r)] for r in rows], out)
    out.flush()
    for chunk in range(0, ops, 1000):
        client.delete_multi(keys[chunk : chunk + 1000])
    code = EXIT_OK
    for name, ph in results:
        if ph.first_error is not None:
            e = ph.first_error
            _err("bench", f"{ph.errors} {name} operations failed; first: {type(e).__name__}: {_message(e)}")
            code = EXIT_SERVER
    return code


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.compare:
        return _cmd_bench_compare(args)
    given = [opt for opt, dest in _COMPARE_VALUE_OPTIONS if getattr(args, dest) is not None]
    given += ["--no-chart"] if args.no_chart else []
    given += ["--no-spin"] if args.no_spin else []
    if given:
        raise _UsageError(f"{', '.join(given)}: only with --compare")
    ops = _BENCH_OPS if args.ops is None else args.ops
    size = _BENCH_SIZE if args.size is None else args.size
    threads = _BENCH_THREADS if args.threads is None else args.threads
    spec = _servers_spec(args)
    what = f"{ops} sets then {ops} gets of {size}-byte values, {threads} thread(s)"
    if spec is not None:
        client = _make_client(args, spec)
        print(f"omcache bench: {what}, against {', '.join(client.servers)}", flush=True)
        return _bench(client, ops, size, threads, sys.stdout)
    from .testing import EmbeddedServer

    # Default settings, like a stock memcached (1m items, 64 MB).
    with EmbeddedServer() as server:
        client = _make_client(args, server.address)
        print(
            f"omcache bench: {what}, against omcache's embedded server at {server.address} in this process "
            f"(no --servers or ${SERVERS_ENV} given)",
            flush=True,
        )
        try:
            return _bench(client, ops, size, threads, sys.stdout)
        finally:
            client.close()


def _cmd_bench_compare(args: argparse.Namespace) -> int:
    """``bench --compare``: check the options here (exit 2), then hand them to omcache.benchmark.runner."""
    if args.servers is not None:
        raise _UsageError(
            "--servers is not used by --compare: it starts its own memcached servers (leave --servers out, "
            "or drop --compare to load-test the servers given)"
        )
    quick = [opt for opt, v in (("--ops", args.ops), ("--size", args.size), ("--threads", args.threads)) if v is not None]
    if quick:
        raise _UsageError(f"{', '.join(quick)}: for the quick load test, not --compare")
    import importlib.util

    from .benchmark import runner

    if runner.memcached_path() is None:
        raise _UsageError(
            "memcached not found: --compare starts its own memcached servers "
            "(apt-get install memcached, or set $MEMCACHED to its path)"
        )
    try:
        runner.select(args.clients, args.workloads)
    except ValueError as e:
        raise _UsageError(str(e)) from None
    if not args.no_chart and importlib.util.find_spec("matplotlib") is None:
        raise _UsageError("the chart needs matplotlib (pip install matplotlib), or pass --no-chart")
    if args.analysis is not None and not os.path.isfile(args.analysis):
        raise _UsageError(f"--analysis {args.analysis}: no such file")
    if os.environ.get(SERVERS_ENV, "").strip():
        _err("bench", f"${SERVERS_ENV} is not used by --compare: it starts its own memcached servers")
    argv: List[str] = []
    for opt, dest in _COMPARE_VALUE_OPTIONS:
        value = getattr(args, dest)
        if value is not None:
            argv += [opt, str(value)]
    if args.no_chart:
        argv.append("--no-chart")
    if args.no_spin:
        argv.append("--no-spin")
    try:
        code = runner.main(argv, command=_COMPARE, generated_by=_COMPARE)
    except runner.ServersNotStarted as e:
        _err("bench", str(e))
        return EXIT_CONNECTION
    return EXIT_OK if code == 0 else EXIT_SERVER


# -- entry point ---------------------------------------------------------------


def _setup_logging(verbosity: int) -> None:
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("omcache")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


def _silence_stdout() -> None:
    # After EPIPE, the interpreter's final flush of stdout would fail again
    # and print a traceback; point the descriptor at /dev/null instead.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``omcache`` command with argv (default: sys.argv[1:]); return the exit code.

    Expected failures print one line on stderr and return an ``EXIT_*``
    code; argparse's own usage errors exit with status 2 via SystemExit.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (exc.Error, _UsageError) as e:
        code = _exit_code(e)
        text = _message(e)
        if code == EXIT_CONNECTION and _servers_spec(args) is None and args.command != "serve":
            text += f" (no --servers or ${SERVERS_ENV} given: is memcached running on {DEFAULT_SERVERS}?)"
        elif isinstance(e, exc.ConfigError):
            text += " (see omcache serve --help)" if args.command == "serve" else " (see omcache --help)"
        elif code == EXIT_USAGE:
            text += f" (see omcache {args.command} --help)"
        _err(args.command, text)
        return code
    except NotImplementedError as e:
        _err(args.command, f"not supported: {e}")
        return EXIT_ENGINE
    except KeyboardInterrupt:
        _err(args.command, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE

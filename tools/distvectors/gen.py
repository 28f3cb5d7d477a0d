#!/usr/bin/env python3
"""Generate omcache's golden key-placement vectors from the real clients.

The script starts its own memcached servers on loopback addresses and unix
sockets, stores a fixed set of keys through pylibmc (linked against Debian's
libmemcached 1.1.4) and python-memcached 1.62 under many configurations, then
asks every server which of the keys it holds. The real placement is written to
go/dist/testdata/placement.json; the Go tests in go/dist must reproduce it
exactly. pylibmc's own Client.hash() is recorded alongside and must agree with
what the servers hold.

It also asks the installed libhashkit (through ctypes) for the raw 32-bit hash
of many keys under every algorithm and writes go/hashkit/testdata/libhashkit.json.

Usage (from the repository root):

    pip install --no-binary pylibmc pylibmc==1.6.3 python-memcached==1.62
    python3 tools/distvectors/gen.py

pylibmc must be built from source: the manylinux wheel on PyPI bundles its own,
older libmemcached (1.0.x), which is not the library being matched.
"""

from __future__ import annotations

import argparse
import binascii
import ctypes
import ctypes.util
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import memcache  # python-memcached
import pylibmc
import _pylibmc

ROOT = Path(__file__).resolve().parents[2]
PLACEMENT_OUT = ROOT / "go" / "dist" / "testdata" / "placement.json"
HASHES_OUT = ROOT / "go" / "hashkit" / "testdata" / "libhashkit.json"

EXPECTED_LIBMEMCACHED = "1.1.4"
EXPECTED_PYLIBMC = "1.6.3"
EXPECTED_PYTHON_MEMCACHED = "1.62"

# Placement strings use one character per key: the index of the server (in
# the configuration's spec list) that holds it, "-" when no server does.
INDEX_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

# libmemcached's memcached_hash_t numbering, the one libhashkit_digest takes.
LIBHASHKIT_ALGORITHMS = {
    "default": 0, "md5": 1, "crc": 2, "fnv1_64": 3, "fnv1a_64": 4,
    "fnv1_32": 5, "fnv1a_32": 6, "hsieh": 7, "murmur": 8, "jenkins": 9,
}


# ---------------------------------------------------------------- keys


def make_keys(seed: int = 5) -> list[bytes]:
    """Return a fixed, varied list of valid memcached keys (1..250 bytes)."""
    rnd = random.Random(seed)
    keys: list[bytes] = []
    seen: set[bytes] = set()

    def add(k: bytes) -> None:
        assert 1 <= len(k) <= 250, k
        assert all(b > 0x20 and b != 0x7F for b in k), k
        if k not in seen:
            seen.add(k)
            keys.append(k)

    printable = [chr(c) for c in range(0x21, 0x7F)]
    # Characters from several scripts; their UTF-8 encodings cover lead and
    # continuation bytes 0x80..0xF4, which libmemcached sign-extends.
    wide = list("éèñüßøåçÆŒ") + list("αβγδλπΩ") + list("жщыэюя") + \
        list("日本語中文字鍵値") + list("한국어") + list("עבר") + list("ع٣") + \
        ["\U0001F600", "\U0001F680", "\U0001D11E", "\u200d", "\u0301", "\ufeff"]

    for i in range(300):
        add(b"key%d" % i)
    for i in range(40):
        add(b"user:%d:profile" % (i * 7919))
    for n in range(1, 41):  # every tail length of lookup3 and murmur, twice over
        add("".join(rnd.choice(printable) for _ in range(n)).encode())
    for _ in range(260):
        n = rnd.randint(1, 60)
        add("".join(rnd.choice(printable) for _ in range(n)).encode())
    for _ in range(300):
        n = rnd.randint(1, 30)
        s = "".join(rnd.choice(wide) if rnd.random() < 0.6 else rnd.choice(printable) for _ in range(n))
        add(s.encode("utf-8"))
    for _ in range(60):  # 250-byte ASCII keys
        add("".join(rnd.choice(printable) for _ in range(250)).encode())
    for _ in range(40):  # 250-byte UTF-8 keys: multibyte text padded to exactly 250 bytes
        b = b""
        while True:
            c = rnd.choice(wide).encode("utf-8")
            if len(b) + len(c) > 250:
                break
            b += c
        add(b + b"x" * (250 - len(b)))
    for _ in range(100):  # raw bytes, including 0xF5..0xFF that UTF-8 never uses
        n = rnd.randint(1, 40)
        add(bytes(rnd.choice([rnd.randint(0x80, 0xFF), rnd.randint(0x21, 0x7E)]) for _ in range(n)))
    for b in range(0x80, 0x100):  # every high byte alone
        add(bytes([b]))
    return keys


def client_key(k: bytes) -> str | bytes:
    """Keys go to the clients as str when they are text, as users pass them."""
    try:
        return k.decode("utf-8")
    except UnicodeDecodeError:
        return k


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """One memcached process started by this script."""

    name: str
    listen: list[str] = field(default_factory=list)  # addresses for -l
    port: int = 0
    unix: str = ""
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = ["memcached", "-U", "0", "-m", "8", "-t", "1", "-c", "64"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        if self.unix:
            cmd += ["-s", self.unix, "-a", "0777"]
        else:
            cmd += ["-l", ",".join(self.listen), "-p", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        if self.unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            addr: object = self.unix
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            addr = (self.listen[0], self.port)
        s.settimeout(timeout)
        s.connect(addr)
        return s

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                sys.exit(f"memcached {self.name} exited: {err.strip()}")
            try:
                self.connect(0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"memcached {self.name} did not start listening")
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def command(self, line: bytes, until: bytes) -> bytes:
        with self.connect() as s:
            s.sendall(line)
            buf = b""
            while not buf.endswith(until):
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError(f"{self.name}: connection closed")
                buf += chunk
            return buf

    def flush(self) -> None:
        out = self.command(b"flush_all\r\n", b"\r\n")
        assert out == b"OK\r\n", out

    def held(self, keys: list[bytes]) -> set[bytes]:
        """Ask the server which of keys it holds (text protocol multi-get)."""
        found: set[bytes] = set()
        with self.connect() as s:
            for i in range(0, len(keys), 100):
                batch = keys[i:i + 100]
                s.sendall(b"get " + b" ".join(batch) + b"\r\n")
                buf = b""
                while not buf.endswith(b"END\r\n"):  # stored values are b"v": no false END
                    chunk = s.recv(65536)
                    if not chunk:
                        raise OSError(f"{self.name}: connection closed")
                    buf += chunk
                pos = 0
                while True:
                    eol = buf.index(b"\r\n", pos)
                    line = buf[pos:eol]
                    if line == b"END":
                        break
                    parts = line.split(b" ")
                    assert parts[0] == b"VALUE", line
                    found.add(parts[1])
                    pos = eol + 2 + int(parts[3]) + 2
        return found


# ---------------------------------------------------------------- configurations


@dataclass
class Spec:
    template: str  # e.g. "localhost:{port}", "{path}", "127.0.0.2"
    server: str  # name of the Server it reaches ("" = nothing listens)


@dataclass
class Config:
    name: str
    client: str  # "pylibmc" or "python-memcached"
    specs: list[Spec]
    behaviors: dict = field(default_factory=dict)
    weights: list[int] | None = None  # python-memcached (spec, weight) tuples
    dead: list[int] = field(default_factory=list)  # spec indices with no server
    note: str = ""
    tie_keys: bool = False  # add keys whose crc hits points shared by two servers
    later: dict | None = None  # behaviors assigned after construction (client.behaviors = ...)


def tcp(name: str, host: str = "127.0.0.1", weight: int | None = None) -> Spec:
    t = host + ":{port}" if ":" not in host else "[" + host + "]:{port}"
    if weight is not None:
        t += ":%d" % weight
    return Spec(t, name)


HASHERS = ["default", "md5", "crc", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "murmur", "jenkins"]


def configurations() -> list[Config]:
    four = [tcp(n) for n in "ABCD"]
    three = [tcp(n) for n in "ABC"]
    five = [tcp(n) for n in "ABCDE"]
    cfgs: list[Config] = []
    for h in HASHERS:  # five servers: modulo 4 would only test the low bits
        cfgs.append(Config(f"modula-{h}", "pylibmc", five, {"hash": h}))
    cfgs.append(Config("modula-hsieh-refused", "pylibmc", four, {"hash": "hsieh"},
                       note="libhashkit 1.1.4 as Debian builds it has no hsieh: pylibmc raises"))
    cfgs.append(Config("modula-default-behaviors", "pylibmc", five, {}))
    cfgs.append(Config("ketama-1", "pylibmc", [tcp("A")], {"ketama": True}))
    cfgs.append(Config("ketama-3", "pylibmc", three, {"ketama": True}))
    cfgs.append(Config("ketama-5", "pylibmc", five, {"ketama": True}))
    cfgs.append(Config("consistent-3", "pylibmc", three, {"distribution": "consistent"}))
    cfgs.append(Config("consistent-ketama-3", "pylibmc", three, {"distribution": "consistent ketama"}))
    for h in HASHERS[1:]:
        cfgs.append(Config(f"ketama-{h}", "pylibmc", four, {"ketama": True, "hash": h},
                           note="the key hash is also the continuum point hash"))
    cfgs.append(Config("ketama-crc-25-ties", "pylibmc", [tcp("W%02d" % i) for i in range(25)],
                       {"ketama": True, "hash": "crc"}, tie_keys=True,
                       note="15-bit crc points collide; extra keys hash exactly onto shared points"))
    cfgs.append(Config("ketama-ketama_hash-md5", "pylibmc", three, {"ketama": True, "ketama_hash": "md5"},
                       note="libmemcached 1.1.4 stores ketama_hash but never uses it"))
    cfgs.append(Config("ketama_weighted-3", "pylibmc", three, {"ketama_weighted": True}))
    cfgs.append(Config("ketama_weighted-5", "pylibmc", five, {"ketama_weighted": True}))
    cfgs.append(Config("ketama_weighted-hash-crc", "pylibmc", three, {"ketama_weighted": True, "hash": "crc"},
                       note="pylibmc sets hash before ketama_weighted, which forces md5"))
    cfgs.append(Config("ketama_weighted-then-consistent", "pylibmc", three,
                       {"ketama_weighted": True, "distribution": "consistent"},
                       note="distribution is applied last: weighting off, md5 key hash stays"))
    cfgs.append(Config("ketama_weighted-false", "pylibmc", three, {"ketama_weighted": False},
                       note="libmemcached turns ketama ON when ketama_weighted is set to false"))
    cfgs.append(Config("consistent-weighted-3", "pylibmc", three, {"distribution": "consistent weighted"},
                       note="weighted continuum with the default key hash: the pre-1.0.10 ketama"))
    cfgs.append(Config("consistent-weighted-25", "pylibmc", [tcp("W%02d" % i) for i in range(25)],
                       {"distribution": "consistent weighted"},
                       note="float quirk: 25 equal servers get 156 points each, not 160"))
    cfgs.append(Config("ketama_weighted-25", "pylibmc", [tcp("W%02d" % i) for i in range(25)],
                       {"ketama_weighted": True}, note="float quirk, md5 key hash"))
    cfgs.append(Config("ketama-spec-weights-1-2-3", "pylibmc",
                       [tcp("A", weight=1), tcp("B", weight=2), tcp("C", weight=3)], {"ketama": True},
                       note="a weight > 1 in the specs turns weighting on, key hash stays default"))
    cfgs.append(Config("ketama-spec-weights-1-9", "pylibmc", [tcp("A", weight=1), tcp("B", weight=9)],
                       {"ketama": True}, note="float (not double) arithmetic: 72 points, not 71"))
    cfgs.append(Config("ketama-spec-weights-1-3-7-7-7", "pylibmc",
                       [tcp(n, weight=w) for n, w in zip("ABCDE", (1, 3, 7, 7, 7))], {"ketama": True},
                       note="float arithmetic: weight 1 gets 7*4 points where exact math gives 8*4"))
    cfgs.append(Config("ketama_weighted-spec-weights", "pylibmc",
                       [tcp("A", weight=2), tcp("B", weight=1), tcp("C", weight=5), tcp("D", weight=1)],
                       {"ketama_weighted": True}))
    cfgs.append(Config("ketama-assigned-after-servers", "pylibmc",
                       [tcp("A", weight=1), tcp("B", weight=2), tcp("C", weight=3)], {}, later={"ketama": True},
                       note="servers added under modula: their weights never turned weighting on"))
    cfgs.append(Config("spec-weights-then-hash-md5", "pylibmc",
                       [tcp("A", weight=1), tcp("B", weight=2), tcp("C", weight=3)], {"ketama": True},
                       later={"hash": "md5"}, note="the weighted flag survives a later hash change"))
    cfgs.append(Config("spec-weights-then-ketama-again", "pylibmc",
                       [tcp("A", weight=1), tcp("B", weight=2), tcp("C", weight=3)], {"ketama": True},
                       later={"ketama": True}, note="setting ketama again turns weighting off"))
    cfgs.append(Config("modula-spec-weights-ignored", "pylibmc",
                       [tcp("A", weight=1), tcp("B", weight=5), tcp("C", weight=2)], {}))
    cfgs.append(Config("ketama-localhost", "pylibmc", [tcp(n, "localhost") for n in "ABC"], {"ketama": True},
                       note="host names are hashed as given: compare ketama-127.0.0.1"))
    cfgs.append(Config("ketama-127.0.0.1", "pylibmc", three, {"ketama": True}))
    cfgs.append(Config("ketama-mixed-names", "pylibmc", [tcp("A", "localhost"), tcp("B"), tcp("C", "::1")],
                       {"ketama": True}))
    cfgs.append(Config("ketama-ipv6", "pylibmc", [tcp(n, "::1") for n in "ABC"], {"ketama": True}))
    cfgs.append(Config("ketama-implicit-11211", "pylibmc",
                       [Spec("127.0.0.%d" % i, "P%d" % i) for i in (2, 3, 4)], {"ketama": True}))
    cfgs.append(Config("ketama-explicit-11211", "pylibmc",
                       [Spec("127.0.0.%d:11211" % i, "P%d" % i) for i in (2, 3, 4)], {"ketama": True}))
    cfgs.append(Config("ketama-11211-and-other-port", "pylibmc",
                       [Spec("127.0.0.2", "P2"), tcp("A"), Spec("127.0.0.3:11211", "P3"), tcp("B")],
                       {"ketama": True}))
    cfgs.append(Config("ketama_weighted-implicit-11211", "pylibmc",
                       [Spec("127.0.0.%d" % i, "P%d" % i) for i in (2, 3, 4, 5)], {"ketama_weighted": True}))
    cfgs.append(Config("modula-implicit-11211", "pylibmc",
                       [Spec("127.0.0.%d" % i, "P%d" % i) for i in (2, 3, 4)], {}))
    unsorted = [tcp("C", "localhost"), tcp("A"), tcp("D"), tcp("B", "localhost"), Spec("127.0.0.2", "P2")]
    cfgs.append(Config("modula-sort_hosts", "pylibmc", unsorted, {"_sort_hosts": True},
                       note="libmemcached sorts the server list by (host, port) before modula"))
    cfgs.append(Config("modula-unsorted", "pylibmc", unsorted, {}))
    cfgs.append(Config("ketama-sort_hosts", "pylibmc", unsorted, {"ketama": True, "_sort_hosts": True}))
    cfgs.append(Config("crc-modula-sort_hosts", "pylibmc", unsorted, {"hash": "crc", "_sort_hosts": True}))
    cfgs.append(Config("consistent-ketama-spy", "pylibmc", three, {"distribution": "consistent ketama spy"}))
    cfgs.append(Config("ketama-unix", "pylibmc", [Spec("{path}", "U%d" % i) for i in (1, 2, 3)],
                       {"ketama": True}, note="unix sockets have port 0: points are named path:0-N"))
    cfgs.append(Config("modula-unix", "pylibmc", [Spec("{path}", "U%d" % i) for i in (3, 1, 2)],
                       {"hash": "fnv1a_32", "_sort_hosts": True}))
    eject = {"auto_eject": True, "failure_limit": 1, "retry_timeout": 3600}
    cfgs.append(Config("ketama-auto_eject", "pylibmc", [tcp("A"), tcp("DEAD"), tcp("B"), tcp("C")],
                       dict(eject, ketama=True), dead=[1],
                       note="after the dead server is ejected libmemcached rebuilds the continuum over live servers"))
    cfgs.append(Config("ketama-spec-weights-auto_eject", "pylibmc",
                       [tcp(n, weight=w) for n, w in zip(("A", "B", "DEAD", "C", "D"), (1, 3, 7, 7, 7))],
                       dict(eject, ketama=True), dead=[2],
                       note="weighted rebuild: points per server use the live count and live weights"))
    cfgs.append(Config("ketama_weighted-auto_eject", "pylibmc", [tcp("DEAD"), tcp("A"), tcp("B")],
                       dict(eject, ketama_weighted=True), dead=[0]))
    cfgs.append(Config("python-memcached-4", "python-memcached",
                       [Spec("127.0.0.1:{port}", n) for n in "ABCD"]))
    cfgs.append(Config("python-memcached-weights", "python-memcached",
                       [Spec("127.0.0.1:{port}", n) for n in "ABCD"], weights=[1, 3, 2, 5]))
    cfgs.append(Config("python-memcached-implicit-port", "python-memcached",
                       [Spec("127.0.0.%d" % i, "P%d" % i) for i in (2, 3, 4)]))
    cfgs.append(Config("python-memcached-dead-server", "python-memcached",
                       [Spec("127.0.0.1:{port}", n) for n in ("A", "DEAD", "B", "C")], weights=[1, 2, 1, 1],
                       dead=[1], note="keys of the dead server are rehashed: crc32(str(hash)+str(i))"))
    cfgs.append(Config("python-memcached-two-dead", "python-memcached",
                       [Spec("127.0.0.1:{port}", n) for n in ("DEAD", "A", "DEAD2", "B")], dead=[0, 2]))
    return cfgs


# ---------------------------------------------------------------- running


def render(spec: Spec, servers: dict[str, Server]) -> str:
    srv = servers[spec.server]
    return spec.template.format(port=srv.port, path=srv.unix)


def libmemcached_order(client: pylibmc.Client, specs: list[str], sort_hosts: bool) -> list[int]:
    """Map libmemcached's instance positions (what Client.hash returns) to spec indices.

    libmemcached keeps the servers in the order they were added unless
    _sort_hosts sorts them in place; then get_stats(), which lists the
    instances in their order, tells the new order.
    """
    if not sort_hosts:
        return list(range(len(specs)))
    labels = [label.decode() for label, _ in client.get_stats()]
    wanted = []
    for s in specs:
        stype, host, port, _weight = pylibmc.client.translate_server_spec(s)
        wanted.append(f"{host}:{port}")
    order = []
    for i, label in enumerate(labels):
        addr, _, idx = label.rpartition(" ")
        assert idx == f"({i})", label
        order.append(wanted.index(addr))
    assert sorted(order) == list(range(len(specs))), (labels, specs)
    return order


def run_pylibmc(cfg: Config, specs: list[str], keys: list[bytes], servers: list[Server]) -> dict:
    out: dict = {"behaviors": cfg.behaviors}
    try:
        client = pylibmc.Client(specs, behaviors=dict(cfg.behaviors))
    except pylibmc.Error as e:
        out["error"] = str(e)
        return out
    if cfg.later is not None:
        client.behaviors = dict(cfg.later)
    if cfg.dead:
        # Let libmemcached find the dead servers and eject them, then start
        # over with empty live servers.
        for k in keys:
            try:
                client.set(client_key(k), b"v")
            except pylibmc.Error:
                pass
        for i, srv in enumerate(servers):
            if i not in cfg.dead:
                srv.flush()
    for k in keys:
        if not client.set(client_key(k), b"v"):
            sys.exit(f"{cfg.name}: pylibmc refused to store {k!r}")
    order = libmemcached_order(client, specs, bool(cfg.behaviors.get("_sort_hosts")))
    hashes = [order[client.hash(client_key(k))] for k in keys]
    out["placement"] = placement(cfg, keys, servers)
    out["pylibmc_hash_agrees"] = hashes == out["placement"]
    if hashes != out["placement"]:
        sys.exit(f"{cfg.name}: pylibmc.Client.hash() disagrees with the servers")
    out["libmemcached_order"] = order
    client.disconnect_all()
    return out


def run_python_memcached(cfg: Config, specs: list[str], keys: list[bytes], servers: list[Server]) -> dict:
    hosts: list = specs if cfg.weights is None else list(zip(specs, cfg.weights))
    client = memcache.Client(hosts, dead_retry=3600, socket_timeout=2)
    refused = set()
    for k in keys:
        if not client.set(client_key(k), b"v"):
            # python-memcached gives up after _SERVER_RETRIES rehashes that all
            # land on dead servers; such keys are stored nowhere.
            if not cfg.dead:
                sys.exit(f"{cfg.name}: python-memcached refused to store {k!r}")
            refused.add(k)
    out = {"placement": placement(cfg, keys, servers, allow_missing=refused)}
    client.disconnect_all()
    return out


def placement(cfg: Config, keys: list[bytes], servers: list[Server],
              allow_missing: set[bytes] = frozenset()) -> list[int]:
    """Return, per key, the index of the server holding it (-1: none, when allowed)."""
    where: dict[bytes, int] = {}
    for idx, srv in enumerate(servers):
        if idx in cfg.dead:
            continue
        for k in srv.held(keys):
            if k in where:
                sys.exit(f"{cfg.name}: key {k!r} found on two servers")
            where[k] = idx
    missing = {k for k in keys if k not in where}
    if missing != allow_missing:
        sys.exit(f"{cfg.name}: {len(missing)} keys on no server, {len(allow_missing)} refused by the client")
    return [where.get(k, -1) for k in keys]


def crc15(b: bytes) -> int:
    return (binascii.crc32(b) >> 16) & 0x7FFF


def ketama_crc_tie_keys(specs: list[str], limit: int = 40) -> list[bytes]:
    """Keys whose crc equals a continuum point that two servers share.

    Such points are where libmemcached's tie rule (lower list position
    first) decides; random keys almost never hit them.
    """
    owners: dict[int, set[int]] = {}
    for idx, spec in enumerate(specs):
        _stype, host, port, _w = pylibmc.client.translate_server_spec(spec)
        for n in range(100):
            name = f"{host}-{n}" if port == 11211 else f"{host}:{port}-{n}"
            owners.setdefault(crc15(name.encode()), set()).add(idx)
    ties = sorted(v for v, o in owners.items() if len(o) > 1)[:limit]
    if len(ties) < 5:
        sys.exit(f"only {len(ties)} shared points; need more servers")
    out = []
    for v in ties:
        r = random.Random(v)
        while True:
            k = b"tie-%d-%d" % (v, r.randrange(1 << 30))
            if crc15(k) == v:
                out.append(k)
                break
    return out


def libhashkit_vectors(keys: list[bytes]) -> dict:
    lib = ctypes.CDLL(ctypes.util.find_library("hashkit") or "libhashkit.so.2")
    lib.libhashkit_digest.restype = ctypes.c_uint32
    lib.libhashkit_digest.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    lib.libhashkit_has_algorithm.restype = ctypes.c_bool
    lib.libhashkit_has_algorithm.argtypes = [ctypes.c_int]
    extra = [b""] + [bytes([b]) for b in range(256)]
    ramp = bytes(range(0x61, 0x61 + 26)) + bytes(range(0xE0, 0x100))
    extra += [ramp[:n] for n in range(len(ramp) + 1)]
    extra += [bytes(rnd_bytes(i, 300 + 37 * i)) for i in range(20)]  # longer than memcached allows
    all_keys = []
    seen = set()
    for k in extra + keys:
        if k not in seen:
            seen.add(k)
            all_keys.append(k)
    out = {"keys_hex": [k.hex() for k in all_keys], "values": {}, "missing": []}
    for name, num in LIBHASHKIT_ALGORITHMS.items():
        if not lib.libhashkit_has_algorithm(num):
            out["missing"].append(name)
            continue
        out["values"][name] = [lib.libhashkit_digest(k, len(k), num) for k in all_keys]
    return out


def rnd_bytes(seed: int, n: int) -> list[int]:
    r = random.Random(seed)
    return [r.randint(0, 255) for _ in range(n)]


def check_versions() -> dict:
    if _pylibmc.libmemcached_version != EXPECTED_LIBMEMCACHED:
        sys.exit(f"pylibmc is linked against libmemcached {_pylibmc.libmemcached_version}, "
                 f"not {EXPECTED_LIBMEMCACHED}: reinstall with "
                 f"pip install --no-binary pylibmc --force-reinstall pylibmc=={EXPECTED_PYLIBMC}")
    if pylibmc.__version__ != EXPECTED_PYLIBMC:
        sys.exit(f"pylibmc {pylibmc.__version__} installed, want {EXPECTED_PYLIBMC}")
    if memcache.__version__ != EXPECTED_PYTHON_MEMCACHED:
        sys.exit(f"python-memcached {memcache.__version__} installed, want {EXPECTED_PYTHON_MEMCACHED}")
    mc = subprocess.run(["memcached", "-V"], capture_output=True, text=True, check=True).stdout.strip()
    return {"libmemcached": _pylibmc.libmemcached_version, "pylibmc": pylibmc.__version__,
            "python-memcached": memcache.__version__, "memcached": mc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="run only configurations whose name contains this")
    ap.add_argument("--dry-run", action="store_true", help="check, but write nothing")
    args = ap.parse_args()

    versions = check_versions()
    keys = make_keys()
    cfgs = configurations()
    if args.only:
        cfgs = [c for c in cfgs if args.only in c.name]

    tmp = Path(tempfile.mkdtemp(prefix="omcache-distvectors-"))
    os.chmod(tmp, 0o777)
    servers: dict[str, Server] = {}
    for n in "ABCDE":
        servers[n] = Server(n, ["127.0.0.1", "::1"], free_port())
    for i in range(25):
        servers["W%02d" % i] = Server("W%02d" % i, ["127.0.0.1"], free_port())
    for i in (2, 3, 4, 5):
        servers["P%d" % i] = Server("P%d" % i, ["127.0.0.%d" % i], 11211)
    for i in (1, 2, 3):
        servers["U%d" % i] = Server("U%d" % i, unix=str(tmp / ("m%d.sock" % i)))
    dead = {"DEAD": Server("DEAD", ["127.0.0.1"], free_port()), "DEAD2": Server("DEAD2", ["127.0.0.1"], free_port())}
    used = {s.server for c in cfgs for s in c.specs}
    try:
        for name, srv in servers.items():
            if name in used:
                srv.start()
        for name, srv in servers.items():
            if name in used:
                srv.wait_ready()
        servers.update(dead)
        results = []
        for cfg in cfgs:
            for name in used:
                if name not in dead:
                    servers[name].flush()
            specs = [render(s, servers) for s in cfg.specs]
            cfg_servers = [servers[s.server] for s in cfg.specs]
            extra = ketama_crc_tie_keys(specs) if cfg.tie_keys else []
            cfg_keys = keys + extra
            if cfg.client == "pylibmc":
                res = run_pylibmc(cfg, specs, cfg_keys, cfg_servers)
            else:
                res = run_python_memcached(cfg, specs, cfg_keys, cfg_servers)
            entry = {"name": cfg.name, "client": cfg.client, "specs": specs}
            if extra:
                entry["extra_keys_hex"] = [k.hex() for k in extra]
            if cfg.later is not None:
                entry["later_behaviors"] = cfg.later
            if cfg.weights is not None:
                entry["weights"] = cfg.weights
            if cfg.dead:
                entry["dead"] = cfg.dead
            if cfg.note:
                entry["note"] = cfg.note
            if "error" in res:
                entry["behaviors"] = res["behaviors"]
                entry["error"] = res["error"]
                print(f"{cfg.name:40s} refused: {res['error']}")
            else:
                if "behaviors" in res:
                    entry["behaviors"] = res["behaviors"]
                if "libmemcached_order" in res and res["libmemcached_order"] != list(range(len(specs))):
                    entry["libmemcached_order"] = res["libmemcached_order"]
                if cfg.client == "pylibmc":
                    entry["pylibmc_hash_agrees"] = res["pylibmc_hash_agrees"]
                entry["placement"] = "".join(INDEX_ALPHABET[i] if i >= 0 else "-" for i in res["placement"])
                counts = [res["placement"].count(i) for i in range(len(specs))]
                nowhere = res["placement"].count(-1)
                print(f"{cfg.name:40s} {len(cfg_keys)} keys, per server {counts}" + (f", nowhere {nowhere}" if nowhere else ""))
            results.append(entry)
    finally:
        for srv in servers.values():
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    doc = {
        "generator": "tools/distvectors/gen.py",
        "versions": versions,
        "index_alphabet": INDEX_ALPHABET,
        "keys_hex": [k.hex() for k in keys],
        "configs": results,
    }
    hashes = libhashkit_vectors(keys)
    hashes["generator"] = "tools/distvectors/gen.py"
    hashes["versions"] = versions
    if args.dry_run:
        print("dry run: nothing written")
        return
    if not args.only:
        PLACEMENT_OUT.parent.mkdir(parents=True, exist_ok=True)
        PLACEMENT_OUT.write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
        print(f"wrote {PLACEMENT_OUT} ({PLACEMENT_OUT.stat().st_size} bytes, {len(results)} configurations)")
    HASHES_OUT.parent.mkdir(parents=True, exist_ok=True)
    HASHES_OUT.write_text(json.dumps(hashes, separators=(",", ":")) + "\n")
    print(f"wrote {HASHES_OUT} ({HASHES_OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

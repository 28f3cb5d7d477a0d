"""Helpers for tests/test_placement.py: keys, a farm of real memcached servers, raw reads.

Placement is observed, not computed: a key is stored through a real client and
every server is then asked (over a raw text-protocol socket, so no client code
is involved) which of the keys it holds.
"""

from __future__ import annotations

import random
import socket
from typing import Dict, Iterable, List, Optional, Sequence, Set, Union

from omcache.testing import MemcachedProcess

Key = Union[str, bytes]

# A raw read never waits longer than this for one reply.
IO_TIMEOUT = 5.0


# ---------------------------------------------------------------- keys


def make_keys(seed: int = 11) -> List[bytes]:
    """Return a fixed list of distinct valid memcached keys (1..250 bytes, no space or control byte).

    It mixes short ASCII keys, every lookup3/murmur tail length, text in many
    scripts (UTF-8 lead and continuation bytes are what libmemcached's signed
    char one-at-a-time sign-extends), keys of exactly 250 bytes (ASCII and
    UTF-8), and raw bytes 0x80..0xFF that are not UTF-8 at all.
    """
    rnd = random.Random(seed)
    keys: List[bytes] = []
    seen: Set[bytes] = set()

    def add(k: bytes) -> None:
        assert 1 <= len(k) <= 250 and all(b > 0x20 and b != 0x7F for b in k), k
        if k not in seen:
            seen.add(k)
            keys.append(k)

    ascii_chars = [chr(c) for c in range(0x21, 0x7F)]
    wide = (
        list("àéîõüçñßøåÆŒ")
        + list("αβγδεζλμπσΩ")
        + list("абвгджзщыэюя")
        + list("東京都大阪市鍵値日本語中文")
        + list("가나다한국어")
        + list("שלוםעבר")
        + list("مرحبا٣")
        + list("नमस्ते")
        + ["\U0001F600", "\U0001F680", "\U0001D11E", "\U00010348", "\u200d", "\u0301", "\ufeff", "\u2028"]
    )

    for i in range(250):
        add(b"key:%d" % i)
    for i in range(50):
        add(b"session/%08x" % rnd.getrandbits(32))
    for n in range(1, 33):
        add("".join(rnd.choice(ascii_chars) for _ in range(n)).encode())
    for _ in range(250):
        add("".join(rnd.choice(ascii_chars) for _ in range(rnd.randint(1, 80))).encode())
    for _ in range(350):
        n = rnd.randint(1, 40)
        text = "".join(rnd.choice(wide) if rnd.random() < 0.7 else rnd.choice(ascii_chars) for _ in range(n))
        add(text.encode("utf-8"))
    for _ in range(60):
        add("".join(rnd.choice(ascii_chars) for _ in range(250)).encode())
    for _ in range(60):  # multibyte text padded to exactly 250 bytes
        b = b""
        while True:
            c = rnd.choice(wide).encode("utf-8")
            if len(b) + len(c) > 250:
                break
            b += c
        add(b + b"~" * (250 - len(b)))
    for _ in range(80):
        n = rnd.randint(1, 30)
        add(bytes(rnd.randint(0x80, 0xFF) if rnd.random() < 0.5 else rnd.randint(0x21, 0x7E) for _ in range(n)))
    for b in range(0x80, 0x100):
        add(bytes([b]))
    return keys


def client_key(k: bytes) -> Key:
    """The key as an application passes it: str when it is UTF-8 text, bytes otherwise."""
    try:
        return k.decode("utf-8")
    except UnicodeDecodeError:
        return k


# ---------------------------------------------------------------- servers


def _family_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            # memcached binds with SO_REUSEADDR: connections in TIME_WAIT do
            # not keep it off a port, only another listener does.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        return True
    except OSError:
        return False


def ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (containers sometimes run without IPv6)."""
    return socket.has_ipv6 and _family_free("::1", 0)


def dual_stack_port() -> int:
    """A port free on 127.0.0.1 and, when IPv6 is there, on ::1.

    libmemcached resolves "localhost" with getaddrinfo and may try ::1 first,
    so servers reached as "localhost:PORT" listen on both.
    """
    v6 = ipv6_loopback()
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not v6 or _family_free("::1", port):
            return port
    raise RuntimeError("no port free on both 127.0.0.1 and ::1")


class Server:
    """One real memcached reached through a raw socket for flush and multi-get."""

    def __init__(self, proc: MemcachedProcess, host: str, port: int, unix: Optional[str] = None) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self.unix = unix

    def _connect(self) -> socket.socket:
        if self.unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(IO_TIMEOUT)
            s.connect(self.unix)
        else:
            s = socket.create_connection((self.host, self.port), timeout=IO_TIMEOUT)
        return s

    def flush(self) -> None:
        with self._connect() as s:
            s.sendall(b"flush_all\r\n")
            reply = _read_until(s, b"\r\n")
        assert reply == b"OK\r\n", reply

    def held(self, keys: Sequence[bytes]) -> Dict[bytes, bytes]:
        """Return {key: value} for the keys this server holds (text-protocol get)."""
        out: Dict[bytes, bytes] = {}
        with self._connect() as s:
            for i in range(0, len(keys), 64):
                s.sendall(b"get " + b" ".join(keys[i : i + 64]) + b"\r\n")
                buf = b""
                pos = 0
                while True:
                    eol = buf.find(b"\r\n", pos)
                    while eol < 0:
                        buf += _recv(s)
                        eol = buf.find(b"\r\n", pos)
                    line = buf[pos:eol]
                    if line == b"END":
                        break
                    parts = line.split(b" ")
                    assert parts[0] == b"VALUE" and len(parts) == 4, line
                    size = int(parts[3])
                    start = eol + 2
                    while len(buf) < start + size + 2:
                        buf += _recv(s)
                    out[parts[1]] = buf[start : start + size]
                    pos = start + size + 2
        return out


def _recv(s: socket.socket) -> bytes:
    chunk = s.recv(65536)
    if not chunk:
        raise OSError("server closed the connection")
    return chunk


def _read_until(s: socket.socket, end: bytes) -> bytes:
    buf = b""
    while not buf.endswith(end):
        buf += _recv(s)
    return buf


class Farm:
    """The memcached servers a test module shares, by name.

    ``S0``.. listen on 127.0.0.1 (and ::1) on free ports; ``P0``.. listen on
    port 11211 of distinct 127.x.y.z addresses, for specs that leave the port
    out; ``U0``.. are unix sockets.
    """

    def __init__(self) -> None:
        self.servers: Dict[str, Server] = {}
        self._procs: List[MemcachedProcess] = []

    def _start(self, proc: MemcachedProcess) -> MemcachedProcess:
        proc.start()
        self._procs.append(proc)
        return proc

    def start_tcp(self, count: int) -> None:
        extra = ["-l", "::1"] if ipv6_loopback() else []
        for i in range(count):
            for attempt in range(5):
                port = dual_stack_port()
                try:
                    p = self._start(MemcachedProcess(host="127.0.0.1", port=port, memory_mb=8, extra_args=extra))
                    break
                except RuntimeError:
                    if attempt == 4:  # another process took the port between the probe and memcached's bind
                        raise
            self.servers[f"S{i}"] = Server(p, "127.0.0.1", port)

    def start_port_11211(self, count: int) -> None:
        """Start count servers on port 11211 of distinct loopback addresses.

        127.0.0.2..5 come first, as tools/distvectors/gen.py uses them; an
        address whose 11211 is taken is passed over for the next candidate.
        """
        candidates = [f"127.0.0.{i}" for i in range(2, 255)]
        candidates += [f"127.0.{j}.{i}" for j in range(1, 4) for i in range(2, 255)]
        found = 0
        for addr in candidates:
            if found == count:
                return
            if not _family_free(addr, 11211):
                continue
            try:
                p = self._start(MemcachedProcess(host=addr, port=11211, memory_mb=8))
            except RuntimeError:
                continue
            self.servers[f"P{found}"] = Server(p, addr, 11211)
            found += 1
        if found < count:
            raise RuntimeError(f"only {found} loopback addresses have port 11211 free")

    def start_unix(self, count: int) -> None:
        for i in range(count):
            p = self._start(MemcachedProcess(unix=True, memory_mb=8))
            assert p.socket_path is not None
            self.servers[f"U{i}"] = Server(p, "", 0, unix=p.socket_path)

    def stop(self) -> None:
        # memcached takes a while to exit on SIGTERM: signal them all, then wait.
        for p in self._procs:
            if p.proc is not None and p.proc.poll() is None:
                p.proc.terminate()
        for p in self._procs:
            p.stop()
        self._procs.clear()

    def __getitem__(self, name: str) -> Server:
        return self.servers[name]


# ---------------------------------------------------------------- observing placement


def observe(servers: Sequence[Server], keys: Sequence[bytes]) -> Dict[bytes, int]:
    """Return {key: index of the server (in servers) that holds it}; a key on two servers fails."""
    where: Dict[bytes, int] = {}
    for idx, srv in enumerate(servers):
        for k in srv.held(keys):
            assert k not in where, f"key {k!r} is on server {where[k]} and on server {idx}"
            where[k] = idx
    return where


def flush(servers: Iterable[Server]) -> None:
    for s in servers:
        s.flush()


def mismatches(keys: Sequence[bytes], want: Sequence[int], got: Sequence[int], limit: int = 5) -> str:
    """Describe the first few keys whose placements differ, with their counts."""
    bad = [(k, w, g) for k, w, g in zip(keys, want, got) if w != g]
    head = ", ".join(f"{k!r}: want {w} got {g}" for k, w, g in bad[:limit])
    return f"{len(bad)} of {len(keys)} keys differ ({head})"


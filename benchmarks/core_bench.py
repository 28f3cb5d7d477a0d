"""Single-key and 100-key round trips: omcache vs a raw-socket Python floor.

    python benchmarks/core_bench.py [--n 20000] [--reps 5] [--memcached] [--unix]

The floor is the least a Python client can do: one pre-encoded binary-protocol
request written with socket.send and the reply read with socket.recv, no
parsing beyond the length.  Each workload alternates omcache and the floor over
`reps` rounds and reports medians (us per call) and the ratio omcache/floor.
This is not a test: numbers vary with the machine; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import time
from typing import Callable, Dict, List

import omcache
from omcache.testing import EmbeddedServer, MemcachedProcess

HDR = struct.Struct(">BBHBBHIIQ")


def bin_req(op: int, key: bytes, extras: bytes = b"", value: bytes = b"", opaque: int = 0) -> bytes:
    body = len(extras) + len(key) + len(value)
    return HDR.pack(0x80, op, len(key), len(extras), 0, 0, body, opaque, 0) + extras + key + value


class RawFloor:
    """A minimal binary-protocol client on a plain blocking socket."""

    def __init__(self, address: str) -> None:
        if address.startswith("/"):
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.connect(address)
        else:
            host, port = address.rsplit(":", 1)
            self.s = socket.create_connection((host, int(port)))
            self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def roundtrip(self, req: bytes, replies: int = 1) -> None:
        self.s.sendall(req)
        buf = b""
        for _ in range(replies):
            while len(buf) < 24:
                buf += self.s.recv(65536)
            body = HDR.unpack_from(buf)[6]
            while len(buf) < 24 + body:
                buf += self.s.recv(65536)
            buf = buf[24 + body :]


def timed(fn: Callable[[], None], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--memcached", action="store_true", help="real memcached instead of the embedded server")
    ap.add_argument("--unix", action="store_true")
    args = ap.parse_args()
    server = MemcachedProcess(unix=args.unix) if args.memcached else EmbeddedServer()
    with server:
        addr = server.address
        mc = omcache.Client([addr])
        raw = RawFloor(addr)
        value = b"v" * 100
        mc.set("bench-key", value)
        keys = [f"bench-multi-{i}" for i in range(100)]
        mc.set_multi({k: value for k in keys})

        get_req = bin_req(0x00, b"bench-key")
        set_req = bin_req(0x01, b"bench-key", struct.pack(">II", 0, 0), value)
        # 100 quiet GETKQ + NOOP: only hits answer, so 100 replies + 1
        multi_get_req = b"".join(bin_req(0x0D, k.encode(), opaque=i) for i, k in enumerate(keys)) + bin_req(0x0A, b"")
        multi_set_req = b"".join(
            bin_req(0x11, k.encode(), struct.pack(">II", 0, 0), value, opaque=i) for i, k in enumerate(keys)
        ) + bin_req(0x0A, b"")

        multi_n = max(1, args.n // 20)
        workloads: Dict[str, tuple] = {
            "get 100 B": (lambda: mc.get("bench-key"), lambda: raw.roundtrip(get_req), args.n),
            "set 100 B": (lambda: mc.set("bench-key", value), lambda: raw.roundtrip(set_req), args.n),
            "get_multi 100": (lambda: mc.get_multi(keys), lambda: raw.roundtrip(multi_get_req, 101), multi_n),
            "set_multi 100": (lambda: mc.set_multi({k: value for k in keys}), lambda: raw.roundtrip(multi_set_req, 1), multi_n),
        }
        kind = "memcached" if args.memcached else "embedded server"
        print(f"server: {kind} at {addr}; {args.reps} reps; medians in us per call")
        print(f"{'workload':<16}{'omcache':>10}{'raw floor':>12}{'ratio':>8}")
        for name, (ours, floor, n) in workloads.items():
            a: List[float] = []
            b: List[float] = []
            for _ in range(args.reps):
                a.append(timed(ours, n))
                b.append(timed(floor, n))
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"{name:<16}{ma:>10.1f}{mb:>12.1f}{ma / mb:>8.2f}")


if __name__ == "__main__":
    main()

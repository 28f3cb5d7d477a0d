"""TLS round trips: omcache against pymemcache with an ssl.SSLContext, on memcached -Z.

    python benchmarks/tls_bench.py [--ops 5000] [--reps 3]

Starts memcached with -Z and a self-signed certificate made with openssl,
then times get 10 B, set 10 B and get_multi of 100 keys through
omcache.Client(tls=True, tls_ca_file=...) and pymemcache.Client(tls_context=...),
best of --reps, and the cost of one new connection (TCP connect + TLS
handshake + one get) for each. It is a standalone script; ``make bench``
has the same rows (``omcache tls`` and ``pymemcache tls``, the ``TLS``
workloads) with targets, in its report.
"""

from __future__ import annotations

import argparse
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict

import omcache
from omcache.testing import MemcachedProcess


def _cert(d: str) -> tuple[str, str]:
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    for p in (cert, key):
        os.chmod(p, 0o644)
    return cert, key


def _best(fn: Callable[[], None], ops: int, reps: int) -> float:
    """Best of reps: microseconds per call."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(ops):
            fn()
        best = min(best, (time.perf_counter() - t0) / ops * 1e6)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    try:
        import pymemcache
    except ImportError:
        print("tls_bench: pymemcache is not installed", file=sys.stderr)
        return 2
    d = tempfile.mkdtemp(prefix="omcache-tlsbench-")
    os.chmod(d, 0o755)
    try:
        cert, key = _cert(d)
        srv = MemcachedProcess(extra_args=["-Z", "-o", f"ssl_chain_cert={cert},ssl_key={key}"], plain_probe=False).start()
        try:
            host, port = srv.address.rsplit(":", 1)
            ctx = ssl.create_default_context(cafile=cert)
            om = omcache.Client([srv.address], tls=True, tls_ca_file=cert)
            pm = pymemcache.Client((host, int(port)), tls_context=ctx)
            keys = [f"k{i}" for i in range(100)]
            om.set_multi({k: b"x" * 10 for k in keys})
            om.set("g", b"x" * 10)
            results: Dict[str, Dict[str, float]] = {"omcache": {}, "pymemcache": {}}
            ops, reps = args.ops, args.reps
            results["omcache"]["get 10 B"] = _best(lambda: om.get("g"), ops, reps)
            results["pymemcache"]["get 10 B"] = _best(lambda: pm.get("g"), ops, reps)
            results["omcache"]["set 10 B"] = _best(lambda: om.set("s", b"y" * 10), ops, reps)
            results["pymemcache"]["set 10 B"] = _best(lambda: pm.set("s", b"y" * 10, noreply=False), ops, reps)
            results["omcache"]["get_multi 100"] = _best(lambda: om.get_multi(keys), ops // 10, reps)
            results["pymemcache"]["get_multi 100"] = _best(lambda: pm.get_many(keys), ops // 10, reps)

            def om_new() -> None:
                c = omcache.Client([srv.address], tls=True, tls_ca_file=cert)
                c.get("g")
                c.close()

            def pm_new() -> None:
                c = pymemcache.Client((host, int(port)), tls_context=ctx)
                c.get("g")
                c.close()

            om_new()  # loads the engine once
            results["omcache"]["new connection + get"] = _best(om_new, 50, reps)
            results["pymemcache"]["new connection + get"] = _best(pm_new, 50, reps)
            om.close()
            pm.close()
        finally:
            srv.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{'workload':<24}{'omcache us':>12}{'pymemcache us':>15}{'ratio':>8}")
    for w in results["omcache"]:
        o, p = results["omcache"][w], results["pymemcache"][w]
        print(f"{w:<24}{o:>12.1f}{p:>15.1f}{o / p:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

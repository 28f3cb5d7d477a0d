"""omcache demo: start a server, use the client, print what happened.

Run with `make demo` (builds and installs omcache into .venv first). By default
it uses omcache's embedded memcached-compatible server, so nothing else needs
to be installed; `--memcached` uses the real memcached binary instead.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Union

import omcache
from omcache.testing import EmbeddedServer, MemcachedProcess


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--memcached", action="store_true", help="use the real memcached binary")
    args = ap.parse_args()
    server: Union[EmbeddedServer, MemcachedProcess]
    server = MemcachedProcess() if args.memcached else EmbeddedServer()
    with server:
        kind = "memcached" if args.memcached else "omcache's embedded server"
        print(f"started {kind} at {server.address}")
        mc = omcache.Client([server.address])

        print("set('greeting', b'hello, memcached') ->", mc.set("greeting", b"hello, memcached"))
        print("get('greeting') ->", mc.get("greeting"))
        print("get('missing') ->", mc.get("missing"))
        blob = os.urandom(1_000_000)
        mc.set("blob", blob)
        print("1,000,000 random bytes round-trip intact ->", mc.get("blob") == blob)
        print("delete('greeting') ->", mc.delete("greeting"), "; again ->", mc.delete("greeting"))
        try:
            mc.get("bad key")
        except omcache.InvalidKeyError as e:
            print("get('bad key') raised InvalidKeyError:", e)

        n = 20_000
        mc.set("bench", b"x" * 100)
        t0 = time.perf_counter()
        for _ in range(n):
            mc.get("bench")
        dt = time.perf_counter() - t0
        print(f"{n} gets of a 100-byte value: {dt:.2f} s, {dt / n * 1e6:.1f} us per get (loopback round trip)")
        mc.close()
    print("stopped the server")


if __name__ == "__main__":
    main()

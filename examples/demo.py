"""omcache demo: start a memcached, use the client, print what happened.

Run with `make demo` (builds and installs omcache into .venv first).
"""

from __future__ import annotations

import os
import time

import omcache
from omcache.testing import MemcachedProcess


def main() -> None:
    with MemcachedProcess() as server:
        print(f"started memcached (pid {server.proc.pid if server.proc else '?'}) at {server.address}")
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
    print("stopped memcached")


if __name__ == "__main__":
    main()

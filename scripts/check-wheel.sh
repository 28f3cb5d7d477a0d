#!/usr/bin/env bash
# Build a wheel with `pip wheel .`, install it into a fresh venv, and use it with
# no Go toolchain on PATH against a real memcached: the wheel must be self-contained.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$PYTHON" -m pip wheel -q --no-deps -w "$out/dist" .
whl=$(ls "$out"/dist/omcache-*.whl)
echo "built $(basename "$whl") ($(du -h "$whl" | cut -f1))"
"$PYTHON" -m venv "$out/venv"
"$out/venv/bin/pip" install -q "$whl"
cd "$out"  # away from the source tree, so only the installed wheel can be imported
env -i HOME="$out" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$out/venv/bin/python" - <<'PY'
import shutil, omcache
from omcache.testing import MemcachedProcess
assert shutil.which("go") is None, "go must not be on PATH for this check"
assert "/venv/" in omcache.__file__, omcache.__file__
with MemcachedProcess() as server:
    c = omcache.Client([server.address])
    assert c.set("wheel", b"\x00ok") and c.get("wheel") == b"\x00ok"
print("wheel works without Go:", omcache.__file__)
PY

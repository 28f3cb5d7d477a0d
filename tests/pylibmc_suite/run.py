#!/usr/bin/env python3
"""Run pylibmc 1.6.3's own test suite against omcache_pylibmc.

    python3 tests/pylibmc_suite/run.py [--sdist PATH] [--keep] [-- pytest args]

pylibmc's source distribution is fetched with pip (``pip download --no-deps
--no-binary :all: pylibmc==1.6.3``) into build/pylibmc-suite/ (reused on the
next run, never committed) and checked against its known SHA-256.  Its
``tests/`` directory is extracted into a temporary directory and run by
pytest with omcache_pylibmc installed as ``pylibmc`` and ``_pylibmc`` (the
pylibmc_alias plugin next to this script), doctests.txt included, against a memcached that this
script starts (on 127.0.0.1:11211 when that port is free: pylibmc's
test_no_autoconf talks to the default address) and stops.

The exit status is pytest's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VERSION = "1.6.3"
SDIST = f"pylibmc-{VERSION}.tar.gz"
SDIST_SHA256 = "eefa46115537abad65fbe2e032acd1b3463d9bf9e335af4b0916df4e4d3206e0"
CACHE = ROOT / "build" / "pylibmc-suite"


def python_path() -> List[str]:
    """Absolute entries the pytest process needs on sys.path: the plugin's
    directory, and where omcache_pylibmc comes from (the installed package,
    else the source tree's python/)."""
    paths = [str(HERE)]
    try:
        import omcache_pylibmc
    except ImportError:
        paths.append(str(ROOT / "python"))
    else:
        paths.append(str(Path(omcache_pylibmc.__file__).resolve().parents[1]))
    return paths


def fetch_sdist(explicit: Optional[str]) -> Path:
    """Return the path of pylibmc's sdist, downloading it if needed."""
    if explicit:
        path = Path(explicit)
    else:
        path = CACHE / SDIST
        if not path.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                 f"pylibmc=={VERSION}", "-d", str(CACHE)],
                check=True,
            )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{path}: sha256 {digest}, expected {SDIST_SHA256} (pylibmc {VERSION}'s sdist)")
    return path


def extract_tests(sdist: Path, dest: Path) -> Path:
    """Extract pylibmc-VERSION/tests/*.py and *.txt (doctests.txt) into
    dest/tests; return that directory."""
    prefix = f"pylibmc-{VERSION}/tests/"
    out = dest / "tests"
    out.mkdir()
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(prefix):
                continue
            name = member.name[len(prefix):]
            if "/" in name or not name.endswith((".py", ".txt")):
                continue
            src = tar.extractfile(member)
            assert src is not None
            (out / name).write_bytes(src.read())
    if not (out / "__init__.py").exists():
        raise SystemExit(f"{sdist} has no {prefix}__init__.py")
    return out


def start_memcached() -> "object":
    """Start memcached on 127.0.0.1:11211 if free, else on a free port."""
    sys.path[:0] = [p for p in python_path() if p != str(HERE)]
    from omcache.testing import MemcachedProcess

    try:
        return MemcachedProcess(port=11211).start()
    except RuntimeError as e:
        sys.stderr.write(f"run.py: cannot use port 11211 ({e}); test_no_autoconf needs a memcached there\n")
        return MemcachedProcess().start()


def main(argv: List[str]) -> int:
    """Fetch, extract and run the suite; return pytest's exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdist", help="use this pylibmc-1.6.3.tar.gz instead of downloading it")
    ap.add_argument("--keep", action="store_true", help="keep the extracted tests directory")
    ap.add_argument("pytest_args", nargs="*", help="pytest arguments after --, e.g. tests/test_client.py (default: tests)")
    args = ap.parse_args(argv)

    sdist = fetch_sdist(args.sdist)
    work = Path(tempfile.mkdtemp(prefix="pylibmc-suite-"))
    server = start_memcached()
    try:
        extract_tests(sdist, work)
        env = dict(os.environ)
        inherited = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(python_path() + inherited)
        env["MEMCACHED_HOST"] = server.host  # type: ignore[attr-defined]
        env["MEMCACHED_PORT"] = str(server.port)  # type: ignore[attr-defined]
        env["MEMCACHED_TYPE"] = "tcp"
        # pylibmc's tests/doctests.txt is collected only with a doctest glob.
        cmd = [sys.executable, "-m", "pytest", "-p", "pylibmc_alias", "-p", "no:cacheprovider",
               "--doctest-glob=*.txt", "-rA", *(args.pytest_args or ["tests"])]
        sys.stderr.write(f"run.py: {' '.join(cmd)}  (in {work}, memcached {server.address})\n")  # type: ignore[attr-defined]
        return subprocess.call(cmd, cwd=work, env=env)
    finally:
        server.stop()  # type: ignore[attr-defined]
        if args.keep:
            sys.stderr.write(f"run.py: kept {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

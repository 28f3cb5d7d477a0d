"""RSS stays flat over a million calls across the Python/Go boundary
(benchmarks/rss_check.py, in a fresh interpreter, against a real memcached).

Marked slow (about 80 s): `make test-slow`, which .ci/run runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from omcache.testing import find_memcached

from references import unavailable

RSS_CHECK = Path(__file__).resolve().parent.parent / "benchmarks" / "rss_check.py"
PAIRS = 500_000  # set+get pairs: a million calls, plus the multi-key and error paths in between
LIMIT_MB = 5.0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_rss_stays_flat_over_a_million_calls() -> None:
    if find_memcached() is None:
        unavailable("memcached is not installed (apt-get install memcached)")
    r = subprocess.run(
        [sys.executable, str(RSS_CHECK), "--calls", str(PAIRS), "--unix", "--limit-mb", str(LIMIT_MB)],
        capture_output=True, text=True, timeout=540,
    )
    m = re.search(r"^(\d+) set\+get pairs in .* RSS ([\d.]+) MB -> ([\d.]+) MB \(grew ([-+][\d.]+) MB\)$", r.stdout, re.M)
    assert m is not None, (r.returncode, r.stdout, r.stderr)
    assert int(m.group(1)) == PAIRS
    grew = float(m.group(4))
    assert r.returncode == (0 if grew < LIMIT_MB else 1), (r.returncode, r.stdout, r.stderr)
    assert grew < LIMIT_MB, f"RSS grew {grew} MB over {PAIRS} set+get pairs: {r.stdout}"

"""The benchmark harness (benchmarks/bench.py) runs end to end in a tiny mode.

No timing is asserted anywhere: the machine is shared and noisy.  These tests
prove that the harness starts its servers, runs every workload through the
worker for two clients, checks what the clients return, and writes the report
and the chart; and that the target verdicts follow from the medians.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

import omcache
from omcache.testing import find_memcached, free_port

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"
WORKER = ROOT / "benchmarks" / "bench_worker.py"

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench  # noqa: E402
import bench_worker  # noqa: E402


def _env() -> Dict[str, str]:
    # The subprocesses must import the same omcache as this test process.
    env = dict(os.environ)
    src = str(Path(omcache.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _require_memcached() -> None:
    if find_memcached() is None:
        if os.environ.get("CI"):
            pytest.fail("memcached is not installed, and CI must run the benchmark smoke test")
        pytest.skip("memcached is not installed (apt-get install memcached)")


def _has_matplotlib() -> bool:
    if importlib.util.find_spec("matplotlib") is not None:
        return True
    if os.environ.get("CI"):
        pytest.fail("matplotlib is not installed, and CI must check the benchmark chart")
    return False


def test_tiny_run_writes_report_and_chart(tmp_path: Path) -> None:
    _require_memcached()
    chart = _has_matplotlib()
    clients = ["omcache", "raw floor"]
    cmd = [
        sys.executable, str(BENCH), "--reps", "1", "--scale", "0.005", "--import-runs", "1",
        "--clients", ",".join(clients), "--out-dir", str(tmp_path), "--json", str(tmp_path / "r.json"),
    ]
    if not chart:
        cmd.append("--no-chart")
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=100)
    assert p.returncode == 0, p.stderr[-3000:]

    data = json.loads((tmp_path / "r.json").read_text())
    assert data["errors"] == {}
    for c in clients:
        assert data["available"][c]["available"] is True
        for w in bench.OPS:
            samples = data["samples_us"][f"{c} | {w}"]
            assert len(samples) == 1 and samples[0] > 0

    md = (tmp_path / "benchmarks.md").read_text()
    for heading in ("## Run", "## Targets (issue 10)", "## Results", "### Threads sharing one client", "### Import time"):
        assert heading in md
    for fact in ("CPU:", "Kernel:", "Python:", "Go:", "memcached:", "omcache: 0.1.0", "Command: `python benchmarks/bench.py"):
        assert fact in md
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    for w in bench.OPS:
        assert w in rows, w
    # No peer ran, so no ratio: every cell of the two clients holds a bare median.
    assert "| get 10 B | 20 |" in md
    assert "omcache: import |" in md and "omcache: import + first get |" in md
    targets = data["targets"]
    assert len(targets) == 20
    # Only the targets that need no peer could be judged.
    judged = {t["target"].split(":")[0] for t in targets if t["met"] is not None}
    assert judged == {"get 10 B", "get 1 KB", "get miss", "set 10 B", "set 1 KB", "incr",
                      "4 threads sharing one omcache.Client", "import omcache < 50 ms (`python -c \"import omcache\"` minus `python -c pass`)"}
    if chart:
        png = (tmp_path / "benchmarks.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert "![ratio to the best peer per workload](benchmarks.png)" in md


def _results(medians: Dict[str, Dict[str, float]]) -> bench.Results:
    r = bench.Results(list(bench_worker.CLIENTS), list(bench.OPS))
    for client, per in medians.items():
        for w, us in per.items():
            r.us[(client, w)] = [us * 0.9, us, us * 1.2]  # median us, some spread
    return r


def _verdicts(targets: List[Dict[str, object]]) -> Dict[str, object]:
    return {str(t["target"]): t["met"] for t in targets}


def test_target_verdicts_follow_the_medians() -> None:
    r = _results({
        "omcache": {"get 10 B": 90, "get_multi 100, 1 server": 95, "set_multi 100": 40, "set+get 1 MB": 1000,
                    "get 10 B, 1 thread": 100, "get 10 B, 4 threads": 50},
        "pylibmc": {"get 10 B": 100, "get_multi 100, 1 server": 100},
        "pylibmc tcp_nodelay": {"get 10 B": 95, "get_multi 100, 1 server": 120},
        "raw floor": {"get 10 B": 80},
        "pymemcache": {"set_multi 100": 100, "set+get 1 MB": 900},
        "pymemcache noreply=False": {"set_multi 100": 70, "set+get 1 MB": 1000},
    })
    v = _verdicts(bench.evaluate_targets(r, {"rows": {"omcache: import": 60.0, "omcache: import + first get": 90.0}}))
    pyl = "pylibmc (best of defaults and tcp_nodelay)"
    assert v[f"get 10 B: omcache <= 1.00x {pyl}"] is True  # 90 vs the better pylibmc, 95
    assert v["get 10 B: omcache <= 1.10x the raw-socket floor"] is False  # 90 / 80 = 1.125
    assert v[f"get 1 KB: omcache <= 1.00x {pyl}"] is None  # not measured
    assert v[f"get_multi 100, 1 server: omcache <= 0.90x {pyl}"] is False  # 95 / 100
    assert v["set_multi 100: omcache <= 0.50x pymemcache (defaults: noreply writes)"] is True  # 40 / 100
    assert v["set_multi 100: omcache <= 0.50x pymemcache with default_noreply=False"] is False  # 40 / 70
    assert v["set+get 1 MB: omcache <= 1.00x pymemcache (defaults: noreply writes)"] is False  # 1000 / 900
    assert v["set+get 1 MB: omcache <= 1.00x pymemcache with default_noreply=False"] is True  # equal
    assert v["4 threads sharing one omcache.Client: >= 1.6x one thread's throughput"] is True  # 2.0x
    assert v['import omcache < 50 ms (`python -c "import omcache"` minus `python -c pass`)'] is False


def test_best_peer_ignores_omcache_and_the_floor() -> None:
    r = _results({"omcache": {"incr": 10}, "raw floor": {"incr": 5}, "python-memcached": {"incr": 40}, "pymemcache": {"incr": 20}})
    assert r.best_peer("incr") == ("pymemcache", 20)
    assert r.ratio("omcache", "incr") == pytest.approx(0.5)
    assert bench.fmt_cell(r, "omcache", "incr") == "10.0 (0.50x)"
    r.errors[("omcache", "incr")] = "boom"
    assert bench.fmt_cell(r, "omcache", "incr") == "error"


def test_worker_reports_a_failing_client_instead_of_a_time() -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    p = subprocess.run(
        [sys.executable, str(WORKER), "--client", "raw floor", "--workload", "get 10 B", "--servers", dead, "--ops", "5"],
        capture_output=True, text=True, env=_env(), timeout=60,
    )
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["ok"] is False and "seconds" not in out


def test_worker_reports_an_unavailable_client() -> None:
    # A client whose module is missing is "not available", not an error of the run.
    env = _env()
    p = subprocess.run(
        [sys.executable, "-c",
         "import sys, runpy; sys.modules['pymemcache'] = None; "
         f"sys.argv = ['w', '--client', 'pymemcache', '--probe', '--servers', '127.0.0.1:1']; "
         f"runpy.run_path({str(WORKER)!r}, run_name='__main__')"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out == {"ok": False, "available": False, "error": out["error"]}
    assert "pymemcache" in out["error"]

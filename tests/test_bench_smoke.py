"""The benchmark harness (omcache.benchmark: `make bench`, `omcache bench --compare`) runs end to end in a tiny mode.

No timing is asserted anywhere: the machine is shared and noisy.  These tests
prove that the harness starts its servers, runs every workload through the
worker for two clients, checks what the clients return, and writes the report
and the chart, both from benchmarks/bench.py and from the omcache command;
that the target verdicts follow from the medians; and that `omcache bench`
without --compare is still the quick load test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

import omcache
from omcache import cli
from omcache.benchmark import runner, worker
from omcache.testing import find_memcached, free_port

from references import in_ci

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"
ANALYSIS = ROOT / "benchmarks" / "ANALYSIS.md"
WORKER = [sys.executable, "-m", "omcache.benchmark.worker"]


def _env() -> Dict[str, str]:
    # The subprocesses must import the same omcache as this test process.
    env = dict(os.environ)
    src = str(Path(omcache.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _require_memcached() -> None:
    if find_memcached() is None:
        if in_ci():
            pytest.fail("memcached is not installed, and CI must run the benchmark smoke test")
        pytest.skip("memcached is not installed (apt-get install memcached)")


def _has_matplotlib() -> bool:
    if importlib.util.find_spec("matplotlib") is not None:
        return True
    if in_ci():
        pytest.fail("matplotlib is not installed, and CI must check the benchmark chart")
    return False


def _has_tls_peers() -> bool:
    """Whether the TLS rows can run: cryptography (the run's certificates) and pymemcache (the TLS peer)."""
    if all(importlib.util.find_spec(m) is not None for m in ("cryptography", "pymemcache")):
        return True
    if os.environ.get("CI"):
        pytest.fail("cryptography and pymemcache (test extras) are needed, and CI must run the TLS rows")
    return False


def _spinners() -> List[int]:
    """PIDs of processes running the benchmark's busy loop."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"os.nice(19)" in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


def test_tiny_run_writes_report_and_chart(tmp_path: Path) -> None:
    _require_memcached()
    chart = _has_matplotlib()
    tls = _has_tls_peers()
    plain_clients = ["omcache", "raw floor"]
    tls_clients = ["omcache tls", "pymemcache tls"] if tls else []
    clients = plain_clients + tls_clients
    cmd = [
        sys.executable, str(BENCH), "--reps", "1", "--scale", "0.005", "--import-runs", "1",
        "--clients", ",".join(clients), "--out-dir", str(tmp_path), "--json", str(tmp_path / "r.json"),
    ]
    if not chart:
        cmd.append("--no-chart")
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]

    data = json.loads((tmp_path / "r.json").read_text())
    # One run measures both machine states.
    assert list(data["states"]) == ["warm", "idle"]
    plain = [w for w in runner.OPS if not worker.WORKLOADS[w].tls]
    tls_rows = [w for w in runner.OPS if worker.WORKLOADS[w].tls]
    assert tls_rows == ["TLS get 10 B", "TLS set 10 B", "TLS get_multi 100", "TLS new connection + get"]
    for c in clients:
        assert data["available"][c]["available"] is True
    for state, st in data["states"].items():
        assert st["errors"] == {}, state
        for c in clients:
            mine, others = (tls_rows, plain) if c in tls_clients else (plain, tls_rows)
            # Only omcache and pylibmc run the latency rows.
            mine = [w for w in mine if w not in runner.LATENCY or c in runner.LATENCY_CLIENTS]
            for w in mine:
                samples = st["samples_us"][f"{c} | {w}"]
                assert len(samples) == 1 and samples[0] > 0, (state, c, w)
                # Every measurement carries the worker's CPU time and context switches.
                (cpu,) = st["cpu_us_per_op"][f"{c} | {w}"]
                (csw,) = st["context_switches_per_op"][f"{c} | {w}"]
                (threads,) = st["threads"][f"{c} | {w}"]
                assert cpu > 0 and csw >= 0 and threads >= 1, (state, c, w, cpu, csw, threads)
            # A TLS client runs only the TLS rows, the others only the plaintext ones.
            for w in others:
                assert f"{c} | {w}" not in st["samples_us"]
        assert "raw floor | get 10 B, 1 ms latency, 1 thread" not in st["samples_us"]
        # Behind the relay a get waits at least 1 ms: one thread cannot beat 1,000 us a get, nor
        # 4 threads 250 us (a lower bound, so it holds however loaded the machine is).
        assert st["samples_us"]["omcache | get 10 B, 1 ms latency, 1 thread"][0] >= 1000
        assert st["samples_us"]["omcache | get 10 B, 1 ms latency, 4 threads"][0] >= 250
        assert st["latency_scaling"]["omcache"] > 0 and st["latency_scaling"]["pylibmc"] is None
        for c in plain_clients:
            # Workloads of several threads pair each batch with a one-thread one.
            for w in ("get 10 B, 2 threads", "get 10 B, 4 threads"):
                (scaling,) = st["scaling"][f"{c} | {w}"]
                assert scaling > 0
            assert f"{c} | get 10 B, 1 thread" not in st["scaling"]
        # The raw floor's worker is one thread; omcache's has the Go runtime's too.
        assert st["threads"]["raw floor | get 10 B"] == [1]
        assert st["threads"]["omcache | get 10 B"][0] > 1

    md = (tmp_path / "benchmarks.md").read_text()
    for heading in ("## Run", "## Speed targets", "### Warm machine", "### Idle machine",
                    "## Results, warm machine", "## Results, idle machine", "## Import time"):
        assert md.count(heading) == 1, heading
    for heading in ("### Time per operation", "### CPU time and context switches per operation",
                    "### Threads sharing one client, loopback", "### 1 ms of added latency: threads sharing one client",
                    "### Spread"):
        assert md.count(heading) == 2, heading  # once per state
    for fact in ("CPU:", "Kernel:", "Python:", "Go:", "memcached:", "omcache: 0.1.0", "Command: `python benchmarks/bench.py",
                 "Generated by `make bench`", "(`python -m omcache.benchmark.worker`)", "`omcache.benchmark.relay`",
                 "getrusage(RUSAGE_SELF)"):
        assert fact in md
    # The busy loop ran for the warm state, and is gone.
    assert "  - warm: a busy loop at the lowest priority (nice 19) runs while the state is measured" in md
    assert "  - idle: no busy loop" in md
    assert not _spinners(), "the benchmark left its busy loop running"
    assert re.search(r"repetition 1/1, warm: \d+ s", p.stderr) and re.search(r"repetition 1/1, idle: \d+ s", p.stderr)
    # benchmarks/bench.py appends the hand-written analysis.
    assert ANALYSIS.read_text().strip().splitlines()[0] in md
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    for w in plain:
        if w not in runner.LATENCY:  # those have their own table
            assert w in rows, w
    # No plaintext peer ran, so no ratio: every cell of the two clients holds a bare median.
    assert md.count("| get 10 B | 20 |") == 2
    assert md.count("| workload | ops | omcache | raw floor | best peer |") == 2  # the TLS clients have their own table
    # The CPU table: CPU us/op / context switches per op, and the thread count.
    assert len(re.findall(r"^\| get 10 B \| [0-9.,]+ / [0-9.]+ \| [0-9.,]+ / [0-9.]+ \|$", md, re.M)) == 2
    assert len(re.findall(r"^\| get_multi 100, 3 servers \| [0-9.,]+ / [0-9.]+ \| [0-9.,]+ / [0-9.]+ \|$", md, re.M)) == 2
    assert len(re.findall(r"^\| threads \(get 10 B\) \| \d+ \| 1 \|$", md, re.M)) == 2
    # The latency table: omcache only (pylibmc did not run).
    assert len(re.findall(r"^\| 4 threads / 1 thread \| \| [0-9.]+x \|$", md, re.M)) == 2
    assert "omcache: import |" in md and "omcache: import + first get |" in md
    for state, st in data["states"].items():
        targets = st["targets"]
        assert len(targets) == 30
        # Only the targets whose peers ran could be judged: the TLS ones have pymemcache tls.
        judged = {t["target"].split(":")[0] for t in targets if t["met"] is not None}
        assert judged == {"get 10 B", "get 1 KB", "get miss", "set 10 B", "set 1 KB", "incr", "1 ms of added latency",
                          "import omcache < 50 ms (`python -c \"import omcache\"` minus `python -c pass`)",
                          *(["TLS get 10 B", "TLS set 10 B", "TLS get_multi 100"] if tls else [])}
        assert not any("4 threads sharing one omcache.Client: >= 1.6x" in t["target"] for t in targets)
    assert re.search(r"^\d+ of 30 targets met \(warm\)\.$", md, re.M) and re.search(r"^\d+ of 30 targets met \(idle\)\.$", md, re.M)
    if tls:
        assert md.count("### TLS") == 2 and "memcached with TLS (`-Z`, `-t 2 -U 0`) on 127.0.0.1:" in md
        assert md.count("| workload | ops | omcache tls | pymemcache tls | spread omcache tls | spread pymemcache tls |") == 2
        for w in tls_rows:
            # a median and its ratio to pymemcache tls, for both clients, in both states
            assert len(re.findall(rf"^\| {re.escape(w)} \| \d+ \| [0-9.,]+ \([0-9.]+x\) \| [0-9.,]+ \(1\.00x\) \|", md, re.M)) == 2, w
        for st in data["states"].values():
            costs = st["tls_new_connection_us"]
            assert set(costs) == {"omcache tls", "pymemcache tls"}
            assert all(isinstance(v, float) for v in costs.values()), costs
        assert re.search(r"The cost of one new TLS connection .*: omcache tls -?[0-9,]+ us, pymemcache tls -?[0-9,]+ us",
                         md.replace("\n", " ")), md
        assert "reported  one new TLS connection, omcache tls:" in p.stderr
    if chart:
        png = (tmp_path / "benchmarks.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert "![ratio to the best peer per workload](benchmarks.png)" in md


def _results(medians: Dict[str, Dict[str, float]]) -> runner.Results:
    r = runner.Results(list(worker.CLIENTS), list(runner.OPS))
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
        "omcache tls": {"TLS get 10 B": 80, "TLS set 10 B": 101, "TLS new connection + get": 2080},
        "pymemcache tls": {"TLS get 10 B": 100, "TLS set 10 B": 100, "TLS get_multi 100": 500,
                           "TLS new connection + get": 4100},
    })
    v = _verdicts(runner.evaluate_targets(r, {"rows": {"omcache: import": 60.0, "omcache: import + first get": 90.0}}))
    pyl = "pylibmc (best of defaults and tcp_nodelay)"
    assert v[f"get 10 B: omcache <= 1.00x {pyl}"] is True  # 90 vs the better pylibmc, 95
    assert v["get 10 B: omcache <= 1.10x the raw-socket floor"] is False  # 90 / 80 = 1.125
    assert v[f"get 1 KB: omcache <= 1.00x {pyl}"] is None  # not measured
    assert v[f"get_multi 100, 1 server: omcache <= 0.90x {pyl}"] is False  # 95 / 100
    assert v["set_multi 100: omcache <= 0.50x pymemcache (defaults: noreply writes)"] is True  # 40 / 100
    assert v["set_multi 100: omcache <= 0.50x pymemcache with default_noreply=False"] is False  # 40 / 70
    assert v["set+get 1 MB: omcache <= 1.00x pymemcache (defaults: noreply writes)"] is False  # 1000 / 900
    assert v["set+get 1 MB: omcache <= 1.00x pymemcache with default_noreply=False"] is True  # equal
    tls = "omcache tls <= 1.00x pymemcache tls (an ssl.SSLContext, default_noreply=False)"
    assert v[f"TLS get 10 B: {tls}"] is True  # 80 / 100
    assert v[f"TLS set 10 B: {tls}"] is False  # 101 / 100
    assert v[f"TLS get_multi 100: {tls}"] is None  # omcache tls not measured
    # The cost of a new connection: the new-client row minus the get alone; no target.
    assert runner.tls_new_connection(r, "omcache tls") == pytest.approx(2000)
    assert runner.tls_new_connection(r, "pymemcache tls") == pytest.approx(4000)
    assert runner.tls_new_connection(r, "omcache") is None
    assert not any("new connection" in t for t in v)
    # The loopback thread rows are information now (CPU contention on 2 cores), not a target.
    assert not any("4 threads sharing one omcache.Client: >= 1.6x" in t for t in v)
    v = _verdicts(runner.evaluate_targets(_results({}), {"rows": {"omcache: import": 60.0}}))
    assert v['import omcache < 50 ms (`python -c "import omcache"` minus `python -c pass`)'] is False


def test_issue_21_target_verdicts_follow_the_medians() -> None:
    r = _results({
        "omcache": {"get 10 B": 30, "set 10 B": 40, "incr": 50,
                    "get 10 B, 1 ms latency, 1 thread": 1100, "get 10 B, 1 ms latency, 4 threads": 300},
        "omcache_pylibmc": {"get 10 B": 31.5, "set 10 B": 42.1, "incr": 52.4},
        "pylibmc": {"get 10 B, 1 ms latency, 1 thread": 1100, "get 10 B, 1 ms latency, 4 threads": 290},
    })
    r.cpu[("omcache", "get 10 B")] = [20.0, 24.0, 30.0]  # median 24
    r.cpu[("pylibmc", "get 10 B")] = [21.0, 22.0, 23.0]  # median 22: 24 / 22 = 1.09x
    r.cpu[("pylibmc tcp_nodelay", "get 10 B")] = [19.0, 25.0, 26.0]  # median 25
    v = _verdicts(runner.evaluate_targets(r, None))
    assert v["get 10 B: omcache_pylibmc <= 1.05x omcache"] is True  # 31.5 / 30 = 1.05
    assert v["set 10 B: omcache_pylibmc <= 1.05x omcache"] is False  # 42.1 / 40 = 1.0525
    assert v["incr: omcache_pylibmc <= 1.05x omcache"] is True  # 52.4 / 50 = 1.048
    cpu = "CPU time per get 10 B: omcache <= 1.20x pylibmc (the better of defaults and tcp_nodelay by CPU)"
    assert v[cpu] is True
    (detail,) = [t["measured"] for t in runner.evaluate_targets(r, None) if t["target"] == cpu]
    assert detail == "24.0 us vs pylibmc 22.0 us = 1.09x"  # the pylibmc config with less CPU, not the faster one
    lat = "1 ms of added latency: 4 threads sharing one omcache.Client >= 3.5x the gets of one thread"
    assert v[lat] is True  # 1100 / 300 = 3.67x
    assert r.latency_scaling("pylibmc") == pytest.approx(1100 / 290)
    r.us[("omcache", "get 10 B, 1 ms latency, 4 threads")] = [320, 330, 340]  # 1100 / 330 = 3.33x
    r.cpu[("omcache", "get 10 B")] = [27.0]  # 27 / 22 = 1.23x
    v = _verdicts(runner.evaluate_targets(r, None))
    assert v[lat] is False and v[cpu] is False
    r.errors[("omcache", "get 10 B, 1 ms latency, 1 thread")] = "boom"
    del r.cpu[("pylibmc", "get 10 B")], r.cpu[("pylibmc tcp_nodelay", "get 10 B")]
    v = _verdicts(runner.evaluate_targets(r, None))
    assert v[lat] is None and v[cpu] is None
    assert v["get 10 B: omcache_pylibmc <= 1.05x omcache"] is True
    del r.us[("omcache_pylibmc", "get 10 B")]
    assert _verdicts(runner.evaluate_targets(r, None))["get 10 B: omcache_pylibmc <= 1.05x omcache"] is None


def test_meter_counts_cpu_and_context_switches_of_the_timed_parts_only() -> None:
    m = worker.Meter()
    m.batch()
    m.begin()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # 50 ms of CPU
        pass
    m.end()
    time.sleep(0.05)  # between timed parts: not counted
    m.batch()
    m.begin()
    time.sleep(0.01)  # a sleep is a voluntary context switch and (almost) no CPU
    m.end()
    m.begin()
    time.sleep(0.01)
    m.end()
    (cpu1, cs1), (cpu2, cs2) = m.batches
    assert cpu1 >= 0.045  # the rusage clock and process_time() are the same clock, read at different moments
    assert cs2 >= 2 and cpu2 < cpu1
    assert m.threads >= 1


def test_worker_reports_cpu_context_switches_and_threads(server: object) -> None:
    from omcache.testing import MemcachedProcess

    assert isinstance(server, MemcachedProcess)
    for client, threads in (("raw floor", 1), ("omcache", None)):
        p = subprocess.run(
            [*WORKER, "--client", client, "--workload", "get 10 B", "--servers", server.address, "--ops", "200",
             "--batches", "4", "--warmup", "10"],
            capture_output=True, text=True, env=_env(), timeout=60,
        )
        out = json.loads(p.stdout.strip().splitlines()[-1])
        assert out["ok"] is True, out
        assert [n for n, _, _ in out["usage"]] == [n for n, _ in out["batches"]] == [50] * 4
        assert out["cpu_s"] == pytest.approx(sum(cpu for _, cpu, _ in out["usage"]))
        assert out["context_switches"] == sum(cs for _, _, cs in out["usage"])
        # 200 round trips cost CPU, and a process waiting for its replies gives up its CPU.
        assert out["cpu_s"] > 0 and out["context_switches"] > 0
        # The CPU of a batch is at most its wall time on every CPU of the machine (one tick of room).
        for (_, cpu, _), (_, wall) in zip(out["usage"], out["batches"]):
            assert cpu <= wall * (os.cpu_count() or 1) + 0.01, (cpu, wall)
        if threads is not None:
            assert out["threads"] == threads
        else:
            assert out["threads"] > 1  # the Go runtime's threads


def test_best_peer_ignores_omcache_and_the_floor() -> None:
    r = _results({"omcache": {"incr": 10}, "raw floor": {"incr": 5}, "python-memcached": {"incr": 40}, "pymemcache": {"incr": 20}})
    assert r.best_peer("incr") == ("pymemcache", 20)
    assert r.ratio("omcache", "incr") == pytest.approx(0.5)
    assert runner.fmt_cell(r, "omcache", "incr") == "10.0 (0.50x)"
    r.errors[("omcache", "incr")] = "boom"
    assert runner.fmt_cell(r, "omcache", "incr") == "error"


def test_worker_reports_a_failing_client_instead_of_a_time() -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    p = subprocess.run(
        [*WORKER, "--client", "raw floor", "--workload", "get 10 B", "--servers", dead, "--ops", "5"],
        capture_output=True, text=True, env=_env(), timeout=60,
    )
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["ok"] is False and "seconds" not in out


def test_worker_keeps_tls_clients_and_workloads_apart() -> None:
    # A TLS client on a plaintext row (or the reverse) is a usage error, not a measurement.
    for client, workload in (("omcache tls", "get 10 B"), ("omcache", "TLS get 10 B")):
        p = subprocess.run(
            [*WORKER, "--client", client, "--workload", workload, "--servers", "127.0.0.1:1", "--ops", "5"],
            capture_output=True, text=True, env=_env(), timeout=60,
        )
        assert p.returncode == 2 and "runs only the" in p.stderr, p.stderr
    # A TLS client without the CA of the TLS server is not available.
    p = subprocess.run(
        [*WORKER, "--client", "omcache tls", "--probe", "--servers", "127.0.0.1:1"],
        capture_output=True, text=True, env=_env(), timeout=60,
    )
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["available"] is False and "--tls-ca-file" in out["error"]


def test_worker_reports_an_unavailable_client() -> None:
    # A client whose module is missing is "not available", not an error of the run.
    env = _env()
    p = subprocess.run(
        [sys.executable, "-c",
         "import sys, runpy; sys.modules['pymemcache'] = None; "
         f"sys.argv = ['w', '--client', 'pymemcache', '--probe', '--servers', '127.0.0.1:1']; "
         "runpy.run_module('omcache.benchmark.worker', run_name='__main__', alter_sys=True)"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out == {"ok": False, "available": False, "error": out["error"]}
    assert "pymemcache" in out["error"]


# -- omcache bench --compare ------------------------------------------------------


def _omcache(*args: str, cwd: Path, env: Dict[str, str], timeout: float = 100) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-m", "omcache", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def test_cli_compare_writes_report_and_chart(tmp_path: Path) -> None:
    _require_memcached()
    chart = _has_matplotlib()
    # A pymemcache that cannot be imported: the workers inherit PYTHONPATH, so it is "not available";
    # without cryptography (the run's certificates) the TLS rows are not available either.
    hidden = tmp_path / "hide"
    for m in ("pymemcache", "cryptography"):
        (hidden / m).mkdir(parents=True)
        (hidden / m / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(hidden), env["PYTHONPATH"]])
    env.pop(cli.SERVERS_ENV, None)
    out = tmp_path / "out"
    args = ["bench", "--compare", "--reps", "1", "--scale", "0.01", "--clients", "omcache,raw floor,pymemcache,omcache tls",
            "--workloads", "get 10 B,get_multi 100, 1 server,TLS get 10 B", "--import-runs", "0", "--out-dir", str(out)]
    if not chart:
        args.append("--no-chart")
    p = _omcache(*args, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr[-3000:]

    md = (out / "benchmarks.md").read_text()
    assert "Generated by `omcache bench --compare`" in md
    assert ("- Command: `omcache bench --compare --reps 1 --scale 0.01 --clients 'omcache,raw floor,pymemcache,omcache tls' "
            "--workloads 'get 10 B,get_multi 100, 1 server,TLS get 10 B' --import-runs 0 --out-dir ") in md
    assert "| workload | ops | omcache | raw floor | best peer |" in md
    rows = [line for line in md.splitlines() if line.startswith(("| get 10 B | ", "| get_multi 100, 1 server | "))]
    assert len(rows) == 12, rows  # per state: results, CPU, spread
    for i in (0, 6):  # the warm state's, then the idle state's
        # op counts at --scale 0.01, then a bare median per client (no peer ran, so no ratio), no best peer
        assert re.fullmatch(r"\| get 10 B \| 40 \| [0-9.,]+ \| [0-9.,]+ \| - \|", rows[i]), rows[i]
        assert re.fullmatch(r"\| get_multi 100, 1 server \| 4 \| [0-9.,]+ \| [0-9.,]+ \| - \|", rows[i + 1]), rows[i + 1]
        # CPU us / context switches per op
        assert re.fullmatch(r"\| get 10 B \| [0-9.,]+ / [0-9.]+ \| [0-9.,]+ / [0-9.]+ \|", rows[i + 2]), rows[i + 2]
        assert re.fullmatch(r"\| get_multi 100, 1 server \| [0-9.,]+ / [0-9.]+ \| [0-9.,]+ / [0-9.]+ \|", rows[i + 3])
    assert md.index("## Results, warm machine") < md.index("## Results, idle machine")
    assert "  - pymemcache: **not available** (ImportError: hidden by the test)" in md
    assert ("  - omcache tls: **not available** (the cryptography package (for the run's certificates) is not "
            "installed: hidden by the test)") in md
    assert md.count("### TLS\n\nNot available: the cryptography package") == 2  # in each state
    assert "memcached with TLS" not in md
    assert "TLS rows not available: the cryptography package" in p.stderr
    assert "Errors" not in md
    assert ANALYSIS.read_text().strip().splitlines()[0] not in md  # only with --analysis
    if chart:
        assert (out / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "![ratio to the best peer per workload](benchmarks.png)" in md
    else:
        assert not (out / "benchmarks.png").exists()
    assert not (tmp_path / "benchmarks.md").exists()  # --out-dir, not the current directory


def test_bench_without_compare_is_still_the_quick_load_test(tmp_path: Path) -> None:
    env = _env()
    env.pop(cli.SERVERS_ENV, None)
    p = _omcache("bench", "--ops", "200", "--size", "10", cwd=tmp_path, env=env, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stdout.splitlines()
    assert lines[0].startswith("omcache bench: 200 sets then 200 gets of 10-byte values, 1 thread(s), "
                               "against omcache's embedded server")
    assert lines[1].split()[:3] == ["op", "ops/s", "p50"]
    assert [line.split()[0] for line in lines[2:]] == ["set", "get"]
    assert list(tmp_path.iterdir()) == []  # no report written


@pytest.mark.parametrize(
    "args, words",
    [
        (["bench", "--reps", "2"], ["--reps: only with --compare"]),
        (["bench", "--no-chart", "--out-dir", "x"], ["--out-dir, --no-chart: only with --compare"]),
        (["bench", "--compare", "--ops", "5"], ["--ops: for the quick load test"]),
        (["--servers", "127.0.0.1:11211", "bench", "--compare"], ["--servers is not used by --compare"]),
        (["bench", "--compare", "--clients", "omcache,nope"], ["unknown client 'nope'", "raw floor"]),
        (["bench", "--compare", "--workloads", "get 10 B,get 3 B"], ["unknown workload 'get 3 B'"]),
        (["bench", "--compare", "--analysis", "/nonexistent/ANALYSIS.md"], ["no such file"]),
    ],
)
def test_compare_usage_errors_exit_2_before_measuring(
    args: List[str], words: List[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(cli.SERVERS_ENV, raising=False)
    assert cli.main(args) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("omcache bench: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)
    assert list(tmp_path.iterdir()) == []


def test_compare_without_memcached_names_the_package(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MEMCACHED", "/nonexistent/memcached")
    assert cli.main(["bench", "--compare", "--no-chart"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "memcached not found" in err and "apt-get install memcached" in err, err


def test_compare_when_memcached_does_not_start_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEMCACHED", "/bin/false")  # there, but it exits at once
    args = ["bench", "--compare", "--no-chart", "--clients", "raw floor", "--out-dir", str(tmp_path / "out")]
    assert cli.main(args) == cli.EXIT_CONNECTION
    err = capsys.readouterr().err
    assert err.startswith("omcache bench: /bin/false did not start (memcached exited with 1"), err
    assert not (tmp_path / "out").exists()


def test_cli_lists_the_harness_clients() -> None:
    assert list(cli._COMPARE_CLIENTS) == list(worker.CLIENTS)


def test_help_does_not_import_the_harness_or_matplotlib() -> None:
    code = (
        "import sys\n"
        "import omcache\n"
        "from omcache.cli import main\n"
        "for argv in (['--help'], ['bench', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('loaded:', sorted(m for m in sys.modules if m.startswith(('omcache.benchmark', 'matplotlib'))), file=sys.stderr)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    assert "--compare" in p.stdout
    assert p.stderr.strip().splitlines()[-1] == "loaded: []"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--states", "hot"], ["--states 'hot': choose among warm, idle"]),
        (["--states", ""], ["--states '': choose among warm, idle"]),
        (["--states", "warm", "--no-spin"], ["--no-spin means --states idle"]),
        (["--reps", "0"], ["--reps, --slots and --batches must be >= 1"]),
    ],
)
def test_runner_usage_errors_exit_2_before_measuring(
    args: List[str], words: List[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        runner.main([*args, "--no-chart"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, (w, err)


@pytest.mark.parametrize(
    "args, states",
    [([], ["warm", "idle"]), (["--no-spin"], ["idle"]), (["--states", "idle,warm"], ["warm", "idle"]),
     (["--states", "warm"], ["warm"]), (["--states", "idle", "--no-spin"], ["idle"])],
)
def test_runner_states_option(args: List[str], states: List[str], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: List[List[str]] = []

    def fake_compare(a: object, *rest: object) -> int:
        seen.append(list(getattr(a, "states")))
        return 0

    monkeypatch.setattr(runner, "memcached_path", lambda: "/usr/bin/memcached")
    monkeypatch.setattr(runner, "_compare", fake_compare)
    assert runner.main([*args, "--no-chart"]) == 0
    assert seen == [states]


class _SlowClient:
    """A client whose get takes 5 ms (a sleep): what a batch of threaded gets must at least last."""

    def __init__(self) -> None:
        self.data: Dict[str, bytes] = {}

    def get(self, key: str) -> object:
        time.sleep(0.005)
        return self.data.get(key)

    def set(self, key: str, value: bytes) -> bool:
        self.data[key] = value
        return True

    def incr(self, key: str) -> int:
        raise NotImplementedError("not used by the thread workloads")

    get_multi = set_multi = delete_multi = incr


class _SlowAdapter(worker.Adapter):
    name = "slow"

    def make(self, servers: List[str]) -> object:
        return _SlowClient()


@pytest.mark.parametrize("pair", [True, False])
def test_threaded_batches_last_as_long_as_their_threads_gets(pair: bool) -> None:
    # 4 threads share batches of 8 gets of 5 ms: each thread's 2 gets take at
    # least 10 ms, and a batch lasts at least that long however late the main
    # thread runs after the start barrier; the paired one-thread batch (8 gets)
    # at least 40 ms.  The meter sees one batch per timed batch, not the paired ones.
    w = worker.ThreadedGets("slow gets, 4 threads", 4, pair=pair)
    meter = worker.Meter()
    times = w.run(_SlowAdapter(["unused:1"]), "p:", [8, 8, 8], 4, None, meter)
    assert len(times) == 3 and min(times) >= 0.010, times
    if pair:
        assert len(w.paired) == 3 and min(w.paired) >= 0.040, w.paired
    else:
        assert w.paired == []
    assert len(meter.batches) == 3
    assert all(cs >= 8 for _, cs in meter.batches), meter.batches  # every sleep gives up the CPU
    assert meter.threads >= 5  # the main thread and the 4

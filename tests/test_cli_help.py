"""`omcache --help` shows examples; `python -m omcache_pylibmc --help` prints help
instead of opening the shell."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_omcache_help_has_examples() -> None:
    r = _run("-m", "omcache", "--help")
    assert r.returncode == 0, r.stderr
    examples = r.stdout.split("examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(examples) >= 5
    assert any("omcache serve" in line for line in examples)
    assert any(" get " in line for line in examples) and any(" stats " in line for line in examples)


def test_pylibmc_shell_help_prints_usage_and_exits() -> None:
    r = _run("-m", "omcache_pylibmc", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: python -m omcache_pylibmc [-h] [--binary] [SERVER ...]")
    assert "Input list of servers" not in r.stdout  # the shell did not start

"""omcache against the other Python memcached clients, for a checkout: `make bench`.

    python benchmarks/bench.py [--reps 3] [--scale 1.0] [--clients a,b] [--workloads a,b]
                               [--states warm,idle] [--out-dir docs] [--json FILE] [--no-chart]
                               [--analysis FILE]

One run measures both machine states (warm: beside a nice-19 busy loop;
idle: without it), about 20 minutes on a 2-core machine at the defaults.

The harness is omcache.benchmark.runner (installed with the package, also run
as ``omcache bench --compare``); this launcher only gives it the checkout's
defaults: the report goes to docs/benchmarks.md and docs/benchmarks.png, and
benchmarks/ANALYSIS.md (the profiles behind missed targets) is appended to it.
``python benchmarks/bench.py --help`` lists every option.

It benchmarks the omcache that Python imports: the checkout's with
PYTHONPATH=python after ``python setup.py build_ext --inplace``, else the
installed one (``make bench`` installs the checkout into the venv first).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> int:
    try:
        from omcache.benchmark import runner
    except ImportError as e:
        print(
            f"benchmarks/bench.py: cannot import omcache.benchmark ({e}): install this checkout "
            "(make install, or pip install .), or build it in place (python setup.py build_ext --inplace) "
            "and run with PYTHONPATH=python",
            file=sys.stderr,
        )
        return 2
    return runner.main(
        sys.argv[1:],
        command="python benchmarks/bench.py",
        generated_by="make bench",
        default_out_dir=ROOT / "docs",
        default_analysis=HERE / "ANALYSIS.md",
    )


if __name__ == "__main__":
    sys.exit(main())

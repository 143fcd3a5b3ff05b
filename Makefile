# The two commands README.md gives: `make run` (main job) and `make test` (test suite).
# Both create .venv on first use. torch==2.13.0 is pinned here because on the reference
# machine that exact spec installs a local CPU build; the package itself accepts torch>=2.2.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= demo-output

.PHONY: run test bench setup

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

run: setup
	$(VENV)/bin/neuralfuse demo -o $(OUT)

# Two pytest workers with one torch and one numba thread each: two-thread workers oversubscribe
# 2 cores, and numba's OpenMP threads then spin-wait (the suite took 3x longer).
test: setup
	OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(PY) -m pytest -n 2 -m "not slow"

bench: setup
	for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

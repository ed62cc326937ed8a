# `make demo` and `make test` set up (or refresh) .venv first, then run.
# torch is installed before the project, pinned, so pip never pulls a CUDA build onto a CPU machine;
# a torch already in .venv (e.g. a CUDA build you installed) is kept. See DEVELOPERS.md.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint benchmark clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,viz]"
	touch $(STAMP)

# Simulate a small KITTI-format set, train the CPU SECOND config on it, evaluate (KITTI table).
demo: setup
	$(PY) tools/demo.py

test: setup lint
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

# The sparse-encoder benchmark on the real KITTI frames next to the project (see docs/benchmarks.md).
benchmark: setup
	$(PY) tools/benchmark.py sparse --data-root ../shared/data/real/kitti --threads 1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info

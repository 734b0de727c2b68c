# `make demo` and `make test` each build .venv when it is missing, install the CPU build of
# PyTorch first (so no multi-GB CUDA build is pulled), then the project, then run.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PIP_FLAGS ?= --disable-pip-version-check
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hashlearn-installed

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml setup.py src/hashlearn/codes/kernels/_hamming.c src/hashlearn/codes/kernels/_hamming_scan.h src/hashlearn/codes/kernels/_hamming_undef.h
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install $(PIP_FLAGS) "$(TORCH_SPEC)"
	$(PY) -m pip install $(PIP_FLAGS) -e ".[dev]"
	@# compile the search and evaluation kernels now (numba caches them), not at the first search
	$(PY) -c "import hashlearn.index as i, hashlearn.evaluation as e; print('kernels compiled in %.0f s' % (i.warm_up() + e.warm_up()))"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hashlearn demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache .hypothesis src/hashlearn/codes/kernels/*.so

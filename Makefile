# `make demo` and `make test` work on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Without CUDA, pin the local CPU wheel: an unpinned torch pulls gigabytes of CUDA packages.
TORCH := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo torch || echo torch==2.13.0)
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH)" 2>&1 | grep -v "is ignored" || true
	$(PIP) -e ".[dev]" 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import reasonlab, torch, transformers, math_verify, reasoning_gym"
	@touch $@

setup: $(VENV)/.installed

# The main job: pretrain the tiny base model, then evaluate it on held-out arithmetic.
demo: setup
	$(BIN)/reasonlab pretrain --out runs/demo/base
	$(BIN)/reasonlab eval --model runs/demo/base/final --task arithmetic --n 200 --samples 16 \
		--out runs/demo/base/eval-arithmetic.json

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/pretrain.py
	$(BIN)/python bench/generate.py

clean:
	rm -rf runs/demo

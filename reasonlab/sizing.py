"""Defaults sized to the model, for settings a user leaves at 0 ("auto").

The tiny world's models (under `TINY_PARAMS`) write traces of a few dozen tokens; real models
(SmolLM2, Qwen, Llama) reason for hundreds. A generation cap that fits one wastes the other's time or
cuts its answers off, so commands that generate pick it from the model's size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reasonlab.errors import ReasonlabError

TINY_PARAMS = 50_000_000
TINY_CAP, REAL_CAP = 128, 512
PROMPT_ROOM = 256  #: context positions kept for the prompt when capping by the model's context


def default_max_new_tokens(n_params: int, model_dir: str | Path | None = None) -> int:
    """128 new tokens for a tiny-world model, 512 for a real one (or an unknown size, e.g. a
    server), never more than the model's context leaves after a prompt.

    >>> default_max_new_tokens(1_000_000), default_max_new_tokens(135_000_000), default_max_new_tokens(0)
    (128, 512, 512)
    """
    cap = TINY_CAP if 0 < n_params < TINY_PARAMS else REAL_CAP
    context = _context(model_dir)
    return max(16, min(cap, context - PROMPT_ROOM)) if context else cap


def _context(model_dir) -> int | None:
    path = Path(model_dir or "") / "config.json"
    if not model_dir or not path.exists():
        return None
    try:
        return int(json.loads(path.read_text()).get("max_position_embeddings") or 0) or None
    except (ValueError, TypeError):
        return None


BF16_MIN_SPEEDUP = 1.5  #: bf16 matmuls must beat fp32 by this much for `precision: auto` to pick bf16


@lru_cache(maxsize=1)
def bf16_speedup(n: int = 1024, repeats: int = 5, probe: int = 256) -> float:
    """fp32 time / bf16 time of an n×n matmul on this machine's CPU (measured once per process).
    CPUs with AVX512-BF16 or AMX run bf16 several times faster; AVX2-only ones emulate it, tens of
    times slower, where the n = 1024 measurement alone would take ~20 s: a `probe`-sized matmul
    decides first, and a bf16 that is more than twice slower there is not measured further."""
    ratio = _matmul_ratio(probe, 4)
    return ratio if ratio < 0.5 else _matmul_ratio(n, repeats)


def _matmul_ratio(n: int, repeats: int) -> float:
    import time

    import torch

    out = {}
    for dt in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
        a @ b
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        out[dt] = time.perf_counter() - t
    return out[torch.float32] / out[torch.bfloat16]


def resolve_precision(precision: str, device: str = "") -> str:
    """`fp32` or `bf16` as given; `auto`: bf16 on CUDA, and on a CPU only where bf16 matmuls
    measure at least `BF16_MIN_SPEEDUP`× faster than fp32. `device` '' means CUDA when present."""
    if precision != "auto":
        return precision
    if not device:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        return "bf16"
    return "bf16" if bf16_speedup() >= BF16_MIN_SPEEDUP else "fp32"


@lru_cache(maxsize=1)
def cpu_type() -> str:
    """The CPU's model name and the vector extensions that change fp32/bf16 kernels (and so the
    exact weights a run produces): reported next to every figure measured on it."""
    import os
    import platform

    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    ext = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name}, {os.cpu_count()} cores" + (f" ({', '.join(ext)})" if ext else "")


@dataclass
class Shape:
    """What the estimate needs to know about a causal LM."""

    params: int
    layers: int
    hidden: int
    intermediate: int
    kv_dim: int  # key/value width per layer (kv heads × head dim)
    vocab: int


def model_shape(model_dir: str | Path) -> Shape:
    """Read sizes from `config.json` and count parameters on the meta device (nothing allocated)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM


    path = Path(model_dir)
    if not (path / "config.json").exists():
        raise ReasonlabError(f"model directory not found or has no config.json: {path}")
    cfg = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    params = sum(p.numel() for p in model.parameters())
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    return Shape(params, cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, kv_heads * head_dim,
                 cfg.vocab_size)

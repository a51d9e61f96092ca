"""`reasonlab plan`: the peak memory a GRPO config needs, before it runs out of it.

The estimate adds what lives for the whole run (weights, gradients, AdamW's two moments, a frozen
reference when β > 0) to the larger of the two phases of a step:
  - generation: the KV cache of every row generated at once (prompts × G, up to the engine's
    batch) over prompt + completion length, plus one step of logits;
  - the loss forward/backward of one micro-batch: per layer and token the saved inputs of the
    norms, projections, attention and SwiGLU MLP, plus logits, log-softmax and their gradient.
Everything is fp32 (what the trainer loads). The activation count follows the usual
per-layer accounting (Korthikanti et al. 2022) adapted to Qwen/Llama blocks with fused
attention (no stored attention matrix); it is an estimate, accurate to tens of percent, which
is what deciding "fits / does not fit" and "how many generations" needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import AutoTokenizer

from reasonlab.errors import ReasonlabError
from reasonlab.sizing import Shape, model_shape
from reasonlab.tasks import get_task
from reasonlab.templates import resolve

BYTES = 4  # fp32
GiB = 1024**3


@dataclass
class MemoryPlan:
    weights: float
    grads: float
    optimizer: float
    reference: float
    activations: float  # one loss micro-batch
    kv_cache: float  # one generation batch
    per_row_generation: float  # KV cache + logits per generated row
    peak: float
    available: float
    max_rows: int  # largest prompts × G generated at once that fits
    micro_batch: int = 0  # rows per loss forward/backward planned for

    @property
    def fits(self) -> bool:
        return self.peak <= self.available


def lora_params(shape: Shape, r: int, targets: list[str]) -> int:
    """Trainable LoRA parameters: r × (in + out) per adapted projection per layer.

    >>> lora_params(Shape(0, 2, 64, 128, 32, 100), 4, ["q_proj", "v_proj"])
    1792
    """
    dims = {"q_proj": (shape.hidden, shape.hidden), "k_proj": (shape.hidden, shape.kv_dim),
            "v_proj": (shape.hidden, shape.kv_dim), "o_proj": (shape.hidden, shape.hidden),
            "gate_proj": (shape.hidden, shape.intermediate), "up_proj": (shape.hidden, shape.intermediate),
            "down_proj": (shape.intermediate, shape.hidden)}
    return shape.layers * sum(r * sum(dims[t]) for t in targets if t in dims)


def activation_bytes(shape: Shape, tokens: int, completion_tokens: int) -> float:
    """Saved activations of one forward for backward, plus logits/log-softmax/grad of the
    completion positions. Per layer and token: 2 norms' inputs and outputs (4h), q/k/v (h + 2kv),
    attention output (h), o_proj output and residual (2h), SwiGLU gate, up, activation and
    product (4i), down output (h).

    >>> activation_bytes(Shape(0, 1, 10, 20, 10, 100), tokens=2, completion_tokens=1)
    2720.0
    """
    per_token_layer = 4 * shape.hidden + shape.hidden + 2 * shape.kv_dim + shape.hidden + 2 * shape.hidden \
        + 4 * shape.intermediate + shape.hidden
    logits = 3 * completion_tokens * shape.vocab
    return float(BYTES * (tokens * shape.layers * per_token_layer + logits))


def available_bytes(device: str) -> float:
    """Free memory of `device`: CUDA's free memory, else the host's MemAvailable."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return float(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def plan(cfg, shape: Shape, prompt_tokens: int, available: float, max_batch: int = 256) -> MemoryPlan:
    """The memory plan of GRPO config `cfg` for a model of `shape` (see the module docstring)."""
    trainable = lora_params(shape, cfg.lora_r, list(cfg.lora_targets)) if cfg.lora_r else shape.params
    weights = BYTES * (shape.params + trainable * (cfg.lora_r > 0))
    grads, optimizer = BYTES * trainable, 2 * BYTES * trainable
    reference = BYTES * shape.params if cfg.beta > 0 and not cfg.lora_r else 0
    seq = prompt_tokens + cfg.max_new_tokens
    mb_rows = min(cfg.micro_batch_size or AUTO_MICRO_BATCH, cfg.rows_per_step)
    acts = activation_bytes(shape, mb_rows * seq, mb_rows * cfg.max_new_tokens)
    per_row = BYTES * (2 * shape.layers * shape.kv_dim * seq + shape.vocab)
    rows = min(cfg.rows_per_step, max_batch)
    static = weights + grads + optimizer + reference
    peak = static + max(acts, rows * per_row)
    room = available - static
    max_rows = int(room // per_row) if room > acts else 0
    return MemoryPlan(weights, grads, optimizer, reference, acts, rows * per_row, per_row, peak, available, max_rows,
                      mb_rows)


def prompt_length(cfg, tokenizer, k: int = 32) -> int:
    """Longest prompt among k training problems in the run's template, in tokens."""
    task, template = get_task(cfg.task), resolve(cfg.template, cfg.model, tokenizer)
    texts = [template.render(tokenizer, task, p) for p in task.problems("train", k, seed=cfg.seed)]
    return max(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])


def plan_for(cfg, device: str = "") -> MemoryPlan:
    """Plan `cfg` on `device` (or the size given by `cfg.memory_gb`); an automatic micro-batch
    (`micro_batch_size=0`) is planned at the size `choose_micro_batch` picks."""
    shape = model_shape(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    avail = cfg.memory_gb * GiB if cfg.memory_gb else available_bytes(device or cfg.device or "cpu")
    prompt = prompt_length(cfg, tokenizer)
    if not cfg.micro_batch_size:
        def fits(m: int) -> bool:
            return plan(replace(cfg, micro_batch_size=m), shape, prompt, avail).fits

        cfg = replace(cfg, micro_batch_size=choose_micro_batch(fits, min(AUTO_MICRO_BATCH, cfg.rows_per_step)))
    return plan(cfg, shape, prompt, avail)


AUTO_MICRO_BATCH = 64  #: most rows an automatic micro-batch takes (past it only memory grows)


def choose_micro_batch(fits, most: int) -> int:
    """The largest micro-batch in most, most/2, … 1 for which `fits(m)`; 1 when none does (the
    plan then reports what does not fit).

    >>> choose_micro_batch(lambda m: m <= 20, 64), choose_micro_batch(lambda m: False, 64)
    (16, 1)
    """
    m = max(1, most)
    while m > 1 and not fits(m):
        m //= 2
    return m


def describe_plan(p: MemoryPlan, cfg) -> str:
    def g(x: float) -> str:
        return f"{x / GiB:.3f} GiB" if x < 10 * GiB else f"{x / GiB:.1f} GiB"

    lines = [
        f"weights            {g(p.weights)}", f"gradients          {g(p.grads)}",
        f"AdamW moments      {g(p.optimizer)}", f"reference model    {g(p.reference)}",
        f"activations        {g(p.activations)}  (micro-batch of {p.micro_batch} rows)",
        f"KV cache           {g(p.kv_cache)}  ({cfg.prompts_per_step} prompts x {cfg.generations_per_prompt} generations)",
        f"peak               {g(p.peak)}  of {g(p.available)} available: {'fits' if p.fits else 'DOES NOT FIT'}",
        f"largest prompts x generations generated at once that fits: {p.max_rows}",
    ]
    return "\n".join(lines)


def check_fits(cfg, device: str) -> MemoryPlan:
    """Raise a one-line error before training when the plan exceeds the device's memory; else
    the plan (its `micro_batch` is the one to train with)."""
    p = plan_for(cfg, device)
    if not p.fits:
        raise ReasonlabError(f"this config needs ~{p.peak / GiB:.2f} GiB but {p.available / GiB:.2f} GiB is available "
                             f"(run `reasonlab plan` for the breakdown; at most {p.max_rows} rows per generation "
                             "batch fit: lower prompts_per_step, generations_per_prompt or micro_batch_size)")
    return p

"""Pretraining the tiny base model from scratch on the synthetic corpus.

Plain PyTorch: documents are tokenized once, concatenated with eos and cut into fixed blocks;
AdamW with warmup and cosine decay; fp32. The output is a standard Hugging Face directory
(`OUT/final`) that `AutoModelForCausalLM` / `AutoTokenizer` load with no reasonlab code.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reasonlab.io import JsonlAppender, replace_dir_atomic, write_json_atomic
from reasonlab.templates import BUILTIN
from reasonlab.templates import record as record_template
from reasonlab.world.corpus import CorpusMix, build_corpus
from reasonlab.world.model import build_model, count_params
from reasonlab.world.tokenizer import build_tokenizer


@dataclass
class PretrainConfig:
    """Configuration of `reasonlab pretrain`."""

    out: str = field(default="runs/base", metadata={"help": "output directory; the model goes to OUT/final"})
    preset: str = field(default="tiny", metadata={"help": "model size: tiny (~1M), mini (~0.4M), small (~10M), test or test32"})
    steps: int = field(default=1200, metadata={"help": "optimizer steps"})
    seed: int = field(default=0, metadata={"help": "seed for corpus, initialisation and data order"})
    batch_size: int = field(default=16, metadata={"help": "sequences per step"})
    seq_len: int = field(default=256, metadata={"help": "tokens per training sequence"})
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate"})
    warmup_steps: int = field(default=40, metadata={"help": "linear warmup steps"})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay"})
    vocab_size: int = field(default=512, metadata={"help": "BPE vocabulary size before the tag tokens"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: torch's default)"})
    mix: CorpusMix = field(default_factory=CorpusMix, metadata={"help": "corpus style weights"})
    force: bool = field(default=False, metadata={"help": "retrain even if OUT/final holds this config's model"})


def _is_done(final: Path, cfg: PretrainConfig) -> bool:
    """A finished model with the same settings is already there (`force` aside)."""
    meta = final / "reasonlab_pretrain.json"
    if not meta.exists():
        return False
    same = {k: v for k, v in asdict(cfg).items() if k not in ("out", "force", "threads")}
    old = {k: v for k, v in json.loads(meta.read_text())["config"].items() if k not in ("out", "force", "threads")}
    return same == old


def _blocks(tokenizer, docs: list[str], seq_len: int):
    import torch

    ids = [i for row in tokenizer(docs, add_special_tokens=False)["input_ids"] for i in row]
    n = len(ids) // seq_len
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warmup then cosine decay to 10% of the peak.

    >>> cfg = PretrainConfig(steps=100, warmup_steps=10, lr=1.0)
    >>> round(lr_at(4, cfg), 3), round(lr_at(10, cfg), 3), round(lr_at(100, cfg), 3)
    (0.5, 1.0, 0.1)
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _optimizer(model, cfg: PretrainConfig):
    import torch

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


def _train(model, data, cfg: PretrainConfig, metrics_path: Path, log, t0: float) -> float:
    """The training loop; returns the last loss. Metrics go to `metrics_path`, one row a step."""
    import torch


    opt = _optimizer(model, cfg)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.seed))
    model.train()
    with JsonlAppender(metrics_path) as metrics:
        for step in range(cfg.steps):
            batch = data[order[(torch.arange(cfg.batch_size) + step * cfg.batch_size) % len(data)]]
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            loss = model(input_ids=batch, labels=batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            row = {"step": step + 1, "loss": loss.item(), "grad_norm": gnorm.item(), "lr": lr_at(step, cfg),
                   "elapsed": time.time() - t0}
            metrics.write(row)
            if (step + 1) % 50 == 0 or step == 0:
                log(f"step {step + 1}/{cfg.steps} loss {row['loss']:.3f} ({row['elapsed']:.0f}s)")
    model.eval()
    return row["loss"]


def pretrain(cfg: PretrainConfig, log=print) -> Path:
    """Build the tokenizer and model, train, save `OUT/final`; returns that path."""
    import torch


    out = Path(cfg.out)
    if not cfg.force and _is_done(out / "final", cfg):
        log(f"pretrain: {out / 'final'} is up to date (same settings); use force=true to retrain")
        return out / "final"
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tokens_needed = cfg.steps * cfg.batch_size * cfg.seq_len
    docs = build_corpus(max(2000, tokens_needed // 70), seed=cfg.seed, mix=cfg.mix)
    tokenizer = build_tokenizer(docs[:20000], vocab_size=cfg.vocab_size)
    data = _blocks(tokenizer, docs, cfg.seq_len)
    model = build_model(tokenizer, cfg.preset, max_positions=max(512, cfg.seq_len), seed=cfg.seed)
    n_params = count_params(model)
    log(f"pretrain: {n_params / 1e6:.2f}M params, {data.numel() / 1e6:.2f}M corpus tokens, {cfg.steps} steps")
    (out / "metrics.jsonl.tmp").unlink(missing_ok=True)
    final_loss = _train(model, data, cfg, out / "metrics.jsonl.tmp", log, t0)
    (out / "metrics.jsonl.tmp").replace(out / "metrics.jsonl")
    tmp = out / ".final.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    record_template(tmp, BUILTIN["tiny"])  # the frame its corpus taught it
    info = {"config": asdict(cfg), "params": n_params, "train_flops": 6 * n_params * tokens_needed,
            "train_seconds": time.time() - t0, "final_loss": final_loss}
    write_json_atomic(tmp / "reasonlab_pretrain.json", info)
    replace_dir_atomic(tmp, out / "final")
    log(f"pretrain: saved {out / 'final'} in {time.time() - t0:.0f}s")
    return out / "final"

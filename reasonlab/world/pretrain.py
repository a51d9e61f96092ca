"""Pretraining the tiny base model from scratch on the synthetic corpus.

It runs on the shared trainer (`reasonlab.train.trainer`), so it checkpoints, resumes after a
kill, logs, saves and runs data-parallel under `accelerate launch` (`batch_size` rows a process,
as SFT) like GRPO and SFT; only the model is built instead of loaded: documents are
tokenized once, concatenated with eos and cut into fixed blocks, visited in one seeded order.
AdamW with weight decay on matrices only, betas (0.9, 0.95), linear warmup then cosine decay;
fp32. The output is a standard Hugging Face directory (`OUT/final`) that
`AutoModelForCausalLM` / `AutoTokenizer` load with no reasonlab code.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from reasonlab.config import option
from reasonlab.sizing import resolve_precision
from reasonlab.templates import BUILTIN
from reasonlab.train.trainer import Trainer, TrainSettings, on_cpu
from reasonlab.world.corpus import CorpusMix, build_corpus
from reasonlab.world.model import build_model, count_params
from reasonlab.world.tokenizer import build_tokenizer

#: settings that do not change the model a run makes
NOT_THE_MODEL = ("out", "force", "threads", "resume", "save_every", "keep_last", "tensorboard", "max_nonfinite")


@dataclass
class PretrainConfig(TrainSettings):
    """Configuration of `reasonlab pretrain`."""

    out: str = option("runs/base", "output directory; the model goes to OUT/final")
    steps: int = option(1200, "optimizer steps")
    lr: float = option(3e-3, "peak learning rate")
    warmup_steps: int = option(40, "linear warmup steps")
    weight_decay: float = option(0.1, "AdamW weight decay (matrices only)")
    seed: int = option(0, "seed for corpus, initialisation and data order")
    preset: str = option("tiny", "model size: tiny (~1M), mini (~0.4M), small (~10M), test or test32")
    batch_size: int = option(16, "sequences per step on each process (`accelerate launch`: N processes train on N x as many)")
    seq_len: int = option(256, "tokens per training sequence")
    vocab_size: int = option(512, "BPE vocabulary size before the tag tokens")
    threads: int = option(0, "torch threads (0: torch's default)")
    mix: CorpusMix = field(default_factory=CorpusMix, metadata={"help": "corpus style weights"})
    force: bool = option(False, "retrain even if OUT/final holds this config's model")


def _is_done(final: Path, cfg: PretrainConfig) -> bool:
    """A finished model with the same settings, on as many processes, is already there (`force`
    aside). The record holds the precision the run resolved, so `auto` is resolved to compare."""
    meta = final / "reasonlab_train.json"
    info = json.loads(meta.read_text()) if meta.exists() else {}
    if "config" not in info or info.get("processes", 1) != int(os.environ.get("WORLD_SIZE", "1")):
        return False
    want = dict(asdict(cfg), precision=resolve_precision(cfg.precision, "cpu" if on_cpu(cfg) else "cuda"))
    same = {k: v for k, v in want.items() if k not in NOT_THE_MODEL}
    return same == {k: v for k, v in info["config"].items() if k not in NOT_THE_MODEL}


def _blocks(tokenizer, docs: list[str], seq_len: int) -> torch.Tensor:
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


class Pretrainer(Trainer):
    """The shared trainer with a model built from the corpus and a next-token loss on its blocks."""

    method = "pretrain"

    def _load_model(self):
        cfg = self.cfg
        tokens = cfg.steps * cfg.batch_size * cfg.seq_len
        self.docs = build_corpus(max(2000, tokens // 70), seed=cfg.seed, mix=cfg.mix)
        self.tokenizer = build_tokenizer(self.docs[:20000], vocab_size=cfg.vocab_size)
        self.template = BUILTIN["tiny"]  # the frame its corpus teaches, recorded with the model
        return build_model(self.tokenizer, cfg.preset, max_positions=max(512, cfg.seq_len), seed=cfg.seed)

    def _optimizer(self, model) -> torch.optim.Optimizer:
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        return torch.optim.AdamW([{"params": decay, "weight_decay": self.cfg.weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}], lr=self.cfg.lr, betas=(0.9, 0.95))

    def _setup(self) -> None:
        cfg = self.cfg
        self.data = _blocks(self.tokenizer, self.docs, cfg.seq_len)  # [blocks, seq_len]
        del self.docs
        self.order = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(cfg.seed))
        self.n_params = count_params(self.policy)
        self.final_loss = float("nan")
        self.log(f"pretrain: {self.n_params / 1e6:.2f}M params, {self.data.numel() / 1e6:.2f}M corpus tokens, "
                 f"{cfg.steps} steps")
        self.model.train()

    def train_step(self) -> dict:
        cfg, step = self.cfg, self.step
        world, rank = self.acc.num_processes, self.acc.process_index  # data-parallel: batch_size rows each
        at = (step * world + rank) * cfg.batch_size  # this process's place in the order
        rows = (torch.arange(cfg.batch_size) + at) % len(self.data)
        batch = self.data[self.order[rows]].to(self.acc.device)  # [batch_size, seq_len]
        lr = lr_at(step, cfg)
        for g in self.opt.param_groups:  # the schedule is set, not stepped: one formula, no drift
            g["lr"] = lr
        loss = self.model(input_ids=batch, labels=batch).loss
        self.opt.zero_grad(set_to_none=True)
        self.acc.backward(loss)
        gnorm, stepped = self._apply_gradients()
        self.step += 1
        self.flops += 6 * self.n_params * cfg.batch_size * cfg.seq_len * world
        self.final_loss = loss.item()
        return self._mean_over_processes({"loss": self.final_loss, "grad_norm": gnorm, "lr": lr, "nonfinite": not stepped})

    def _train_info(self) -> dict:
        return {"config": asdict(self.cfg), "params": self.n_params, "final_loss": self.final_loss}


def pretrain(cfg: PretrainConfig, log=print) -> Path:
    """Build the tokenizer and model, train (resuming when `cfg.resume`), save `OUT/final`;
    returns that path. A finished model with the same settings is kept (`force` retrains)."""
    out = Path(cfg.out)
    if not cfg.force and _is_done(out / "final", cfg):
        log(f"pretrain: {out / 'final'} is up to date (same settings); use force=true to retrain")
        return out / "final"
    if (out / "final" / "reasonlab_train.json").exists():  # finished with other settings (or forced): retrain
        log(f"pretrain: retraining {out / 'final'} ({'force' if cfg.force else 'other settings'})")
        shutil.rmtree(out / "checkpoints", ignore_errors=True)  # the old run's, not a point to resume from
        shutil.rmtree(out / "final")  # nor its record: this run, killed and resumed, resumes its own checkpoints
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    final = Pretrainer(cfg, log=log).train()
    log(f"pretrain: saved {final}")
    return final

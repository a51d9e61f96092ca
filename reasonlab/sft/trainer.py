"""Supervised fine-tuning with the loss on completion tokens only (cold-start SFT, distillation).

Each step takes `batch_size` examples per process from a seeded permutation of the data (a new
one each epoch; epochs run on without a partial last batch), runs them in micro-batches, and
takes one AdamW step on the mean token loss of the batch's completion tokens. The data position
is part of every checkpoint, so `--resume` continues bit-for-bit. Everything else (accelerate,
LoRA, checkpoints, the non-finite guard, metrics, the final save) is the shared `Trainer`.

With `packing`, examples are packed best-fit-decreasing into rows of `max_length` once at the
start, and `batch_size` counts packed rows (as in TRL); the attention of each example is kept to
itself through restarting position ids. Without it rows are right-padded to the longest row of
each micro-batch.

Where this departs from TRL's `SFTTrainer`: the loss is averaged over the tokens of the whole batch, not
per micro-batch, so gradient accumulation does not change it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from reasonlab.config import option
from reasonlab.errors import ReasonlabError
from reasonlab.sft.data import IGNORE, build_examples, collate, load_rows, pack
from reasonlab.train.memory import (
    BYTES,
    activation_bytes,
    available_bytes,
    choose_micro_batch,
    model_shape,
)
from reasonlab.train.trainer import TrainConfig, Trainer


@dataclass
class SFTConfig(TrainConfig):
    """Configuration of `reasonlab sft`."""

    data: str = option("", "training data: a JSONL file or a `datasets` dir (prompt/completion or messages columns)")
    out: str = option("runs/sft", "output directory: checkpoints/, final/, metrics.jsonl")
    epochs: float = option(1.0, "passes over the data (used when steps is 0)")
    steps: int = option(0, "optimizer steps (0: epochs × examples / batch_size)")
    batch_size: int = option(16, "examples per optimizer step and process")
    micro_batch_size: int = option(0, "examples per forward/backward, gradient accumulation beyond it (0: the largest that fits in memory, at most 16)")
    max_length: int = option(512, "tokens per example (prompt + completion); longer ones are cut")
    lr: float = option(1e-4, "AdamW learning rate")
    packing: bool = option(False, "pack examples into rows of max_length tokens (batch_size then counts rows)")

    def validate(self) -> None:
        if not self.data:
            raise ReasonlabError("data: give a JSONL file or a datasets directory")
        for name in ("batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise ReasonlabError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.micro_batch_size < 0:
            raise ReasonlabError(f"micro_batch_size: must be >= 0 (0: planned), got {self.micro_batch_size}")
        if self.steps < 0 or self.epochs <= 0:
            raise ReasonlabError("steps must be >= 0 and epochs > 0")


class SFTTrainer(Trainer):
    method = "sft"

    def _setup(self) -> None:
        cfg = self.cfg
        self.examples, dropped = build_examples(load_rows(cfg.data), self.tokenizer, cfg.max_length, cfg.data,
                                                self.template)
        if not self.examples:
            raise ReasonlabError(f"data: {cfg.data} has no example with a completion token within max_length")
        if dropped:
            self.log(f"sft: {dropped} rows dropped (no trained token within max_length={cfg.max_length})")
        if cfg.packing:
            n = len(self.examples)
            self.examples = pack(self.examples, cfg.max_length)
            self.log(f"sft: {n} examples packed into {len(self.examples)} rows of <= {cfg.max_length} tokens")
        per_step = cfg.batch_size * self.acc.num_processes
        self.total_steps = cfg.steps or max(1, int(cfg.epochs * len(self.examples) / per_step))
        self.n_params = sum(p.numel() for p in self.policy.parameters())
        if not cfg.micro_batch_size:
            cfg.micro_batch_size = self._planned_micro_batch()
            self.log(f"sft: micro_batch_size={cfg.micro_batch_size} (planned; set micro_batch_size= to change)")
        self.order: list[int] = []
        self.position = 0  # examples consumed over all epochs and processes

    def _planned_micro_batch(self, most: int = 16) -> int:
        """The largest micro-batch (≤ `most`, ≤ batch_size) whose weights, gradients, AdamW state
        and activations over `max_length` tokens a row fit in the device's free memory."""
        cfg = self.cfg
        shape = model_shape(cfg.model)
        trainable = sum(p.numel() for p in self.policy.parameters() if p.requires_grad)
        static = BYTES * (self.n_params + 3 * trainable)
        room = available_bytes(str(self.acc.device)) - static
        longest = max(len(e.input_ids) for e in self.examples)
        return choose_micro_batch(lambda m: activation_bytes(shape, m * longest, m * longest) <= room,
                                  min(most, cfg.batch_size))

    def _indices(self) -> list[int]:
        """This process's examples for the next step; a fresh permutation each epoch."""
        n, per_step = len(self.examples), self.cfg.batch_size * self.acc.num_processes
        while len(self.order) < self.position + per_step:
            epoch = len(self.order) // n
            gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
            self.order += torch.randperm(n, generator=gen).tolist()
        start = self.position + self.acc.process_index * self.cfg.batch_size
        self.position += per_step
        return self.order[start : start + self.cfg.batch_size]

    def _data_state(self) -> dict:
        return {"position": self.position}

    def _load_data_state(self, state: dict) -> None:
        self.position = state["position"]

    def train_step(self) -> dict:
        from contextlib import nullcontext

        cfg, t0 = self.cfg, time.time()
        batch = [self.examples[i] for i in self._indices()]
        n_targets = sum(sum(y != IGNORE for y in e.labels[1:]) for e in batch)  # tokens the loss averages over
        self.policy.train()
        self.opt.zero_grad(set_to_none=True)
        chunks = [batch[i : i + cfg.micro_batch_size] for i in range(0, len(batch), cfg.micro_batch_size)]
        loss_total, tokens = 0.0, 0
        for k, chunk in enumerate(chunks):
            mb = {key: v.to(self.acc.device) for key, v in collate(chunk, self.tokenizer.pad_token_id).items()}
            with nullcontext() if k == len(chunks) - 1 else self.acc.no_sync(self.model):
                loss = self._loss(mb) / max(1, n_targets)
                self.acc.backward(loss)
            loss_total += loss.item()
            tokens += int(mb["attention_mask"].sum())
        row = {"loss": loss_total, "nonfinite": 0, "skipped": 0}
        gnorm, stepped = (float("nan"), False) if not torch.isfinite(torch.tensor(loss_total)) \
            else self._apply_gradients()
        if stepped:
            self.sched.step()
        else:
            self.opt.zero_grad(set_to_none=True)
            row.update(nonfinite=1, skipped=1)
        self.step += 1
        self.flops += self._global(6 * self.n_params * tokens, "sum")
        dt = time.time() - t0
        row.update({"grad_norm": gnorm, "lr": self.sched.get_last_lr()[0], "tokens": tokens,
                    "tokens_per_second": tokens / max(dt, 1e-9), "step_time": dt, "epoch": self.position / len(self.examples)})
        return self._mean_over_processes(row)

    def _loss(self, mb: dict) -> torch.Tensor:
        """Summed cross-entropy of the completion tokens of one micro-batch. Logits are computed
        only from the first labelled position of any row on (prompts need no vocabulary
        projection), which at this model size is a sizeable share of the step."""
        labels = mb["labels"]  # [B, L]
        first = int((labels != IGNORE).float().argmax(-1).min().clamp(min=1))  # earliest labelled position
        keep = labels.shape[1] - first + 1
        # packed rows pass positions and no mask: the model then builds a block-diagonal mask
        where = {"position_ids": mb["position_ids"]} if "position_ids" in mb else {"attention_mask": mb["attention_mask"]}
        logits = self.model(input_ids=mb["input_ids"], use_cache=False, logits_to_keep=keep,
                            **where).logits  # [B, keep, V] positions first-1 … L-1
        targets = labels[:, first:]  # [B, L-first] the tokens those positions predict
        return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(),
                                                 ignore_index=IGNORE, reduction="sum")


def run_sft(cfg: SFTConfig, log=print):
    return SFTTrainer(cfg, log).train()

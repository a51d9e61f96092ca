"""What every training command shares: accelerate, the model (optionally with LoRA adapters),
AdamW with linear warmup, atomic checkpoints with exact resume, the non-finite guard, metrics
and the final save with its metadata (`final/reasonlab_train.json`). `GRPOTrainer`, `SFTTrainer`
and the tiny world's pretraining add their step.

A subclass implements `train_step() -> dict` (a metrics row that includes `nonfinite`), and may
override `_load_model` (pretraining builds its model instead of loading one), `_optimizer`,
`_data_state`/`_load_data_state` (the data position saved in checkpoints), `_after_load`
(e.g. push resumed weights into a rollout engine), `_start`/`_after_step` (evaluation),
`_train_info` (more metadata) and `_plot` (curves PNG).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType

from reasonlab.config import option
from reasonlab.errors import ReasonlabError
from reasonlab.io import replace_dir_atomic, write_json_atomic
from reasonlab.rollout import load_model
from reasonlab.sizing import resolve_precision
from reasonlab.templates import record as record_template
from reasonlab.templates import resolve
from reasonlab.train.checkpoint import (
    checkpoint_dirs,
    load_state,
    load_weights,
    save_checkpoint,
    set_rng_state,
)
from reasonlab.train.metrics import MetricsLogger
from reasonlab.train.progress import Progress


@dataclass
class TrainSettings:
    """Settings every training command has, pretraining included."""

    out: str = option("runs/train", "output directory: checkpoints/, final/, metrics.jsonl")
    steps: int = option(100, "optimizer steps")
    lr: float = option(3e-5, "AdamW learning rate")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup_steps: int = option(0, "linear learning-rate warmup steps")
    grad_clip: float = option(1.0, "gradient-norm clip (0: none)")
    seed: int = option(0, "seed for data order, sampling and initialisation")
    save_every: int = option(50, "checkpoint every N steps (0: only the final model)")
    keep_last: int = option(2, "checkpoints kept (the newest complete ones)")
    resume: bool = option(False, "continue from the newest checkpoint in OUT")
    max_nonfinite: int = option(3, "stop after this many consecutive steps with a non-finite loss or gradient")
    max_minutes: float = option(0.0, "stop after the step that brings training time to this many minutes, and save the final model as after the last step (held-out evaluations not counted; a resumed run counts its earlier time; 0: no limit)")
    tensorboard: bool = option(True, "also write metrics to OUT/tensorboard")
    device: str = option("", "cpu, cuda, … (default: what accelerate picks)")
    precision: str = option("fp32", "fp32, bf16 (autocast over fp32 weights and AdamW state: ~2x on CPUs with AVX512-BF16/AMX, far slower on AVX2-only ones) or auto (bf16 where a matmul measures it faster)")


@dataclass
class TrainConfig(TrainSettings):
    """Settings of the commands that fine-tune a model (GRPO and SFT add their own)."""

    model: str = option("runs/pipeline/base/final", "model to start from: a Hugging Face model directory")
    lora_r: int = option(0, "LoRA rank (0: full fine-tuning)")
    lora_alpha: int = option(16, "LoRA alpha")
    lora_dropout: float = option(0.0, "LoRA dropout")
    lora_targets: list = option(["q_proj", "k_proj", "v_proj", "o_proj"], "modules that get LoRA adapters")
    template: str = option("", "prompt template: a built-in name (reasonlab templates) or a YAML file; default: the model's recorded one, else chat-think / r1-zero")



def on_cpu(cfg: TrainSettings) -> bool:
    """Whether a run of these settings trains on the CPU (`device` cpu, or none given and no CUDA)."""
    return cfg.device == "cpu" or (not cfg.device and not torch.cuda.is_available())


def accelerator(cpu: bool, precision: str) -> Accelerator:
    """An `Accelerator` for a run of this precision. accelerate keeps one state per process and
    refuses a second `Accelerator` of another mixed precision; a process that runs trainings one
    after another (a pipeline with one worker, a notebook) may need fp32 and then bf16, so a state
    of the other precision is dropped first. The process group (`PartialState`) is kept."""
    from accelerate.state import AcceleratorState

    mixed = "bf16" if precision == "bf16" else "no"
    if AcceleratorState._shared_state.get("_mixed_precision", mixed) != mixed:
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=cpu, mixed_precision=mixed)


class Trainer(ABC):
    method = "train"  #: recorded in final/reasonlab_train.json

    def __init__(self, cfg, log=print):
        self.cfg, self.log = cfg, log
        # without CUDA, processes started by `accelerate launch` join a gloo group on the CPU
        if cfg.precision not in ("fp32", "bf16", "auto"):
            raise ReasonlabError(f"precision: {cfg.precision!r} is not one of fp32, bf16, auto")
        if cfg.grad_clip < 0 or cfg.warmup_steps < 0 or cfg.max_minutes < 0:
            raise ReasonlabError("grad_clip, warmup_steps, max_minutes: must be >= 0 (0: off), got "
                                 f"{cfg.grad_clip}, {cfg.warmup_steps}, {cfg.max_minutes}")
        cpu = on_cpu(cfg)
        cfg.precision = resolve_precision(cfg.precision, "cpu" if cpu else "cuda")
        self.acc = accelerator(cpu, cfg.precision)
        if not cfg.resume and checkpoint_dirs(cfg.out):  # before anything is loaded or rolled out
            raise ReasonlabError(f"{cfg.out} already has checkpoints: pass --resume to continue or use another --out")
        self.lora = getattr(cfg, "lora_r", 0)  # pretraining and reward models have no adapters
        self._preflight()
        torch.manual_seed(cfg.seed)
        model = self._load_model()
        self.opt = self._optimizer(model)
        warm = max(1, cfg.warmup_steps)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: min(1.0, (s + 1) / warm))
        self.model, self.opt = self.acc.prepare(model, self.opt)
        self.policy = self.acc.unwrap_model(self.model)
        self.step, self.flops, self.nonfinite, self.train_seconds = 0, 0.0, 0, 0.0
        self.last_step = False  # set before `_after_step` on the run's final step (the steps or the time ran out)
        self.total_steps = cfg.steps  # a subclass may derive it (SFT: from epochs)
        self._setup()

    def _preflight(self) -> None:
        """Checks before anything big is allocated."""

    def _setup(self) -> None:
        """Data, tasks, engines: whatever the step needs."""

    def _optimizer(self, model) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    def _load_model(self):
        cfg = self.cfg
        model, self.tokenizer = load_model(cfg.model, str(self.acc.device), torch.float32)
        self.template = resolve(cfg.template, cfg.model, self.tokenizer)  # recorded with the final model
        if cfg.lora_r:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                                     lora_dropout=cfg.lora_dropout, target_modules=list(cfg.lora_targets)))
        return model

    # ---------------------------------------------------------------- across processes
    def _global(self, value: float, op: str = "max") -> float:
        """`value` reduced over processes (itself when there is one)."""
        if self.acc.num_processes == 1:
            return value
        t = self.acc.gather(torch.tensor([float(value)], device=self.acc.device))
        return float(t.max() if op == "max" else t.sum())

    def _reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """A tensor summed (or maxed) over processes; itself when there is one."""
        if self.acc.num_processes == 1:
            return t
        t = t.to(self.acc.device)
        if op == "max":
            return self.acc.gather(t.unsqueeze(0)).amax(0)
        return self.acc.reduce(t.clone(), reduction="sum")

    def _mean_over_processes(self, row: dict) -> dict:
        """Every process logs the same numbers: the mean of each metric over processes."""
        if self.acc.num_processes == 1:
            return row
        keys = sorted(k for k, v in row.items() if isinstance(v, (int, float)))
        vals = torch.tensor([[float(row[k]) for k in keys]], device=self.acc.device)  # [1, K]
        mean = self.acc.gather(vals).mean(0)  # [K]
        return {**row, **dict(zip(keys, mean.tolist()))}

    def _check_in_sync(self) -> None:
        """Data-parallel replicas must hold the same weights; a silent divergence would make the
        saved model one process's guess."""
        replicated = (DistributedType.MULTI_GPU, DistributedType.MULTI_CPU)  # sharded types hold shards
        if self.acc.num_processes == 1 or self.acc.distributed_type not in replicated:
            return
        with torch.no_grad():
            total = sum(p.double().sum() for p in self.policy.parameters())
        sums = self.acc.gather(total.reshape(1).to(self.acc.device))
        if float(sums.max() - sums.min()) != 0.0:
            raise ReasonlabError(f"data-parallel processes hold different weights ({sums.tolist()}); not saving")

    def _apply_gradients(self) -> tuple[float, bool]:
        """Clip, then step unless the gradient is non-finite; returns (grad norm, stepped)."""
        gnorm = self.acc.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip or float("inf"))  # 0: measure only
        if not torch.isfinite(torch.as_tensor(gnorm)):
            self.opt.zero_grad(set_to_none=True)
            return float("nan"), False
        self.opt.step()
        return float(gnorm), True

    # ---------------------------------------------------------------- resume & save
    def _data_state(self) -> dict:
        return {}

    def _load_data_state(self, state: dict) -> None:
        pass

    def _after_load(self) -> None:
        pass

    def resume(self) -> None:
        found = checkpoint_dirs(self.cfg.out)
        if not found:
            self.log("resume: no checkpoint found, starting from step 0")
            return
        path = found[-1]
        state = load_state(path)
        if self.lora:
            self.policy.load_state_dict(state["trainable"], strict=False)
        else:
            load_weights(self.policy, path)
        self._after_load()
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self.step, self.flops = state["step"], state["flops"]
        self.train_seconds, self.nonfinite = state["train_seconds"], state["nonfinite"]
        self._load_data_state(state)
        self.log(f"resume: continuing from {path} (step {self.step})")

    def save(self) -> dict | None:
        """A checkpoint. All processes call this: sharded weights are gathered first, and the
        gathered full state dict (None when the model is not sharded) is returned for reuse."""
        full = None
        if self.acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED) and not self.lora:
            full = self.acc.get_state_dict(self.model)
        if not self.acc.is_main_process:
            return full
        state = {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "flops": self.flops,
                 "train_seconds": self.train_seconds, "nonfinite": self.nonfinite, **self._data_state()}
        if self.lora:
            state["trainable"] = {k: v for k, v in self.policy.state_dict().items() if "lora_" in k}
        save_checkpoint(self.cfg.out, self.step, self.policy, self.tokenizer, state, self.cfg.keep_last, full)
        return full

    # ---------------------------------------------------------------- the run
    @abstractmethod
    def train_step(self) -> dict:
        """One optimizer step; the metrics row (with `nonfinite`), `self.step` advanced."""

    def _start(self, metrics: MetricsLogger) -> None:
        pass

    def _after_step(self, row: dict, bar) -> None:
        pass

    def _train_info(self) -> dict:
        """More of `final/reasonlab_train.json` (a subclass's own record)."""
        return {}

    def _plot(self, out: Path) -> None:
        pass

    def train(self) -> Path:
        """The whole run; returns OUT/final. Resumes first when `cfg.resume`."""
        cfg = self.cfg
        if cfg.resume:
            self.resume()
        metrics = MetricsLogger(cfg.out, self.step, cfg.tensorboard, enabled=self.acc.is_main_process)
        try:
            self._loop(metrics)
        finally:
            metrics.close()
        return self._finish()

    def _out_of_time(self) -> bool:
        """Whether the time budget is spent. Training time is summed over processes' steps the same
        way on each (the max over processes), so they all stop after the same step."""
        limit = self.cfg.max_minutes * 60
        return bool(limit) and self._global(self.train_seconds) >= limit

    def _loop(self, metrics: MetricsLogger) -> None:
        cfg = self.cfg
        with Progress(self.method, self.total_steps, self.step, enabled=self.acc.is_main_process) as bar:
            spent = self._out_of_time()  # once a step: every process takes part in the reduction
            if self.step == 0 and self.acc.is_main_process and not spent:
                self._start(metrics)
            while self.step < self.total_steps and not spent:
                t0 = time.time()
                row = self.train_step()
                self.train_seconds += time.time() - t0
                self.nonfinite = self.nonfinite + 1 if row["nonfinite"] else 0
                if self.nonfinite >= cfg.max_nonfinite:
                    raise ReasonlabError(f"stopping at step {self.step}: {self.nonfinite} consecutive steps with a "
                                         "non-finite loss or gradient (checkpoints before it are kept)")
                row.update({"train_flops": self.flops, "train_seconds": self.train_seconds})
                spent = self._out_of_time()
                self.last_step = self.step >= self.total_steps or spent
                self._after_step(row, bar)
                metrics.log(self.step, row)
                bar.update(self.step, row, self.log)
                if cfg.save_every and self.step % cfg.save_every == 0 and not self.last_step:
                    self.save()
        if self.step < self.total_steps:
            self.log(f"{self.method}: stopped after step {self.step} of {self.total_steps}: "
                     f"{self.train_seconds / 60:.1f} min of training reached max_minutes={cfg.max_minutes:g}")

    def _finish(self) -> Path:
        out = Path(self.cfg.out)
        self._check_in_sync()
        full = self.save()
        if self.acc.is_main_process:
            tmp = out / ".final.tmp"
            if self.lora:  # the adapter alone (PEFT's format), then the merged model in final/
                self.policy.save_pretrained(out / ".adapter.tmp")
                record_template(out / ".adapter.tmp", self.template)
                replace_dir_atomic(out / ".adapter.tmp", out / "adapter")
            model = self.policy.merge_and_unload() if self.lora else self.policy
            model.save_pretrained(tmp, state_dict=full)
            self.tokenizer.save_pretrained(tmp)
            record_template(tmp, self.template)
            write_json_atomic(tmp / "reasonlab_train.json", {"method": self.method, "train_flops": self.flops,
                                                              "train_seconds": self.train_seconds, "steps": self.step,
                                                              "processes": self.acc.num_processes,
                                                              **self._train_info()})
            replace_dir_atomic(tmp, out / "final")
            self._plot(out)
        return out / "final"

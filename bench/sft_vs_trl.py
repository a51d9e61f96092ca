"""SFT throughput: reasonlab's trainer vs TRL's `SFTTrainer`, same model, data and settings, in
one run.

Data: reasoning traces for training-split arithmetic problems (the corpus's "careful" style),
as `prompt`/`completion` strings (the prompt already in the model's chat format). Both train the
default tiny base model with batch 16, lr 1e-4, loss on completion tokens only. TRL keeps its
other defaults (gradient checkpointing, linear decay, no packing) except bf16, which is off
because bf16 matmuls run ~70× slower than fp32 on this CPU. The first step is not timed.

Prints seconds per step, tokens per second (non-padding tokens) and the mean loss over the last
steps for both. Last line: `speedup: N.NN` (reasonlab tokens/s ÷ TRL's; goal ≥ 1.3).

    python bench/sft_vs_trl.py [--model runs/pipeline/base/final] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import trl_step_timer, warn_if_busy

BATCH, LR = 16, 1e-4


def _write_data(model: str, path: Path, n: int) -> None:
    from transformers import AutoTokenizer

    from reasonlab.tasks import get_task
    from reasonlab.world.corpus import careful_trace

    tok, task = AutoTokenizer.from_pretrained(model), get_task("arithmetic")
    rows = []
    for p in task.problems("train", n, seed=0):
        prompt = tok.apply_chat_template([{"role": "user", "content": task.prompt(p)}], tokenize=False,
                                         add_generation_prompt=True)
        rows.append({"prompt": prompt, "completion": careful_trace(p)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def run_ours(model: str, data: Path, steps: int, out: str) -> tuple[list[float], list[float], list[int]]:
    from reasonlab.sft.trainer import SFTConfig, SFTTrainer

    cfg = SFTConfig(model=model, data=str(data), out=out, steps=steps, batch_size=BATCH, micro_batch_size=BATCH,
                    lr=LR, save_every=0, tensorboard=False, device="cpu")
    trainer = SFTTrainer(cfg, log=lambda m: None)
    times, losses, tokens = [], [], []
    for _ in range(steps):
        t = time.perf_counter()
        row = trainer.train_step()
        times.append(time.perf_counter() - t)
        losses.append(row["loss"])
        tokens.append(row["tokens"])
    return times, losses, tokens


def run_trl(model: str, data: Path, steps: int, out: str) -> tuple[list[float], list[float], list[int]]:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    times: list[float] = []

    args = SFTConfig(output_dir=out, per_device_train_batch_size=BATCH, learning_rate=LR, max_steps=steps,
                     logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, bf16=False, seed=0,
                     max_length=512)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32), args=args,
                         train_dataset=load_dataset("json", data_files=str(data), split="train"),
                         processing_class=AutoTokenizer.from_pretrained(model), callbacks=[trl_step_timer(times)])
    trainer.train()
    hist = [h for h in trainer.state.log_history if "loss" in h]
    tokens = [int(h["num_tokens"]) for h in hist]
    return times, [float(h["loss"]) for h in hist], [b - a for a, b in zip([0] + tokens[:-1], tokens)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="runs/pipeline/base/final")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    if not (Path(args.model) / "config.json").exists():
        sys.exit(f"error: no model at {args.model} (run `make demo` first, or pass --model DIR)")
    warn_if_busy()
    tail = max(1, args.steps // 5)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "traces.jsonl"
        _write_data(args.model, data, BATCH * args.steps)
        results = {"reasonlab": run_ours(args.model, data, args.steps, f"{tmp}/ours"),
                   "trl": run_trl(args.model, data, args.steps, f"{tmp}/trl")}
    tps = {}
    print(f"batch {BATCH}, lr {LR}, {args.steps} steps (first untimed); mean loss over the last {tail} steps")
    for name, (times, losses, tokens) in results.items():
        tps[name] = sum(tokens[1:]) / sum(times[1:])
        print(f"{name:10s} {statistics.median(times[1:]):6.3f} s/step  {tps[name]:8.0f} tokens/s  "
              f"loss {sum(losses[-tail:]) / tail:.3f} (first {losses[0]:.3f})")
    print(f"speedup: {tps['reasonlab'] / tps['trl']:.2f}")


if __name__ == "__main__":
    main()

"""GRPO throughput: reasonlab's trainer vs TRL's `GRPOTrainer`, same model, task, rewards and
hyperparameters, in one run.

Both train the default tiny base model on `arithmetic` with the same reward functions
(reasonlab's `accuracy` and `format`, which have TRL's reward signature), 16 prompts × 8
generations, at most 64 new tokens, lr 3e-5, the DAPO token-mean loss (TRL's default loss
type), β = 0, one update per generation batch, T = 1. TRL keeps its other defaults (gradient
checkpointing on, linear decay); `--precision` sets both (fp32 by default: on AVX2-only CPUs bf16
matmuls run far slower than fp32; `auto` picks bf16 where it measures faster, as on AVX512-BF16). The first step of each is a warm-up and is not timed.

A real model works the same way (`--model DIR`, e.g. SmolLM2 from `reasonlab convert --gguf
packaged`): both trainers get the same prompts rendered in the model's template (`--template`,
default the model's own), the same rewards reading the template's answer format (prefill
included), the same batch; `--lora R` trains LoRA adapters in both (TRL through `peft_config`).
Smaller batches suit a 135M model on 2 cores: `--prompts 4 --generations 4 --new-tokens 96`.

Prints seconds per step, completions per second and the mean reward over the last steps for
each, and their ratio. Last line: `speedup: N.NN` (reasonlab completions/s ÷ TRL's; goal ≥ 2).

    python bench/grpo_vs_trl.py [--model runs/bench/pretrain/final] [--steps 20] [--template NAME]
                                [--lora R] [--prompts 16] [--generations 8] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import trl_step_timer, warn_if_busy

from reasonlab.rewards import accuracy, format_reward

PROMPTS, G, NEW_TOKENS, LR = 16, 8, 64, 3e-5
FORMAT_WEIGHT = 1.0
BATCH = {"prompts": PROMPTS, "generations": G, "new_tokens": NEW_TOKENS, "lora": 0, "template": "", "precision": "fp32"}


def _ensure_model(path: str) -> str:
    if (Path(path) / "config.json").exists():
        return path
    from reasonlab.world.pretrain import PretrainConfig, pretrain

    print(f"{path} not found: pretraining the default tiny base model (~4 min)")
    return str(pretrain(PretrainConfig(out=str(Path(path).parent)), log=lambda m: None))


def run_ours(model: str, steps: int, out: str, lr: float = LR) -> tuple[list[float], list[float]]:
    from reasonlab.rl.config import GRPOConfig
    from reasonlab.rl.grpo import GRPOTrainer

    cfg = GRPOConfig(model=model, out=out, task="arithmetic", steps=steps, prompts_per_step=BATCH["prompts"],
                     generations_per_prompt=BATCH["generations"], max_new_tokens=BATCH["new_tokens"], lr=lr,
                     loss_type="dapo", rewards={"accuracy": 1.0, "format": FORMAT_WEIGHT}, save_every=0,
                     sample_every=0, eval_every=0, tensorboard=False, device="cpu", template=BATCH["template"],
                     lora_r=BATCH["lora"], lora_alpha=2 * BATCH["lora"] or 16, precision=BATCH["precision"])
    trainer = GRPOTrainer(cfg, log=lambda m: None)
    times, rewards = [], []
    for _ in range(steps):
        t = time.perf_counter()
        row = trainer.train_step()
        times.append(time.perf_counter() - t)
        rewards.append(row["reward"])
    return times, rewards


def _dataset(n: int, tokenizer, template):
    """Training problems rendered in `template` (TRL gets the final prompt text, so both trainers
    see identical inputs) with the columns the reward functions read (TRL passes them as kwargs)."""
    from datasets import Dataset

    from reasonlab.tasks import get_task

    task = get_task("arithmetic")
    return Dataset.from_list([{"question": p.question, "answer": p.answer, "task": "arithmetic",
                               "answer_format": template.answer_format, "prompt": template.render(tokenizer, task, p)}
                              for p in task.problems("train", n, seed=0)])


def run_trl(model: str, steps: int, out: str, lr: float = LR) -> tuple[list[float], list[float]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from reasonlab.templates import resolve

    tokenizer = AutoTokenizer.from_pretrained(model)
    template = resolve(BATCH["template"], model, tokenizer)
    prompts, gens = BATCH["prompts"], BATCH["generations"]
    ds = _dataset(prompts * steps, tokenizer, template)
    times: list[float] = []

    def acc(completions, **kw):  # TRL's completions start after the prompt: add the template's prefill
        return accuracy([template.response(c) for c in completions], **kw)

    def fmt(completions, **kw):
        return format_reward([template.response(c) for c in completions], **kw)

    args = GRPOConfig(output_dir=out, per_device_train_batch_size=prompts * gens, num_generations=gens,
                      max_completion_length=BATCH["new_tokens"], learning_rate=lr, max_steps=steps, logging_steps=1,
                      save_strategy="no", report_to="none", use_cpu=True, bf16=BATCH["precision"] == "bf16", seed=0,
                      shuffle_dataset=False)
    policy = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    funcs = [acc, fmt] if FORMAT_WEIGHT else [acc]
    peft = None
    if BATCH["lora"]:
        from peft import LoraConfig

        peft = LoraConfig(r=BATCH["lora"], lora_alpha=2 * BATCH["lora"],
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=policy, reward_funcs=funcs, args=args, train_dataset=ds,
                          processing_class=tokenizer, callbacks=[trl_step_timer(times)], peft_config=peft)
    trainer.train()
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    return times, rewards


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="runs/bench/pretrain/final")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=LR)
    ap.add_argument("--template", default="", help="prompt template ('' = the model's own)")
    ap.add_argument("--lora", type=int, default=0, help="LoRA rank (0: full fine-tuning)")
    ap.add_argument("--prompts", type=int, default=PROMPTS)
    ap.add_argument("--generations", type=int, default=G)
    ap.add_argument("--new-tokens", type=int, default=NEW_TOKENS)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                    help="both trainers: fp32, bf16 (TRL: bf16=True, autocast; ours: autocast and a bf16 "
                         "decode copy), or auto (bf16 where a matmul measures it faster on this CPU)")
    args = ap.parse_args()
    from reasonlab.sizing import resolve_precision

    args.precision = resolve_precision(args.precision, "cpu")
    BATCH.update(prompts=args.prompts, generations=args.generations, new_tokens=args.new_tokens, lora=args.lora,
                 template=args.template, precision=args.precision)
    warn_if_busy()
    model = _ensure_model(args.model)
    tail = max(1, args.steps // 4)
    with tempfile.TemporaryDirectory() as tmp:
        results = {"reasonlab": run_ours(model, args.steps, f"{tmp}/ours", args.lr),
                   "trl": run_trl(model, args.steps, f"{tmp}/trl", args.lr)}
    cps = {}
    print(f"{args.prompts} prompts x {args.generations} generations, <= {args.new_tokens} new tokens, {args.steps} "
          f"steps (first untimed), {'LoRA r=' + str(args.lora) if args.lora else 'full'}, {args.precision}; mean reward over the last "
          f"{tail} steps")
    for name, (times, rewards) in results.items():
        sec = statistics.median(times[1:])
        cps[name] = args.prompts * args.generations / sec
        print(f"{name} rewards: {[round(r, 2) for r in rewards]}")
        print(f"{name:10s} {sec:6.2f} s/step  {cps[name]:7.1f} completions/s  "
              f"reward {sum(rewards[-tail:]) / tail:.3f} (first {rewards[0]:.3f})")
    print(f"speedup: {cps['reasonlab'] / cps['trl']:.2f}")


if __name__ == "__main__":
    main()

"""Generation speed: reasonlab's rollout engine vs HF `generate`, as MFU of the measured peak.

MFU counts the model FLOPs of every processed token, 2·N·(prompt tokens + generated tokens),
over the fp32 matmul peak measured in the same run (padding is not counted).

A ~10M-parameter Qwen2 model (the `small` preset, random weights, fp32) generates 64 new tokens
per row at batch 1, 16 and 64; both engines are forced to the full 64 tokens so the work is
equal. Also shown: 8 prompts × 8 samples (the GRPO shape), where our engine prefills each
prompt once. Last line: `mfu_batch64: 0.NN` (goal ≥ 0.40; HF generate reaches ~0.36 here).

    python bench/generate.py [--new-tokens 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from _common import matmul_peak_gflops, warn_if_busy
from reasonlab.rollout import HFEngine, SamplingParams
from reasonlab.world.corpus import build_corpus
from reasonlab.world.model import build_model
from reasonlab.world.tokenizer import build_tokenizer


def _prompts(tokenizer, batch: int) -> list[str]:
    docs = [d for d in build_corpus(400, seed=1) if d.startswith("User:")]
    return [d.split("Assistant: ")[0] + "Assistant: " for d in docs[:batch]]


def time_ours(engine, prompts, n, new_tokens, repeats) -> float:
    params = SamplingParams(max_new_tokens=new_tokens, temperature=1.0, n=n, stop=(), seed=0)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = engine.generate(prompts, params)
        best = min(best, time.perf_counter() - t)
        assert all(c.num_tokens == new_tokens for g in out for c in g)
    return best


@torch.inference_mode()
def time_hf(model, tokenizer, prompts, n, new_tokens, repeats) -> float:
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, num_return_sequences=n, pad_token_id=tokenizer.pad_token_id)
        best = min(best, time.perf_counter() - t)
        assert out.shape[1] - enc["input_ids"].shape[1] == new_tokens
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    warn_if_busy()
    tokenizer = build_tokenizer(build_corpus(3000), vocab_size=512)
    model = build_model(tokenizer, "small").eval()
    engine = HFEngine(model, tokenizer)
    engine.eos_ids = set()  # equal work: no row may stop early
    n_params = engine.n_params
    peak = matmul_peak_gflops()
    print(f"model: {n_params / 1e6:.1f}M params; fp32 matmul peak {peak:.0f} GFLOP/s; "
          f"{args.new_tokens} new tokens per row")
    print(f"{'shape':>14} {'ours tok/s':>11} {'HF tok/s':>9} {'ours MFU':>9} {'HF MFU':>7} {'ratio':>6}")
    mfu64 = 0.0
    for prompts_n, n in [(1, 1), (16, 1), (64, 1), (8, 8)]:
        prompts = _prompts(tokenizer, prompts_n)
        rows = prompts_n * n
        ours = time_ours(engine, prompts, n, args.new_tokens, args.repeats)
        hf = time_hf(model, tokenizer, prompts, n, args.new_tokens, args.repeats)
        tps_ours, tps_hf = rows * args.new_tokens / ours, rows * args.new_tokens / hf
        prompt_tokens = sum(len(tokenizer.encode(p, add_special_tokens=False)) for p in prompts)
        flops = 2 * n_params * (prompt_tokens + rows * args.new_tokens)  # each prompt processed once
        mfu_ours, mfu_hf = flops / ours / (peak * 1e9), flops / hf / (peak * 1e9)
        label = f"batch {rows}" if n == 1 else f"{prompts_n}x{n} samples"
        print(f"{label:>14} {tps_ours:>11.0f} {tps_hf:>9.0f} {mfu_ours:>9.2f} {mfu_hf:>7.2f} {hf / ours:>6.2f}")
        if (prompts_n, n) == (64, 1):
            mfu64 = mfu_ours
    print(f"mfu_batch64: {mfu64:.2f}")


if __name__ == "__main__":
    main()

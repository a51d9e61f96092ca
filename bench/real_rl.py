"""RL on real models, measured: R1-Zero from Qwen2.5-Coder-0.5B-Instruct as shipped (the format
emerging in the chat think/answer template; gains on gsm_symbolic in its boxed template), and GRPO
after SFT on SmolLM2-135M-Instruct. Every comparison is paired on the same held-out problems.

    python bench/real_rl.py [--out runs/real-rl] [--parts think,gsm,smollm2] [--n 100] [--gsm-n 200]
                            [--smollm2-sft runs/real/sft/final] [--smollm2-n 200] [--seeds 0,1]
                            [--gsm-set steps=60 prompts_per_step=16 ...]

Parts, each cached in OUT (a finished stage is reused; a killed GRPO run resumes):
  think    recipes/qwen-r1-zero.yaml: strict (tags) and lenient greedy accuracy before and after
  gsm      recipes/qwen-r1-zero-gsm.yaml: gym:gsm_symbolic in qwen-math-boxed, paired difference
  smollm2  recipes/smollm2-grpo.yaml from an SFT model (`python bench/real_model.py` makes one),
           one GRPO run per seed, each paired against the SFT model
Last line (parts not run print "-"):
`real_rl: qwen chat-think strict A% -> B% (lenient C% -> D%), qwen gsm_symbolic E% -> F% (+G [lo, hi]),
smollm2 sft->grpo +H [lo, hi], M min`
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import warn_if_busy  # noqa: E402

from reasonlab.config import parse_overrides  # noqa: E402

QWEN = "qwen2.5-coder-0.5b-instruct"
DEFAULT_SFT = "runs/real/sft/final"


def evaluate(model: Path, out: Path, task: str, n: int, template: str, max_new_tokens: int) -> dict:
    """Greedy evaluation, reused when OUT already holds one of the same model, task, size and template
    (the evaluations before and after cost 5-10 minutes each on a real model)."""
    import json

    from reasonlab.evaluation import EvalConfig
    from reasonlab.evaluation import evaluate as run

    res = json.loads(out.read_text()) if out.exists() else {}
    if (res.get("model"), res.get("task"), res.get("n_problems"), res.get("template")) != (str(model), task, n, template):
        cfg = EvalConfig(model=str(model), task=task, n=n, samples=0, template=template,
                         max_new_tokens=max_new_tokens, out=str(out), precision="auto")
        res = run(cfg, log=lambda m: None)
    print(f"eval {model} {task} [{template}]: strict {100 * res['greedy_accuracy']:.1f}%, lenient "
          f"{100 * res['greedy_accuracy_lenient']:.1f}%, format {100 * res['format_rate']:.1f}%", flush=True)
    return res


def paired(before: Path, after: Path, metric: str = "greedy_accuracy") -> tuple[float, float, float]:
    """Paired difference (points) of per-problem greedy outcomes between two evaluations."""
    from reasonlab.evaluation.metrics import paired_difference
    from reasonlab.pipeline.claims import model_outcomes

    a, b = (model_outcomes(p.with_suffix(".samples.jsonl"), metric) for p in (before, after))
    ids = sorted(set(a) & set(b))
    return tuple(100 * x for x in paired_difference([a[i] for i in ids], [b[i] for i in ids]))


def grpo(recipe: str, model: Path, out: Path, **overrides) -> Path:
    """A GRPO run from a recipe (resumed when OUT holds checkpoints), printing its curve."""
    from reasonlab.config import load_config
    from reasonlab.rl.config import GRPOConfig
    from reasonlab.rl.grpo import run_grpo
    from reasonlab.train.metrics import read_metrics
    from reasonlab.train.progress import step_line

    if not (out / "final" / "config.json").exists():
        cfg = load_config(GRPOConfig, recipe, {"model": str(model), "out": str(out),
                                                "resume": (out / "checkpoints").exists(), **overrides})
        t = time.time()
        run_grpo(cfg, log=lambda m: None)
        print(f"grpo {recipe}: {(time.time() - t) / 60:.1f} min", flush=True)
    for row in read_metrics(out):
        print(f"  step {row['step']:3d}  {step_line(row)}")
    return out / "final"


def part_think(args, qwen: Path, out: Path) -> str:
    before = out / "eval" / "shipped-think.json"
    a = evaluate(qwen, before, "arithmetic", args.n, "chat-think", 400)
    model = grpo("recipes/qwen-r1-zero.yaml", qwen, out / "qwen-think")
    b = evaluate(model, out / "eval" / "think-think.json", "arithmetic", args.n, "chat-think", 400)
    lenient = paired(before, out / "eval" / "think-think.json", "greedy_accuracy_lenient")
    print(f"chat-think lenient after - before: {lenient[0]:+.1f} [{lenient[1]:+.1f}, {lenient[2]:+.1f}]")
    return (f"qwen chat-think strict {100 * a['greedy_accuracy']:.0f}% -> {100 * b['greedy_accuracy']:.0f}% "
            f"(lenient {100 * a['greedy_accuracy_lenient']:.0f}% -> {100 * b['greedy_accuracy_lenient']:.0f}%)")


def part_gsm(args, qwen: Path, out: Path) -> str:
    before, after = out / "eval" / "shipped-gsm.json", out / "eval" / "gsm-gsm.json"
    a = evaluate(qwen, before, "gym:gsm_symbolic", args.gsm_n, "qwen-math-boxed", 512)
    model = grpo("recipes/qwen-r1-zero-gsm.yaml", qwen, out / "qwen-gsm", **parse_overrides(args.gsm_set))
    b = evaluate(model, after, "gym:gsm_symbolic", args.gsm_n, "qwen-math-boxed", 512)
    d = paired(before, after)
    return (f"qwen gsm_symbolic {100 * a['greedy_accuracy']:.0f}% -> {100 * b['greedy_accuracy']:.0f}% "
            f"({d[0]:+.0f} [{d[1]:+.0f}, {d[2]:+.0f}])")


def part_smollm2(args, out: Path) -> str:
    sft = Path(args.smollm2_sft)
    # runs from another SFT checkpoint (e.g. --smollm2-sft runs/real/sft/checkpoints/step-0000025,
    # one epoch) are kept apart: a cached GRPO run is only reused for the checkpoint it started from
    tag = "" if sft == Path(DEFAULT_SFT) else f"-{sft.name}"
    before = out / "eval" / f"smollm2-sft{tag}.json"
    evaluate(sft, before, "arithmetic", args.smollm2_n, "chat-think", 256)
    diffs = []
    for seed in args.seeds:
        model = grpo("recipes/smollm2-grpo.yaml", sft, out / f"smollm2-grpo{tag}-{seed}", seed=seed)
        after = out / "eval" / f"smollm2-grpo{tag}-{seed}.json"
        evaluate(model, after, "arithmetic", args.smollm2_n, "chat-think", 256)
        diffs.append(paired(before, after))
        print(f"smollm2 seed {seed}: grpo - sft {diffs[-1][0]:+.1f} [{diffs[-1][1]:+.1f}, {diffs[-1][2]:+.1f}]")
    return "smollm2 sft->grpo " + " / ".join(f"{d[0]:+.0f} [{d[1]:+.0f}, {d[2]:+.0f}]" for d in diffs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/real-rl")
    ap.add_argument("--parts", default="think,gsm,smollm2")
    ap.add_argument("--n", type=int, default=100, help="held-out arithmetic problems (chat-think part)")
    ap.add_argument("--gsm-n", type=int, default=200)
    ap.add_argument("--smollm2-sft", default=DEFAULT_SFT, help="SmolLM2 after SFT (bench/real_model.py; its "
                    "checkpoints/step-0000025 is the SFT after one epoch)")
    ap.add_argument("--smollm2-n", type=int, default=200)
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1])
    ap.add_argument("--gsm-set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="overrides of recipes/qwen-r1-zero-gsm.yaml for the gsm part (a GPU affords more steps)")
    args = ap.parse_args()
    warn_if_busy()
    from reasonlab.convert import convert_gguf
    from reasonlab.packaged import packaged_gguf

    out, t0 = Path(args.out), time.time()
    qwen = out / "qwen"
    if not (qwen / "config.json").exists():
        convert_gguf(packaged_gguf(QWEN), qwen, tie="output")
    parts = set(args.parts.split(","))
    line = [part_think(args, qwen, out) if "think" in parts else "qwen chat-think -",
            part_gsm(args, qwen, out) if "gsm" in parts else "qwen gsm_symbolic -",
            part_smollm2(args, out) if "smollm2" in parts else "smollm2 sft->grpo -"]
    print(f"real_rl: {', '.join(line)}, {(time.time() - t0) / 60:.0f} min")


if __name__ == "__main__":
    main()

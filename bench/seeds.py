"""How stable the tiny world's base model is: pretrain N seeds (and, optionally, other
pretraining lengths) with the default recipe and evaluate each on the same held-out problems.

Reports, per model: greedy accuracy, greedy accuracy with the turn prefilled by `<think>` (the
base's reasoning when it is asked to reason), where that reasoning's failures first go wrong
(`tasks.arithmetic.first_error`: reading the wrong number or sentence vs computing wrongly, as a
share of all problems), and the share of greedy answers that think at all.
A base whose figure jumps between seeds or lengths cannot carry a claim of a few points.

    python bench/seeds.py [--seeds 5] [--lengths 0.8 1.0 1.2] [--n 400] [--out runs/seeds]
        [--task arithmetic] [key=value ...]   # PretrainConfig overrides, e.g. preset=mini

Each pretraining takes ~3 min on 2 cores (cached: a rerun only evaluates). Last line:
`base_greedy: mean M sd S over N seeds` (points, at the default length).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

from _common import warn_if_busy

from reasonlab.sizing import cpu_type


def evaluate_base(model: str, task_name: str, n: int, samples: int = 0) -> dict:
    """Greedy, think-prefilled greedy, the share that thinks unprompted, the first-token margin
    P(<answer>) − P(<think>) (min and mean over problems: how far greedy is from flipping style),
    and with `samples`, pass@samples at temperature 1."""
    import torch

    from reasonlab.rewards import accuracy
    from reasonlab.rollout import HFEngine, SamplingParams
    from reasonlab.tasks import get_task
    from reasonlab.tasks.arithmetic import first_error

    task, engine = get_task(task_name), HFEngine.from_pretrained(model)
    problems = task.problems("eval", n)
    prompts = [engine.format_prompt(task.prompt(p)) for p in problems]
    gold = dict(answer=[p.answer for p in problems], task=task_name, question=[p.question for p in problems])
    out = {}
    for name, prefill in (("greedy", ""), ("think", "<think>\n")):
        groups = engine.generate([p + prefill for p in prompts], SamplingParams(128, temperature=0.0))
        texts = [prefill + g[0].text for g in groups]
        ok = accuracy(texts, **gold)
        out[name] = 100 * sum(ok) / len(ok)
        if prefill and task_name == "arithmetic":  # where the reasoning fails: reading or computing
            kinds = Counter(first_error(t.removeprefix(prefill).split("</think>")[0], p.meta["steps"])
                            for t, p, hit in zip(texts, problems, ok) if not hit)
            out["errors"] = ", ".join(f"{k} {100 * v / len(texts):.0f}%" for k, v in kinds.most_common())
        if not prefill:
            out["thinks"] = 100 * sum(t.startswith("<think>") for t in texts) / len(texts)
    tok = engine.tokenizer
    ids = [tok.convert_tokens_to_ids(t) for t in ("<answer>", "<think>")]
    margins = []
    with torch.no_grad():
        for p in prompts:
            probs = engine.model(**tok(p, return_tensors="pt")).logits[0, -1].softmax(-1)
            margins.append(float(probs[ids[0]] - probs[ids[1]]))
    out["margin_min"], out["margin_mean"] = min(margins), sum(margins) / len(margins)
    if samples:
        groups = engine.generate(prompts, SamplingParams(128, temperature=1.0, n=samples, seed=0))
        hit = 0
        for i, g in enumerate(groups):
            ok = accuracy([c.text for c in g], answer=[gold["answer"][i]] * len(g), task=task_name,
                          question=[gold["question"][i]] * len(g))
            hit += max(ok) == 1.0
        out["pass"] = 100 * hit / len(groups)
    return out


def main() -> None:
    from reasonlab.config import from_dict, parse_overrides
    from reasonlab.world.pretrain import PretrainConfig, pretrain

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--lengths", type=float, nargs="*", default=[1.0], help="pretraining lengths, x the default")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--task", default="arithmetic")
    ap.add_argument("--out", default="runs/seeds")
    ap.add_argument("--countdown", type=int, default=100, help="also countdown on this many problems (0: skip)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    warn_if_busy()
    print(f"cpu: {cpu_type()}")
    base = from_dict(PretrainConfig, parse_overrides(args.overrides), "overrides")
    by_length: dict[float, list[float]] = {}
    thinks: dict[float, list[float]] = {}
    for scale in args.lengths:
        for seed in range(args.seeds):
            steps = round(base.steps * scale)
            out = Path(args.out) / f"{base.preset}-{steps}-seed{seed}"
            cfg = from_dict(PretrainConfig, {**parse_overrides(args.overrides), "seed": seed, "steps": steps,
                                             "out": str(out)}, "overrides")
            t = time.perf_counter()
            model = pretrain(cfg, log=lambda m: None)
            took = time.perf_counter() - t
            r = evaluate_base(str(model), args.task, args.n)
            by_length.setdefault(scale, []).append(r["greedy"])
            thinks.setdefault(scale, []).append(r["think"])
            print(f"steps {steps} seed {seed}: greedy {r['greedy']:.1f}%  think-prefilled {r['think']:.1f}%  "
                  f"thinks {r['thinks']:.0f}%  P(<answer>)-P(<think>) min {r['margin_min']:+.2f} "
                  f"mean {r['margin_mean']:+.2f}  (pretrain {took:.0f} s)", flush=True)
            if r.get("errors"):
                print(f"  think-prefilled failures: {r['errors']}", flush=True)
            if args.countdown:
                c = evaluate_base(str(model), "countdown", args.countdown, samples=8)
                print(f"  countdown: greedy {c['greedy']:.1f}%  think-prefilled {c['think']:.1f}%  "
                      f"pass@8 (T=1) {c['pass']:.1f}%", flush=True)
    for scale, accs in by_length.items():
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        tsd = statistics.stdev(thinks[scale]) if len(accs) > 1 else 0.0
        print(f"length x{scale}: greedy mean {statistics.mean(accs):.1f} sd {sd:.1f}; think-prefilled mean "
              f"{statistics.mean(thinks[scale]):.1f} sd {tsd:.1f} over {len(accs)} seeds")
    accs = by_length.get(1.0) or next(iter(by_length.values()))
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    print(f"base_greedy: mean {statistics.mean(accs):.1f} sd {sd:.1f} over {len(accs)} seeds")


if __name__ == "__main__":
    main()

"""What a base model leaves for sampling, voting and RL to gain: the probe behind the tiny world's
unmet scaling and RL targets.

For each model: greedy accuracy, one-sample accuracy at the scaling temperature, pass@K, a vote
over all K samples, and where the answers sit (`vote_headroom`): on how many greedy-wrong
problems the right answer is the modal sample (the only problems voting can fix) and on how many
greedy's wrong answer is itself the modal one (systematic errors, which no vote fixes).
`--pretrain-steps` first pretrains default-mix bases of those lengths (~17 s per 60 steps here),
to see how the picture moves with the base's training budget.

    python bench/world_probe.py [--models DIR ...] [--pretrain-steps 760 1520] [--out runs/probe]
        [--task arithmetic] [--n 200] [--samples 32] [--temperature 0.5]

Last line: `vote_gain_bound: +N.N` (points, the first model's).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import warn_if_busy

RIGHT = "<right>"


def _bases(args) -> list[str]:
    from reasonlab.world.pretrain import PretrainConfig, pretrain

    models = list(args.models)
    for steps in args.pretrain_steps:
        out = Path(args.out) / f"steps-{steps}"
        t = time.perf_counter()
        pretrain(PretrainConfig(out=str(out), steps=steps), log=lambda m: None)
        print(f"pretrained {out} ({steps} steps) in {time.perf_counter() - t:.0f} s")
        models.append(str(out / "final"))
    return models


def _probe(model: str, args) -> dict:
    from reasonlab.evaluation.metrics import majority_vote, pass_at_k, vote_headroom
    from reasonlab.rewards import accuracy
    from reasonlab.rollout import HFEngine, SamplingParams
    from reasonlab.tasks import get_task
    from reasonlab.verify import extract_answer

    task = get_task(args.task)
    engine = HFEngine.from_pretrained(model)
    problems = task.problems("eval", args.n)
    prompts = [engine.format_prompt(task.prompt(p)) for p in problems]

    def keys(p, completions):  # scored as `reasonlab scale` does; right answers share one key
        texts = [c.text for c in completions]
        ok = accuracy(texts, answer=[p.answer] * len(texts), task=args.task, question=[p.question] * len(texts))
        preds = [extract_answer(t) for t in texts]
        return [RIGHT if o == 1.0 else None if a is None else task.canonical(a) for o, a in zip(ok, preds)]

    greedy = [keys(p, g)[0] for p, g in
              zip(problems, engine.generate(prompts, SamplingParams(args.max_new_tokens, temperature=0.0)))]
    drawn = engine.generate(prompts, SamplingParams(args.max_new_tokens, temperature=args.temperature,
                                                    n=args.samples, seed=args.seed))
    samples = [keys(p, g) for p, g in zip(problems, drawn)]
    n, right = len(problems), [s.count(RIGHT) for s in samples]
    voted = [s[i] if (i := majority_vote(s)) is not None else None for s in samples]
    return {"greedy": greedy.count(RIGHT) / n, "sample": sum(right) / (n * args.samples),
            "pass": sum(pass_at_k(args.samples, c, args.samples) for c in right) / n,
            "vote": voted.count(RIGHT) / n, **vote_headroom([RIGHT] * n, greedy, samples)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="*", default=[], help="model directories to probe")
    ap.add_argument("--pretrain-steps", nargs="*", type=int, default=[], help="pretrain bases of these lengths first")
    ap.add_argument("--out", default="runs/probe", help="where --pretrain-steps bases go")
    ap.add_argument("--task", default="arithmetic")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    if not args.models and not args.pretrain_steps:
        ap.error("give --models DIR ... and/or --pretrain-steps N ...")
    warn_if_busy()
    rows = [(m, _probe(m, args)) for m in _bases(args)]
    k = args.samples
    print(f"\n{args.task}, {args.n} held-out problems, {k} samples at T={args.temperature}")
    print(f"{'model':40s} greedy sample pass@{k} vote@{k}  greedy-wrong fixable systematic broken  bound")
    for model, r in rows:
        print(f"{model[-40:]:40s} {r['greedy']:6.1%} {r['sample']:6.1%} {r['pass']:7.1%} {r['vote']:7.1%}  "
              f"{r['greedy_wrong']:12d} {r['fixes']:8d} {r['systematic']:10d} {r['breaks']:6d} "
              f"{100 * r['gain_bound']:+6.1f}")
    print(f"vote_gain_bound: {100 * rows[0][1]['gain_bound']:+.1f}")


if __name__ == "__main__":
    main()

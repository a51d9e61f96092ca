"""What the multi-stage recipes show in the tiny world, and whether it holds on other seeds.

Runs one pipeline recipe (cached: a rerun only evaluates) and prints its report. With `--seeds N`
it runs N replicates (`seed=0..N-1`: every stage's seed offset, so a different base model, data
and sampling; the same held-out problems) in `OUT/seed-K`, then prints each claim's paired
difference per seed and combined over seeds (`claims.across_seeds`: a t interval that treats the
seeds as random draws, and the seeds' problems pooled), and the mean ± sd over seeds of every
model's greedy accuracy.

    python bench/pipeline_results.py [--recipe recipes/pipeline.yaml] [--seeds 3] [--out runs/replicates]
        [--quick] [key=value | stage.NAME.key=value ...]
    python bench/pipeline_results.py --runs runs/par0 runs/replicates/seed-1 runs/replicates/seed-2

`--runs` reads finished runs' `results.json` (e.g. `reasonlab run seed=1 --out DIR`, one per seed,
in order) and prints the same comparison without running anything.

A replicate of the default recipe takes 17 min on 2 AVX-512 cores with its two workers (21 min one stage
at a time) and 56 min on 2 AVX2 cores (73 min one stage at a time). Last line: `claims_held: H/N` (claims
whose paired 95% interval lies above zero on every seed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _common import warn_if_busy

from reasonlab.sizing import cpu_type


def _interval(c: dict) -> str:
    if "diff" not in c:
        return c["verdict"]
    lo, hi = c["ci95"]
    return f"{100 * c['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]{' *' if c['holds'] else ''}"


def _span(ci: list[float]) -> str:
    return f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _mean_sd(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.1f}"


def main() -> None:
    from reasonlab.pipeline.main import run_pipeline
    from reasonlab.pipeline.recipe import load_pipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="recipes/pipeline.yaml")
    ap.add_argument("--seeds", type=int, default=0, help="replicates (0: one run, where the recipe says)")
    ap.add_argument("--out", default="runs/replicates")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", nargs="+", default=[], help="finished run directories to compare (runs nothing)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if args.runs:
        runs = [_finished(d) for d in args.runs]
        print("cpu: " + " | ".join(f"{d}: {r.get('cpu', '?')}" for d, r in zip(args.runs, runs)))
        return summarize(runs)
    warn_if_busy()
    print(f"cpu: {cpu_type()}")
    runs = []
    for seed in range(max(1, args.seeds)):
        extra = [f"seed={seed}", f"out={args.out}/seed-{seed}"] if args.seeds else []
        cfg = load_pipeline(args.recipe, quick=args.quick, overrides=list(args.overrides) + extra)
        t = time.perf_counter()
        run_pipeline(cfg, log=lambda m: print(m, flush=True))
        runs.append(_finished(cfg.out))
        print(f"{cfg.out}: {time.perf_counter() - t:.0f} s (cached stages are not rerun)", flush=True)
        if not args.seeds:
            print((Path(cfg.out) / "report.md").read_text())
    summarize(runs)


def _finished(run_dir: str) -> dict:
    path = Path(run_dir) / "results.json"
    if not path.exists():
        raise SystemExit(f"--runs: {path} does not exist (run `reasonlab run --out {run_dir}` first)")
    return json.loads(path.read_text())


def summarize(runs: list[dict]) -> None:
    """Each claim's paired difference per run and across them, and every model's greedy accuracy
    as mean ± sd over the runs (the same recipe, one run per seed)."""
    from reasonlab.pipeline.claims import across_seeds

    names = [[c["claim"] for c in r["claims"]] for r in runs]
    if any(n != names[0] for n in names):
        raise SystemExit("--runs: the runs check different claims (not the same recipe)")
    print("\nclaims, A − B in points [95% paired interval] per seed (* holds):")
    held = 0
    for i, c in enumerate(runs[0]["claims"]):
        per = [r["claims"][i] for r in runs]
        ok = sum(bool(x.get("holds")) for x in per)
        held += ok == len(per)
        print(f"- {c['claim']}: " + " | ".join(_interval(x) for x in per) + f"  -> holds on {ok}/{len(per)}")
        if (both := across_seeds(per)) is not None:
            print(f"    across seeds: mean {100 * both['mean']:+.1f}; seeds as random draws "
                  f"{_span(both['t95'])}{' *' if both['holds_t'] else ''}; these seeds pooled "
                  f"{_span(both['pooled95'])}{' *' if both['holds_pooled'] else ''}")
    print("\ngreedy accuracy, mean ± sd over seeds (points):")
    for j, row in enumerate(runs[0]["rows"]):
        print(f"- {row['name']}: {_mean_sd([100 * r['rows'][j]['greedy_accuracy'] for r in runs])}")
    print(f"claims_held: {held}/{len(runs[0]['claims'])}")


if __name__ == "__main__":
    main()

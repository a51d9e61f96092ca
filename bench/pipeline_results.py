"""What the multi-stage recipes show in the tiny world: R1 vs R1-Zero, a distilled student vs
the same student by pure RL, Sky-T1-style SFT, journey vs shortcut.

Runs one pipeline recipe (cached: a rerun only evaluates), prints its results table and the
claims its recipe states, each judged from the numbers with 95% intervals, and the wall time.
Last line: `claims_held: H/N` (claims that held outright; "within noise" does not count).

    python bench/pipeline_results.py [--recipe recipes/r1.yaml] [key=value | stage.NAME.key=value ...]
"""

from __future__ import annotations

import argparse
import time

from _common import warn_if_busy


def main() -> None:
    from reasonlab.pipeline.report import run_pipeline
    from reasonlab.pipeline.run import load_pipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="recipes/r1.yaml")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    warn_if_busy()
    cfg = load_pipeline(args.recipe, quick=args.quick, overrides=args.overrides)
    t = time.perf_counter()
    result = run_pipeline(cfg, log=lambda m: print(m, flush=True))
    print(open(result["report"]).read())
    print(f"{args.recipe}: {time.perf_counter() - t:.0f} s (cached stages are not rerun)")
    held = sum(c["verdict"] == "held" for c in result["claims"])
    print(f"claims_held: {held}/{len(result['claims'])}")


if __name__ == "__main__":
    main()

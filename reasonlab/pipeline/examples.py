"""Example completions for the report: what the models actually write.

- One held-out problem answered (greedily) by several models: the problem where the shown
  models disagree most informatively (the first model wrong and the most of the others right),
  so a reader sees what training changed.
- One completion in which a model notices an error and fixes it (a "Wait", a rejected trial
  marked "no" before the one that works), chosen among right answers, greedy first.

Completions come from the evaluation sample files, so nothing is generated here.
"""

from __future__ import annotations

import re
from pathlib import Path

from reasonlab.pipeline.claims import rows_by_problem

RETRY = re.compile(r"\bWait\b|\b[Ll]et me (?:re)?check\b|\bmistake\b| no\n")


def _rows(path: Path, kinds=("greedy",)) -> dict[str, list[dict]]:
    return rows_by_problem(path, kinds) if path.exists() else {}


def same_problem(rows: list, shown: list[str], problems: dict) -> dict | None:
    """One problem answered by each of the `shown` model stages (greedy); `rows` are the results'
    model rows (each with `stage`, `name` and `eval_file`)."""
    by_stage = {r.stage: r for r in rows if Path(r.eval_file).exists()}
    models = [by_stage[s] for s in shown if s in by_stage]
    if len(models) < 2:
        return None
    answers = [{p: g[0] for p, g in _rows(Path(m.eval_file)).items()} for m in models]
    common = [p for p in answers[0] if all(p in a for a in answers) and p in problems]
    if not common:
        return None

    def score(p):  # first model wrong, most others right, then the problem's order
        return (answers[0][p]["correct"] != 1.0, sum(a[p]["correct"] == 1.0 for a in answers[1:]))

    best = max(common, key=score)
    return {"problem": best, "question": problems[best].question, "gold": problems[best].answer,
            "models": [{"name": m.name, "text": a[best]["text"], "correct": a[best]["correct"] == 1.0}
                       for m, a in zip(models, answers)]}


def self_correction(rows: list, problems: dict) -> dict | None:
    """A right answer whose reasoning notices and fixes an error; greedy answers first."""
    for kinds in (("greedy",), ("sample",)):
        for r in rows:
            for pid, found in _rows(Path(r.eval_file), kinds).items():
                for c in found:
                    if c["correct"] == 1.0 and RETRY.search(c["text"]) and pid in problems:
                        return {"problem": pid, "question": problems[pid].question, "gold": problems[pid].answer,
                                "model": r.name, "kind": kinds[0], "text": c["text"]}
    return None

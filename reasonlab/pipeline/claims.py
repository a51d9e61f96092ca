"""Claims checked by paired statistics.

Every model of a pipeline is evaluated on the same held-out problems, and every inference-time
scaling curve point is read on the same problems too, so a comparison of A with B is a paired
one: per problem, A's correctness minus B's, averaged, with a 95% paired-bootstrap interval. A
claim "A beats B" *holds* when that interval lies above zero; it is *reversed* when the interval
lies below zero, and *not shown* otherwise. Two separate intervals that overlap say nothing:
paired differences are several-fold tighter because a problem's own difficulty cancels.

A side of a comparison names a model stage (`r1_zero`: its greedy answers, or the `metric`
named) or a point of a scaling stage's curve (`scaling/self-consistency@16`: that method's
expected correctness per problem at that budget).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reasonlab.errors import ReasonlabError
from reasonlab.evaluation.metrics import majority_vote, paired_bootstrap
from reasonlab.io import read_jsonl

_POINT = re.compile(r"^(?P<stage>[A-Za-z_][\w-]*)/(?P<curve>[^@]+)@(?P<budget>\d+)$")


def split_ref(ref: str) -> tuple[str, str | None, int | None]:
    """`stage` or `stage/curve@budget` -> (stage, curve, budget).

    >>> split_ref("r1_zero"), split_ref("scaling/self-consistency@16")
    (('r1_zero', None, None), ('scaling', 'self-consistency', 16))
    """
    m = _POINT.match(ref)
    return (m["stage"], m["curve"], int(m["budget"])) if m else (ref, None, None)


def rows_by_problem(samples_file: Path, kinds: tuple[str, ...] = ("greedy", "sample")) -> dict[str, list[dict]]:
    """An evaluation's sample rows of the given kinds, grouped by problem (file order)."""
    out: dict[str, list[dict]] = {}
    for row in read_jsonl(samples_file):
        if row.get("kind") in kinds:
            out.setdefault(row["problem"], []).append(row)
    return out


def model_outcomes(samples_file: Path, metric: str) -> dict[str, float]:
    """Per-problem outcome of one model's evaluation: greedy right (greedy_accuracy), the
    majority vote of its samples right (maj_accuracy), or any sample right (pass_at_k); each with
    `_lenient` appended reads the lenient score (the answer anywhere) instead of the strict one."""
    lenient = metric.endswith("_lenient")
    ok, key, base = ("correct_lenient", "key_lenient", metric[: -len("_lenient")]) if lenient else ("correct", "key", metric)
    right = lambda r: _field(r, ok, samples_file) == 1.0  # noqa: E731
    if base == "greedy_accuracy":
        return {p: float(right(rows[0])) for p, rows in rows_by_problem(samples_file, ("greedy",)).items()}
    sampled = rows_by_problem(samples_file, ("sample",))
    if base == "pass_at_k":
        return {p: float(any(right(r) for r in rows)) for p, rows in sampled.items()}
    if base == "maj_accuracy":
        out = {}
        for p, rows in sampled.items():
            win = majority_vote([_field(r, key, samples_file) for r in rows])
            out[p] = float(win is not None and right(rows[win]))
        return out
    raise ReasonlabError(f"compare.metric: {metric!r} has no per-problem outcome "
                         "(greedy_accuracy, maj_accuracy or pass_at_k, each optionally + _lenient)")


def _field(row: dict, name: str, samples_file: Path):
    if name not in row:
        raise ReasonlabError(f"{samples_file}: its rows have no {name!r} (written before lenient scoring; "
                             "delete the file to evaluate again)")
    return row[name]


def point_outcomes(scale_file: Path, curve: str, budget: int) -> tuple[dict[str, float], dict]:
    """Per-problem expected correctness of one scaling curve point, and the point."""
    data = json.loads(Path(scale_file).read_text())
    points = [p for p in data["methods"].get(curve, []) if p["budget"] == budget]
    if not points or "per_problem" not in points[0]:
        have = ", ".join(f"{c}@{p['budget']}" for c, pts in data["methods"].items() for p in pts)
        raise ReasonlabError(f"compare: {scale_file} has no per-problem point {curve}@{budget} (has: {have})")
    ids = data.get("problem_ids") or [str(i) for i in range(len(points[0]["per_problem"]))]
    return dict(zip(ids, points[0]["per_problem"])), points[0]


def judge(diff: float, lo: float, hi: float) -> tuple[bool, str]:
    """(holds, verdict) of a claim that A beats B from the paired difference A − B.

    >>> judge(0.1, 0.02, 0.18), judge(-0.1, -0.18, -0.02)[1], judge(0.02, -0.03, 0.07)[1]
    ((True, 'holds'), 'reversed', 'not shown')
    """
    if lo > 0:
        return True, "holds"
    if hi < 0:
        return False, "reversed"
    return False, "not shown"


def pts(x: float) -> str:
    """A difference in points with its sign: `+11.5`."""
    return f"{100 * x:+.1f}"


@dataclass
class Claim:
    """A recipe's claim "A beats B", judged: the paired difference A − B on the problems both
    were evaluated on, its 95% interval and verdict (`judge`), or only a verdict saying why there
    is no difference (`not evaluated (...)`)."""

    claim: str
    a: str
    b: str
    metric: str
    verdict: str
    n: int | None = None
    diff: float | None = None
    ci95: list[float] | None = None
    holds: bool | None = None
    a_value: float | None = None
    b_value: float | None = None
    costs: dict[str, float] = field(default_factory=dict)  #: a_train_flops, b_tokens_per_problem, ...

    @property
    def measured(self) -> bool:
        return self.diff is not None

    def cost(self, side: str) -> str:
        """What one side (`a` or `b`) cost, as the report's claims table shows it: a model's
        FLOPs with the part spent sampling its traces, a scaling point's tokens per problem.

        >>> c = Claim("x", "s", "r", "greedy_accuracy", "holds", costs={"a_train_flops": 5e13,
        ...     "a_sampling_flops": 4.4e13, "b_train_flops": 1.06e14, "b_sampling_flops": 0.0})
        >>> c.cost("a"), c.cost("b")
        ('9.4e+13 FLOPs (4.4e+13 sampling traces)', '1.1e+14 FLOPs')
        >>> Claim("x", "s/sc@8", "s", "greedy_accuracy", "holds", costs={"a_tokens_per_problem": 1157.4}).cost("a")
        '1157 tokens/problem'
        """
        c = self.costs
        if f"{side}_tokens_per_problem" in c:
            return f"{c[f'{side}_tokens_per_problem']:.0f} tokens/problem"
        if f"{side}_train_flops" not in c:
            return "–"
        sampling = c.get(f"{side}_sampling_flops", 0.0)
        flops = c[f"{side}_train_flops"] + sampling
        total = f"{flops:.1e} FLOPs" if flops else "0 FLOPs"
        return total + (f" ({sampling:.1e} sampling traces)" if sampling else "")

    def to_json(self) -> dict:
        """The record in results.json: the fields that have a value, costs inline."""
        d = {k: v for k, v in asdict(self).items() if v is not None and k != "costs"}
        return {**d, **self.costs}

    @classmethod
    def from_json(cls, d: dict) -> Claim:
        names = {f for f in cls.__dataclass_fields__ if f != "costs"}
        return cls(**{k: v for k, v in d.items() if k in names},
                   costs={k: v for k, v in d.items() if k not in names})


def describe(c: Claim) -> str:
    """One line: `claim: holds, +11.5 points [+6.0, +17.0] (a 34.5% vs b 23.0%, n=400)`."""
    if not c.measured:
        return f"{c.claim}: {c.verdict}"
    lo, hi = c.ci95
    return (f"{c.claim}: {c.verdict}, {pts(c.diff)} points [{pts(lo)}, {pts(hi)}] "
            f"({c.a} {100 * c.a_value:.1f}% vs {c.b} {100 * c.b_value:.1f}%, n={c.n} paired)")


def compare(claim: str, a: str, b: str, metric: str, oa: dict[str, float], ob: dict[str, float]) -> Claim:
    """The claim judged from two per-problem outcome maps (only problems both have count)."""
    ids = sorted(set(oa) & set(ob))
    if not ids:
        return Claim(claim, a, b, metric, "not evaluated (no common problems)")
    va, vb = [oa[i] for i in ids], [ob[i] for i in ids]
    diff, lo, hi = paired_bootstrap(va, vb)
    holds, verdict = judge(diff, lo, hi)
    return Claim(claim, a, b, metric, verdict, n=len(ids), diff=diff, ci95=[lo, hi], holds=holds,
                 a_value=sum(va) / len(ids), b_value=sum(vb) / len(ids))


#: two-sided 95% quantiles of Student's t for 1..10 degrees of freedom (no scipy dependency)
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def across_seeds(per_seed: list[dict]) -> dict | None:
    """One claim's paired differences on several replicates (seeds), combined two ways:

    - `t95`, seeds as random draws of the recipe: the t interval of the per-seed differences
      (mean ± t·sd/√k). It answers "does the recipe, run again from another seed, give A > B?"
      and is wide with few seeds, since it pays for the seed-to-seed spread.
    - `pooled95`, these seeds together: the mean difference over all their problems, its
      standard error from each seed's paired interval (half-width / 1.96, normal approximation).
      It answers "on these runs, taken together, is A ahead?"

    None when fewer than two seeds have a difference.

    >>> r = across_seeds([{"diff": 0.035, "ci95": [-0.002, 0.072]}, {"diff": 0.032, "ci95": [-0.005, 0.07]},
    ...                   {"diff": 0.062, "ci95": [0.028, 0.098]}])
    >>> r["mean"], r["t95"], r["pooled95"], r["holds_t"], r["holds_pooled"]
    (0.043, [0.002, 0.084], [0.022, 0.064], True, True)
    """
    import math
    import statistics

    rows = [c for c in per_seed if "diff" in c]
    if len(rows) < 2:
        return None
    diffs = [c["diff"] for c in rows]
    k, mean = len(diffs), statistics.mean(diffs)
    half_t = (_T95[k - 2] if k - 1 <= len(_T95) else 1.96) * statistics.stdev(diffs) / math.sqrt(k)
    se = math.sqrt(sum(((c["ci95"][1] - c["ci95"][0]) / (2 * 1.96)) ** 2 for c in rows)) / k
    t95, pooled = [mean - half_t, mean + half_t], [mean - 1.96 * se, mean + 1.96 * se]
    return {"seeds": k, "mean": round(mean, 3), "t95": [round(x, 3) for x in t95],
            "pooled95": [round(x, 3) for x in pooled], "holds_t": t95[0] > 0, "holds_pooled": pooled[0] > 0}

"""What a finished (or partial) run shows: one typed row per evaluated model, the recipe's claims
judged by paired differences, the scaling findings and example completions.

Every model stage (pretrain, convert, sft, grpo with `evaluate: true`) is evaluated with the same
settings on the same held-out problems; a row holds accuracy with its 95% interval, maj@k,
pass@k, format rate, tokens, the cost along the model's lineage (its own stages after the base
model, whose pretraining is shared by all rows and shown on its own row), and dollars. The cost
is split in two: training FLOPs, and the FLOPs of sampling the traces a model was trained on (a
traces stage on its lineage); a traces stage with `teacher_cost: false` counts its sampling but
not its teacher's training, the R1 paper's comparison of distilled students. The recipe's `compare` claims are judged by
paired differences on those problems (`claims.py`): holds, reversed or not shown, each with its
interval, never as a fixed sentence.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reasonlab.cost import gpu_usd
from reasonlab.errors import ReasonlabError
from reasonlab.evaluation.metrics import paired_bootstrap, wilson_interval
from reasonlab.pipeline import claims as paired
from reasonlab.pipeline import examples
from reasonlab.pipeline.claims import Claim
from reasonlab.pipeline.plan import MODEL_KINDS, StageState, eval_path, lineage
from reasonlab.pipeline.recipe import Comparison, PipelineConfig
from reasonlab.pipeline.stages import method_of
from reasonlab.sizing import cpu_type
from reasonlab.tasks import get_task


@dataclass
class ModelRow:
    """One evaluated model: the results table's row."""

    name: str
    stage: str
    method: str  # base, sft, grpo, sft+grpo: the trainings on its lineage
    greedy_accuracy: float
    greedy_accuracy_ci95: list[float]
    greedy_accuracy_lenient: float | None
    maj_accuracy: float | None
    maj_accuracy_ci95: list[float] | None
    pass_at_k: float | None
    pass_at_k_ci95: list[float] | None
    k: int
    n_problems: int
    format_rate: float
    mean_tokens: float
    tokens_per_correct: float
    train_flops: float  # its own training stages after the base model (the base row: its pretraining)
    train_seconds: float
    inference_flops_per_problem: float
    usd: float
    eval_file: str  # the evaluation's samples file
    sampling_flops: float = 0.0  # sampling the traces it was trained on (traces stages on its lineage)


@dataclass
class Results:
    """Everything the report renders; `to_json` is results.json."""

    rows: list[ModelRow]
    claims: list[Claim]
    findings: list[str]
    eval: dict
    examples: dict
    cpu: str
    scale_files: dict[str, str] = field(default_factory=dict)  # scaling stage -> scale.json
    grpo_metrics: dict[str, str] = field(default_factory=dict)  # grpo stage -> metrics.jsonl

    def to_json(self) -> dict:
        return {"rows": [asdict(r) for r in self.rows], "claims": [c.to_json() for c in self.claims],
                "findings": self.findings, "eval": self.eval, "examples": self.examples, "cpu": self.cpu}


def gather(cfg: PipelineConfig, states: dict[str, StageState]) -> Results:
    """The results of the finished stages in `states` and their finished evaluations."""
    rows = model_rows(cfg, states)
    judged = check_claims(cfg, rows, states)
    scale_files = {n: s.result.products["scale"] for n, s in states.items() if s.spec.kind == "scale"}
    problems = {p.id: p for p in get_task(cfg.eval.task).problems("eval", cfg.eval.n, cfg.eval.seed)}
    shown = cfg.examples or _default_examples(cfg, rows)
    shows = {"same_problem": examples.same_problem(rows, shown, problems),
             "self_correction": examples.self_correction(rows, problems)}
    grpo = {n: str(Path(cfg.out) / n / "metrics.jsonl") for n, s in states.items() if s.spec.kind == "grpo"}
    return Results(rows, judged, findings(scale_files), vars(cfg.eval), shows, cpu_type(), scale_files, grpo)


def model_rows(cfg: PipelineConfig, states: dict[str, StageState]) -> list[ModelRow]:
    """One row per model stage whose evaluation has finished, in recipe order."""
    rows = []
    for name, st in states.items():
        path = eval_path(cfg, name, st.hash)
        if st.spec.kind in MODEL_KINDS and st.spec.evaluate and path.exists():
            rows.append(row_for(name, states, json.loads(path.read_text()), cfg, path.with_suffix(".samples.jsonl")))
    return rows


def row_for(name: str, states: dict[str, StageState], res: dict, cfg: PipelineConfig, samples: Path) -> ModelRow:
    """The results-table row of one model from its evaluation `res`."""
    st, line = states[name], lineage(name, states)
    bases = ("pretrain", "convert")  # a base model's own cost is its row's, not its descendants'
    own = [n for n in line if states[n].spec.kind not in bases] if st.spec.kind not in bases else [name]
    k, n = cfg.eval.samples, res["n_problems"]
    maj, pak = res.get(f"maj@{k}"), res.get(f"pass@{k}")

    def ci(x):  # binary per problem
        return None if x is None else list(wilson_interval(round(x * n), n))

    usd = sum(gpu_usd(states[s].result.seconds * states[s].result.devices, cfg.prices) + states[s].result.usd_api
              for s in own)
    return ModelRow(
        name=st.spec.label or name, stage=name,
        method=method_of([states[s].spec.kind for s in lineage(name, states, through_teachers=False)]),
        greedy_accuracy=res["greedy_accuracy"], greedy_accuracy_ci95=res["greedy_accuracy_ci95"],
        greedy_accuracy_lenient=res.get("greedy_accuracy_lenient"),
        maj_accuracy=maj, maj_accuracy_ci95=ci(maj), pass_at_k=pak, pass_at_k_ci95=ci(pak), k=k, n_problems=n,
        format_rate=res["format_rate"], mean_tokens=res["mean_completion_tokens"],
        tokens_per_correct=res["tokens_per_correct"],
        train_flops=float(sum(states[s].result.flops for s in own if states[s].spec.kind != "traces")),
        train_seconds=float(sum(states[s].result.seconds for s in own)),
        inference_flops_per_problem=res["inference_flops"] / max(1, n * (1 + k)), usd=usd, eval_file=str(samples),
        sampling_flops=float(sum(states[s].result.flops for s in own if states[s].spec.kind == "traces")))


def check_claims(cfg: PipelineConfig, rows: list[ModelRow], states: dict[str, StageState]) -> list[Claim]:
    """Each `compare` claim judged by a paired difference on the problems both sides were
    evaluated on (`reasonlab.pipeline.claims`): holds, reversed or not shown, with its interval."""
    by_stage = {r.stage: r for r in rows}
    scale_files = {n: s.result.products["scale"] for n, s in states.items() if s.spec.kind == "scale"}
    out = []
    for c in cfg.compare:
        sides = [_outcomes(ref, c.metric, by_stage, scale_files) for ref in (c.a, c.b)]
        missing = [s for s in sides if isinstance(s, str)]
        if missing:
            out.append(Claim(c.claim, c.a, c.b, c.metric, f"not evaluated ({'; '.join(missing)})"))
            continue
        judged = paired.compare(c.claim, c.a, c.b, c.metric, sides[0][0], sides[1][0])
        for key, (_, cost) in zip(("a", "b"), sides):
            judged.costs.update({f"{key}_{k}": v for k, v in cost.items()})
        if c.at_most_compute and judged.holds and _compute(judged.costs, "a", c) > _compute(judged.costs, "b", c):
            judged.holds = False
            judged.verdict = ("not shown at equal compute (a used more FLOPs, training plus trace sampling)"
                              if c.count_sampling else "not shown at equal compute (a used more training FLOPs)")
        out.append(judged)
    return out


def _compute(costs: dict[str, float], side: str, c: Comparison) -> float:
    """One side's compute as an `at_most_compute` claim weighs it: training FLOPs, plus the
    sampling of its traces unless the claim sets `count_sampling: false`."""
    return costs[f"{side}_train_flops"] + (costs[f"{side}_sampling_flops"] if c.count_sampling else 0.0)


def _outcomes(ref: str, metric: str, by_stage: dict[str, ModelRow], scale_files: dict) -> tuple[dict, dict] | str:
    """Per-problem outcomes of one side and its cost figures, or why there are none."""
    stage, curve, budget = paired.split_ref(ref)
    if curve is None:
        row = by_stage.get(stage)
        if row is None or not Path(row.eval_file).exists():
            return f"{stage} has no evaluation"
        try:
            costs = {"train_flops": row.train_flops, "sampling_flops": row.sampling_flops}
            return paired.model_outcomes(Path(row.eval_file), metric), costs
        except ReasonlabError as e:  # e.g. a lenient claim on a samples file written before lenient scoring
            return str(e)
    if stage not in scale_files or not Path(scale_files[stage]).exists():
        return f"{stage} has no scaling results"
    try:
        outcomes, point = paired.point_outcomes(Path(scale_files[stage]), curve, budget)
    except ReasonlabError as e:
        return str(e)
    return outcomes, {"tokens_per_problem": point["tokens_per_problem"]}


def _default_examples(cfg: PipelineConfig, rows: list[ModelRow]) -> list[str]:
    """The first model (the base) and the model stages the claims name, at most five."""
    named = [rows[0].stage] if rows else []
    for c in cfg.compare:
        for ref in (c.a, c.b):
            stage = paired.split_ref(ref)[0]
            if stage not in named and any(r.stage == stage for r in rows):
                named.append(stage)
    return named[:5]


def findings(scale_files: dict[str, str]) -> list[str]:
    """What each scaling stage's best method bought over greedy decoding of the same prompt, and
    at what token cost; then the prompt's own effect (the best `cot` prompt over the plain one).
    Curve points are on the same problems, so each difference is paired."""
    out = []
    for stage, f in scale_files.items():
        if not Path(f).exists():
            continue
        data = json.loads(Path(f).read_text())
        curves, model = data["methods"], Path(data["model"]).parent.name
        first = next((c for c in ("greedy", "cot:zero-shot", "self-consistency") if curves.get(c)), None)
        methods = {n: pts for n, pts in curves.items() if not n.endswith("oracle") and n != first
                   and not (first == "greedy" and n.startswith("cot:"))}
        lines = [_gain(f"{stage} (model {model}): ", curves, first, methods)]
        if first == "greedy":  # the cot curves then measure the prompt, apart from the methods
            prompts = {n: pts for n, pts in curves.items() if n.startswith("cot:") and n != "cot:zero-shot"}
            lines.append(_gain(f"{stage} (model {model}): prompt effect: ", curves, "cot:zero-shot", prompts))
        out += [line for line in lines if line]
    return out


def _gain(lead: str, curves: dict, first: str | None, others: dict) -> str | None:
    """One finding: the best of `others` against `first`'s budget-1 point."""
    base = (curves.get(first) or [None])[0]
    best = max(((name, p) for name, pts in others.items() for p in pts), key=lambda t: t[1]["accuracy"], default=None)
    if not base or not best or "per_problem" not in base:
        return None
    diff, lo, hi = paired_bootstrap(best[1]["per_problem"], base["per_problem"])
    holds, verdict = paired.judge(diff, lo, hi)
    cost = best[1]["tokens_per_problem"] / max(base["tokens_per_problem"], 1e-9)
    return (f"{lead}{best[0]} at budget {best[1]['budget']} reached "
            f"{100 * best[1]['accuracy']:.1f}% vs {100 * base['accuracy']:.1f}% for {first} at budget 1, "
            f"{paired.pts(diff)} points [{paired.pts(lo)}, {paired.pts(hi)}] paired "
            f"({verdict if holds else 'not a clear gain'}), at {cost:.1f}x the tokens per problem.")

"""Evaluating a pipeline's models and writing `results.json`, `report.md` and `report.html`.

Every model stage (pretrain, sft, grpo with `evaluate: true`) is evaluated with the same
`EvalConfig` on the same held-out problems; a row holds accuracy with its 95% interval, maj@k,
pass@k, format rate, tokens, the cost along the model's lineage, and dollars. The recipe's
`compare` claims are judged by paired differences on those problems (`claims.py`): holds,
reversed or not shown, each with its interval, never as a fixed sentence. The report shows the
claims first, then the models, the scaling and RL figures as small multiples, and what the models
actually wrote (`examples.py`).
"""

from __future__ import annotations

from pathlib import Path

from reasonlab.cost import gpu_usd
from reasonlab.errors import ReasonlabError
from reasonlab.evaluation.metrics import paired_bootstrap, wilson_interval
from reasonlab.pipeline import claims as paired
from reasonlab.pipeline.run import MODEL_KINDS, PipelineConfig, StageState, eval_path, lineage
from reasonlab.pipeline.stages import method_of


def evaluate_models(cfg: PipelineConfig, states: dict[str, StageState], log=print) -> list[dict]:
    """One results row per evaluated model, in recipe order (evaluations cached by stage hash);
    the time of each evaluation run goes to `stage_times.json` for the next plan's ETA."""
    import time

    from reasonlab.pipeline import eta

    rows = []
    for name, st in states.items():
        if st.spec.kind not in MODEL_KINDS or not st.spec.evaluate:
            continue
        e, model, path = cfg.eval, st.result.products["model"], eval_path(cfg, name, st.hash)
        fresh, started = not path.exists(), time.time()
        log(f"[eval] {name}")
        rows.append({**row_for(name, st, states, evaluate_one(cfg, name, model, path, log=lambda m: None), cfg),
                     "eval_file": str(path.with_suffix(".samples.jsonl"))})
        if fresh:
            eta.record_time(cfg.out, f"eval:{name}", "eval", time.time() - started,
                            eta.eval_units(e, eta.model_params(model, {})))
    return rows


def evaluate_one(cfg: PipelineConfig, name: str, model: str, path: Path, log=print) -> dict:
    """Evaluate (or resume, or read back) one model with the recipe's eval settings."""
    from reasonlab.evaluation.evaluate import EvalConfig, evaluate

    e = cfg.eval
    return evaluate(EvalConfig(model=model, task=e.task, n=e.n, samples=e.samples, temperature=e.temperature,
                               max_new_tokens=e.max_new_tokens, seed=e.seed, out=str(path), prices=cfg.prices,
                               template=e.template, precision=e.precision), log=log)


def row_for(name: str, st: StageState, states: dict[str, StageState], res: dict, cfg: PipelineConfig) -> dict:
    """The results-table row of one model."""
    line = lineage(name, states)
    bases = ("pretrain", "convert")  # a base model's own cost is its row's, not its descendants'
    own = [n for n in line if states[n].spec.kind not in bases] if st.spec.kind not in bases else [name]
    flops = float(sum(states[n].result.flops for n in own))
    seconds = float(sum(states[n].result.seconds for n in own))
    k, n = cfg.eval.samples, res["n_problems"]
    maj, pak = res.get(f"maj@{k}"), res.get(f"pass@{k}")
    ci = lambda x: None if x is None else list(wilson_interval(round(x * n), n))  # noqa: E731 (binary per problem)
    return {
        "name": st.spec.label or name, "stage": name,
        "method": method_of([states[n].spec.kind for n in lineage(name, states, through_teachers=False)]),
        "greedy_accuracy": res["greedy_accuracy"], "greedy_accuracy_ci95": res["greedy_accuracy_ci95"],
        "greedy_accuracy_lenient": res.get("greedy_accuracy_lenient"),
        "maj_accuracy": maj, "maj_accuracy_ci95": ci(maj), "pass_at_k": pak, "pass_at_k_ci95": ci(pak), "k": k,
        "n_problems": n,
        "format_rate": res["format_rate"], "mean_tokens": res["mean_completion_tokens"],
        "tokens_per_correct": res["tokens_per_correct"],
        "train_flops": flops, "train_seconds": seconds,
        "inference_flops_per_problem": res["inference_flops"] / max(1, res["n_problems"] * (1 + k)),
        "usd": sum(gpu_usd(states[n].result.seconds * states[n].result.devices, cfg.prices) + states[n].result.usd_api
                   for n in own),
    }


def check_claims(cfg: PipelineConfig, rows: list[dict], states: dict[str, StageState]) -> list[dict]:
    """Each `compare` claim judged by a paired difference on the problems both sides were
    evaluated on (`reasonlab.pipeline.claims`): holds, reversed or not shown, with its interval."""
    by_stage = {r["stage"]: r for r in rows}
    scale_files = _scale_files(states)
    out = []
    for c in cfg.compare:
        sides = [_outcomes(ref, c.metric, by_stage, scale_files) for ref in (c.a, c.b)]
        missing = [s for s in sides if isinstance(s, str)]
        if missing:
            out.append({"claim": c.claim, "a": c.a, "b": c.b, "metric": c.metric,
                        "verdict": f"not evaluated ({'; '.join(missing)})"})
            continue
        rec = paired.compare(c.claim, c.a, c.b, c.metric, sides[0][0], sides[1][0])
        for key, (_, cost) in zip(("a", "b"), sides):
            rec.update({f"{key}_{k}": v for k, v in cost.items()})
        if c.at_most_compute and rec.get("holds") and rec["a_train_flops"] > rec["b_train_flops"]:
            rec.update(holds=False, verdict="not shown at equal compute (a used more training FLOPs)")
        out.append(rec)
    return out


def _scale_files(states: dict[str, StageState]) -> dict[str, str]:
    """Each scaling stage's `scale.json`."""
    return {n: s.result.products["scale"] for n, s in states.items() if s.spec.kind == "scale"}


def _outcomes(ref: str, metric: str, by_stage: dict, scale_files: dict) -> tuple[dict, dict] | str:
    """Per-problem outcomes of one side and its cost figures, or why there are none."""
    stage, curve, budget = paired.split_ref(ref)
    if curve is None:
        row = by_stage.get(stage)
        if row is None or not Path(row.get("eval_file", "")).exists():
            return f"{stage} has no evaluation"
        try:
            return paired.model_outcomes(Path(row["eval_file"]), metric), {"train_flops": row["train_flops"]}
        except ReasonlabError as e:  # e.g. a lenient claim on a samples file written before lenient scoring
            return str(e)
    if stage not in scale_files or not Path(scale_files[stage]).exists():
        return f"{stage} has no scaling results"
    try:
        outcomes, point = paired.point_outcomes(Path(scale_files[stage]), curve, budget)
    except ReasonlabError as e:
        return str(e)
    return outcomes, {"tokens_per_problem": point["tokens_per_problem"]}


def write_report(cfg: PipelineConfig, rows: list[dict], claims: list[dict], states: dict[str, StageState]) -> Path:
    """`results.json` (rows, claims, findings, examples as data), the figures, `report.md` and a
    self-contained `report.html` (figures embedded)."""
    from reasonlab.io import write_json_atomic, write_text_atomic
    from reasonlab.pipeline import examples, plots, webpage
    from reasonlab.sizing import cpu_type
    from reasonlab.tasks import get_task

    out = Path(cfg.out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    scale_files = _scale_files(states)
    grpo = {n: str(out / n / "metrics.jsonl") for n, s in states.items() if s.spec.kind == "grpo"}
    figures = {k: v for k, v in {
        "claims": plots.claims_forest(claims, out / "plots" / "claims.png"),
        "scaling": plots.accuracy_vs_tokens(scale_files, out / "plots" / "accuracy_vs_tokens.png"),
        "grpo": plots.grpo_curves(grpo, out / "plots" / "grpo_curves.png"),
        "compute": plots.accuracy_vs_compute(rows, out / "plots" / "accuracy_vs_compute.png"),
    }.items() if v}
    problems = {p.id: p for p in get_task(cfg.eval.task).problems("eval", cfg.eval.n, cfg.eval.seed)}
    shown = cfg.examples or _default_examples(cfg, rows)
    same, fix = examples.same_problem(rows, shown, problems), examples.self_correction(rows, problems)
    found = findings(scale_files)
    machine = cpu_type()
    write_json_atomic(out / "results.json", {"rows": rows, "claims": claims, "findings": found, "eval": vars(cfg.eval),
                                             "examples": {"same_problem": same, "self_correction": fix},
                                             "cpu": machine})
    md = markdown(cfg, rows, claims, found, {k: str(p.relative_to(out)) for k, p in figures.items()},
                  examples.markdown(same, fix), machine)
    write_text_atomic(out / "report.md", md)
    write_text_atomic(out / "report.html", webpage.render(md, out))
    plots.tensorboard(out, rows, scale_files, md)
    return out / "report.md"


def _default_examples(cfg: PipelineConfig, rows: list[dict]) -> list[str]:
    """The first model (the base) and the model stages the claims name, at most five."""
    named = [rows[0]["stage"]] if rows else []
    for c in cfg.compare:
        for ref in (c.a, c.b):
            stage = paired.split_ref(ref)[0]
            if stage not in named and any(r["stage"] == stage for r in rows):
                named.append(stage)
    return named[:5]


def findings(scale_files: dict[str, str]) -> list[str]:
    """What each scaling stage's best method bought over its first greedy point, and at what
    token cost (curve points are on the same problems: the difference is paired)."""
    import json

    out = []
    for stage, f in scale_files.items():
        if not Path(f).exists():
            continue
        data = json.loads(Path(f).read_text())
        curves, model = data["methods"], Path(data["model"]).parent.name
        first = "cot:zero-shot" if "cot:zero-shot" in curves else "self-consistency"
        base = (curves.get(first) or [None])[0]
        best = max(((name, p) for name, pts in curves.items() for p in pts if not name.endswith("oracle")),
                   key=lambda t: t[1]["accuracy"], default=None)
        if not base or not best or "per_problem" not in base:
            continue
        diff, lo, hi = paired_bootstrap(best[1]["per_problem"], base["per_problem"])
        holds, verdict = paired.judge(diff, lo, hi)
        cost = best[1]["tokens_per_problem"] / max(base["tokens_per_problem"], 1e-9)
        out.append(f"{stage} (model {model}): {best[0]} at budget {best[1]['budget']} reached "
                   f"{100 * best[1]['accuracy']:.1f}% vs {100 * base['accuracy']:.1f}% for {first} at budget 1, "
                   f"{paired.pts(diff)} points [{paired.pts(lo)}, {paired.pts(hi)}] paired "
                   f"({verdict if holds else 'not a clear gain'}), at {cost:.1f}x the tokens per problem.")
    return out


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _with_ci(row: dict, key: str) -> str:
    ci = row.get(f"{key}_ci95")
    return _pct(row[key]) + ("" if not ci else f" [{_pct(ci[0])}, {_pct(ci[1])}]")


def _claims_table(claims: list[dict]) -> list[str]:
    lines = ["| claim | A | B | A − B, points [95% CI] | verdict |", "|---|---|---|---|---|"]
    for c in claims:
        if "diff" not in c:
            lines.append(f"| {c['claim']} | {c['a']} | {c['b']} | – | {c['verdict']} |")
            continue
        lo, hi = c["ci95"]
        lines.append(f"| {c['claim']} | {c['a']} {_pct(c['a_value'])}% | {c['b']} {_pct(c['b_value'])}% "
                     f"| {paired.pts(c['diff'])} [{paired.pts(lo)}, {paired.pts(hi)}] | **{c['verdict']}** |")
    return lines


def markdown(cfg: PipelineConfig, rows: list[dict], claims: list[dict], found: list[str] = (),
             figures: dict[str, str] | None = None, example_lines: list[str] = (), machine: str = "") -> str:
    e, figures = cfg.eval, figures or {}
    lines = [f"# Results: {Path(cfg.out).name}", "",
             f"Every model answers the same {e.n} held-out `{e.task}` problems, so every comparison below is "
             "paired: per problem, A's correctness minus B's, with a 95% paired-bootstrap interval. A claim holds "
             "when its interval lies above zero." + (f" Measured on {machine}." if machine else "")]
    if claims:
        lines += ["", "## Claims", ""] + _claims_table(claims)
        if "claims" in figures:
            lines += ["", f"![Claims: paired differences]({figures['claims']})"]
    lines += ["", "## Models", "",
              f"Greedy accuracy with its 95% Wilson interval; maj@{e.samples} and pass@{e.samples} from {e.samples} "
              f"samples at temperature {e.temperature}. Strict scores read the answer in the template's format; "
              "lenient % reads it anywhere in the completion (the last box, an \"answer is\" phrase, else the last "
              "number): strict far below lenient means a model that has the skill but not the format. Training cost "
              "is the model's own stages after the base model (the base row: its pretraining).", "",
              "| model | method | greedy % [95% CI] | lenient % | maj@k % | pass@k % | format % | tokens/answer "
              "| train FLOPs | train s | $ |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['method']} | {_with_ci(r, 'greedy_accuracy')} "
                     f"| {_pct(r.get('greedy_accuracy_lenient'))} | {_pct(r['maj_accuracy'])} "
                     f"| {_pct(r['pass_at_k'])} | {_pct(r['format_rate'])} | {r['mean_tokens']:.1f} "
                     f"| {r['train_flops']:.2e} | {r['train_seconds']:.0f} | {r['usd']:.4f} |")
    if "compute" in figures:
        lines += ["", f"![Accuracy vs training compute]({figures['compute']})"]
    if found or "scaling" in figures:
        lines += ["", "## Inference-time scaling", ""] + [f"- {f}" for f in found]
        if "scaling" in figures:
            lines += ["", f"![Accuracy vs inference tokens, one panel per family of methods]({figures['scaling']})"]
    if "grpo" in figures:
        lines += ["", "## Reinforcement learning", "",
                  f"![GRPO per step: reward, held-out accuracy (strict and lenient), completion length, entropy, zero-spread groups, clipped share]({figures['grpo']})"]
    return "\n".join(lines + list(example_lines)) + "\n"


def run_pipeline(cfg: PipelineConfig, log=print) -> dict:
    """Run the stages, evaluate, write the report; returns `{"rows", "claims", "report"}`."""
    from dataclasses import asdict

    from reasonlab.io import write_json_atomic
    from reasonlab.pipeline.run import run_stages

    from reasonlab.pipeline.run import process_rank

    if process_rank()[0] != 0:  # under `accelerate launch`: train with the others, leave the rest to the main process
        run_stages(cfg, log)
        return {"rows": [], "claims": [], "report": None}
    write_json_atomic(Path(cfg.out) / "pipeline.json", asdict(cfg))  # what `reasonlab report DIR` reads
    states = run_stages(cfg, log)
    rows = evaluate_models(cfg, states, log)
    claims = check_claims(cfg, rows, states)
    return {"rows": rows, "claims": claims, "report": str(write_report(cfg, rows, claims, states))}


def rebuild_report(run_dir: str, log=print) -> dict:
    """The report of a finished or partial run from what it left on disk: finished stages and
    finished evaluations only (nothing is trained or evaluated)."""
    import json

    from reasonlab.config import from_dict
    from reasonlab.errors import ReasonlabError
    from reasonlab.pipeline.stages import Result

    path = Path(run_dir) / "pipeline.json"
    if not path.exists():
        raise ReasonlabError(f"{run_dir}: no pipeline.json (not a `reasonlab run` directory)")
    cfg = from_dict(PipelineConfig, json.loads(path.read_text()), str(path))
    cfg.out = str(run_dir)
    states, rows, missing = {}, [], []
    for spec in cfg.stages:
        marker = Path(run_dir) / spec.name / "stage.json"
        m = json.loads(marker.read_text()) if marker.exists() else {}
        if not m.get("done"):
            missing.append(spec.name)
            continue
        states[spec.name] = StageState(spec, m["hash"], set(m.get("deps", [])), Result(**m["result"]))
    for name, st in states.items():
        res = eval_path(cfg, name, st.hash)
        if st.spec.kind in MODEL_KINDS and st.spec.evaluate and res.exists():
            rows.append({**row_for(name, st, states, json.loads(res.read_text()), cfg),
                         "eval_file": str(res.with_suffix(".samples.jsonl"))})
    if missing:
        log(f"report: stages not finished: {', '.join(missing)}")
    claims = check_claims(cfg, rows, states)
    return {"rows": rows, "claims": claims, "report": str(write_report(cfg, rows, claims, states)), "missing": missing}

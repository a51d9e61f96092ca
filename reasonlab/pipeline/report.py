"""Evaluating a pipeline's models and writing `results.json` and `report.md`.

Every model stage (pretrain, sft, grpo with `evaluate: true`) is evaluated with the same
`EvalConfig` on the same held-out problems; a row holds accuracy with its 95% interval, maj@k,
pass@k, format rate, tokens, the cost along the model's lineage, and dollars. The recipe's
`compare` claims are checked from those numbers: each is reported as held, not held, or
"within noise" when the 95% intervals overlap, with the figures, never as a fixed sentence.
"""

from __future__ import annotations

from pathlib import Path

from reasonlab.cost import gpu_usd
from reasonlab.pipeline.run import MODEL_KINDS, PipelineConfig, StageState, lineage
from reasonlab.pipeline.stages import method_of


def evaluate_models(cfg: PipelineConfig, states: dict[str, StageState], log=print) -> list[dict]:
    """One results row per evaluated model, in recipe order (evaluations cached by stage hash)."""
    from reasonlab.evaluation.evaluate import EvalConfig, evaluate

    rows = []
    for name, st in states.items():
        if st.spec.kind not in MODEL_KINDS or not st.spec.evaluate:
            continue
        e = cfg.eval
        ecfg = EvalConfig(model=st.result.products["model"], task=e.task, n=e.n, samples=e.samples,
                          temperature=e.temperature, max_new_tokens=e.max_new_tokens, seed=e.seed,
                          out=str(Path(cfg.out) / "eval" / f"{name}-{st.hash}.json"), prices=cfg.prices)
        log(f"[eval] {name}")
        rows.append(row_for(name, st, states, evaluate(ecfg, log=lambda m: None), cfg))
    return rows


def row_for(name: str, st: StageState, states: dict[str, StageState], res: dict, cfg: PipelineConfig) -> dict:
    """The results-table row of one model."""
    line = lineage(name, states)
    own = [n for n in line if states[n].spec.kind != "pretrain"] if st.spec.kind != "pretrain" else [name]
    flops = float(sum(states[n].result.flops for n in own))
    seconds = float(sum(states[n].result.seconds for n in own))
    k = cfg.eval.samples
    return {
        "name": st.spec.label or name, "stage": name,
        "method": method_of([states[n].spec.kind for n in lineage(name, states, through_teachers=False)]),
        "greedy_accuracy": res["greedy_accuracy"], "greedy_accuracy_ci95": res["greedy_accuracy_ci95"],
        "maj_accuracy": res.get(f"maj@{k}"), "pass_at_k": res.get(f"pass@{k}"), "k": k,
        "format_rate": res["format_rate"], "mean_tokens": res["mean_completion_tokens"],
        "tokens_per_correct": res["tokens_per_correct"],
        "train_flops": flops, "train_seconds": seconds,
        "inference_flops_per_problem": res["inference_flops"] / max(1, res["n_problems"] * (1 + k)),
        "usd": gpu_usd(seconds, cfg.prices) + sum(states[n].result.usd_api for n in own),
    }


def check_claims(cfg: PipelineConfig, rows: list[dict]) -> list[dict]:
    """Each `compare` claim judged from the rows: held, not held, or within noise (the 95%
    intervals of the two accuracies overlap, whichever is higher)."""
    by_stage = {r["stage"]: r for r in rows}
    out = []
    for c in cfg.compare:
        a, b = by_stage.get(c.a), by_stage.get(c.b)
        if a is None or b is None:
            out.append({"claim": c.claim, "verdict": "not evaluated", "a": c.a, "b": c.b})
            continue
        va, vb = a[c.metric], b[c.metric]
        verdict = "held" if va >= vb else "not held"
        if c.metric == "greedy_accuracy":
            (alo, ahi), (blo, bhi) = a["greedy_accuracy_ci95"], b["greedy_accuracy_ci95"]
            if alo <= bhi and blo <= ahi:
                verdict = f"within noise ({'a >= b' if va >= vb else 'a < b'}, the 95% intervals overlap)"
        out.append({"claim": c.claim, "verdict": verdict, "a": c.a, "b": c.b, "metric": c.metric,
                    "a_value": va, "b_value": vb, "a_train_flops": a["train_flops"], "b_train_flops": b["train_flops"]})
    return out


def write_report(cfg: PipelineConfig, rows: list[dict], claims: list[dict]) -> Path:
    """`results.json` (rows and claims as data) and `report.md` (the same, as tables)."""
    from reasonlab.io import write_json_atomic, write_text_atomic

    out = Path(cfg.out)
    write_json_atomic(out / "results.json", {"rows": rows, "claims": claims, "eval": vars(cfg.eval)})
    write_text_atomic(out / "report.md", markdown(cfg, rows, claims))
    return out / "report.md"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def markdown(cfg: PipelineConfig, rows: list[dict], claims: list[dict]) -> str:
    e = cfg.eval
    lines = [f"# Results: {Path(cfg.out).name}", "",
             f"{e.n} held-out `{e.task}` problems; greedy accuracy with its 95% Wilson interval; maj@{e.samples} "
             f"and pass@{e.samples} from {e.samples} samples at temperature {e.temperature}. Training cost is "
             "the model's own stages after the base model (the base row: its pretraining).", "",
             "| model | method | greedy % [95% CI] | maj@k % | pass@k % | format % | tokens/answer | tokens/correct "
             "| train FLOPs | train s | $ |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["greedy_accuracy_ci95"]
        tpc = "–" if r["tokens_per_correct"] is None else f"{r['tokens_per_correct']:.0f}"
        lines.append(f"| {r['name']} | {r['method']} | {_pct(r['greedy_accuracy'])} [{_pct(lo)}, {_pct(hi)}] "
                     f"| {_pct(r['maj_accuracy'])} | {_pct(r['pass_at_k'])} | {_pct(r['format_rate'])} "
                     f"| {r['mean_tokens']:.1f} | {tpc} | {r['train_flops']:.2e} | {r['train_seconds']:.0f} "
                     f"| {r['usd']:.4f} |")
    if claims:
        lines += ["", "## Claims checked", ""]
        for c in claims:
            if "a_value" not in c:
                lines.append(f"- {c['claim']}: {c['verdict']}")
                continue
            lines.append(f"- {c['claim']}: **{c['verdict']}** — {c['a']} {_pct(c['a_value'])}% vs {c['b']} "
                         f"{_pct(c['b_value'])}% ({c['metric']}), at {c['a_train_flops']:.2e} vs "
                         f"{c['b_train_flops']:.2e} training FLOPs")
    return "\n".join(lines) + "\n"


def run_pipeline(cfg: PipelineConfig, log=print) -> dict:
    """Run the stages, evaluate, write the report; returns `{"rows", "claims", "report"}`."""
    from reasonlab.pipeline.run import run_stages

    states = run_stages(cfg, log)
    rows = evaluate_models(cfg, states, log)
    claims = check_claims(cfg, rows)
    return {"rows": rows, "claims": claims, "report": str(write_report(cfg, rows, claims))}

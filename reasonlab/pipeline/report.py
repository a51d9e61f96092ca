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
from reasonlab.evaluation.metrics import wilson_interval
from reasonlab.pipeline.run import MODEL_KINDS, PipelineConfig, StageState, eval_path, lineage
from reasonlab.pipeline.stages import method_of


def evaluate_models(cfg: PipelineConfig, states: dict[str, StageState], log=print) -> list[dict]:
    """One results row per evaluated model, in recipe order (evaluations cached by stage hash);
    the time of each evaluation run goes to `stage_times.json` for the next plan's ETA."""
    import time

    from reasonlab.evaluation.evaluate import EvalConfig, evaluate
    from reasonlab.pipeline import eta

    rows = []
    for name, st in states.items():
        if st.spec.kind not in MODEL_KINDS or not st.spec.evaluate:
            continue
        e, model, path = cfg.eval, st.result.products["model"], eval_path(cfg, name, st.hash)
        ecfg = EvalConfig(model=model, task=e.task, n=e.n, samples=e.samples, temperature=e.temperature,
                          max_new_tokens=e.max_new_tokens, seed=e.seed, out=str(path), prices=cfg.prices,
                          template=e.template, precision=e.precision)
        fresh, started = not path.exists(), time.time()
        log(f"[eval] {name}")
        rows.append(row_for(name, st, states, evaluate(ecfg, log=lambda m: None), cfg))
        if fresh:
            eta.record_time(cfg.out, f"eval:{name}", "eval", time.time() - started,
                            eta.eval_units(e, eta.model_params(model, {})))
    return rows


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
        "maj_accuracy": maj, "maj_accuracy_ci95": ci(maj), "pass_at_k": pak, "pass_at_k_ci95": ci(pak), "k": k,
        "n_problems": n,
        "format_rate": res["format_rate"], "mean_tokens": res["mean_completion_tokens"],
        "tokens_per_correct": res["tokens_per_correct"],
        "train_flops": flops, "train_seconds": seconds,
        "inference_flops_per_problem": res["inference_flops"] / max(1, res["n_problems"] * (1 + k)),
        "usd": sum(gpu_usd(states[n].result.seconds * states[n].result.devices, cfg.prices) + states[n].result.usd_api
                   for n in own),
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


def write_report(cfg: PipelineConfig, rows: list[dict], claims: list[dict], states: dict[str, StageState]) -> Path:
    """`results.json` (rows, claims, findings as data), the figures, `report.md` and a
    self-contained `report.html` (figures embedded)."""
    from reasonlab.io import write_json_atomic, write_text_atomic
    from reasonlab.pipeline import plots

    out = Path(cfg.out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    scale_files = {n: s.result.products["scale"] for n, s in states.items() if s.spec.kind == "scale"}
    grpo = {n: str(out / n / "metrics.jsonl") for n, s in states.items() if s.spec.kind == "grpo"}
    figures = {k: v for k, v in {
        "Accuracy vs inference tokens": plots.accuracy_vs_tokens(rows, scale_files, out / "plots" / "accuracy_vs_tokens.png"),
        "GRPO reward and length": plots.grpo_curves(grpo, out / "plots" / "grpo_curves.png"),
        "Accuracy vs training compute": plots.accuracy_vs_compute(rows, out / "plots" / "accuracy_vs_compute.png"),
    }.items() if v}
    found = findings(rows, claims, scale_files)
    write_json_atomic(out / "results.json", {"rows": rows, "claims": claims, "findings": found, "eval": vars(cfg.eval)})
    md = markdown(cfg, rows, claims, found, {t: str(p.relative_to(out)) for t, p in figures.items()})
    write_text_atomic(out / "report.md", md)
    write_text_atomic(out / "report.html", html(md, figures, out))
    plots.tensorboard(out, rows, scale_files, md)
    return out / "report.md"


def findings(rows: list[dict], claims: list[dict], scale_files: dict[str, str]) -> list[str]:
    """Sentences stated from this run's numbers: what inference-time scaling bought and at what
    token cost, then each claim's verdict."""
    import json

    out = []
    for stage, f in scale_files.items():
        if not Path(f).exists():
            continue
        data = json.loads(Path(f).read_text())
        curves, model = data["methods"], Path(data["model"]).parent.name
        base = (curves.get("cot:zero-shot") or curves.get("self-consistency") or [None])[0]
        best = max(((name, p) for name, pts in curves.items() for p in pts if not name.endswith("oracle")),
                   key=lambda t: t[1]["accuracy"], default=None)
        if base and best:
            gain = 100 * (best[1]["accuracy"] - base["accuracy"])
            cost = best[1]["tokens_per_problem"] / max(base["tokens_per_problem"], 1e-9)
            clear = best[1].get("accuracy_ci95", [0.0])[0] > base.get("accuracy_ci95", [0.0, 1.0])[1]
            verb = "bought" if gain > 0 and clear else "did not clearly buy" if gain > 0 else "did not buy"
            first = "cot:zero-shot" if "cot:zero-shot" in curves else "self-consistency"
            out.append(f"Inference-time scaling ({stage}, model {model}) {verb} accuracy: {best[0]} at budget "
                       f"{best[1]['budget']} reached {100 * best[1]['accuracy']:.1f}% vs {100 * base['accuracy']:.1f}% "
                       f"for {first} at budget 1 ({gain:+.1f} points{'' if clear else ', within noise'}) "
                       f"at {cost:.1f}x the tokens per problem.")
    for c in claims:
        if "a_value" in c:
            out.append(f"{c['claim']}: {c['verdict']} ({100 * c['a_value']:.1f}% vs {100 * c['b_value']:.1f}%).")
        else:
            out.append(f"{c['claim']}: {c['verdict']}.")
    return out


def html(md: str, figures: dict[str, Path], out: Path) -> str:
    """A self-contained page: the report's tables and lists as HTML, figures inlined as base64."""
    import base64
    import html as esc

    parts, table = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [esc.escape(c.strip()) for c in line.strip("|").split("|")]
            if not set("".join(cells)) <= set("-"):
                tag = "th" if not table else "td"
                table.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if table:
            parts.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("!["):
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            parts.append(f"<h{level}>{esc.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("- "):
            parts.append(f"<li>{esc.escape(line[2:]).replace('**', '')}</li>")
        elif line.strip():
            parts.append(f"<p>{esc.escape(line)}</p>")
    if table:
        parts.append("<table>" + "".join(table) + "</table>")
    for title, path in figures.items():
        data = base64.b64encode(Path(path).read_bytes()).decode()
        parts.append(f"<h3>{esc.escape(title)}</h3><img alt='{esc.escape(title)}' src='data:image/png;base64,{data}'>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}img{max-width:100%}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{esc.escape(out.name)}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _with_ci(row: dict, key: str) -> str:
    ci = row.get(f"{key}_ci95")
    return _pct(row[key]) + ("" if not ci else f" [{_pct(ci[0])}, {_pct(ci[1])}]")


def markdown(cfg: PipelineConfig, rows: list[dict], claims: list[dict], found: list[str] = (),
             figures: dict[str, str] | None = None) -> str:
    e = cfg.eval
    lines = [f"# Results: {Path(cfg.out).name}", "",
             f"{e.n} held-out `{e.task}` problems; greedy accuracy with its 95% Wilson interval; maj@{e.samples} "
             f"and pass@{e.samples} from {e.samples} samples at temperature {e.temperature}. Training cost is "
             "the model's own stages after the base model (the base row: its pretraining).", "",
             "| model | method | greedy % [95% CI] | maj@k % [95% CI] | pass@k % [95% CI] | format % | tokens/answer "
             "| tokens/correct | train FLOPs | train s | inference FLOPs/problem | $ |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["greedy_accuracy_ci95"]
        tpc = "–" if r["tokens_per_correct"] is None else f"{r['tokens_per_correct']:.0f}"
        lines.append(f"| {r['name']} | {r['method']} | {_pct(r['greedy_accuracy'])} [{_pct(lo)}, {_pct(hi)}] "
                     f"| {_with_ci(r, 'maj_accuracy')} | {_with_ci(r, 'pass_at_k')} | {_pct(r['format_rate'])} "
                     f"| {r['mean_tokens']:.1f} | {tpc} | {r['train_flops']:.2e} | {r['train_seconds']:.0f} "
                     f"| {r['inference_flops_per_problem']:.2e} | {r['usd']:.4f} |")
    if found:
        lines += ["", "## Findings (stated from this run's numbers)", ""] + [f"- {f}" for f in found]
    for title, rel in (figures or {}).items():
        lines += ["", f"### {title}", "", f"![{title}]({rel})"]
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
    claims = check_claims(cfg, rows)
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
            rows.append(row_for(name, st, states, json.loads(res.read_text()), cfg))
    if missing:
        log(f"report: stages not finished: {', '.join(missing)}")
    claims = check_claims(cfg, rows)
    return {"rows": rows, "claims": claims, "report": str(write_report(cfg, rows, claims, states)), "missing": missing}

"""The report's figures, each written atomically as a PNG and returned as its path (None when
the run has nothing to draw yet, e.g. a partial run), and the same results in TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, plt, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def accuracy_vs_tokens(rows: list[dict], scale_files: dict[str, str], path: Path) -> Path | None:
    """Every scaling method's curve (named by stage when there are several scale stages), plus
    each trained model's greedy and maj@k points."""
    curves = {}
    for stage, f in scale_files.items():
        if Path(f).exists():
            for name, pts in json.loads(Path(f).read_text())["methods"].items():
                curves[f"{stage}: {name}" if len(scale_files) > 1 else name] = pts
    if not curves and not rows:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(12, 5.5))
    colors = plt.get_cmap("tab20").colors + plt.get_cmap("tab20b").colors  # many curves: no repeats
    for i, (name, pts) in enumerate(curves.items()):
        ax.plot([max(p["tokens_per_problem"], 1e-3) for p in pts], [100 * p["accuracy"] for p in pts],
                marker=".", label=name, alpha=0.85, color=colors[i % len(colors)])
    for j, r in enumerate(rows):
        xs = [max(r["mean_tokens"], 1e-3), max(r["mean_tokens"] * r["k"], 1e-3)]
        ys = [100 * r["greedy_accuracy"], 100 * (r["maj_accuracy"] or 0.0)]
        ax.plot(xs, ys, linestyle=":", marker="s", markersize=4, color=colors[(len(curves) + j) % len(colors)],
                label=f"{r['name']} (greedy, maj@{r['k']})")
    ax.set_xscale("log")
    ax.set_xlabel("inference tokens per problem (log)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy vs inference tokens")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, plt, path)


def grpo_curves(metric_files: dict[str, str], path: Path) -> Path | None:
    """Reward and completion length per step of every GRPO stage."""
    series = {}
    for name, f in metric_files.items():
        if Path(f).exists():
            rows = [json.loads(x) for x in Path(f).read_text().splitlines() if x.strip()]
            series[name] = [r for r in rows if "reward" in r]
    if not any(series.values()):
        return None
    plt = _figure()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for name, rows in series.items():
        steps = [r["step"] for r in rows]
        a.plot(steps, [r["reward"] for r in rows], label=name)
        b.plot(steps, [r.get("completions/mean_length", 0.0) for r in rows], label=name)
    a.set_title("GRPO reward")
    b.set_title("completion length (tokens)")
    for ax in (a, b):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, plt, path)


def accuracy_vs_compute(rows: list[dict], path: Path) -> Path | None:
    """Greedy accuracy of each trained model against its training FLOPs beyond the base."""
    trained = [r for r in rows if r["method"] != "base" and r["train_flops"] > 0]
    if not trained:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in trained:
        lo, hi = r["greedy_accuracy_ci95"]
        y = 100 * r["greedy_accuracy"]
        ax.errorbar([r["train_flops"]], [y], yerr=[[y - 100 * lo], [100 * hi - y]], fmt="o", capsize=3)
        ax.annotate(r["name"], (r["train_flops"], y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs after the base model (log)")
    ax.set_ylabel("greedy accuracy (%) with 95% interval")
    ax.set_title("Accuracy vs training compute")
    ax.grid(alpha=0.3)
    return _save(fig, plt, path)


def tensorboard(out: Path, rows: list[dict], scale_files: dict[str, str], report_md: str) -> Path:
    """The run's results in TensorBoard beside the trainers' own logs (`OUT/<stage>/tensorboard`):
    per model the table's accuracies (step = the model's row), per scaling curve accuracy and
    tokens by budget (step = budget), each stage's wall time, and the report as text. Rewritten
    whole each time, since it is derived from files that stay."""
    import shutil

    from torch.utils.tensorboard import SummaryWriter

    d = out / "tensorboard" / "pipeline"
    shutil.rmtree(d, ignore_errors=True)
    with SummaryWriter(str(d)) as tb:
        for i, r in enumerate(rows):
            for key in ("greedy_accuracy", "maj_accuracy", "pass_at_k", "format_rate"):
                if r.get(key) is not None:
                    tb.add_scalar(f"models/{key}", r[key], i)
                    tb.add_scalar(f"models/{r['stage']}/{key}", r[key], 0)
        for stage, f in scale_files.items():
            if Path(f).exists():
                for curve, pts in json.loads(Path(f).read_text())["methods"].items():
                    for p in pts:
                        tb.add_scalar(f"scaling/{stage}/{curve}/accuracy", p["accuracy"], p["budget"])
                        tb.add_scalar(f"scaling/{stage}/{curve}/tokens_per_problem", p["tokens_per_problem"], p["budget"])
        times = out / "stage_times.json"
        for name, t in (json.loads(times.read_text()) if times.exists() else {}).items():
            if isinstance(t, dict):
                tb.add_scalar(f"seconds/{name}", t["seconds"], 0)
        tb.add_text("report", report_md)
    return d

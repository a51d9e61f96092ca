"""The report's figures, each written atomically as a PNG and returned as its path (None when
the run has nothing to draw yet, e.g. a partial run), and the same results in TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path

from reasonlab.io import read_jsonl


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


# A family of inference-time methods per panel, so no panel holds more than a handful of curves.
FAMILIES = {
    "Prompting and voting": ("cot:", "self-consistency"),
    "Best-of-N and search with reward models": ("best-of-n:", "weighted-majority", "beam", "dvts"),
    "Budget forcing (s1)": ("budget:",),
}


def family(curve: str) -> str:
    """The panel a scaling curve is drawn in.

    >>> family("self-consistency:adaptive"), family("dvts"), family("budget:cap")
    ('Prompting and voting', 'Best-of-N and search with reward models', 'Budget forcing (s1)')
    """
    for name, prefixes in FAMILIES.items():
        if curve.startswith(prefixes):
            return name
    return "Other methods"


def _scaling_curves(scale_files: dict[str, str]) -> dict[str, dict[str, dict[str, list]]]:
    """{scale stage: {family: {curve: points}}}, in file order."""
    out: dict[str, dict[str, dict[str, list]]] = {}
    for stage, f in scale_files.items():
        if Path(f).exists():
            for name, pts in json.loads(Path(f).read_text())["methods"].items():
                if pts:  # a method with no points has nothing to draw (and no x to log-scale)
                    out.setdefault(stage, {}).setdefault(family(name), {})[name] = pts
    return out


def accuracy_vs_tokens(scale_files: dict[str, str], path: Path) -> Path | None:
    """Small multiples: one row of panels per scaling stage (the model it scales), one panel per
    family of methods. The x axes (tokens per problem, log) are shared, so panels compare at a
    glance. (Trained models have their own figure, accuracy vs training compute.)"""
    stages = _scaling_curves(scale_files)
    panels = [(stage, fam, curves) for stage, fams in stages.items() for fam, curves in fams.items()]
    if not panels:
        return None
    plt = _figure()
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.3 * cols, 3.4 * nrows), sharex=True, squeeze=False)
    for ax, (stage, fam, curves) in zip(axes.flat, panels):
        for name, pts in curves.items():
            ax.plot([max(p["tokens_per_problem"], 1e-3) for p in pts], [100 * p["accuracy"] for p in pts],
                    marker=".", label=name, linestyle="--" if name.endswith("oracle") else "-")
        ax.set_title(f"{stage}: {fam}", fontsize=9)
        # from 0: a flat curve near 0 must look flat; margins keep points at 0% and at the top
        # off the frame
        top = max(5.0, 1.08 * max(100 * p["accuracy"] for pts in curves.values() for p in pts))
        ax.set_ylim(bottom=-0.04 * top, top=top)
        _log_x(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="best", framealpha=0.6)  # a point under it still shows
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (%)")
    for ax in axes[-1, :]:
        ax.set_xlabel("tokens per problem (log)")
    return _save(fig, plt, path)


def _log_x(ax) -> None:
    """A log x axis labelled at powers of ten only (minor labels overlap)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())


def claims_forest(claims: list, path: Path) -> Path | None:
    """Each claim's paired difference A − B with its 95% interval: right of zero holds."""
    shown = [c for c in claims if c.measured]
    if not shown:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(shown) + 1.2))
    for i, c in enumerate(reversed(shown)):
        lo, hi = c.ci95
        color = "tab:green" if c.holds else "tab:red" if c.verdict == "reversed" else "tab:gray"
        ax.errorbar([100 * c.diff], [i], xerr=[[100 * (c.diff - lo)], [100 * (hi - c.diff)]],
                    fmt="o", color=color, capsize=4)
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([_wrap(c.claim) for c in reversed(shown)], fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("paired difference A − B (points), 95% interval; green: holds")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, plt, path)


def _wrap(text: str, width: int = 48) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:2])


RL_PANELS = (("rewards/accuracy/mean", "accuracy reward (samples)"), ("eval/accuracy", "held-out greedy % (dashed: lenient)"),
             ("completions/mean_length", "mean completion length (tokens)"), ("entropy", "policy entropy (nats/token)"),
             ("frac_reward_zero_std", "groups with zero reward spread"), ("clip_ratio/region_mean", "clipped token share"))


def grpo_curves(metric_files: dict[str, str], path: Path) -> Path | None:
    """Per GRPO stage and step, what says whether RL is learning: accuracy reward (a moving mean
    over 10 steps, raw faint), held-out greedy accuracy strict and lenient at each evaluation,
    completion length (the figure of R1-Zero's paper), entropy, the share of groups with no
    reward spread (no gradient) and the clipped share."""
    series = {}
    for name, f in metric_files.items():
        if Path(f).exists():
            series[name] = list(read_jsonl(f))
    if not any(series.values()):
        return None
    plt = _figure()
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.6))
    for ax, (key, title) in zip(axes.flat, RL_PANELS):
        for i, (name, rows) in enumerate(series.items()):
            pts = [(r["step"], r[key]) for r in rows if key in r]
            if not pts:
                continue
            xs, ys = zip(*pts)
            color = f"C{i}"
            if key == "eval/accuracy":
                ax.plot(xs, [100 * y for y in ys], marker="o", color=color, label=name)
                loose = [(r["step"], r["eval/accuracy_lenient"]) for r in rows if "eval/accuracy_lenient" in r]
                if loose:
                    ax.plot([x for x, _ in loose], [100 * y for _, y in loose], linestyle="--", color=color, alpha=0.7)
                continue
            ax.plot(xs, ys, color=color, alpha=0.25, linewidth=0.8)
            ax.plot(xs, _moving_mean(ys, 10), color=color, label=name)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    return _save(fig, plt, path)


def _moving_mean(ys, window: int) -> list[float]:
    """Trailing mean over up to `window` values.

    >>> _moving_mean([1, 2, 3, 4], 2)
    [1.0, 1.5, 2.5, 3.5]
    """
    out = []
    for i in range(len(ys)):
        part = ys[max(0, i - window + 1) : i + 1]
        out.append(sum(part) / len(part))
    return out


def accuracy_vs_compute(rows: list, path: Path) -> Path | None:
    """Greedy accuracy of each trained model against its FLOPs beyond the base (training plus
    sampling its traces); one marker per model named in the legend (labels beside points overlap)."""
    trained = [r for r in rows if r.method != "base" and r.train_flops + r.sampling_flops > 0]
    if not trained:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(9, 4.2))
    markers = "osD^vP*Xhp<>"
    for i, r in enumerate(trained):
        lo, hi = r.greedy_accuracy_ci95
        y = 100 * r.greedy_accuracy
        ax.errorbar([r.train_flops + r.sampling_flops], [y], yerr=[[y - 100 * lo], [100 * hi - y]], fmt=markers[i % len(markers)],
                    color=f"C{i % 10}", capsize=3, label=r.name)
    _log_x(ax)
    ax.set_xlabel("FLOPs after the base model: training + trace sampling (log)")
    ax.set_ylabel("greedy accuracy (%), 95% interval")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, plt, path)


def tensorboard(out: Path, rows: list, scale_files: dict[str, str], report_md: str) -> Path:
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
                if getattr(r, key) is not None:
                    tb.add_scalar(f"models/{key}", getattr(r, key), i)
                    tb.add_scalar(f"models/{r.stage}/{key}", getattr(r, key), 0)
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

"""The reward and accuracy curves of a GRPO run, as a PNG beside it."""

from __future__ import annotations

from pathlib import Path

from reasonlab.train.metrics import read_metrics


def plot_curves(out: str | Path) -> Path | None:
    """`OUT/curves.png`: reward and held-out greedy accuracy against step."""
    rows = read_metrics(out)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = [r["step"] for r in rows if "reward" in r]
    a.plot(steps, [r["reward"] for r in rows if "reward" in r], label="reward")
    for key in sorted({k for r in rows for k in r if k.startswith("rewards/")}):
        a.plot(steps, [r.get(key, float("nan")) for r in rows if "reward" in r], label=key.split("/")[1], alpha=0.6)
    a.set_xlabel("step"), a.set_title("training reward"), a.legend()
    ev = [r for r in rows if "eval/accuracy" in r]
    b.plot([r["step"] for r in ev], [r["eval/accuracy"] for r in ev], marker="o", label="greedy accuracy")
    b.plot([r["step"] for r in ev], [r["eval/format_rate"] for r in ev], marker="s", label="format rate")
    b.set_ylim(0, 1), b.set_xlabel("step"), b.set_title("held-out"), b.legend()
    fig.tight_layout()
    path = Path(out) / "curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

"""The reward and accuracy curves of a GRPO run, as a PNG beside it."""

from __future__ import annotations

from pathlib import Path

from reasonlab.train.metrics import read_metrics


def plot_curves(out: str | Path) -> Path | None:
    """`OUT/curves.png`: training reward; held-out greedy accuracy (strict and lenient) and
    format rate; policy entropy and the share of groups with zero reward spread, against step."""
    rows = read_metrics(out)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 3.5))
    trained = [r for r in rows if "reward" in r]
    steps = [r["step"] for r in trained]
    a.plot(steps, [r["reward"] for r in trained], label="reward")
    for key in sorted({k for r in rows for k in r if k.startswith("rewards/")}):
        a.plot(steps, [r.get(key, float("nan")) for r in trained], label=key.split("/")[1], alpha=0.6)
    a.set_xlabel("step"), a.set_title("training reward"), a.legend()
    ev = [r for r in rows if "eval/accuracy" in r]
    for key, label, marker in (("eval/accuracy", "greedy accuracy (strict)", "o"),
                               ("eval/accuracy_lenient", "greedy accuracy (lenient)", "^"),
                               ("eval/format_rate", "format rate", "s")):
        pts = [(r["step"], r[key]) for r in ev if key in r]
        if pts:
            b.plot(*zip(*pts), marker=marker, label=label)
    b.set_ylim(0, 1), b.set_xlabel("step"), b.set_title("held-out" if ev else "held-out: not evaluated (eval_n=0)")
    if ev:
        b.legend()
    c.plot(steps, [r.get("entropy", float("nan")) for r in trained], label="entropy (nats/token)")
    c.plot(steps, [r.get("frac_reward_zero_std", float("nan")) for r in trained], label="zero-spread groups")
    c.set_xlabel("step"), c.set_title("is it learning?"), c.legend()
    fig.tight_layout()
    path = Path(out) / "curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

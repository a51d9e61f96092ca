"""What a person watches during training: a rich progress bar, sampled completions, a PNG of
the reward and accuracy curves."""

from __future__ import annotations

from pathlib import Path


class Progress:
    def __init__(self, total: int, start: int, enabled: bool = True):
        self.enabled, self.total, self.start = enabled, total, start
        self.bar = None

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
                TimeRemainingColumn

            self.bar = RichProgress(TextColumn("grpo"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                    TextColumn("{task.fields[info]}"), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("grpo", total=self.total, completed=self.start, info="")
        return self

    def update(self, step: int, row: dict) -> None:
        if self.bar is None:
            return
        info = f"reward {row['reward']:.3f}  len {row['completions/mean_length']:.0f}  {row['step_time']:.1f}s/step"
        if "eval/accuracy" in row:
            info += f"  acc {row['eval/accuracy']:.1%}"
        self.bar.update(self.task, completed=step, info=info)

    def show_samples(self, engine, task, cfg, k: int = 2) -> None:
        from reasonlab.rollout import SamplingParams

        problems = task.problems("eval", k, seed=1)
        prompts = [engine.format_prompt(task.prompt(p)) for p in problems]
        outs = engine.generate(prompts, SamplingParams(cfg.max_new_tokens, cfg.temperature, seed=0))
        for p, g in zip(problems, outs):
            (self.bar.console if self.bar else print).print(f"[dim]{p.question[:80]}[/dim] → {g[0].text!r} (gold {p.answer})")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def plot_curves(out: str | Path) -> Path | None:
    """`OUT/curves.png`: reward and held-out greedy accuracy against step."""
    from reasonlab.train.metrics import read_metrics

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

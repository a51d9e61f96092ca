"""The progress bar every long command shows (rich): training with the step's key metric and,
when present, held-out accuracy (GRPO also prints a few sampled completions now and then);
trace generation, evaluation and scaling with their own running figure (`set`).

When the console is not a terminal (a log file, CI), rich draws nothing live, so `set` also logs
its line then: the log keeps the progress either way."""

from __future__ import annotations

from reasonlab.sampling import sample


def step_line(row: dict) -> str:
    """One training step's figures as the progress bar shows them. For RL, what says whether a
    run is learning: reward, policy entropy (nats/token; near 0 means nothing left to explore),
    the share of groups whose rewards are all equal (they carry no gradient), completion length
    and the share cut at the token cap, the share of tokens the PPO clip held, and held-out
    accuracy, strict and lenient. An evaluation-only row (step 0) shows the accuracy alone.

    >>> step_line({"reward": 0.5, "entropy": 0.04, "frac_reward_zero_std": 0.5, "completions/mean_length": 90.4,
    ...            "completions/clipped_ratio": 0.25, "clip_ratio/region_mean": 0.01, "step_time": 2.0,
    ...            "eval/accuracy": 0.4, "eval/accuracy_lenient": 0.6})
    'reward 0.500  entropy 0.04  zero-spread 50%  len 90 (cut 25%)  ppo-clipped 1.0%  2.0s/step  acc 40.0% (lenient 60.0%)'
    >>> step_line({"loss": 1.25, "step_time": 0.5}), step_line({"eval/accuracy": 0.0, "eval/accuracy_lenient": 0.54})
    ('loss 1.250  0.5s/step', 'acc 0.0% (lenient 54.0%)')
    """
    parts = []
    if "reward" in row:
        parts.append(f"reward {row['reward']:.3f}")
        if "entropy" in row:
            parts.append(f"entropy {row['entropy']:.2f}")
        if "frac_reward_zero_std" in row:
            parts.append(f"zero-spread {row['frac_reward_zero_std']:.0%}")
        cut = f" (cut {row['completions/clipped_ratio']:.0%})" if "completions/clipped_ratio" in row else ""
        parts.append(f"len {row.get('completions/mean_length', 0.0):.0f}{cut}")
        if "clip_ratio/region_mean" in row:
            parts.append(f"ppo-clipped {row['clip_ratio/region_mean']:.1%}")
    elif "loss" in row or "step_time" in row:
        parts.append(f"loss {row.get('loss', float('nan')):.3f}")
    if "step_time" in row:
        parts.append(f"{row['step_time']:.1f}s/step")
    if "eval/accuracy" in row:
        lenient = f" (lenient {row['eval/accuracy_lenient']:.1%})" if "eval/accuracy_lenient" in row else ""
        parts.append(f"acc {row['eval/accuracy']:.1%}{lenient}")
    return "  ".join(parts)


class Progress:
    def __init__(self, label: str, total: int, start: int, enabled: bool = True):
        self.label, self.enabled, self.total, self.start = label, enabled, total, start
        self.bar = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                    TextColumn("{task.fields[info]}"), transient=False)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total, completed=self.start, info="")
        return self

    def set(self, completed: int, info: str, log=None) -> None:
        """Move the bar to `completed` with `info` beside it; `log(info)` too when nobody sees
        the bar (disabled, or not a terminal)."""
        if self.bar is not None:
            self.bar.update(self.task, completed=completed, info=info)
        if log is not None and (self.bar is None or not self.bar.console.is_terminal):
            log(f"{self.label}: {completed}/{self.total} {info}")

    def update(self, step: int, row: dict, log=None) -> None:
        """A training step's figures beside the bar (`step_line`); logged as for `set`, by the
        process that shows the bar only (the others' `enabled` is False)."""
        self.set(step, step_line(row), log if self.enabled else None)

    def show_samples(self, engine, task, cfg, template, k: int = 2) -> None:
        for g in sample(engine, template, task, task.problems("eval", k, seed=1), cfg.sampling_params(seed=0), lenient=False):
            p, s = g.problem, g.completions[0]
            mark = "right" if s.correct == 1.0 else "wrong"
            (self.bar.console if self.bar else print).print(f"[dim]{p.question[:80]}[/dim] → {s.response!r} ({mark}, gold {p.answer})")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

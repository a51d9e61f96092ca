"""The progress bar every long command shows (rich): training with the step's key metric and,
when present, held-out accuracy (GRPO also prints a few sampled completions now and then);
trace generation, evaluation and scaling with their own running figure (`set`).

When the console is not a terminal (a log file, CI), rich draws nothing live, so `set` also logs
its line then: the log keeps the progress either way."""

from __future__ import annotations

from reasonlab.rollout import SamplingParams


class Progress:
    def __init__(self, label: str, total: int, start: int, enabled: bool = True):
        self.label, self.enabled, self.total, self.start = label, enabled, total, start
        self.bar = None

    def __enter__(self) -> "Progress":
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

    def update(self, step: int, row: dict) -> None:
        if self.bar is None:
            return
        if "reward" in row:
            info = f"reward {row['reward']:.3f}  len {row['completions/mean_length']:.0f}"
        else:
            info = f"loss {row.get('loss', float('nan')):.3f}"
        info += f"  {row.get('step_time', 0.0):.1f}s/step"
        if "eval/accuracy" in row:
            info += f"  acc {row['eval/accuracy']:.1%}"
        self.bar.update(self.task, completed=step, info=info)

    def show_samples(self, engine, task, cfg, template, k: int = 2) -> None:
        problems = task.problems("eval", k, seed=1)
        prompts = [engine.prompt(template, task, p) for p in problems]
        outs = engine.generate(prompts, SamplingParams(cfg.max_new_tokens, cfg.temperature, seed=0))
        for p, g in zip(problems, outs):
            text = template.response(g[0].text)
            (self.bar.console if self.bar else print).print(f"[dim]{p.question[:80]}[/dim] → {text!r} (gold {p.answer})")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

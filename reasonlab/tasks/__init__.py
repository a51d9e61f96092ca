"""Task registry: `get_task("arithmetic")`, `"countdown"`, `"gym:<name>"`, `"jsonl:<path>"`,
`"hf:<dir>"`. Each task owns its prompt, answer check and train/eval split."""

from __future__ import annotations

from functools import lru_cache

from reasonlab.errors import ReasonlabError
from reasonlab.tasks.arithmetic import ArithmeticTask
from reasonlab.tasks.base import Problem, Task, split_of
from reasonlab.tasks.countdown import CountdownTask

BUILTIN = {"arithmetic": ArithmeticTask, "countdown": CountdownTask}

__all__ = ["Problem", "Task", "get_task", "is_correct", "split_of", "BUILTIN"]


def _builtin(name: str) -> Task:
    base, _, arg = name.partition("@")
    if base not in BUILTIN:
        raise ReasonlabError(
            f"unknown task {name!r} (choose arithmetic, countdown, gym:<name>, jsonl:<path>, hf:<dir>)"
        )
    if not arg:
        return BUILTIN[base]()
    try:
        if base == "arithmetic":
            return ArithmeticTask(int(arg))
        k, m = arg.split("x")
        return CountdownTask(int(k), int(m))
    except ValueError:
        raise ReasonlabError(f"bad task option in {name!r}") from None


@lru_cache(maxsize=32)
def get_task(name: str) -> Task:
    """The task for a name; a one-line `ReasonlabError` for an unknown one."""
    if name.startswith("gym:"):
        from reasonlab.tasks.gym import GymTask

        return GymTask(name[4:])
    if name.startswith(("jsonl:", "hf:")):
        from reasonlab.tasks.files import FileTask

        kind, _, path = name.partition(":")
        return FileTask(path, "jsonl" if kind == "jsonl" else "hf")
    if name == "math":
        from reasonlab.tasks.files import MathTask

        return MathTask()
    return _builtin(name)


def is_correct(completion: str, gold: str, task: str | Task = "math") -> bool | None:
    """Whether the completion's final answer is right; None when the gold cannot be parsed.

    `task` is a `Task` or a task name (`"arithmetic"`, `"countdown"`, `"gym:…"`, …) whose
    check is used; `"math"` (the default) compares with math-verify in a killable worker.

    >>> is_correct("<think>6*7=42</think><answer>42</answer>", "42", task="arithmetic")
    True
    >>> is_correct("<think><answer>42</answer></think>", "42", task="arithmetic")
    False
    >>> is_correct("<answer>42</answer>", "forty-two", task="arithmetic") is None
    True
    """
    return (get_task(task) if isinstance(task, str) else task).verify(completion, gold)

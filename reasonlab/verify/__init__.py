"""Answer checking: `is_correct(completion, gold, task)`, never hanging, never crashing."""

from __future__ import annotations

from reasonlab.verify.extract import answer_region, extract_answer, last_boxed

__all__ = ["is_correct", "extract_answer", "answer_region", "last_boxed"]


def is_correct(completion: str, gold: str, task: str = "math") -> bool | None:
    """Whether the completion's final answer is right; None when the gold cannot be parsed.

    `task` is a task name (`"arithmetic"`, `"countdown"`, `"gym:…"`, …) whose check is used;
    `"math"` (the default) compares with math-verify in a killable worker.

    >>> is_correct("<think>6*7=42</think><answer>42</answer>", "42", task="arithmetic")
    True
    >>> is_correct("<think><answer>42</answer></think>", "42", task="arithmetic")
    False
    >>> is_correct("<answer>42</answer>", "forty-two", task="arithmetic") is None
    True
    """
    from reasonlab.tasks import get_task

    t = get_task(task)
    answer = extract_answer(completion)
    if answer is None:
        return None if t.check(gold, gold) is None else False
    return t.check(answer, gold)

"""TinyZero's countdown: combine the given numbers with + - * / to reach the target.

The answer is an expression; it is correct when it parses (safe parser, never `eval`), uses each
given number at most once, and equals the target exactly. The gold string is
`"target: T; numbers: a b c"`, which carries everything the check needs. Problems are generated
by building a random expression tree over the numbers, so each has at least one solution,
stored in `meta["solution"]`.
"""

from __future__ import annotations

import random
import re
from collections import Counter

from reasonlab.tasks.base import Problem, Task
from reasonlab.verify.safe_expr import ExprError, evaluate

_GOLD = re.compile(r"^target:\s*(-?\d+);\s*numbers:\s*([\d ]+)$")


def format_gold(target: int, numbers: list[int]) -> str:
    return f"target: {target}; numbers: {' '.join(map(str, numbers))}"


def parse_gold(gold: str) -> tuple[int, list[int]] | None:
    m = _GOLD.match(gold.strip())
    if not m:
        return None
    return int(m.group(1)), [int(x) for x in m.group(2).split()]


def _solve_path(rng: random.Random, numbers: list[int]) -> tuple[int, str, list[tuple]] | None:
    """Combine numbers left to right with random ops; a valid positive integer result or None."""
    order = numbers[:]
    rng.shuffle(order)
    value, expr, steps = order[0], str(order[0]), []
    for x in order[1:]:
        op = rng.choice("+-*/")
        if op == "/" and (x == 0 or value % x):
            op = "+"
        new = {"+": value + x, "-": value - x, "*": value * x, "/": value // max(x, 1)}[op]
        if new <= 0 or new > 999:
            return None
        steps.append((value, op, x, new))
        expr = f"({expr}){op}{x}" if op in "*/" and any(c in expr for c in "+-") else f"{expr}{op}{x}"
        value = new
    return value, expr, steps


class CountdownTask(Task):
    """Numbers and a target; `k` numbers in 1..`max_number`."""

    name = "countdown"

    def __init__(self, k: int = 3, max_number: int = 30):
        self.k, self.max_number = k, max_number
        if (k, max_number) != (3, 30):
            self.name = f"countdown@{k}x{max_number}"

    def _sample(self, rng: random.Random) -> Problem:
        while True:
            numbers = [rng.randint(1, self.max_number) for _ in range(self.k)]
            found = _solve_path(rng, numbers)
            if found and found[0] not in numbers:
                target, solution, steps = found
                q = f"Using the numbers {', '.join(map(str, numbers))}, make {target}."
                meta = {"numbers": numbers, "target": target, "solution": solution, "steps": steps}
                return Problem("", q, format_gold(target, numbers), meta)

    def prompt(self, problem: Problem) -> str:
        return (
            f"{problem.question} Use each number at most once with + - * /.\n"
            "Think in <think> </think>, then answer with the expression in <answer> </answer>."
        )

    def reference(self, problem: Problem) -> str:
        steps = ", ".join(f"{a}{op}{b}={r}" for a, op, b, r in problem.meta["steps"])
        return f"<think>\n{steps} vs {problem.meta['target']} yes\n</think>\n<answer>{problem.meta['solution']}</answer>"

    def canonical(self, answer: str) -> str | None:
        expr = "".join(answer.split()).partition("=")[0]
        try:
            evaluate(expr)
        except ExprError:
            return None
        return expr

    def check(self, answer: str, gold: str) -> bool | None:
        """
        >>> t = CountdownTask()
        >>> g = format_gold(24, [3, 8, 5])
        >>> t.check("3*8", g), t.check("(5-3+1)*8", g), t.check("3*8*1", g), t.check("3*8=24", g)
        (True, False, False, True)
        >>> t.check("8*3", "garbage") is None
        True
        """
        parsed = parse_gold(gold)
        if parsed is None:
            return None
        target, numbers = parsed
        expr = answer.strip()
        if "=" in expr:  # "3*8=24": accept the left side only if the right side is the target
            expr, _, rhs = expr.partition("=")
            if rhs.strip() != str(target):
                return False
        try:
            value, used = evaluate(expr)
        except ExprError:
            return False
        if Counter(used) - Counter(numbers):
            return False
        return value == target

"""Multi-step word problems: rates × times, totals and differences, with integer answers.

A problem is a short story built from one scenario (a train, a shop, a pump, a worker): a first
quantity rate × time, then 1–3 more operations (another product added, an amount added or
removed, or the difference of two products). `difficulty` 1–3 sets the number sizes and the
number of steps (2–3, 2–4, 3–4). Every problem carries its worked solution as `meta["steps"]`,
a list of `(a, op, b)` where an operand is an int or `"#i"`, the result of step i; `solve`
turns that into `(a, op, b, result)` lines, optionally with an error injected in one step
(how the tiny world's corpus writes traces with a wrong step).
"""

from __future__ import annotations

import random
import re

from reasonlab.errors import ReasonlabError
from reasonlab.tasks.base import Problem, Task

SCENARIOS = [
    # (subject, rate phrase, time unit, total unit, add phrase, remove phrase, question)
    ("A train", "travels {r} km per hour for {t} hours", "km",
     "Then it travels {a} km more", "Then it goes back {a} km", "How many km is it from the start?"),
    ("A car", "drives {r} km per hour for {t} hours", "km",
     "Then it drives {a} km more", "Then it drives back {a} km", "How far is it from home in km?"),
    ("A pump", "fills {r} liters per minute for {t} minutes", "liters",
     "Then {a} liters are poured in", "Then {a} liters leak out", "How many liters are in the tank?"),
    ("Mia", "earns {r} dollars per hour for {t} hours", "dollars",
     "Then she gets a gift of {a} dollars", "Then she spends {a} dollars", "How many dollars does she have?"),
    ("Tom", "buys {t} boxes with {r} pens in each box", "pens",
     "Then he finds {a} more pens", "Then he gives away {a} pens", "How many pens does he have?"),
    ("A baker", "bakes {r} cakes per day for {t} days", "cakes",
     "Then he bakes {a} more cakes", "Then he sells {a} cakes", "How many cakes are left?"),
]
SECOND = [  # how a second product is phrased, per scenario (same order)
    "Then it travels {r} km per hour for {t} hours",
    "Then it drives {r} km per hour for {t} hours",
    "Then it fills {r} liters per minute for {t} minutes",
    "Then she earns {r} dollars per hour for {t} hours",
    "Then he buys {t} boxes with {r} pens in each box",
    "Then he bakes {r} cakes per day for {t} days",
]

RANGES = {  # difficulty -> (rates, times, amounts, step counts)
    1: (range(2, 10), range(2, 6), range(1, 21), (2, 3)),
    2: ([*range(2, 10), *range(10, 100, 10)], range(2, 10), range(1, 31), (2, 3, 4)),
    3: (range(11, 100), range(2, 13), range(1, 100), (3, 4)),
}

_INT = re.compile(r"^[+-]?\d+$")


def _product(rng: random.Random, difficulty: int) -> tuple[int, int]:
    rates, times, _, _ = RANGES[difficulty]
    return rng.choice(list(rates)), rng.choice(list(times))


def make_problem(rng: random.Random, difficulty: int = 2) -> Problem:
    """Draw one problem; `meta["steps"]` is its solution program (see `solve`)."""
    s = rng.randrange(len(SCENARIOS))
    subject, rate_phrase, _unit, add_phrase, remove_phrase, question = SCENARIOS[s]
    _, _, amounts, step_counts = RANGES[difficulty]
    n_steps = rng.choice(step_counts)
    r, t = _product(rng, difficulty)
    steps: list[tuple] = [(r, "*", t)]
    value = r * t
    sentences = [f"{subject} {rate_phrase.format(r=r, t=t)}."]
    while len(steps) < n_steps:
        last = f"#{len(steps) - 1}"
        kinds = ["product", "add", "remove"] if n_steps - len(steps) >= 2 else ["add", "remove"]
        kind = rng.choice(kinds)
        if kind == "product":
            r2, t2 = _product(rng, difficulty)
            steps += [(r2, "*", t2), (last, "+", f"#{len(steps)}")]
            value += r2 * t2
            sentences.append(SECOND[s].format(r=r2, t=t2) + ".")
        elif kind == "add":
            a = rng.choice(list(amounts))
            steps.append((last, "+", a))
            value += a
            sentences.append(add_phrase.format(a=a) + ".")
        else:
            a = rng.randint(1, max(1, min(max(amounts), value - 1)))
            steps.append((last, "-", a))
            value -= a
            sentences.append(remove_phrase.format(a=a) + ".")
    text = " ".join(sentences) + " " + question
    meta = {"steps": steps, "difficulty": difficulty}
    return Problem(id="", question=text, answer=str(value), meta=meta)


def _apply(a: int, op: str, b: int) -> int:
    return a * b if op == "*" else a + b if op == "+" else a - b


def solve(steps: list[tuple], error_at: int | None = None, error: int = 0) -> list[tuple[int, str, int, int]]:
    """Evaluate a solution program into `(a, op, b, result)` lines.

    With `error_at`, that step's result is off by `error` and later steps carry the mistake on.

    >>> solve([(60, "*", 3), ("#0", "+", 20)])
    [(60, '*', 3, 180), (180, '+', 20, 200)]
    >>> solve([(60, "*", 3), ("#0", "+", 20)], error_at=0, error=-20)
    [(60, '*', 3, 160), (160, '+', 20, 180)]
    """
    results: list[int] = []
    lines = []
    for i, (a, op, b) in enumerate(steps):
        a = results[int(a[1:])] if isinstance(a, str) else a
        b = results[int(b[1:])] if isinstance(b, str) else b
        r = _apply(a, op, b)
        if i == error_at:
            r += error
        results.append(r)
        lines.append((a, op, b, r))
    return lines


def parse_int(text: str) -> int | None:
    """An integer from an answer string; thousands separators and a trailing unit are allowed.

    >>> parse_int(" 1,250 km"), parse_int("-3"), parse_int("12.0"), parse_int("3 or 4"), parse_int("")
    (1250, -3, 12, None, None)
    """
    t = text.strip().replace(",", "")
    t = re.sub(r"\s*[a-zA-Z$%]+\.?$", "", t).strip()  # a unit word after the number
    t = re.sub(r"^\$\s*", "", t)
    if re.fullmatch(r"[+-]?\d+\.0+", t):
        t = t.split(".")[0]
    return int(t) if _INT.match(t) else None


_LINE = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")


def first_error(reasoning: str, steps: list[tuple]) -> str:
    r"""Where a reasoning's equation lines first leave the solution program: `ok`, `reading` (an
    operand or operation that is not the problem's, computed correctly: the wrong sentence or a
    misread number), `arithmetic` (the right operands, a wrong result), `both`, `short` (fewer
    lines than steps) or `format` (a line that is not `a op b = r`). A reading error is a skill
    that flips between seeds; an arithmetic error is unreliable computation.

    >>> steps = [(60, "*", 3), ("#0", "+", 20)]
    >>> [first_error(r, steps) for r in ("60*3=180\n180+20=200", "60*3=180\n180+30=210",
    ...     "60*3=170\n170+20=190", "60*3=180", "60 times 3")]
    ['ok', 'reading', 'arithmetic', 'short', 'format']
    """
    lines = [x for x in reasoning.strip().splitlines() if x.strip()]
    for i, (a, op, b, _r) in enumerate(solve(steps)):
        if i >= len(lines):
            return "short"
        m = _LINE.match(lines[i])
        if not m:
            return "format"
        x, o, y, z = int(m[1]), m[2], int(m[3]), int(m[4])
        misread, miscalc = (x, o, y) != (a, op, b), z != _apply(x, o, y)
        if misread or miscalc:
            return "both" if misread and miscalc else "reading" if misread else "arithmetic"
    return "ok"


class ArithmeticTask(Task):
    """Integer word problems; `check` compares integers exactly."""

    name = "arithmetic"

    def __init__(self, difficulty: int = 2):
        if difficulty not in RANGES:
            raise ReasonlabError(f"arithmetic: difficulty must be 1, 2 or 3, got {difficulty}")
        self.difficulty = difficulty
        if difficulty != 2:
            self.name = f"arithmetic@{difficulty}"

    def _sample(self, rng: random.Random) -> Problem:
        return make_problem(rng, self.difficulty)

    def reference(self, problem: Problem) -> str:
        lines = "\n".join(f"{a}{op}{b}={r}" for a, op, b, r in solve(problem.meta["steps"]))
        return f"<think>\n{lines}\n</think>\n<answer>{problem.answer}</answer>"

    def canonical(self, answer: str) -> str | None:
        value = parse_int(answer)
        return None if value is None else str(value)

    def check(self, answer: str, gold: str) -> bool | None:
        """
        >>> t = ArithmeticTask()
        >>> t.check("260", "260"), t.check("260 km", "260"), t.check("26", "260"), t.check("1", "x")
        (True, True, False, None)
        """
        g = parse_int(gold)
        if g is None:
            return None
        return parse_int(answer) == g

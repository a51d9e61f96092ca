"""The synthetic pretraining corpus: web text that sometimes reasons.

Documents are chat exchanges about the built-in tasks' *train* problems, written in one of
several styles, mixed with arithmetic tables and unrelated text. The mix makes a base model
like a real one: its most frequent habit is to answer at once (greedy decoding does, and is
mostly wrong), while a large minority of its samples reason step by step (mostly right). So
asking it to think, sampling and voting, and RL all have something to find, and which habit
greedy picks is not a coin toss between two near-equal styles (see `CorpusMix`). Arithmetic
reasoning is equations one per line; countdown reasoning is search: candidate paths computed
and checked against the target until one reaches it (`search_trace`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from reasonlab.tasks.arithmetic import RANGES, ArithmeticTask, solve
from reasonlab.tasks.base import Problem
from reasonlab.tasks.countdown import CountdownTask
from reasonlab.world.tokenizer import EOS, render_chat

SUBJECTS = ["The park", "A small town", "The river", "My friend", "The old house", "The market",
            "Our teacher", "The museum", "A farmer", "The library"]
VERBS = ["is near", "opens on", "looks like", "was built by", "is quiet at", "smells of",
         "is busy on", "is far from"]
OBJECTS = ["the hill", "Monday", "a garden", "the station", "night", "fresh bread", "the school",
           "the sea"]


@dataclass
class CorpusMix:
    """Relative weights of document styles (they need not sum to 1).

    The base model's habits are these frequencies. A bare answer is the most common single
    style, so greedy decoding answers without reasoning, as real base models do (P(<answer>)
    exceeds P(<think>) by a margin training does not close), while about two samples in five
    reason: prompting, sampling and RL have something to find. Within reasoning, one style
    dominates, so greedy never sits between two near-equal habits (that tie made earlier bases
    jump by tens of points between seeds and lengths)."""

    correct: float = field(default=0.22, metadata={"help": "full `<think>` reasoning with the right answer"})
    careful: float = field(default=0.01, metadata={"help": "`<think>` reasoning that restates each sentence before its equation (arithmetic; countdown documents use `correct` instead)"})
    wrong_step: float = field(default=0.02, metadata={"help": "`<think>` reasoning with one wrong step, carried to a wrong answer"})
    direct: float = field(default=0.62, metadata={"help": "`<answer>` only, no reasoning (right answer)"})
    untagged: float = field(default=0.02, metadata={"help": "reasoning and 'The answer is N.' without tags"})
    # 0.60, up from 0.30: the base's think-prefilled skill 48.4 ± 4.1% vs 38.6 ± 6.9% over 5 seeds
    # (bench/seeds.py), its reading errors down; the chat habit is untouched (outside the frame)
    worked: float = field(default=0.60, metadata={"help": "a worked solution outside the chat frame ('Problem: … Solution: … Answer: N'), as in textbooks: teaches the skill of reasoning without adding to the chat habit of it"})
    unrelated: float = field(default=0.02, metadata={"help": "text that is not about a problem"})
    drill: float = field(default=0.20, metadata={"help": "lists of arithmetic facts ('45*8=360'), like tables in web text"})
    countdown: float = field(default=0.25, metadata={"help": "share of problem documents that are countdown (rest arithmetic)"})


def _lines(steps) -> str:
    return "\n".join(f"{a}{op}{b}={r}" for a, op, b, r in steps)


def _path_line(steps) -> str:
    return ", ".join(f"{a}{op}{b}={r}" for a, op, b, r in steps)


def careful_trace(p: Problem) -> str:
    """Reasoning that restates each sentence of the problem before computing what it adds: longer,
    and easier for a small model to get right than bare equations (each operand and operation
    sits right next to its words)."""
    sentences = re.split(r"(?<=\.)\s+", p.question)[:-1]  # the last one is the question
    lines, groups, i = solve(p.meta["steps"]), [], 0
    while i < len(lines):
        take = 2 if lines[i][1] == "*" and i > 0 else 1  # a second product and its sum share a sentence
        groups.append(lines[i : i + take])
        i += take
    body = "\n".join(f"{s} {' '.join(f'{a}{op}{b}={r}' for a, op, b, r in g)}" for s, g in zip(sentences, groups))
    return f"<think>\n{body}\n</think>\n<answer>{p.answer}</answer>"


def _arith_response(p: Problem, style: str, rng: random.Random) -> str:
    steps = p.meta["steps"]
    if style == "careful":
        return careful_trace(p)
    if style == "wrong_step":
        k = rng.randrange(len(steps))
        err = rng.choice([-10, -2, -1, 1, 2, 10, rng.randint(-9, 9) or 3])
        lines = solve(steps, error_at=k, error=err)
        return f"<think>\n{_lines(lines)}\n</think>\n<answer>{lines[-1][3]}</answer>"
    lines = solve(steps)
    if style == "correct":
        return f"<think>\n{_lines(lines)}\n</think>\n<answer>{p.answer}</answer>"
    if style == "untagged":
        return f"{_path_line(lines)}. The answer is {p.answer}."
    return f"<answer>{p.answer}</answer>"


# The order in which the corpus's countdown search tries combinations: each pair of operations,
# with each number in turn left for last ("a+b, then -c", "a+c, then -b", "b+c, then -a"). A fixed
# order, not random tries, because greedy decoding cannot draw random tries: it would repeat its
# first one, while a fixed order is a search greedy can walk. Op pairs come in the order that
# solves the most train problems soonest (the first 8 tries solve ~69%, all 14 ~90%).
_ORDERS = ((0, 1, 2), (0, 2, 1), (1, 2, 0))  # positions: the first pair, then the number left for last
_OP_PAIRS = (("+", "+"), ("+", "-"), ("+", "*"), ("*", "+"), ("*", "-"), ("*", "*"))
SEARCH_ORDER = tuple((order, o1, o2) for o1, o2 in _OP_PAIRS for order in _ORDERS
                     if (o1, o2) not in (("+", "+"), ("*", "*")) or order == _ORDERS[0])  # ++ and ** commute
MAX_TRIES = 10


def _try(numbers: list[int], order: tuple, o1: str, o2: str) -> tuple[list[tuple], str]:
    """One try: its two computed steps and its expression."""
    x, y, z = (numbers[i] for i in order)
    r = x + y if o1 == "+" else x * y
    t = {"+": r + z, "-": r - z, "*": r * z}[o2]
    expr = f"({x}+{y})*{z}" if (o1, o2) == ("+", "*") else f"{x}{o1}{y}{o2}{z}"
    return [(x, o1, y, r), (r, o2, z, t)], expr


def search_lines(p: Problem) -> tuple[list[str], str]:
    """Countdown solved by search: tries in `SEARCH_ORDER`, each computed and checked against the
    target on its line ("=42 vs 275 no"), until one reaches it ("yes"); returns the lines and the
    hit's expression. When none of the first `MAX_TRIES` reaches the target, the problem's own
    solution comes last, as a lucky try. The target sits beside each result, so the check is a
    comparison of two adjacent numbers, which a small model can learn."""
    numbers, target = p.meta["numbers"], p.meta["target"]
    lines = []
    for order, o1, o2 in SEARCH_ORDER[:MAX_TRIES]:
        steps, expr = _try(numbers, order, o1, o2)
        hit = steps[-1][3] == target
        lines.append(f"{_path_line(steps)} vs {target} {'yes' if hit else 'no'}")
        if hit:
            return lines, expr
    return lines + [f"{_path_line(p.meta['steps'])} vs {target} yes"], p.meta["solution"]


def search_trace(p: Problem) -> str:
    """`search_lines` as a chat response whose answer is the hit's expression."""
    lines, expr = search_lines(p)
    return "<think>\n" + "\n".join(lines) + f"\n</think>\n<answer>{expr}</answer>"


def _countdown_response(p: Problem, style: str) -> str:
    if style in ("correct", "careful", "wrong_step"):
        return search_trace(p)
    if style == "untagged":
        return f"{_path_line(p.meta['steps'])}. The answer is {p.meta['solution']}."
    return f"<answer>{p.meta['solution']}</answer>"


def _worked(p: Problem, countdown: bool) -> str:
    """A textbook worked solution: the problem, the reasoning lines, the answer; no chat turn."""
    if countdown:
        lines, expr = search_lines(p)
        body = "\n".join(lines)
        return f"Problem: {p.question}\nSolution:\n{body}\nAnswer: {expr}{EOS}"
    return f"Problem: {p.question}\nSolution:\n{_lines(solve(p.meta['steps']))}\nAnswer: {p.answer}{EOS}"


def _drill(rng: random.Random) -> str:
    facts = []
    for _ in range(rng.randint(8, 20)):
        if rng.random() < 0.3:  # facts over countdown's numbers (1..30), which its search computes
            a, b, op = rng.randint(1, 30), rng.randint(1, 30), rng.choice("+-*")
            if op == "-" and b > a:
                a, b = b, a
            facts.append(f"{a}{op}{b}={a + b if op == '+' else a - b if op == '-' else a * b}")
            continue
        rates, times, amounts, _ = RANGES[rng.choice([1, 2, 2, 3])]
        r, t = rng.choice(list(rates)), rng.choice(list(times))
        a, b = (r, t) if rng.random() < 0.5 else (t, r)
        if rng.random() < 0.5:
            facts.append(f"{a}*{b}={a * b}")
        else:
            v, x = r * t, rng.choice(list(amounts))
            facts.append(f"{v}+{x}={v + x}" if rng.random() < 0.5 or x >= v else f"{v}-{x}={v - x}")
    return "\n".join(facts) + EOS


def _unrelated(rng: random.Random) -> str:
    n = rng.randint(1, 4)
    return " ".join(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}." for _ in range(n)) + EOS


def build_corpus(n_docs: int, seed: int = 0, mix: CorpusMix | None = None) -> list[str]:
    """`n_docs` documents, the same list for the same seed and mix."""
    mix = mix or CorpusMix()
    rng = random.Random(seed)
    tasks = {"arithmetic": ArithmeticTask(), "countdown": CountdownTask()}
    easy, hard = ArithmeticTask(1), ArithmeticTask(3)
    streams = {k: t.iter_problems("train", seed) for k, t in tasks.items()}
    streams["easy"], streams["hard"] = easy.iter_problems("train", seed), hard.iter_problems("train", seed)
    styles = ["correct", "careful", "wrong_step", "direct", "untagged", "worked", "unrelated", "drill"]
    weights = [mix.correct, mix.careful, mix.wrong_step, mix.direct, mix.untagged, mix.worked, mix.unrelated, mix.drill]
    docs = []
    for _ in range(n_docs):
        style = rng.choices(styles, weights)[0]
        if style in ("unrelated", "drill"):
            docs.append(_unrelated(rng) if style == "unrelated" else _drill(rng))
            continue
        if rng.random() < mix.countdown:
            p = next(streams["countdown"])
            docs.append(_worked(p, True) if style == "worked"
                        else render_chat(tasks["countdown"].prompt(p), _countdown_response(p, style)))
        else:
            which = rng.choices(["arithmetic", "easy", "hard"], [0.6, 0.25, 0.15])[0]
            p = next(streams[which])
            docs.append(_worked(p, False) if style == "worked"
                        else render_chat(tasks["arithmetic"].prompt(p), _arith_response(p, style, rng)))
    return docs

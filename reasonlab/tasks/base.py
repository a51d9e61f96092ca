"""What every task provides: problems by split, a prompt, answer extraction and a check.

How train and eval never overlap (procedural tasks): a problem's split is a pure function of its
text — `split_of(question)` hashes the question and puts 1 in `EVAL_BUCKETS` of every
`NUM_BUCKETS` values in `eval`, the rest in `train`. Generators draw from a seeded stream and
keep only problems of the requested split, so no seed, difficulty or count can ever make a
training problem appear in evaluation. Seeds only pick *which* problems of a split you get.
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reasonlab.errors import ReasonlabError
from reasonlab.verify import extract_answer, lenient_answer

NUM_BUCKETS = 10
EVAL_BUCKETS = 1  # 10% of the problem space is reserved for evaluation
SPLITS = ("train", "eval")


def split_of(question: str) -> str:
    """The split a question belongs to, decided by a hash of its text alone.

    >>> split_of("What is 2 + 2?") in SPLITS
    True
    >>> split_of("What is 2 + 2?") == split_of("What is 2 + 2?")
    True
    """
    h = int.from_bytes(hashlib.blake2b(question.encode(), digest_size=8).digest(), "big")
    return "eval" if h % NUM_BUCKETS < EVAL_BUCKETS else "train"


def stream_seed(task: str, split: str, seed: int) -> int:
    """A 64-bit seed for one (task, split, seed) stream, stable across Python runs."""
    digest = hashlib.blake2b(f"{task}|{split}|{seed}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class Problem:
    """One problem: `answer` is the gold string that the task's `check` understands."""

    id: str
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_row(self, task: str) -> dict[str, Any]:
        """The dataset row form, as rewards and trainers receive it (TRL-style columns)."""
        return {"id": self.id, "task": task, "question": self.question, "answer": self.answer}


class Task(ABC):
    """Base class. Subclasses set `name` and implement `check` and (procedural) `_sample`."""

    name: str = "task"
    #: fraction of checks a partial-credit score may get; only gym tasks report it
    has_partial_credit: bool = False

    def prompt(self, problem: Problem) -> str:
        """The user message for a problem (the chat template, if any, wraps it)."""
        return f"{problem.question}\nThink in <think> </think>, then answer in <answer> </answer>."

    @abstractmethod
    def check(self, answer: str, gold: str) -> bool | None:
        """True/False for an extracted answer; None when `gold` itself cannot be parsed."""

    def verify(self, completion: str, gold: str) -> bool | None:
        """Whether a completion's final answer is right: extraction (`reasonlab.verify`), then
        this task's `check`; None when the gold cannot be parsed."""
        return self._judge(extract_answer(completion), gold)

    def verify_lenient(self, completion: str, gold: str) -> bool | None:
        """Whether the right answer stands anywhere in the completion: what `verify` credits,
        and else `lenient_answer` (tags ignored, else the last number), lm-eval's flexible-extract.
        Reported beside the strict score, never a reward."""
        strict = self.verify(completion, gold)
        return strict if strict is not False else self._judge(lenient_answer(completion), gold)

    def _judge(self, answer: str | None, gold: str) -> bool | None:
        if answer is None:
            return None if self.check(gold, gold) is None else False
        return self.check(answer, gold)

    def canonical(self, answer: str) -> str | None:
        """The answer's value as a vote key (answers with equal keys vote together); None if
        the answer cannot be parsed, so it does not vote."""
        key = " ".join(answer.replace("$", "").split()).rstrip(".")
        return key or None

    def reference(self, problem: Problem) -> str | None:
        """A worked solution in the `<think>…</think><answer>…</answer>` format, for tasks that
        know one (the tiny world's human-written cold-start data); None otherwise."""
        return None

    def score(self, answer: str, gold: str) -> float | None:
        """Partial-credit score in [0, 1]; defaults to the binary check."""
        ok = self.check(answer, gold)
        return None if ok is None else float(ok)

    def problems(self, split: str = "eval", n: int = 100, seed: int = 0) -> list[Problem]:
        """`n` distinct problems of `split`, the same list for the same arguments."""
        if split not in SPLITS:
            raise ReasonlabError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
        rng = random.Random(stream_seed(self.name, split, seed))
        out: list[Problem] = []
        seen: set[str] = set()
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > 200 * n + 1000:
                raise RuntimeError(f"{self.name}: problem space too small for {n} {split} problems")
            p = self._sample(rng)
            if p.question in seen or split_of(p.question) != split:
                continue
            seen.add(p.question)
            out.append(Problem(f"{self.name}/{split}/{seed}/{len(out)}", p.question, p.answer, p.meta))
        return out

    def iter_problems(self, split: str = "train", seed: int = 0) -> Iterator[Problem]:
        """An endless seeded stream of `split` problems (repeats allowed), for training."""
        rng = random.Random(stream_seed(self.name, split + "/stream", seed))
        i = 0
        while True:
            p = self._sample(rng)
            if split_of(p.question) == split:
                yield Problem(f"{self.name}/{split}/s{seed}/{i}", p.question, p.answer, p.meta)
                i += 1

    def _sample(self, rng: random.Random) -> Problem:
        raise NotImplementedError(f"{self.name} is not a procedural task")

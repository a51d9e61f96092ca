"""Problems from your own data: `jsonl:<path>` files or Hugging Face `datasets` directories.

Columns: `question` (or `problem`/`prompt`) and `answer` (or `solution`). Gold answers may follow
GSM8K (`... #### 42`) or MATH (`... \\boxed{42}`) conventions; the final value is taken from
them. Answers are checked with math-verify in a killable worker (`verify.mathcheck`). The file's
own rows are the split: use separate files (or a DatasetDict's splits) for train and eval.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

from reasonlab.errors import ReasonlabError
from reasonlab.tasks.base import Problem, Task
from reasonlab.verify.extract import answer_candidates, boxes, last_boxed
from reasonlab.verify.mathcheck import math_equal

QUESTION_KEYS = ("question", "problem", "prompt")
ANSWER_KEYS = ("answer", "solution")
SPLIT_NAMES = {"train": ("train",), "eval": ("test", "validation", "eval", "train")}


def gold_value(answer: str) -> str:
    r"""The final answer inside a gold solution.

    >>> gold_value("She has 3 + 4 = 7 apples.\n#### 7"), gold_value(r"so \boxed{\frac{1}{2}}."), gold_value("12")
    ('7', '\\frac{1}{2}', '12')
    """
    if "####" in answer:
        return answer.rsplit("####", 1)[1].strip().replace(",", "")
    boxed = last_boxed(answer)
    return boxed if boxed is not None else answer.strip()


def _row_to_problem(row: dict, where: str, index: int, name: str) -> Problem:
    q = next((row[k] for k in QUESTION_KEYS if k in row), None)
    a = next((row[k] for k in ANSWER_KEYS if k in row), None)
    if q is None:
        raise ReasonlabError(f"{where}: row {index} has no 'question' field")
    if a is None:
        raise ReasonlabError(f"{where}: row {index} has no 'answer' field")
    return Problem(f"{name}/{index}", str(q), gold_value(str(a)))


class MathTask(Task):
    """Free-form math answers compared by math-verify (the `"math"` task name: checks only)."""

    name = "math"

    def check(self, answer: str, gold: str) -> bool | None:
        return math_equal(answer, gold)

    def verify(self, completion: str, gold: str) -> bool | None:
        r"""Several distinct boxes are read as one list answer ("2, 3"): right when the gold has
        several values (two roots, a set), not credited against a single value (a hedge across
        boxes, "either \boxed{3} or \boxed{4}")."""
        gold = gold_answer(gold)
        if gold is None:
            return None
        found = answer_candidates(completion)
        if not found:
            return None if math_equal(gold, gold) is None else False
        return math_equal(found[0] if len(found) == 1 else ", ".join(found), gold)

    def _judge(self, answer: str | None, gold: str) -> bool | None:
        gold = gold_answer(gold)
        return None if gold is None else super()._judge(answer, gold)


def gold_answer(gold: str) -> str | None:
    r"""The answer in a gold written as a solution: its `\boxed{}` (several boxes separated by
    nothing but commas, "and", "or" or math delimiters: the list of them); None when its boxes are
    ambiguous (prose between them, or an unclosed box). A gold without boxes is itself.

    >>> gold_answer(r"so \boxed{12}."), gold_answer(r"$\boxed{2}, \boxed{3}$"), gold_answer(r"\boxed{1} no \boxed{2}")
    ('12', '2, 3', None)
    """
    found = boxes(gold)
    if not found:
        return gold
    if any(c is None for _, c in found):
        return None
    contents = list(dict.fromkeys(" ".join(c.split()) for _, c in found))
    if len(contents) == 1:
        return contents[0]
    between = [gold[found[k][0] : found[k + 1][0]] for k in range(len(found) - 1)]
    for text, (_, c) in zip(between, found):
        rest = text.split("{", 1)[1][len(c) + 1 :] if "{" in text else text
        if re.sub(r"[\s,;$+]|\\[()\[\]]|\band\b|\bor\b", "", rest):
            return None
    return ", ".join(contents)


class FileTask(MathTask):
    def __init__(self, path: str, kind: str):
        self.path, self.kind = Path(path), kind
        self.name = f"{kind}:{path}"
        if not self.path.exists():
            raise ReasonlabError(f"task data not found: {path}")
        self._rows: dict[str, list[dict]] = {}

    def _load(self, split: str) -> list[dict]:
        if split not in self._rows:
            self._rows[split] = self._read_jsonl() if self.kind == "jsonl" else self._read_hf(split)
        return self._rows[split]

    def _read_jsonl(self) -> list[dict]:
        rows = []
        for i, line in enumerate(self.path.read_text().splitlines()):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise ReasonlabError(f"{self.path}: line {i + 1} is not valid JSON") from None
        return rows

    def _read_hf(self, split: str) -> list[dict]:
        import datasets

        try:
            ds = datasets.load_from_disk(str(self.path))
        except Exception as e:
            raise ReasonlabError(f"{self.path}: not a datasets directory ({type(e).__name__})") from None
        if isinstance(ds, datasets.DatasetDict):
            name = next((s for s in SPLIT_NAMES[split] if s in ds), None)
            if name is None:
                raise ReasonlabError(f"{self.path}: no {split} split (has {', '.join(ds)})")
            ds = ds[name]
        return list(ds)

    def problems(self, split: str = "eval", n: int = 100, seed: int = 0) -> list[Problem]:
        rows = self._load(split)
        return [_row_to_problem(r, str(self.path), i, self.name) for i, r in enumerate(rows[:n])]

    def iter_problems(self, split: str = "train", seed: int = 0) -> Iterator[Problem]:
        """The split's rows for training: every row once per epoch, in a fresh seeded order each epoch."""
        rows = self._load(split)
        if not rows:
            raise ReasonlabError(f"{self.path}: no rows in the {split} split")
        problems = [_row_to_problem(r, str(self.path), i, self.name) for i, r in enumerate(rows)]
        rng = random.Random(f"{self.name}/{split}/{seed}")
        while True:
            yield from rng.sample(problems, len(problems))

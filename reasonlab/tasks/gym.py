"""Any reasoning-gym dataset as a task, scored by the dataset's own `score_answer`.

Accuracy counts only a full score (1.0); partial credit is reported separately through `score`.
The gold string is JSON naming the dataset, generation seed and index, from which the entry
(with its metadata, which `score_answer` may need) is regenerated — so gold survives a JSONL
round trip even when an entry's metadata is not JSON-serialisable. Train/eval are kept
disjoint by the same question-hash rule as every procedural task (`tasks.base.split_of`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from functools import lru_cache

from reasonlab.errors import ReasonlabError
from reasonlab.tasks.base import Problem, Task, split_of, stream_seed

CHUNK = 256


@lru_cache(maxsize=64)
def _dataset(name: str, seed: int):
    import reasoning_gym

    return reasoning_gym.create_dataset(name, size=CHUNK, seed=seed)


def available() -> list[str]:
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


class GymTask(Task):
    has_partial_credit = True

    def __init__(self, dataset: str):
        if dataset not in available():
            raise ReasonlabError(f"unknown reasoning-gym dataset {dataset!r} in task 'gym:{dataset}'")
        self.dataset = dataset
        self.name = f"gym:{dataset}"

    def problems(self, split: str = "eval", n: int = 100, seed: int = 0) -> list[Problem]:
        out = []
        for question, gold in self._entries(split, "chunk", seed, max_chunks=50 + 20 * n // CHUNK):
            out.append(Problem(f"{self.name}/{split}/{seed}/{len(out)}", question, gold))
            if len(out) == n:
                break
        return out

    def iter_problems(self, split: str = "train", seed: int = 0) -> Iterator[Problem]:
        """An endless stream of `split` problems for training, from chunks of their own seeds (the
        split rule keeps them disjoint from the other split's problems)."""
        for i, (question, gold) in enumerate(self._entries(split, split + "/stream", seed)):
            yield Problem(f"{self.name}/{split}/s{seed}/{i}", question, gold)

    def _entries(self, split: str, tag: str, seed: int, max_chunks: int | None = None) -> Iterator[tuple[str, str]]:
        """(question, gold) of every `split` entry, chunk after chunk of the datasets seeded by `tag`."""
        for chunk in itertools.count():
            if max_chunks is not None and chunk > max_chunks:
                raise RuntimeError(f"{self.name}: too few distinct {split} problems")
            chunk_seed = stream_seed(self.name, tag, seed * 100_003 + chunk) % (2**31)
            ds = _dataset(self.dataset, chunk_seed)
            for i in range(CHUNK):
                entry = ds[i]
                if split_of(entry["question"]) == split:
                    yield entry["question"], json.dumps({"answer": str(entry["answer"]), "dataset": self.dataset,
                                                         "seed": chunk_seed, "index": i})

    def prompt(self, problem: Problem) -> str:
        return f"{problem.question}\nThink in <think> </think>, then answer in <answer> </answer>."

    def score(self, answer: str, gold: str) -> float | None:
        try:
            g = json.loads(gold)
            ds = _dataset(g["dataset"], int(g["seed"]))
            entry = ds[int(g["index"])]
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        try:
            return float(ds.score_answer(answer, entry))
        except Exception:  # a scorer bug must not crash a run: it scores 0
            return 0.0

    def check(self, answer: str, gold: str) -> bool | None:
        s = self.score(answer, gold)
        return None if s is None else s >= 1.0

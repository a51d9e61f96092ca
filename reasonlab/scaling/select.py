"""Choosing one answer from N samples: majority vote, weighted vote, best-of-N by a score, and
the adaptive self-consistency stopping rule. Pure functions over per-sample records.

A sample record is a dict with `key` (the task's canonical answer, None when unparseable),
`correct` (bool or None), `tokens`, and optionally `logprob` (mean token log-probability) and
`reward` (a reward model's score).
"""

from __future__ import annotations

import math
from collections import Counter

from reasonlab.evaluation.metrics import majority_vote


def vote(samples: list[dict], weight: str | None = None) -> dict | None:
    """The sample whose answer wins the vote (weighted by `weight`'s value, e.g. "reward");
    None when no sample has a parseable answer.

    >>> s = [{"key": "4"}, {"key": "5"}, {"key": "5"}, {"key": None}]
    >>> vote(s)["key"], vote([{"key": None}])
    ('5', None)
    >>> vote([{"key": "4", "reward": 0.9}, {"key": "5", "reward": 0.2}, {"key": "5", "reward": 0.3}], "reward")["key"]
    '4'
    """
    weights = None if weight is None else [max(0.0, s.get(weight) or 0.0) for s in samples]
    i = majority_vote([s["key"] for s in samples], weights)
    return None if i is None else samples[i]


def best_of(samples: list[dict], score: str) -> dict | None:
    """The highest-scoring sample (first on ties); unscored samples never win.

    >>> best_of([{"r": 0.1}, {"r": 0.7}, {"r": 0.7}, {"r": None}], "r")
    {'r': 0.7}
    """
    scored = [(s[score], -i, s) for i, s in enumerate(samples) if s.get(score) is not None]
    return max(scored, key=lambda t: (t[0], t[1]))[2] if scored else None


def oracle(samples: list[dict]) -> dict | None:
    """A correct sample if there is one (the verifier as selector: pass@N, the upper bound)."""
    return next((s for s in samples if s.get("correct")), samples[0] if samples else None)


def can_stop(keys: list, budget: int, confidence: float = 1.0, min_samples: int = 2) -> bool:
    """Adaptive self-consistency: stop sampling a problem once the leading answer cannot be
    overtaken with the samples left (`budget` in all), or once it holds at least `confidence`
    of the votes after `min_samples` samples (confidence 1.0: only the exact rule).

    >>> can_stop(["4", "4", "4"], budget=5)       # 3 vs 0 with 2 left: decided
    True
    >>> can_stop(["4", "4", "5"], budget=5)       # 2 vs 1 with 2 left: 5 could still win
    False
    >>> can_stop(["4", "4", "4", "5"], budget=16, confidence=0.7)
    True
    >>> can_stop([None, None], budget=2), can_stop(["4"], budget=8, confidence=0.5)
    (True, False)
    """
    left = budget - len(keys)
    if left <= 0:
        return True
    counts = Counter(k for k in keys if k is not None).most_common(2)
    lead = counts[0][1] if counts else 0
    second = counts[1][1] if len(counts) > 1 else 0
    if lead - second > left:
        return True
    return len(keys) >= min_samples and lead / len(keys) >= confidence > 0 and confidence < 1.0


def mean_logprob(logprobs: list[float] | None) -> float | None:
    """
    >>> round(mean_logprob([-1.0, -3.0]), 3), mean_logprob([]), mean_logprob(None)
    (-2.0, None, None)
    """
    if not logprobs:
        return None
    value = sum(logprobs) / len(logprobs)
    return value if math.isfinite(value) else None

"""Estimators: unbiased pass@k, majority vote with deterministic ties, confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 − C(n−c, k)/C(n, k).

    >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 4), pass_at_k(4, 0, 2), round(pass_at_k(4, 2, 2), 4)
    (0.25, 1.0, 0.0, 0.8333)
    """
    if not 0 < k <= n:
        raise ValueError(f"need 0 < k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def majority_vote(keys: Sequence[Hashable | None], weights: Sequence[float] | None = None) -> int | None:
    """Index of the first sample whose answer wins the (weighted) vote; None if nobody voted.

    `None` keys (unparseable answers) do not vote. Ties go to the answer seen first, so the
    result does not depend on dict or set ordering.

    >>> majority_vote(["4", "5", "5", "4"]), majority_vote([None, "7", None]), majority_vote([None])
    (0, 1, None)
    >>> majority_vote(["4", "5", "5"], weights=[3.0, 1.0, 1.0])
    0
    """
    totals: dict[Hashable, float] = {}
    first: dict[Hashable, int] = {}
    for i, key in enumerate(keys):
        if key is None:
            continue
        totals[key] = totals.get(key, 0.0) + (1.0 if weights is None else weights[i])
        first.setdefault(key, i)
    if not totals:
        return None
    best = max(totals, key=lambda k: (totals[k], -first[k]))
    return first[best]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (well-behaved at 0 and 1).

    >>> [round(x, 3) for x in wilson_interval(5, 10)]
    [0.237, 0.763]
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float], z: float = 1.96) -> tuple[float, float]:
    """Normal-approximation 95% interval for a mean of per-problem values.

    >>> mean_interval([1.0, 1.0])
    (1.0, 1.0)
    """
    n = len(values)
    if n == 0:
        return 0.0, 1.0
    mean = sum(values) / n
    if n == 1:
        return mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return max(0.0, mean - half), min(1.0, mean + half)


def k_values(samples: int) -> list[int]:
    """k = 1, 2, 4, … up to `samples` (and `samples` itself).

    >>> k_values(16), k_values(6), k_values(0)
    ([1, 2, 4, 8, 16], [1, 2, 4, 6], [])
    """
    ks, k = [], 1
    while k <= samples:
        ks.append(k)
        k *= 2
    if samples and ks[-1] != samples:
        ks.append(samples)
    return ks


def vote_headroom(gold: Sequence[Hashable], greedy: Sequence[Hashable | None],
                  samples: Sequence[Sequence[Hashable | None]]) -> dict:
    """What majority voting can gain over greedy decoding, from where their answers sit.

    Self-consistency beats greedy only on problems where greedy is wrong *and* the right answer
    is the most common sample answer; it loses where greedy is right and it is not. When a
    model's wrong answers are systematic (greedy's wrong answer is also the modal sample), the
    vote has little to fix. Counts are per problem; `gain_bound` is (fixes − breaks) / problems,
    what a vote over many samples would add to greedy accuracy.

    >>> h = vote_headroom(gold=["1", "2", "3"], greedy=["1", "9", "8"],
    ...                   samples=[["1", "5", "1"], ["2", "2", "9"], ["8", "8", None]])
    >>> h["fixes"], h["breaks"], h["systematic"], round(h["gain_bound"], 3)
    (1, 0, 1, 0.333)
    """
    wrong = fixes = breaks = systematic = 0
    for g, gr, votes in zip(gold, greedy, samples, strict=True):
        top = majority_vote(votes)
        modal = None if top is None else votes[top]
        if gr == g:
            breaks += modal != g
        else:
            wrong += 1
            fixes += modal == g
            systematic += gr is not None and modal == gr
    return {"problems": len(gold), "greedy_wrong": wrong, "fixes": fixes, "breaks": breaks,
            "systematic": systematic, "gain_bound": (fixes - breaks) / max(1, len(gold))}


def paired_difference(a: Sequence[float], b: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """Mean of b − a over the same problems and its normal-approximation 95% interval: a paired
    comparison, so the problems' own difficulty cancels (far tighter than two separate intervals).

    >>> paired_difference([0, 0, 1, 1], [1, 1, 1, 1])
    (0.5, -0.066, 1.066)
    >>> paired_difference([1, 0], [1, 0])
    (0.0, 0.0, 0.0)
    """
    if len(a) != len(b) or not a:
        raise ValueError("paired_difference needs two equally long, non-empty lists")
    d = [float(y) - float(x) for x, y in zip(a, b)]
    n, mean = len(d), sum(d) / len(d)
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1)) if n > 1 else 0.0
    half = z * sd / math.sqrt(n)
    return round(mean, 3), round(mean - half, 3), round(mean + half, 3)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 10000,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of a − b over the same problems and its 95% paired-bootstrap interval (percentile):
    problems are resampled with replacement, each keeping its pair, so a problem's own difficulty
    cancels. Values may be 0/1 (greedy right or wrong) or fractions (a resampled method's expected
    correctness); the interval is seeded, so the same inputs give the same interval.

    >>> paired_bootstrap([1, 1, 1, 1], [0, 0, 1, 1])
    (0.5, 0.0, 1.0)
    >>> paired_bootstrap([1, 0, 1], [1, 0, 1])
    (0.0, 0.0, 0.0)
    """
    import numpy as np

    if len(a) != len(b) or not a:
        raise ValueError("paired_bootstrap needs two equally long, non-empty lists")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # chunks keep memory at 1000 x n
        stop = min(resamples, start + 1000)
        means[start:stop] = d[rng.integers(0, len(d), size=(stop - start, len(d)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return round(float(d.mean()), 4), round(float(lo), 4), round(float(hi), 4)

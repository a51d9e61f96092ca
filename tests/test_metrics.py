import itertools
import math
import random

import pytest

from reasonlab.evaluation.metrics import (
    k_values,
    majority_vote,
    mean_interval,
    pass_at_k,
    vote_headroom,
    wilson_interval,
)


def brute_force_pass_at_k(correct: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_pass_at_k_equals_enumeration_over_all_subsets(n):
    rng = random.Random(n)
    for _ in range(5):
        correct = [rng.random() < 0.4 for _ in range(n)]
        for k in range(1, n + 1):
            assert pass_at_k(n, sum(correct), k) == pytest.approx(brute_force_pass_at_k(correct, k), abs=1e-12)


def test_pass_at_k_rejects_bad_k():
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 0)


def test_majority_vote_ties_break_to_first_seen_answer():
    assert majority_vote(["5", "4", "4", "5"]) == 0  # 2-2 tie: "5" came first
    assert majority_vote(["4", "5", "4", "5"]) == 0
    assert majority_vote(["7", "5", "5"]) == 1
    # the result does not depend on the order answers were first inserted in a dict
    assert majority_vote(["b", "a", "a", "b", "c"]) == 0


def test_unparseable_answers_do_not_vote():
    assert majority_vote([None, None, "3"]) == 2
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None


def test_weighted_vote():
    assert majority_vote(["4", "5", "5"], weights=[0.9, 0.4, 0.4]) == 0
    assert majority_vote(["4", "5", "5"], weights=[0.7, 0.4, 0.4]) == 1


def test_wilson_interval_contains_estimate_and_is_bounded():
    for s, n in [(0, 10), (10, 10), (3, 7), (50, 100)]:
        lo, hi = wilson_interval(s, n)
        assert 0.0 <= lo <= s / n <= hi <= 1.0
    lo, hi = wilson_interval(50, 100)
    z = 1.96  # half-width z·sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n)
    assert hi - lo == pytest.approx(2 * z * math.sqrt(0.25 / 100 + z**2 / 40000) / (1 + z**2 / 100), rel=1e-6)


def test_mean_interval_and_k_values():
    lo, hi = mean_interval([0.0, 1.0, 0.0, 1.0])
    assert lo < 0.5 < hi
    assert k_values(16) == [1, 2, 4, 8, 16]
    assert k_values(1) == [1]


def test_vote_headroom_counts_fixes_breaks_and_systematic_errors():
    gold = ["10", "20", "30", "40", "50"]
    greedy = ["10", "21", "31", None, "50"]
    samples = [
        ["11", "11", "10"],  # greedy right, the vote is not: a break
        ["20", "20", "21"],  # greedy wrong, the vote right: a fix
        ["31", "31", "30"],  # greedy's wrong answer is the modal one: systematic
        [None, "40", None],  # greedy unparseable, the one vote is right: a fix, not systematic
        ["50", "51", "52"],  # tie between answers goes to the first seen: right, no change
    ]
    h = vote_headroom(gold, greedy, samples)
    assert (h["fixes"], h["breaks"], h["systematic"], h["greedy_wrong"]) == (2, 1, 1, 3)
    assert h["gain_bound"] == pytest.approx((2 - 1) / 5)
    # the bound is what a full-pool vote actually scores minus greedy accuracy
    vote_acc = sum(s[majority_vote(s)] == g for g, s in zip(gold, samples)) / 5
    greedy_acc = sum(a == b for a, b in zip(gold, greedy)) / 5
    assert vote_acc - greedy_acc == pytest.approx(h["gain_bound"])


def test_vote_headroom_with_no_votes_and_length_mismatch():
    assert vote_headroom(["1"], ["2"], [[None, None]])["fixes"] == 0
    with pytest.raises(ValueError):
        vote_headroom(["1", "2"], ["1"], [["1"]])


def test_progress_logs_each_step_when_nobody_sees_the_bar():
    """Under pytest the console is not a terminal (as in a pipeline's log file): each step's line
    is logged, by the process that shows the bar only."""
    from reasonlab.train.progress import Progress

    lines: list[str] = []
    with Progress("grpo", 3, 0) as bar:
        bar.update(1, {"reward": 0.25, "frac_reward_zero_std": 0.5, "step_time": 2.0}, lines.append)
    with Progress("grpo", 3, 0, enabled=False) as other:
        other.update(1, {"reward": 0.25}, lines.append)
    assert lines == ["grpo: 1/3 reward 0.250  zero-spread 50%  len 0  2.0s/step"]

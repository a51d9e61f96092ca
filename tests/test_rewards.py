"""Every reward on hand-written strings, including the hacks that must earn nothing."""

import pytest

from reasonlab.errors import ReasonlabError
from reasonlab.rewards import (
    REWARDS,
    accuracy,
    combine,
    format_reward,
    get_reward,
    language_consistency,
    length_reward,
    soft_overlong,
    tag_count,
)

GOOD = "<think>\n60*3=180\n180+20=200\n</think>\n<answer>200</answer>"
Q = "A train travels 60 km per hour for 3 hours. Then it travels 20 km more. How far?"


def acc(completions, gold="200"):
    return accuracy(completions, answer=[gold] * len(completions), task="arithmetic",
                    question=[Q] * len(completions))


def test_registry_has_every_reward_and_rejects_unknown():
    assert {"accuracy", "format", "tag_count", "language_consistency", "soft_overlong", "length"} <= set(REWARDS)
    assert get_reward("format") is format_reward
    with pytest.raises(ReasonlabError, match="unknown reward 'nope'"):
        get_reward("nope")


@pytest.mark.parametrize("completion,expected", [
    (GOOD, 1.0),
    ("<think>x</think><answer>201</answer>", 0.0),
    ("<think>x</think><answer></answer>", 0.0),  # empty answer
    ("<think>x</think><answer>   </answer>", 0.0),
    ("<think>x</think><answer>200</answer><answer>200</answer>", 0.0),  # several answers
    ("<think>x</think><answer>199 or 200</answer>", 0.0),  # a list of candidates
    ("<think>x <answer>200</answer></think>", 0.0),  # answer only inside think
    ("<think>x <answer>200</answer>", 0.0),  # unclosed think
    ("<think>x</think><answer>200", 0.0),  # unclosed answer
    ("<think>x</think><think>y</think><answer>200</answer>", 0.0),  # repeated think
    (f"{Q} <think>x</think><answer>200</answer>", 0.0),  # the prompt echoed back
    ("The answer is 200.", 1.0),  # no tags: accuracy does not judge format
])
def test_accuracy(completion, expected):
    assert acc([completion]) == [expected]


def test_accuracy_is_none_when_gold_is_unparseable():
    assert acc([GOOD], gold="two hundred") == [None]


@pytest.mark.parametrize("completion,expected", [
    (GOOD, 1.0),
    ("<think>a</think><answer>1</answer>", 1.0),
    ("  <think>a</think>  <answer>1</answer>  ", 1.0),
    ("<think></think><answer>1</answer>", 0.0),  # empty reasoning
    ("<think>a</think><answer> </answer>", 0.0),  # empty answer
    ("<answer>1</answer>", 0.0),  # no reasoning
    ("<think>a</think>", 0.0),
    ("<think>a</think><answer>1</answer>trailing", 0.0),
    ("lead<think>a</think><answer>1</answer>", 0.0),
    ("<think>a</think><answer>1</answer><answer>2</answer>", 0.0),
    ("<think>a<think>b</think><answer>1</answer>", 0.0),
    ("<think>a <answer>1</answer>", 0.0),
])
def test_format(completion, expected):
    assert format_reward([completion]) == [expected]


def test_tag_count():
    assert tag_count([GOOD, "<think>a</think>", "", "<think><think></think><answer>1</answer>"]) == [1.0, 0.5, 0.0, 0.75]


def test_language_consistency():
    out = language_consistency([
        "<think>the speed is sixty</think><answer>1</answer>",
        "<think>скорость is sixty</think>",  # 1 of 3 words in Cyrillic
        "<think>скорость шестьдесят</think>",
        "<answer>1</answer>",  # no reasoning at all
        "<think>60*3=180</think>",  # no words: nothing inconsistent
    ], language="en")
    assert out == pytest.approx([1.0, 2 / 3, 0.0, 0.0, 1.0])
    assert language_consistency(["<think>скорость шестьдесят</think>"], language="ru") == [1.0]
    assert language_consistency(["<think>速度 is fast</think>"], language="zh") == pytest.approx([1 / 3])


def test_soft_overlong():
    out = soft_overlong(["x"] * 5, completion_tokens=[10, 96, 112, 128, 129], max_completion_length=128,
                        overlong_cache=32)
    assert out == pytest.approx([0.0, 0.0, -0.5, -1.0, -1.0])


def test_length_reward_groups_and_correctness():
    completions = ["<think>x</think><answer>200</answer>"] * 2 + ["<think>x</think><answer>1</answer>"] * 2
    out = length_reward(completions, answer="200", task="arithmetic", completion_tokens=[10, 20, 10, 20],
                        group=[0, 0, 1, 1])
    # group 0: both correct: shortest +0.5, longest −0.5; group 1: both wrong: min(0, λ)
    assert out == pytest.approx([0.5, -0.5, 0.0, -0.5])
    assert length_reward(["<answer>1</answer>"], answer="x", task="arithmetic") == [None]


def test_combine_weights_and_none_follow_trl():
    """TRL's rule: a reward that returns None counts as 0 for that row; a row every reward
    returns None for is unscored (None), and the trainer leaves it out of the step."""
    out = combine({"accuracy": [1.0, 0.0, None, None], "format": [1.0, 0.0, 1.0, None]},
                  {"accuracy": 1.0, "format": 0.2})
    assert out[:3] == pytest.approx([1.2, 0.0, 0.2])
    assert out[3] is None

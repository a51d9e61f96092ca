"""The answer checker: a golden table, hard time bounds, and recovery after a kill."""

import subprocess
import sys
import threading
import time

import pytest

from reasonlab.tasks import is_correct
from reasonlab.verify import extract_answer
from reasonlab.verify.mathcheck import MathVerifyPool, looks_like_list

PATHOLOGICAL = r"\boxed{\dfrac{5^{(5^{(5^{(5^5)})}-4)}-5}{16}}"

GOLDEN = [
    # (completion, gold, task, expected)
    ("<think>60*3=180</think><answer>180</answer>", "180", "arithmetic", True),
    ("<think>60*3=180</think><answer>180 km</answer>", "180", "arithmetic", True),
    ("<think>x</think><answer>1,250</answer>", "1250", "arithmetic", True),
    ("<think>x</think><answer>181</answer>", "180", "arithmetic", False),
    ("<think>x</think><answer>180 or 181</answer>", "180", "arithmetic", False),
    ("<think><answer>180</answer></think>", "180", "arithmetic", False),  # answer only inside think
    ("<think>180", "180", "arithmetic", False),  # unclosed think
    ("<think>a</think><answer>180", "180", "arithmetic", False),  # unclosed answer
    ("<think>a</think><answer>1</answer><answer>180</answer>", "180", "arithmetic", True),  # last block
    (r"The area is \boxed{180}.", "180", "arithmetic", True),
    ("So the answer is 180.", "180", "arithmetic", True),
    ("<answer>180</answer>", "one hundred", "arithmetic", None),  # unparseable gold
    ("<answer>\\frac{1}{2}</answer>", "0.5", "math", True),
    ("<answer>1/2</answer>", "\\frac{1}{2}", "math", True),
    ("<answer>$\\sqrt{4}$</answer>", "2", "math", True),
    ("<answer>x = 5</answer>", "5", "math", True),
    ("<answer>(1, 2)</answer>", "2", "math", False),
    ("<answer>6</answer>", "7", "math", False),
    ("<answer></answer>", "7", "math", False),
    ("no answer at all", "7", "math", False),
    # math-verify false positives that our extraction must not let through
    ("<answer>3 or 4</answer>", "4", "math", False),
    ("<answer>3; 4</answer>", "4", "math", False),
    ("<answer>between 3 and 4</answer>", "4", "math", False),
    ("<answer>3, 4</answer>", "4", "math", False),
    ("<answer>1,000</answer>", "1000", "math", True),  # a thousands separator is not a list
    ("<answer>5</answer>", "", "math", None),
    ("<answer>3*8</answer>", "target: 24; numbers: 3 8 5", "countdown", True),
    ("<answer>3*8*1</answer>", "target: 24; numbers: 3 8 5", "countdown", False),
    ("<answer>8*3=24</answer>", "target: 24; numbers: 3 8 5", "countdown", True),
    ("<answer>__import__('os').system('x')</answer>", "target: 24; numbers: 3 8 5", "countdown", False),
    ("<answer>24</answer>", "target: 24; numbers: 3 8 5", "countdown", False),  # uses no numbers
    ("<answer>3*8</answer>", "24", "countdown", None),
]


@pytest.mark.parametrize("completion,gold,task,expected", GOLDEN)
def test_golden_table(completion, gold, task, expected):
    assert is_correct(completion, gold, task=task) is expected


def test_extraction_order():
    assert extract_answer(r"<answer>7</answer> \boxed{8}") == "7"
    assert extract_answer(r"\boxed{8}. The answer is 9") == "8"
    assert extract_answer("the final answer is: 12.\nmore text") == "12"
    assert extract_answer("</think>The answer is 5") == "5"


def test_list_detection():
    assert looks_like_list("1, 2") and looks_like_list("2 and 3")
    assert not looks_like_list("12,345") and not looks_like_list("x^2 + 1")


def _timed(fn):
    t = time.monotonic()
    result = fn()
    return result, time.monotonic() - t


def test_pathological_input_is_bounded_on_main_thread_and_pool_recovers():
    pool = MathVerifyPool(timeout=2.0)
    try:
        assert pool.check("1", "1") is True  # warm the worker up
        result, elapsed = _timed(lambda: pool.check(PATHOLOGICAL, "3"))
        assert result is False and elapsed < 5.0 and pool.timeouts == 1
        assert pool.check("\\frac{2}{4}", "0.5") is True  # a fresh worker answers
    finally:
        pool.close()


def test_pathological_input_is_bounded_from_a_thread():
    pool = MathVerifyPool(timeout=2.0)
    out = {}

    def work():
        pool.check("1", "1")
        out["result"], out["elapsed"] = _timed(lambda: pool.check(PATHOLOGICAL, "3"))

    t = threading.Thread(target=work)
    t.start()
    t.join(30)
    pool.close()
    assert not t.is_alive()
    assert out["result"] is False and out["elapsed"] < 5.0


def test_pathological_input_is_bounded_from_a_subprocess():
    code = (
        "import time; from reasonlab.tasks import is_correct\n"
        "is_correct('<answer>1</answer>', '1')\n"
        "t = time.monotonic()\n"
        f"r = is_correct(r'<answer>{PATHOLOGICAL}</answer>', '3')\n"
        "print(r, time.monotonic() - t)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    result, elapsed = proc.stdout.split()
    assert result == "False" and float(elapsed) < 5.0


FRAGMENTS = ["<think>", "</think>", "<answer>", "</answer>", "\\boxed{", "}", "{", "The answer is", "the final answer is:",
             " ", "\n", "42", "3 or 4", "$", "\\frac{1}{2}", ".", "=", "*", "(", ")", "-", "x", "é", "答"]


@pytest.mark.parametrize("task,gold", [("arithmetic", "42"), ("countdown", "target: 24; numbers: 3 8 5")])
def test_random_tricky_completions_never_raise(task, gold):
    """Answer checking must never crash a run, whatever the model writes."""
    import random

    from reasonlab.rewards import accuracy, format_reward, language_consistency, tag_count

    rng = random.Random(0)
    texts = ["".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    texts += ["The answer is \n", "the answer is", "The answer is:   ", "\\boxed{}", "<answer></answer>"]
    for t in texts:
        extract_answer(t)
        assert is_correct(t, gold, task=task) in (True, False)
    assert len(accuracy(texts, answer=gold, task=task)) == len(texts)
    format_reward(texts), tag_count(texts), language_consistency(texts)

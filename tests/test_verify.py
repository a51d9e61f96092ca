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
    assert extract_answer(r"\boxed{8}. The answer is 9") == "9"  # the last marker wins
    assert extract_answer(r"The answer is 9. So \boxed{8}") == "8"
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


def test_extraction_is_linear_in_the_completion_length():
    """Long reasoning, short answer, and adversarial inputs: 4x the length takes at most ~4x the
    time (a quadratic scan would take 16x), and 2 MB stays within seconds. The ratio, not a fixed
    bound, is the test: on an AVX2 EPYC the 2 MB `\\boxed{` case alone took 1.02 s."""
    cases = [lambda n: "x" * n + " The answer is 5.", lambda n: "<answer>" * (n // 8), lambda n: "\\boxed{" * (n // 7),
             lambda n: "the answer is " * (n // 14), lambda n: "{" * n,
             lambda n: "<think>" + "a" * n + "</think><answer>5</answer>"]
    for make in cases:
        small, big = make(500_000), make(2_000_000)
        t_small = min(_timed(lambda s=small: extract_answer(s))[1] for _ in range(2))
        t_big = _timed(lambda s=big: extract_answer(s))[1]
        assert t_big < 8 * max(t_small, 0.02) and t_big < 5.0, (big[:20], t_small, t_big)
    result, seconds = _timed(lambda: is_correct(cases[0](2_000_000), "5", task="math"))
    assert result is True and seconds < 5.0


def test_eight_threads_with_pathological_inputs_each_return_within_the_bound():
    """One worker per call, several workers: a pathological check delays no other thread."""
    pool = MathVerifyPool(timeout=2.0)
    pool.warm()
    assert pool.check("1", "1") is True
    results, worst = [], []

    def work(k):
        for i in range(4):
            pred, gold = (PATHOLOGICAL, "3") if (k + i) % 3 == 0 else (f"\\frac{{{2 * k + 2}}}{{2}}", str(k + 1))
            r, dt = _timed(lambda p=pred, g=gold: pool.check(p, g))
            results.append((pred == PATHOLOGICAL, r))
            worst.append(dt)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    pool.close()
    assert max(worst) < 5.0, sorted(worst)[-5:]
    assert all(r is False for patho, r in results if patho)
    plain = [r for patho, r in results if not patho]
    # A plain check that found every worker busy past its deadline returns False (never a wrong
    # True) and is counted: on a fast CPU 0-2 of 21 did, on an AVX2 EPYC whose killed workers
    # take seconds to restart, 5. Counted, not silent, and most still answered.
    starved = sum(r is not True for r in plain)
    assert starved <= pool.timeouts - sum(patho for patho, _ in results)
    assert starved <= len(plain) // 2


def test_the_call_right_after_a_kill_does_not_wait_for_a_restart():
    pool = MathVerifyPool(timeout=1.5)
    pool.warm()
    assert pool.check("1", "1") is True
    assert pool.check(PATHOLOGICAL, "3") is False and pool.timeouts == 1
    r, dt = _timed(lambda: pool.check("\\frac{2}{4}", "0.5"))
    pool.close()
    assert r is True and dt < 1.0  # another warm worker answered while the killed one restarts


def test_the_very_first_call_returns_within_the_bound():
    code = ("import time; t = time.monotonic()\n"
            "from reasonlab.tasks import is_correct\n"
            "r = is_correct(r'<answer>\\sqrt{4}</answer>', '2', task='math')\n"
            "print(r, time.monotonic() - t)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    result, elapsed = proc.stdout.split()
    assert result == "True" and float(elapsed) < 5.0


LENIENT = [
    # (completion, gold, task, strict, lenient): strict needs the template's format, lenient reads the answer anywhere
    (r"<think>5*7 = 35, plus 2 gives \boxed{37}", "37", "arithmetic", False, True),  # never closed its think
    (r"She has 12 + 25 = 37 apples. \boxed{37}", "37", "arithmetic", True, True),
    ("<think>12 + 25 = 37</think>The total is 37 apples", "37", "arithmetic", False, True),  # prose, no marker
    ("<think>12 + 25 = 37</think><answer>38</answer>", "37", "arithmetic", False, False),  # the answer given is wrong
    ("12 + 25 = 37, so she has 37 apples left after 2 more.", "37", "arithmetic", False, False),  # last number is 2
    ("The answer is 1,250 cookies", "1250", "arithmetic", True, True),  # a marker: both read it
    ("In total 1,250.", "1250", "arithmetic", False, True),
    ("<think>x</think><answer>37", "37", "arithmetic", False, True),  # unclosed answer tag
    ("I cannot solve this.", "37", "arithmetic", False, False),
    ("<think>x</think><answer>37</answer>", "one hundred", "arithmetic", None, None),  # unparseable gold
    (r"\boxed{\frac{1}{2}} is it", "0.5", "math", True, True),
]


@pytest.mark.parametrize("completion, gold, task, strict, lenient", LENIENT)
def test_lenient_scoring_reads_the_answer_wherever_it_stands(completion, gold, task, strict, lenient):
    from reasonlab.tasks import get_task

    t = get_task(task)
    assert t.verify(completion, gold) == strict
    assert t.verify_lenient(completion, gold) == lenient

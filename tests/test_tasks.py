"""Tasks: seeded generation, disjoint splits, safe checks, file datasets and their errors."""

import json

import pytest

from reasonlab.errors import ReasonlabError
from reasonlab.tasks import get_task, split_of
from reasonlab.tasks.arithmetic import ArithmeticTask, solve
from reasonlab.tasks.countdown import CountdownTask, parse_gold


@pytest.mark.parametrize("name", ["arithmetic", "arithmetic@1", "arithmetic@3", "countdown"])
def test_train_and_eval_never_overlap_and_are_deterministic(name):
    task = get_task(name)
    train = task.problems("train", 400, seed=0) + task.problems("train", 400, seed=1)
    ev = task.problems("eval", 100, seed=0) + task.problems("eval", 100, seed=7)
    assert not {p.question for p in train} & {p.question for p in ev}
    assert all(split_of(p.question) == "eval" for p in ev)
    assert [p.question for p in task.problems("eval", 50, seed=3)] == [p.question for p in task.problems("eval", 50, seed=3)]
    assert len({p.question for p in task.problems("eval", 100, seed=0)}) == 100


def test_arithmetic_answers_match_worked_solutions_and_difficulty():
    for difficulty, (lo, hi) in {1: (2, 3), 2: (2, 4), 3: (3, 4)}.items():
        for p in ArithmeticTask(difficulty).problems("train", 200):
            lines = solve(p.meta["steps"])
            assert str(lines[-1][3]) == p.answer and int(p.answer) >= 0
            assert lo <= len(lines) <= hi
    with pytest.raises(ReasonlabError, match="difficulty"):
        ArithmeticTask(7)


def test_countdown_problems_are_solvable():
    task = CountdownTask()
    for p in task.problems("eval", 100):
        target, numbers = parse_gold(p.answer)
        assert task.check(p.meta["solution"], p.answer) is True
        assert target == p.meta["target"] and numbers == p.meta["numbers"]


def test_countdown_rejects_reuse_and_unknown_numbers():
    gold = "target: 10; numbers: 5 2 3"
    task = CountdownTask()
    assert task.check("5*2", gold) and task.check("(5+3)+2", gold)
    assert not task.check("5+5", gold)  # 5 used twice
    assert not task.check("7+3", gold)  # 7 not given
    assert not task.check("10", gold)
    assert not task.check("5*2)", gold) and not task.check("", gold) and not task.check("9" * 500, gold)


def test_canonical_keys_group_equal_values():
    a = get_task("arithmetic")
    assert a.canonical("1,250") == a.canonical("1250 km") == "1250"
    assert a.canonical("many") is None
    assert get_task("countdown").canonical("3 * 8") == "3*8"


def test_unknown_task_is_a_one_line_error():
    with pytest.raises(ReasonlabError, match="unknown task 'nope'"):
        get_task("nope")
    with pytest.raises(ReasonlabError, match="unknown reasoning-gym dataset"):
        get_task("gym:not_a_dataset")


def test_gym_task_scores_with_its_own_scorer_and_never_counts_partial_credit():
    task = get_task("gym:leg_counting")
    probs = task.problems("eval", 5)
    assert len({p.question for p in probs}) == 5
    gold = probs[0].answer
    right = json.loads(gold)["answer"]
    assert task.check(right, gold) is True and task.score(right, gold) == 1.0
    assert task.check("-1", gold) is False
    assert task.check("1", "not json") is None
    train = {p.question for p in task.problems("train", 50)}
    assert not train & {p.question for p in task.problems("eval", 50)}


def test_gym_partial_credit_is_reported_but_not_correct():
    task = get_task("gym:word_sorting")
    p = task.problems("eval", 1)[0]
    right = json.loads(p.answer)["answer"]
    wrong = ", ".join(reversed(right.split(", ")))
    score = task.score(wrong, p.answer)
    assert task.check(right, p.answer) is True
    if 0.0 < score < 1.0:  # this scorer gives partial credit for near misses
        assert task.check(wrong, p.answer) is False


def test_jsonl_task_with_gsm8k_and_math_gold_conventions(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"question": "2+2?", "answer": "2+2=4\n#### 4"},
            {"problem": "Half?", "solution": r"It is \boxed{\frac{1}{2}}."},
            {"question": "Big?", "answer": "#### 1,000"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = get_task(f"jsonl:{path}")
    probs = task.problems("eval", 10)
    assert [p.answer for p in probs] == ["4", r"\frac{1}{2}", "1000"]
    assert task.check("4", "4") and task.check("0.5", r"\frac{1}{2}") and task.check("1000", "1000")


def test_jsonl_row_without_answer_names_file_and_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(ReasonlabError, match=r"bad.jsonl: row 0 has no 'answer' field"):
        get_task(f"jsonl:{path}").problems("eval", 5)
    with pytest.raises(ReasonlabError, match="task data not found"):
        get_task(f"jsonl:{tmp_path}/missing.jsonl")


def test_hf_datasets_dir_with_splits(tmp_path):
    import datasets

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"question": ["1+1?"], "answer": ["#### 2"]}),
        "test": datasets.Dataset.from_dict({"question": ["2+3?", "3+3?"], "answer": ["5", "6"]}),
    })
    dd.save_to_disk(tmp_path / "ds")
    task = get_task(f"hf:{tmp_path / 'ds'}")
    assert [p.answer for p in task.problems("eval", 10)] == ["5", "6"]
    assert [p.answer for p in task.problems("train", 10)] == ["2"]


def test_gym_task_streams_training_problems_disjoint_from_eval_and_seeded():
    import itertools

    task = get_task("gym:leg_counting")
    a = [p.question for p in itertools.islice(task.iter_problems("train", seed=0), 300)]
    assert a == [p.question for p in itertools.islice(task.iter_problems("train", seed=0), 300)]
    assert a != [p.question for p in itertools.islice(task.iter_problems("train", seed=1), 300)]
    assert not set(a) & {p.question for p in task.problems("eval", 100)}
    p = next(task.iter_problems("train"))
    assert task.check(json.loads(p.answer)["answer"], p.answer) is True


def test_jsonl_task_streams_every_row_once_per_epoch(tmp_path):
    import itertools

    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"question": f"{i}+0?", "answer": str(i)}) + "\n" for i in range(5)))
    stream = [p.answer for p in itertools.islice(get_task(f"jsonl:{path}").iter_problems("train", seed=0), 10)]
    assert sorted(stream[:5]) == sorted(stream[5:]) == ["0", "1", "2", "3", "4"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ReasonlabError, match="empty.jsonl: no rows in the train split"):
        next(get_task(f"jsonl:{empty}").iter_problems("train"))

"""`reasonlab traces`: which completions are kept, and a killed run that resumes without
duplicating a row."""

from __future__ import annotations

import json

from conftest import run_cli

from reasonlab.rollout.base import Completion, RolloutEngine
from reasonlab.sft.traces import TracesConfig, choose, generate_traces, verified
from reasonlab.tasks import get_task

GOOD = "<think>\n6*7=42\n</think>\n<answer>42</answer>"


def test_only_correct_well_formed_english_distinct_completions_are_verified():
    cfg = TracesConfig(teacher="t")
    texts = [
        "<think>\n6*7=41\n</think>\n<answer>41</answer>",  # wrong
        GOOD,
        "6*7=42. The answer is 42.",  # right but no tags
        "<think>\n六乘七等于四十二 6*7=42\n</think>\n<answer>42</answer>",  # reasoning not in English
        GOOD,  # duplicate
        "<think>\nsix times seven: 6*7=42, checked twice\n</think>\n<answer>42</answer>",
    ]
    good = verified(texts, "42", "arithmetic", "6*7?", cfg)
    assert good == [1, 5]
    assert choose(good, texts, cfg) == [1]
    assert choose(good, texts, TracesConfig(teacher="t", keep="shortest")) == [1]
    assert choose(good, texts, TracesConfig(teacher="t", keep="all", max_keep=1)) == [1]
    assert choose(good, texts, TracesConfig(teacher="t", keep="all")) == [1, 5]


def test_in_the_boxed_format_the_whole_text_is_the_reasoning_whose_language_is_checked():
    """A boxed trace has no `<think>` block to read the language from: its whole text is the
    reasoning (before, every boxed trace scored 0 and none was ever kept)."""
    texts = [r"Six times seven: 6*7=42. So the answer is \boxed{42}.",  # kept
             r"Шесть на семь: 6*7=42, ответ \boxed{42}.",  # right, boxed, not English
             r"6*7=41, so \boxed{41}.",  # wrong
             "6*7=42, the answer is 42."]  # right, no box
    assert verified(texts, "42", "arithmetic", "6*7?", TracesConfig(teacher="t"), answer_format="boxed") == [0]


class OracleEngine(RolloutEngine):
    """Answers a problem correctly in half of its samples, differently per seed."""

    n_params = 1000

    def __init__(self, answers: dict[str, str]):
        self.answers, self.calls = answers, 0

    def prompt(self, template, task, problem):
        return task.prompt(problem)

    def generate(self, prompts, params):
        self.calls += 1
        out = []
        for p in prompts:
            gold = self.answers[p]
            texts = [f"<think>\nstep {params.seed % 7} {k}\n</think>\n<answer>{gold if k % 2 else 'x'}</answer>"
                     for k in range(params.n)]
            out.append([Completion(t, [1] * (10 + k), "stop", 5) for k, t in enumerate(texts)])
        return out


def test_an_attempts_file_marks_a_repeat_of_a_verified_sample_verified(tmp_path):
    """`verified` de-duplicates what is kept, but the attempts file gives each sample its own
    verdict: the same text twice is right twice (it was written as wrong, and journey learning
    then "corrected" right answers)."""
    from reasonlab.sft.traces import _Attempts

    task, cfg = get_task("arithmetic"), TracesConfig(teacher="reference", task="arithmetic")
    problem = task.problems("train", 1, seed=0)[0]
    right = f"<think>\n{problem.answer}\n</think>\n<answer>{problem.answer}</answer>"
    texts = [right, right, "<think>\n1\n</think>\n<answer>-1</answer>"]
    good = verified(texts, problem.answer, "arithmetic", problem.question, cfg)
    assert good == [0]  # distinct: the repeat is not kept twice
    path = tmp_path / "attempts.jsonl"
    path.write_text("")
    with _Attempts(str(path)) as sink:
        sink.write(cfg, task, problem, texts, good)
    assert [json.loads(x)["verified"] for x in path.read_text().splitlines()] == [True, True, False]


def test_rows_are_sft_ready_and_a_killed_run_resumes_without_duplicates(tmp_path):
    task = get_task("arithmetic")
    problems = task.problems("train", 5, seed=0)
    engine = OracleEngine({task.prompt(p): p.answer for p in problems})
    cfg = TracesConfig(teacher="teacher-dir", n=5, samples=4, keep="all", out=str(tmp_path / "t.jsonl"), batch=2,
                       template="tiny")
    summary = generate_traces(cfg, engine=engine, log=lambda m: None)
    assert summary["verified"] == 10 and summary["kept"] == 10 and summary["acceptance_rate"] == 0.5
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and rows[0]["teacher"] == "teacher-dir"
    assert rows[0]["prompt"][0]["role"] == "user" and rows[0]["completion"][0]["content"].endswith("</answer>")
    before = (tmp_path / "t.jsonl").read_text()
    done = (tmp_path / "t.jsonl.done").read_text().splitlines()
    (tmp_path / "t.jsonl.done").write_text("\n".join(done[:-1]) + "\n")  # killed after the traces, before the mark
    engine.calls = 0
    again = generate_traces(cfg, engine=engine, log=lambda m: None)
    assert engine.calls == 1  # only the unfinished problem was sampled again
    assert (tmp_path / "t.jsonl").read_text() == before  # its rows were not written twice
    same = lambda d: {k: v for k, v in d.items() if k != "usd_gpu"}  # noqa: E731 (wall time is spent again)
    assert same(again) == same(summary) and again["usd_gpu"] > 0


def test_cli_runs_a_real_teacher_and_prints_the_summary(tiny_model_dir, tmp_path):
    out = tmp_path / "traces.jsonl"
    proc = run_cli("traces", "--teacher", str(tiny_model_dir), "--task", "arithmetic", "--n", "3", "--samples", "2",
                   "--out", str(out), "max_new_tokens=8")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["samples"] == 6 and summary["generated_tokens"] > 0 and "acceptance" in proc.stderr
    assert len((tmp_path / "traces.jsonl.done").read_text().splitlines()) == 3
    bad = run_cli("traces", "--teacher", str(tmp_path / "nope"), "--out", str(out))
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: ")

"""Journey learning data: the wrong step is found and named, the detour precedes the right path,
every trace is verified, and the shortcut set matches the journey set's token budget."""

from __future__ import annotations

import json
import random

import pytest
from conftest import run_cli

from reasonlab.errors import ReasonlabError
from reasonlab.sft.journey import JourneyConfig, build_journey, first_wrong_step, journey_trace

RIGHT = "<think>\n3*60=180\n180+5=185\n</think>\n<answer>185</answer>"
WRONG = "<think>\n3*60=160\n160+5=165\n</think>\n<answer>165</answer>"
MISREAD = "<think>\n3*50=150\n150+5=155\n</think>\n<answer>155</answer>"  # every step right, wrong numbers


def test_first_wrong_step_recomputes_each_equation():
    assert first_wrong_step("12*3=36\n36-4=30\n30+1=31") == (15, "36-4", 32, 30)
    assert first_wrong_step("7 × 8 = 54") == (10, "7×8", 56, 54)
    assert first_wrong_step("no numbers at all") is None
    assert first_wrong_step("10/4=2") is None  # inexact division is not judged


def test_journey_trace_cuts_at_the_error_notices_it_and_ends_on_the_right_path():
    cfg = JourneyConfig(traces="x", notice=["Wait, {expr} is {right}, not {wrong}."], backtrack=["Again."])
    trace = journey_trace(RIGHT, [WRONG], cfg, random.Random(0))
    assert [trace.text[a:b] for a, b in trace.mistakes] == ["3*60=160"]
    assert trace.text == ("<think>\n3*60=160\nWait, 3*60 is 180, not 160. Again.\n3*60=180\n180+5=185\n</think>\n"
                    "<answer>185</answer>")
    cfg = JourneyConfig(traces="x", notice_answer=["Wait, {wrong} is wrong."], backtrack=["Again."])
    trace = journey_trace(RIGHT, [MISREAD, WRONG], cfg, random.Random(0))
    assert [trace.text[a:b] for a, b in trace.mistakes] == ["3*50=150\n150+5=155", "3*60=160"]
    assert trace.text.startswith("<think>\n3*50=150\n150+5=155\nWait, 155 is wrong. Again.\n3*60=160\nWait, 3*60 is 180")
    assert journey_trace(RIGHT, [], cfg, random.Random(0)).text == RIGHT


def _attempts(path, problems):
    rows = []
    for pid, (right, wrong) in problems.items():
        for text, ok in [(t, True) for t in right] + [(t, False) for t in wrong]:
            rows.append({"problem": pid, "prompt": f"question {pid}", "question": f"question {pid}",
                         "answer": "185", "task": "arithmetic", "completion": text, "verified": ok})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_build_writes_verified_journeys_and_a_token_matched_shortcut_set(tmp_path):
    right2 = "<think>\n60*3=180\n5+180=185\n</think>\n<answer>185</answer>"
    src = _attempts(tmp_path / "a.jsonl", {"p1": ([RIGHT, right2], [WRONG, MISREAD]), "p2": ([RIGHT], [WRONG]),
                                           "p3": ([], [WRONG])})
    summary = build_journey(JourneyConfig(traces=str(src), out=str(tmp_path / "out"), max_wrong=2), log=lambda m: None)
    journey = [json.loads(x) for x in (tmp_path / "out" / "journey.jsonl").read_text().splitlines()]
    shortcut = [json.loads(x) for x in (tmp_path / "out" / "shortcut.jsonl").read_text().splitlines()]
    assert summary["problems"] == 2 and summary["skipped_no_verified"] == 1 and summary["wrong_branches"] == 3
    assert [r["wrong_branches"] for r in journey] == [2, 1]
    assert all("Wait" in r["completion"][0]["content"] for r in journey)
    assert {r["problem"] for r in shortcut} == {"p1", "p2"} and all(r["wrong_branches"] == 0 for r in shortcut)
    assert all("Wait" not in r["completion"][0]["content"] for r in shortcut)
    j, s = summary["journey_tokens"], summary["shortcut_tokens"]
    assert j <= s < j + len(RIGHT)  # matched budget: at most one trace over
    assert s == sum(len(r["completion"][0]["content"]) for r in shortcut)  # characters without a tokenizer
    assert {r["completion"][0]["content"] for r in shortcut if r["problem"] == "p1"} == {RIGHT, right2}


def test_an_attempt_with_the_right_answer_is_never_a_wrong_branch(tmp_path):
    """Measured on the main job: 197 of 281 detours read "Wait, that gives 147, which does not
    fit the problem" before answering 147, because repeats of a verified sample were written as
    unverified attempts. A repeat of a verified text, or an unverified text whose answer is right
    (kept out for its format), has no mistake to notice; only WRONG makes a branch here."""
    untagged = "3*60=180\n180+5=185\n<answer>185</answer>"  # right answer, no <think>: unverified
    src = _attempts(tmp_path / "a.jsonl", {"p1": ([RIGHT], [RIGHT, untagged, WRONG])})
    summary = build_journey(JourneyConfig(traces=str(src), out=str(tmp_path / "out"), wrong_ratio=1.0, max_wrong=3),
                            log=lambda m: None)
    (row,) = [json.loads(x) for x in (tmp_path / "out" / "journey.jsonl").read_text().splitlines()]
    assert summary["wrong_branches"] == 1 and row["wrong_branches"] == 1
    text = row["completion"][0]["content"]
    assert text.count("Wait") == 1 and "3*60 is 180, not 160" in text and "185, which" not in text


def test_without_training_on_mistakes_each_row_lists_its_wrong_reasoning_as_no_loss(tmp_path):
    src = _attempts(tmp_path / "a.jsonl", {"p1": ([RIGHT], [WRONG, MISREAD]), "p2": ([RIGHT], [])})
    kept = build_journey(JourneyConfig(traces=str(src), out=str(tmp_path / "k"), max_wrong=2), log=lambda m: None)
    assert kept["no_loss_tokens"] == 0
    assert not any("no_loss" in json.loads(x) for x in (tmp_path / "k" / "journey.jsonl").read_text().splitlines())
    cfg = JourneyConfig(traces=str(src), out=str(tmp_path / "m"), max_wrong=2, train_on_mistakes=False)
    summary = build_journey(cfg, log=lambda m: None)
    rows = {r["problem"]: r for r in map(json.loads, (tmp_path / "m" / "journey.jsonl").read_text().splitlines())}
    content = rows["p1"]["completion"][0]["content"]
    assert sorted(content[a:b] for a, b in rows["p1"]["no_loss"]) == ["3*50=150\n150+5=155", "3*60=160"]
    assert "no_loss" not in rows["p2"]
    assert summary["no_loss_tokens"] == len("3*50=150\n150+5=155") + len("3*60=160")  # characters here
    assert summary["journey_tokens"] == kept["journey_tokens"]  # the budget still counts the context


def test_a_mistake_whose_text_recurs_in_an_earlier_turn_is_located_by_offset():
    """In the world's idiom the first detour's noticing says "3*60=180 vs 160 no,"; a second wrong
    attempt whose whole reasoning is "3*60=180" (a misreading) must be masked where it stands, not
    inside that noticing (which would mask the noticing and train the mistake)."""
    misread = "<think>\n3*60=180\n</think>\n<answer>180</answer>"
    cfg = JourneyConfig(traces="x", notice=["{expr}={right} vs {wrong} no,"], notice_answer=["{wrong} no,"],
                        backtrack=["Again."])
    trace = journey_trace(RIGHT, [WRONG, misread], cfg, random.Random(0))
    assert trace.text.startswith("<think>\n3*60=160\n3*60=180 vs 160 no, Again.\n3*60=180\n180 no, Again.\n")
    (a1, b1), (a2, b2) = trace.mistakes
    assert trace.text[a1:b1] == "3*60=160" and trace.text[a2:b2] == "3*60=180"
    assert a2 == trace.text.index("Again.\n") + len("Again.\n")  # after the first turn, not inside it


def test_wrong_ratio_zero_gives_plain_traces_and_bad_input_is_one_line(tmp_path):
    src = _attempts(tmp_path / "a.jsonl", {"p1": ([RIGHT], [WRONG])})
    summary = build_journey(JourneyConfig(traces=str(src), out=str(tmp_path / "o"), wrong_ratio=0.0), log=lambda m: None)
    assert summary["wrong_branches"] == 0 and summary["journey_tokens"] == summary["shortcut_tokens"] == len(RIGHT)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem": "p", "completion": "x"}) + "\n")
    with pytest.raises(ReasonlabError, match=r"bad\.jsonl:1: missing prompt, answer, verified"):
        build_journey(JourneyConfig(traces=str(bad), out=str(tmp_path / "o2")), log=lambda m: None)
    with pytest.raises(ReasonlabError, match="wrong_ratio"):
        JourneyConfig(traces="x", wrong_ratio=1.5).validate()


def test_traces_attempts_feed_the_journey_cli(tmp_path):
    """End to end through the CLI: an HTTP teacher that is right on half its samples, every sample
    written as an attempt, then `reasonlab journey` on them."""
    from test_http_teacher import Teacher

    from reasonlab.tasks import get_task

    task = get_task("arithmetic")
    problems = task.problems("train", 3, seed=0)
    teacher = Teacher({task.prompt(p): p.answer for p in problems})
    try:
        attempts = tmp_path / "attempts.jsonl"
        proc = run_cli("traces", "--teacher", teacher.url, "--n", "3", "--samples", "2", "--out",
                       str(tmp_path / "t.jsonl"), f"attempts={attempts}", "template=tiny")
        assert proc.returncode == 0, proc.stderr
    finally:
        teacher.close()
    rows = [json.loads(x) for x in attempts.read_text().splitlines()]
    assert len(rows) == 6 and sum(r["verified"] for r in rows) == 3
    out = run_cli("journey", "--traces", str(attempts), "--out", str(tmp_path / "j"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["problems"] == 3
    for row in map(json.loads, (tmp_path / "j" / "journey.jsonl").read_text().splitlines()):
        text = row["completion"][0]["content"]
        assert text.startswith("<think>\nguessed\nWait, that gives -1") and "worked it out" in text

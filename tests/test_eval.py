"""`reasonlab eval` end to end on a tiny model, its results keys, and resuming."""

import json

import pytest

from reasonlab.evaluation import EvalConfig, evaluate
from reasonlab.rollout import HFEngine

KEYS = ["greedy_accuracy", "greedy_accuracy_ci95", "pass@1", "pass@1_ci95", "pass@2", "pass@4", "maj@4",
        "format_rate", "mean_completion_tokens", "tokens_per_correct", "wall_seconds", "inference_flops", "usd"]


class CountingEngine(HFEngine):
    calls = 0

    def generate(self, prompts, params):
        CountingEngine.calls += len(prompts)
        return super().generate(prompts, params)


def test_eval_end_to_end_writes_results_and_samples(tiny_model_dir, tmp_path):
    cfg = EvalConfig(model=str(tiny_model_dir), task="arithmetic", n=6, samples=4, max_new_tokens=12,
                     out=str(tmp_path / "res.json"), chunk=4)
    res = evaluate(cfg, log=lambda *_: None)
    on_disk = json.loads((tmp_path / "res.json").read_text())
    assert on_disk == res
    for k in KEYS:
        assert k in res
    assert res["n_problems"] == 6 and 0 <= res["greedy_accuracy"] <= 1
    assert res["pass@1"] <= res["pass@2"] <= res["pass@4"]
    rows = [json.loads(line) for line in (tmp_path / "res.samples.jsonl").read_text().splitlines()]
    assert rows[0]["_header"]["task"] == "arithmetic" and len(rows) == 1 + 6 * 5
    assert res["mean_completion_tokens"] == pytest.approx(sum(r["tokens"] for r in rows[1:]) / 30)
    assert res["inference_flops"] > 2 * res["n_params"] * res["generated_tokens"]


def test_eval_resumes_and_skips_finished_problems(tiny_model_dir, tmp_path):
    model = HFEngine.from_pretrained(tiny_model_dir, "cpu")
    engine = CountingEngine(model.model, model.tokenizer)
    cfg = EvalConfig(model=str(tiny_model_dir), task="countdown", n=5, samples=2, max_new_tokens=8,
                     out=str(tmp_path / "r.json"), chunk=2)
    first = evaluate(cfg, engine=engine, log=lambda *_: None)
    CountingEngine.calls = 0
    again = evaluate(cfg, engine=engine, log=lambda *_: None)
    assert CountingEngine.calls == 0
    assert {k: v for k, v in again.items()} == first
    # a run killed mid-way: drop the last problem's rows and a torn line, then resume
    path = tmp_path / "r.samples.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:10])
    evaluate(cfg, engine=engine, log=lambda *_: None)
    assert CountingEngine.calls == 2  # one prompt (greedy + sampled): only the unfinished problem
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 1 + 5 * 3


def test_changed_settings_refuse_to_mix_with_old_samples(tiny_model_dir, tmp_path):
    from reasonlab.errors import ReasonlabError

    cfg = EvalConfig(model=str(tiny_model_dir), n=2, samples=1, max_new_tokens=4, out=str(tmp_path / "r.json"))
    evaluate(cfg, log=lambda *_: None)
    cfg.temperature = 0.5
    with pytest.raises(ReasonlabError, match="different 'temperature'"):
        evaluate(cfg, log=lambda *_: None)


def test_gym_eval_reports_partial_score(tiny_model_dir, tmp_path):
    cfg = EvalConfig(model=str(tiny_model_dir), task="gym:leg_counting", n=2, samples=0, max_new_tokens=4,
                     out=str(tmp_path / "g.json"))
    res = evaluate(cfg, log=lambda *_: None)
    assert res["n_problems"] == 2 and res["pass@1"] == res["greedy_accuracy"]


def test_eval_with_a_chatml_model_uses_its_template_and_stop_token(chatml_model_dir, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(chatml_model_dir)
    engine = HFEngine.from_pretrained(chatml_model_dir, "cpu")
    prompt = engine.format_prompt("What is 2+2?")
    assert prompt == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert tok.convert_tokens_to_ids("<|im_end|>") in engine.eos_ids
    cfg = EvalConfig(model=str(chatml_model_dir), task="arithmetic", n=3, samples=2, max_new_tokens=10,
                     out=str(tmp_path / "c.json"))
    res = evaluate(cfg, engine=engine, log=lambda *_: None)
    rows = [json.loads(line) for line in (tmp_path / "c.samples.jsonl").read_text().splitlines()[1:]]
    assert res["n_problems"] == 3 and len(rows) == 9
    assert all("<|im_end|>" not in r["text"] for r in rows)  # special tokens are not in the text
    assert all(r["tokens"] <= 10 for r in rows)


def test_strict_and_lenient_scores_side_by_side_by_hand():
    """Three problems, greedy + 2 samples each. Strict credits only the tags; lenient reads a
    box or the last number. One row predates lenient scoring: it is scored from its text."""
    from types import SimpleNamespace

    from reasonlab.cost import Prices
    from reasonlab.evaluation.report import summarize
    from reasonlab.sampling import lenient_fields
    from reasonlab.tasks import Problem, get_task

    task = get_task("arithmetic")
    problems = [Problem(f"p{i}", f"q{i}", gold) for i, gold in enumerate(["4", "9", "10"])]

    def row(pid, kind, i, text):
        strict = float(task.verify(text, next(p.answer for p in problems if p.id == pid)))
        return {"problem": pid, "kind": kind, "sample": i, "text": text, "tokens": 5, "prompt_tokens": 3,
                "correct": strict, "key": None, "format": strict,
                **lenient_fields(task, text, next(p.answer for p in problems if p.id == pid))}

    done = {
        "p0": [row("p0", "greedy", 0, "<think>2+2</think><answer>4</answer>"),
               row("p0", "sample", 0, r"<think>2+2 = \boxed{4}"), row("p0", "sample", 1, "so 5")],
        "p1": [row("p1", "greedy", 0, r"3*3 \boxed{9}"),  # no tags at all: strict reads the box too
               row("p1", "sample", 0, "<think>3*3</think> it is 9"), row("p1", "sample", 1, "<think>3*3 = 9")],
        "p2": [row("p2", "greedy", 0, "<think>5+5 = 10"), row("p2", "sample", 0, "11"), row("p2", "sample", 1, "12")],
    }
    old = done["p2"][0]
    for k in ("answer_lenient", "key_lenient", "correct_lenient"):
        del old[k]
    cfg = SimpleNamespace(model="m", task="arithmetic", split="eval", samples=2, temperature=1.0, prices=Prices())
    res = summarize(cfg, problems, done, n_params=10)
    assert res["greedy_accuracy"] == pytest.approx(2 / 3) and res["greedy_accuracy_lenient"] == pytest.approx(1.0)
    assert old["correct_lenient"] == 1.0  # filled in from the text
    assert res["pass@1"] == pytest.approx(0.0) and res["pass@1_lenient"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert res["pass@2_lenient"] == pytest.approx(2 / 3) and res["maj@2_lenient"] == pytest.approx(2 / 3)
    assert res["greedy_accuracy_ci95_lenient"][1] == 1.0


def test_lenient_scoring_never_credits_a_hack():
    """Lenient about where the answer stands, not about hedges: two answer blocks or two boxes
    (under the boxed format) earn nothing, though the last one is right."""
    from reasonlab.sampling import lenient_fields
    from reasonlab.tasks import get_task

    task = get_task("arithmetic")
    assert lenient_fields(task, "<think>x", "42")["correct_lenient"] == 0.0
    assert lenient_fields(task, "<think>6*7 = 42", "42")["correct_lenient"] == 1.0  # never closed: last number
    assert lenient_fields(task, "<answer>41</answer><answer>42</answer>", "42")["correct_lenient"] == 0.0
    hedge = r"<think>either \boxed{41} or \boxed{42}"
    assert lenient_fields(task, hedge, "42", answer_format="boxed")["correct_lenient"] == 0.0
    assert lenient_fields(task, r"<think>so \boxed{42}", "42", answer_format="boxed")["correct_lenient"] == 1.0
    assert lenient_fields(task, "<think>x</think><answer>42", "42")["correct_lenient"] == 1.0  # unclosed: no hedge
    q = "Tom has 40 apples and buys 2 more. How many apples?"
    assert lenient_fields(task, f"<think>{q} 42", "42", question=q)["correct_lenient"] == 0.0  # echoed question

"""The one sample-and-score path: every caller's record on hand-written completions (strict and
lenient verdicts, the vote key, format, per-reward values and their total, the samples-file row),
the prefill counted as part of the response, and the accuracy reward being the strict verdict."""

from __future__ import annotations

import json

import pytest

from reasonlab.rollout.base import Completion, RolloutEngine, SamplingParams
from reasonlab.sampling import sample
from reasonlab.tasks import Problem, get_task
from reasonlab.templates import BUILTIN


class Scripted(RolloutEngine):
    """Returns the scripted texts for each prompt, whatever was asked; records the prompts."""

    tokenizer = None

    def __init__(self, texts: list[str]):
        self.texts, self.prompts = texts, []

    def prompt(self, template, task, problem):
        return f"Q: {problem.question}\nA: "

    def generate(self, prompts, params):
        self.prompts += prompts
        return [[Completion(t, list(range(len(t.split()))), "stop", 5, prompt_ids=[7, 8]) for t in self.texts]
                for _ in prompts]


TEXTS = ["<think>\n6*7=42\n</think>\n<answer>42</answer>",  # right, well formed
         "<think>\n6*7=41\n</think>\n<answer>41</answer>",  # wrong, well formed
         "6*7 is 42",  # right only leniently: no tags
         "<answer>42</answer><answer>41</answer>"]  # a hedge: wrong both ways


def test_every_completion_is_scored_strictly_and_leniently_with_its_rewards():
    task, template = get_task("arithmetic"), BUILTIN["chat-think"]
    problem = Problem("p0", "What is 6*7?", "42")
    engine = Scripted(TEXTS)
    [g] = sample(engine, template, task, [problem], SamplingParams(32, n=4), rewards={"accuracy": 1.0, "format": 0.5})
    assert g.problem is problem and g.prompt == engine.prompts[0] and g.prompt_ids == [7, 8]
    assert [s.correct for s in g.completions] == [1.0, 0.0, 0.0, 0.0]
    assert [s.correct_lenient for s in g.completions] == [1.0, 0.0, 1.0, 0.0]
    assert [s.format for s in g.completions] == [1.0, 1.0, 0.0, 0.0]
    assert [s.key for s in g.completions][:2] == ["42", "41"]
    assert [s.rewards for s in g.completions][:2] == [{"accuracy": 1.0, "format": 1.0}, {"accuracy": 0.0, "format": 1.0}]
    assert g.reward == [1.5, 0.5, 0.0, 0.0] and g.per_reward["format"] == [1.0, 1.0, 0.0, 0.0] and g.has_signal
    row = g.completions[2].row("p0")
    assert list(row)[:9] == ["problem", "text", "tokens", "prompt_tokens", "finish", "answer", "key", "correct", "format"]
    assert row["correct"] == 0.0 and row["correct_lenient"] == 1.0 and row["tokens"] == 3 and row["prompt_tokens"] == 5


def test_the_prefill_is_part_of_the_scored_response_and_lenient_can_be_left_out():
    task, template = get_task("arithmetic"), BUILTIN["r1-zero"]
    assert template.prefill == " <think>"  # the template opens the think block itself
    engine = Scripted(["6*7=42 </think> <answer>42</answer>"])
    [g] = sample(engine, template, task, [Problem("p0", "What is 6*7?", "42")], SamplingParams(32), lenient=False)
    [s] = g.completions
    assert s.response == template.prefill + engine.texts[0] and s.correct == 1.0 and s.format == 1.0
    assert s.correct_lenient is None and s.rewards == {} and s.reward is None and not g.has_signal


@pytest.mark.parametrize("right", [True, False])
def test_partial_credit_is_kept_for_tasks_that_have_it(right):
    task = get_task("gym:leg_counting")  # reasoning-gym scores answers itself (1.0 right, less when not)
    [problem] = task.problems("eval", 1, 0)
    gold = json.loads(problem.answer)["answer"]
    text = f"<think>\ncount\n</think>\n<answer>{gold if right else int(gold) + 1}</answer>"
    [g] = sample(Scripted([text]), BUILTIN["chat-think"], task, [problem], SamplingParams(32))
    s = g.completions[0]
    assert s.correct == (1.0 if right else 0.0) and s.key == (gold if right else str(int(gold) + 1))
    assert (s.score == 1.0) == right and s.row(problem.id)["score"] == s.score


def test_every_config_that_samples_shares_one_sampling_block_and_its_top_p_reaches_the_engine(tmp_path):
    """The sampling settings are declared once (`Sampling`): each config that samples inherits
    them with the one help text, and what it sets reaches the engine: a traces run at top_p 0.9
    and temperature 0.7 asks the engine for exactly that (before, only GRPO and evaluation could)."""
    import dataclasses

    from reasonlab.evaluation.evaluate import EvalConfig
    from reasonlab.pipeline.recipe import EvalSpec
    from reasonlab.rl.config import GRPOConfig
    from reasonlab.rollout.options import HELP, Sampling
    from reasonlab.scaling.rm import RMConfig
    from reasonlab.scaling.scale import ScaleConfig
    from reasonlab.sft.traces import TracesConfig, generate_traces

    for cls in (GRPOConfig, EvalConfig, EvalSpec, ScaleConfig, RMConfig, TracesConfig):
        assert issubclass(cls, Sampling), cls
        helps = {f.name: f.metadata["help"] for f in dataclasses.fields(cls)}
        assert all(helps[name].startswith(text) for name, text in HELP.items()), cls
    asked = []

    class Recording(Scripted):
        def generate(self, prompts, params):
            asked.append(params)
            return super().generate(prompts, params)

    cfg = TracesConfig(teacher="teacher-dir", n=2, samples=3, out=str(tmp_path / "t.jsonl"), template="tiny",
                       temperature=0.7, top_p=0.9, max_new_tokens=12)
    generate_traces(cfg, engine=Recording(TEXTS), log=lambda m: None)
    assert [(p.temperature, p.top_p, p.max_new_tokens, p.n) for p in asked] == [(0.7, 0.9, 12, 3)]

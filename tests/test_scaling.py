"""Inference-time scaling: votes on hand-made answer lists, the adaptive stopping rule, beam
search and DVTS on a fake model with a fake PRM whose best path is known, budget forcing on a
fake model (the cap is exact, "Wait" goes in W times), and `reasonlab scale` / `rm train` end to
end on a tiny real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from reasonlab.errors import ReasonlabError
from reasonlab.rollout.base import Completion, RolloutEngine
from reasonlab.scaling.beam import search
from reasonlab.scaling.budget import FORCE_END, budget_force
from reasonlab.scaling.select import best_of, can_stop, oracle, vote


def test_votes_ties_and_unparseable_answers():
    s = [{"key": "7"}, {"key": None}, {"key": "9"}, {"key": "9"}, {"key": "7"}]
    assert vote(s)["key"] == "7"  # 2-2 tie: the answer seen first
    assert vote([{"key": None}, {"key": None}]) is None
    w = [{"key": "7", "reward": 0.1}, {"key": "9", "reward": 0.3}, {"key": "7", "reward": 0.1}, {"key": None, "reward": 5}]
    assert vote(w, "reward")["key"] == "9"  # 0.3 > 0.2; the unparseable answer's weight does not count
    assert vote([{"key": "7", "reward": -1.0}, {"key": "9", "reward": 0.0}], "reward")["key"] == "7"  # no positive weight: first
    assert best_of([{"r": None}, {"r": 0.2, "id": 1}, {"r": 0.9, "id": 2}], "r")["id"] == 2
    assert oracle([{"correct": False}, {"correct": True, "id": 1}])["id"] == 1
    assert oracle([{"correct": False, "id": 0}])["id"] == 0


def test_adaptive_rule_stops_exactly_when_the_leader_is_safe():
    assert not can_stop(["4"], budget=3)  # 1 vs 0 with 2 left
    assert can_stop(["4", "4"], budget=3)  # 2 vs 0 with 1 left
    assert not can_stop(["4", "4", "5", None], budget=6)  # 2 vs 1 with 2 left: a tie is possible
    assert not can_stop(["4", "4", "4", "5"], budget=6)  # 3 vs 1 with 2 left: a tie is still possible
    assert can_stop(["4", "4", "4", "5"], budget=5)  # 3 vs 1 with 1 left


class LuckyPool(RolloutEngine):
    """For every prompt, 64 samples: the first 16 give the right answer, the other 48 one wrong
    answer; a single draw of 16 sees only the lucky ones."""

    n_params = 10

    def __init__(self, answers: dict[str, str]):
        self.answers = answers

    def prompt(self, template, task, problem):
        return task.prompt(problem)

    def generate(self, prompts, params):
        right = lambda p, k: self.answers[p] if k < 16 else str(int(self.answers[p]) + 1)  # noqa: E731
        return [[Completion(f"<answer>{right(p, k)}</answer>", [1, 2], "stop", 3, [-0.1, -0.1]) for k in range(params.n)]
                for p in prompts]


def test_each_budget_is_the_mean_over_random_subsets_of_the_pool():
    from reasonlab.scaling.methods import METHODS
    from reasonlab.scaling.scale import Context, ScaleConfig
    from reasonlab.tasks import get_task

    task = get_task("arithmetic")
    engine = LuckyPool({task.prompt(p): p.answer for p in task.problems("eval", 5, 0)})
    one_draw = Context(ScaleConfig(model="fake", n=5, budgets=[1, 16], pool=0, resamples=1, template="tiny"), engine)
    assert [p["accuracy"] for p in METHODS["self-consistency"](one_draw)["self-consistency"]] == [1.0, 1.0]
    pooled = Context(ScaleConfig(model="fake", n=5, budgets=[1, 16], pool=64, resamples=200, template="tiny"), engine)
    b1, b16 = METHODS["self-consistency"](pooled)["self-consistency"]
    assert b1["accuracy"] == pytest.approx(0.25, abs=0.05)  # 16 of 64 samples are right
    assert b16["accuracy"] < 0.05  # and the wrong answer wins a vote of 16 almost always
    assert b16["tokens_per_problem"] == pytest.approx(16 * 2) and b1["tokens_per_problem"] == pytest.approx(2)
    oracle16 = METHODS["best-of-n"](pooled)["best-of-n:oracle"][1]
    assert oracle16["accuracy"] > 0.95  # a right sample is in nearly every subset of 16
    with pytest.raises(ReasonlabError, match="pool: 8 samples cannot give budget 16"):
        ScaleConfig(model="m", budgets=[1, 16], pool=8).validate()


class StepModel(RolloutEngine):
    """Each step offers the lines "good" and "bad" (alternating over the n samples); after three
    lines the completion ends with the count of good lines as the answer."""

    n_params = 10

    def prompt(self, template, task, problem):
        return task.prompt(problem)

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            body = p.split("Q:", 1)[1]
            group = []
            for k in range(params.n):
                if body.count("\n") >= 3:
                    text = f"<answer>{body.count('good')}</answer>"
                else:
                    text = ("good" if k % 2 == 0 else "bad") + "\n"
                group.append(Completion(text, [1] * len(text.split()), "stop", 3))
            out.append(group)
        return out


def test_beam_search_and_dvts_follow_the_prm_to_the_known_best_path():
    prm = lambda texts: [t.count("good") - t.count("bad") for t in texts]  # noqa: E731
    for diverse in (False, True):
        [found] = search(StepModel(), ["Q:"], prm, budget=4, expansions=2, diverse=diverse, temperature=1.0)
        assert found.text == "good\ngood\ngood\n<answer>3</answer>"
        assert found.tokens > 0
    # an inverted PRM leads the search down the worst path: the PRM, not luck, chooses
    [worst] = search(StepModel(), ["Q:"], lambda ts: [t.count("bad") for t in ts], budget=2, expansions=2)
    assert worst.text == "bad\nbad\nbad\n<answer>0</answer>"


class Thinker(RolloutEngine):
    """Thinks in one-token steps "sK", closing `</think>` after 3 of them per call; answers 7."""

    n_params = 10

    def __init__(self):
        self.calls = []

    def prompt(self, template, task, problem):
        return task.prompt(problem)

    def generate(self, prompts, params):
        self.calls.append(params.max_new_tokens)
        out = []
        for p in prompts:
            if p.endswith("<answer>") or p.endswith("</think>") or p.endswith("</think>\n"):
                text, toks, finish = "7</answer>" if p.endswith("<answer>") else "\n<answer>7</answer>", 2, "stop"
            else:
                steps = min(3, params.max_new_tokens)
                text = "".join(f"s{i}\n" for i in range(steps))
                toks, finish = steps, "length"
                if steps < params.max_new_tokens:
                    text, toks, finish = text + "</think>", steps + 1, "stop"
            out.append([Completion(text, [1] * toks, finish, len(p))])
        return out


def test_budget_forcing_caps_exactly_and_waits_w_times():
    [capped] = budget_force(Thinker(), ["P"], cap=2)
    assert capped.thinking_tokens == 2 and capped.capped
    assert capped.text == "s0\ns1\n" + FORCE_END + "7</answer>"
    [free] = budget_force(Thinker(), ["P"], cap=10)
    assert not free.capped and free.thinking_tokens == 4 and free.text.endswith("</think>\n<answer>7</answer>")
    engine = Thinker()
    [waited] = budget_force(engine, ["P"], waits=2, max_tokens=100)
    assert waited.waits == 2 and waited.text.count("Wait") == 2 and waited.thinking_tokens == 12
    assert waited.text.count("</think>") == 1 and waited.text.endswith("<answer>7</answer>")
    [both] = budget_force(Thinker(), ["P"], cap=6, waits=3)  # the cap wins over further waits
    assert both.thinking_tokens == 6 and both.capped and both.waits == 1


def test_scale_cli_writes_points_plot_and_compute_matched_table(pretrained_dir, tmp_path):
    out = tmp_path / "scale"
    proc = run_cli("scale", "--model", str(pretrained_dir), "--method", "cot,self-consistency,best-of-n,budget",
                   "--budget", "4", "--n", "6", "--out", str(out), "max_new_tokens=12", "caps=4,8", "waits=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "scale.json").read_text())
    curves = result["methods"]
    assert {"cot:direct", "cot:zero-shot", "cot:think", "cot:few-shot", "self-consistency",
            "self-consistency:adaptive", "best-of-n:oracle", "best-of-n:logprob", "weighted-majority",
            "budget:cap", "budget:wait"} <= set(curves)
    assert [p["budget"] for p in curves["self-consistency"]] == [1, 2, 4]
    for fixed, adaptive, best in zip(curves["self-consistency"], curves["self-consistency:adaptive"],
                                     curves["best-of-n:oracle"]):
        assert adaptive["tokens_per_problem"] <= fixed["tokens_per_problem"]
        assert best["accuracy"] >= fixed["accuracy"]  # the oracle is an upper bound of the vote
        assert fixed["flops_per_problem"] > 0
    assert [p["budget"] for p in curves["budget:cap"]] == [4, 8]
    assert curves["budget:cap"][0]["thinking_tokens_per_problem"] <= 4
    assert (out / "scaling.png").stat().st_size > 1000 and result["compute_matched"]


def test_rm_train_orm_and_prm_then_beam_and_orm_best_of_n(pretrained_dir, tmp_path):
    for kind in ("orm", "prm"):
        proc = run_cli("rm", "train", "--model", str(pretrained_dir), "--kind", kind, "--out", str(tmp_path / kind),
                       "n=6", "heldout=4", "samples=2", "mc_rollouts=2", "max_new_tokens=10", "epochs=1")
        assert proc.returncode == 0, proc.stderr[-2000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert summary["train_examples"] >= 12 and (summary["heldout_auc"] is None or 0 <= summary["heldout_auc"] <= 1)
        assert (tmp_path / kind / "final" / "config.json").exists()
    if True:  # prm examples include step prefixes, so there are more of them than completions
        assert json.loads((tmp_path / "prm" / "final" / "reasonlab_train.json").read_text())["train_examples"] >= 12
    out = tmp_path / "scale"
    proc = run_cli("scale", "--model", str(pretrained_dir), "--method", "beam,best-of-n", "--budget", "4", "--n", "3",
                   "--out", str(out), f"orm={tmp_path / 'orm' / 'final'}", f"prm={tmp_path / 'prm' / 'final'}",
                   "max_new_tokens=8", "expansions=2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    curves = json.loads((out / "scale.json").read_text())["methods"]
    assert [p["budget"] for p in curves["beam"]] == [2, 4] and [p["budget"] for p in curves["dvts"]] == [2, 4]
    orm, plain = curves["best-of-n:orm"][-1], curves["best-of-n:logprob"][-1]
    assert orm["tokens_per_problem"] > plain["tokens_per_problem"]  # the ORM's reading is counted


def test_beam_without_a_prm_is_a_one_line_error(pretrained_dir, tmp_path):
    proc = run_cli("scale", "--model", str(pretrained_dir), "--method", "beam", "--out", str(tmp_path))
    assert proc.returncode == 2 and "prm: beam search needs a process reward model" in proc.stderr


@pytest.mark.parametrize("scores, labels, expected", [([0.9, 0.1], [1, 0], 1.0), ([0.1, 0.9], [1, 0], 0.0),
                                                      ([0.3, 0.3, 0.5], [1, 0, 0], 0.25)])
def test_auc(scores, labels, expected):
    from reasonlab.scaling.rm import auc

    assert auc(scores, labels) == expected


def test_budget_method_extends_with_the_configured_wait_word(monkeypatch):
    """`wait_word` reaches the forced text: a student trained on other reflection words can be
    pushed to think on with its own words, not s1's "Wait"."""
    from types import SimpleNamespace

    from reasonlab.scaling import methods as methods_mod
    from reasonlab.scaling.methods import METHODS
    from reasonlab.scaling.scale import ScaleConfig

    seen = []

    def forcing(engine, prompts, **kw):
        seen.append(kw)
        return budget_force(engine, prompts, **kw)

    monkeypatch.setattr(methods_mod, "budget_force", forcing)
    cfg = ScaleConfig(model="m", caps=[4], waits=[2], wait_word="from the start", max_new_tokens=100)
    ctx = SimpleNamespace(engine=Thinker(), prompts=["P"], cfg=cfg, rm_params=0,
                          score=lambda i, text, c: {"correct": text.count("from the start") == 2})
    curves = METHODS["budget"](ctx)
    assert [k.get("wait_word") for k in seen] == ["from the start"] * 2
    assert curves["budget:wait"][0]["accuracy"] == 1.0 and curves["budget:cap"][0]["accuracy"] == 0.0
    with pytest.raises(ReasonlabError, match="wait_word"):
        ScaleConfig(model="m", wait_word=" ").validate()


class ThinksWhenPrefilled(RolloutEngine):
    """Right (with its reasoning) when the turn opens with `<think>`, a wrong bare answer
    otherwise: a base model whose best prompt is the prefill. Counts the prompts it decodes."""

    n_params = 10

    def __init__(self, answers: dict[str, str]):
        self.answers, self.decoded = answers, 0

    def prompt(self, template, task, problem):
        return task.prompt(problem) + template.prefill

    def generate(self, prompts, params):
        self.decoded += len(prompts)
        out = []
        for p in prompts:
            q = p.removesuffix("<think>\n").removesuffix("<answer>")
            ans = self.answers.get(q, "1")  # few-shot prompts: not a question it knows
            text = f"{ans}={ans}</think>\n<answer>{ans}</answer>" if p.endswith("<think>\n") else "<answer>0</answer>"
            out.append([Completion(text, [1, 2], "stop", 3, [-0.1, -0.1]) for _ in range(params.n)])
        return out


def test_methods_sample_the_prefilled_prompt_and_greedy_of_it_is_their_baseline(tmp_path):
    """With `prefill`, greedy and every method read the prefilled prompt (here all right), while
    the cot curves still compare the model's own prompts without it (zero-shot: all wrong); with
    no prefill the greedy baseline and cot's zero-shot are one decode, the same point."""
    from reasonlab.scaling.scale import ScaleConfig, run_scale
    from reasonlab.tasks import get_task

    task = get_task("arithmetic")
    answers = {task.prompt(p): p.answer for p in task.problems("eval", 4, 0)}
    cfg = dict(model="fake", n=4, budgets=[1, 2], pool=2, template="tiny", method="cot,self-consistency")
    engine = ThinksWhenPrefilled(answers)
    got = run_scale(ScaleConfig(**cfg, prefill="<think>\n", out=str(tmp_path / "a")), engine, log=lambda m: None)
    acc = {c: [p["accuracy"] for p in pts] for c, pts in got["methods"].items()}
    assert acc["greedy"] == [1.0] and acc["self-consistency"] == [1.0, 1.0]
    assert acc["cot:zero-shot"] == [0.0] and acc["cot:direct"] == [0.0] and acc["cot:think"] == [1.0]
    assert got["prefill"] == "<think>\n" and list(got["methods"])[0] == "greedy"
    engine = ThinksWhenPrefilled(answers)
    got = run_scale(ScaleConfig(**cfg, out=str(tmp_path / "b")), engine, log=lambda m: None)
    assert got["methods"]["greedy"] == got["methods"]["cot:zero-shot"] and got["methods"]["greedy"][0]["accuracy"] == 0.0
    # greedy once (4), direct, think and few-shot (4 each), the pool of 2 per problem (one call of 4 prompts)
    assert engine.decoded == 4 + 3 * 4 + 4


def test_rm_training_killed_after_a_checkpoint_resumes_without_rolling_out_again(pretrained_dir, tmp_path, monkeypatch):
    """Reward-model training runs on the shared trainer: the labelled rollouts are written once
    (examples.json), and a run killed after its step-2 checkpoint, started again with resume,
    reads them back instead of rolling out and ends with the same weights, bit for bit, as a
    run never stopped."""
    import reasonlab.scaling.rm as rm
    from reasonlab.scaling.rm import RMConfig, RMTrainer, train_rm

    settings = dict(model=str(pretrained_dir), n=6, heldout=2, samples=2, max_new_tokens=8, epochs=2, batch_size=4,
                    save_every=2, tensorboard=False)
    whole = train_rm(RMConfig(out=str(tmp_path / "whole"), **settings), log=lambda *_: None)
    step = RMTrainer.train_step

    def killed_at_3(self):
        if self.step == 2:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(RMTrainer, "train_step", killed_at_3)
    with pytest.raises(KeyboardInterrupt):
        train_rm(RMConfig(out=str(tmp_path / "cut"), **settings), log=lambda *_: None)
    monkeypatch.setattr(RMTrainer, "train_step", step)
    monkeypatch.setattr(rm, "label_rollouts", lambda *a, **k: pytest.fail("rolled out again"))
    again = train_rm(RMConfig(out=str(tmp_path / "cut"), resume=True, **settings), log=lambda *_: None)
    weights = lambda d: (Path(d) / "final" / "model.safetensors").read_bytes()  # noqa: E731
    assert weights(tmp_path / "cut") == weights(tmp_path / "whole")
    assert again["train_examples"] == whole["train_examples"] == 12 and again["last_loss"] == whole["last_loss"]
    assert again["method"] == "rm" and again["steps"] == 6  # 2 epochs of 12 examples, 4 a step
    with pytest.raises(ReasonlabError, match=r"examples.json: rolled out with other samples, temperature;"):
        train_rm(RMConfig(out=str(tmp_path / "cut"), resume=True, **{**settings, "samples": 3, "temperature": 0.5}))


def test_rm_training_warms_up_its_learning_rate_and_refuses_a_negative_clip(pretrained_dir, tmp_path):
    from reasonlab.scaling.rm import RMConfig, train_rm

    settings = dict(model=str(pretrained_dir), n=4, heldout=2, samples=2, max_new_tokens=8, batch_size=4, steps=3,
                    lr=1e-3, tensorboard=False, out=str(tmp_path / "rm"))
    with pytest.raises(ReasonlabError, match="grad_clip, warmup_steps, max_minutes: must be >= 0"):
        train_rm(RMConfig(grad_clip=-1.0, **settings))
    train_rm(RMConfig(warmup_steps=2, **settings), log=lambda *_: None)
    rows = [json.loads(x) for x in (tmp_path / "rm" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == pytest.approx([5e-4, 1e-3, 1e-3])

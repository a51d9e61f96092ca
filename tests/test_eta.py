"""The pipeline's ETA: work per stage from its config, default rates on a first run, rates learned
from the run directory's earlier stages afterwards, and no guess for a model the defaults
cannot speak for."""

from __future__ import annotations

import pytest

from reasonlab.pipeline import eta
from reasonlab.pipeline.eta import time_left
from reasonlab.pipeline.plan import plan as make_plan
from reasonlab.pipeline.recipe import load_pipeline


def test_first_run_of_the_default_recipe_gets_an_eta_near_its_measured_time(tmp_path):
    plan = make_plan(load_pipeline("recipes/pipeline.yaml", overrides=[f"out={tmp_path}"])).stages
    seconds, unknown = time_left(plan, {})
    assert unknown == 0
    assert 12 * 60 < seconds < 30 * 60  # measured: 19 min 23 s on 2 cores
    by_name = {p.spec.name: p for p in plan}
    # sizes follow the references: the mini student and what trains it are smaller than the base
    assert by_name["student_base"].params < by_name["base"].params
    assert by_name["student_rl"].params == by_name["student_base"].params
    assert by_name["r1_zero"].params == by_name["base"].params
    assert all(p.eval_units > 0 for p in plan if p.spec.kind in ("pretrain", "sft", "grpo"))
    quick = make_plan(load_pipeline("recipes/pipeline.yaml", quick=True, overrides=[f"out={tmp_path}"])).stages
    assert time_left(quick, {})[0] < 60


def test_rates_learned_from_earlier_stages_replace_the_defaults():
    history = {"a": {"kind": "grpo", "units": 1000.0, "seconds": 30.0},
               "b": {"kind": "grpo", "units": 3000.0, "seconds": 10.0},
               "old": 12.5,  # the format before units were recorded: ignored
               "c": {"kind": "sft", "units": 0.0, "seconds": 99.0}}  # a resumed stage: no rate sample
    rates = eta.learned_rates(history)
    assert rates == {"grpo": pytest.approx(0.01)}
    assert eta.estimate("grpo", 500.0, 1e6, rates) == pytest.approx(5.0)
    assert eta.estimate("sft", 100.0, 1e6, rates) == pytest.approx(100 * eta.DEFAULT_RATES["sft"] + eta.OVERHEAD)
    # a kind not yet timed here: its default, times the machine's speed factor
    assert eta.estimate("sft", 100.0, 1e6, rates, 3.0) == pytest.approx(300 * eta.DEFAULT_RATES["sft"] + eta.OVERHEAD)
    # stages too small for a rate (mostly loading and saving) do not make a speed factor
    assert eta.machine_factor(history) == 1.0


def test_a_slow_machine_is_seen_after_its_first_stage(tmp_path):
    """On a CPU 3.5x slower than the defaults' (measured: an AVX2 EPYC, base pretraining 1268 s
    where the defaults say ~330 s), once the base is timed the rest of the run is estimated 3.5x
    longer too, while journey's fixed seconds stay fixed."""
    plan = make_plan(load_pipeline("recipes/pipeline.yaml", overrides=[f"out={tmp_path}"])).stages
    base = next(p for p in plan if p.spec.name == "base")
    history = {"base": {"kind": "pretrain", "units": base.units, "seconds": 3.5 * eta.DEFAULT_RATES["pretrain"] * base.units}}
    default_rest, _ = time_left(plan, {}, done={"base"})
    slow_rest, _ = time_left(plan, history, done={"base"})
    assert slow_rest == pytest.approx(3.5 * default_rest, rel=0.03)  # the fixed overheads aside
    assert eta.estimate("journey", 1.0, 1e6, eta.learned_rates(history)) == eta.estimate("journey", 1.0, 1e6, {})


def test_a_stage_timed_beside_another_teaches_the_rate_it_would_run_at_alone(tmp_path):
    """`workers: 2` records its stages as shared: their rates and the machine's speed factor are
    those of the stage alone, and an estimate for a side-by-side run puts the slowdown back (the
    first ETA of the default recipe at `workers: 2` had said 11:26 for a run of 17:11)."""
    units = 1e13  # ~780 s by the default pretraining rate
    alone = 2.0 * eta.DEFAULT_RATES["pretrain"] * units  # a CPU half as fast as the defaults'
    history = eta.record_time(tmp_path, "base", "pretrain", eta.SIDE_BY_SIDE * alone, units, shared=True)
    assert history == eta.load_times(tmp_path) and history["base"]["shared"] is True
    sequential = {"base": {"kind": "pretrain", "units": units, "seconds": alone}}
    assert eta.learned_rates(history) == pytest.approx(eta.learned_rates(sequential))
    assert eta.machine_factor(history) == pytest.approx(eta.machine_factor(sequential)) == pytest.approx(2.0)
    rates, speed = eta.learned_rates(history), eta.machine_factor(history)
    assert eta.estimate("pretrain", units, 1e6, rates, speed) == pytest.approx(alone)
    assert eta.estimate("pretrain", units, 1e6, rates, speed, shared=True) == pytest.approx(eta.SIDE_BY_SIDE * alone)
    grpo = eta.SIDE_BY_SIDE * 2.0 * eta.DEFAULT_RATES["grpo"] * 1e12 + eta.OVERHEAD
    assert eta.estimate("grpo", 1e12, 1e6, rates, speed, shared=True) == pytest.approx(grpo)
    assert eta.estimate("journey", 1.0, 1e6, rates, speed, shared=True) == eta.estimate("journey", 1.0, 1e6, {})


def test_a_big_model_is_never_timed_until_its_kind_has_run():
    assert eta.estimate("grpo", 1e15, 7e9, {}) is None
    assert eta.estimate("grpo", 1e15, 7e9, {"grpo": 1e-14}) == pytest.approx(10.0)
    assert eta.estimate("grpo", 1e12, None, {}) == pytest.approx(1e12 * eta.DEFAULT_RATES["grpo"] + eta.OVERHEAD)


def test_model_params_come_from_config_json(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100}')
    assert eta.model_params(str(tmp_path), {}) == 2 * 12 * 64 * 64 + 100 * 64
    assert eta.model_params("nowhere", {"nowhere": 5.0}) == 5.0
    assert eta.model_params("nowhere", {}) is None


def test_stages_done_in_this_run_leave_only_their_evaluations(tmp_path):
    plan = make_plan(load_pipeline("recipes/pipeline.yaml", overrides=[f"out={tmp_path}"])).stages
    everything, _ = time_left(plan, {})
    evals_only, _ = time_left(plan, {}, done={p.spec.name for p in plan})
    expected = sum(eta.estimate("eval", p.eval_units, p.params, {}) for p in plan if p.eval_units)
    assert evals_only == pytest.approx(expected) and 0 < evals_only < everything / 5


def test_a_model_made_earlier_in_the_run_is_counted_at_its_real_size_once_it_exists(tmp_path):
    """A stage whose model an earlier stage makes (a converted model) has no size when planned.
    Its time teaches no rate while the size is unknown, and once the model exists its work is
    counted in its parameters, so the rate it teaches predicts a model of another size: here a
    GRPO run of 60 s on a P-parameter model predicts 60 * Q / P s for a Q-parameter one with the
    same settings (recorded with the 1e6 placeholder, a real model's later stages were estimated
    hundreds of times too long)."""
    from reasonlab.pipeline.run import Work

    model = tmp_path / "teacher"
    work = Work("teacher", "grpo", 1000.0 * 1e6, None, True, str(model), lambda n: 1000.0 * n)
    assert work.sized().params is None and work.recorded_units() == 0.0  # not made yet: no rate
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100}')
    p = 2 * 12 * 64 * 64 + 100 * 64
    assert work.sized().params == p and work.units == 1000.0 * p and work.recorded_units() == 1000.0 * p
    history = eta.record_time(tmp_path, "teacher", "grpo", 60.0, work.recorded_units())
    q = 4 * p
    assert eta.estimate("grpo", 1000.0 * q, q, eta.learned_rates(history)) == pytest.approx(60.0 * q / p)
    resumed = Work("teacher", "grpo", 1000.0 * p, p, False, str(model), lambda n: 1000.0 * n)
    assert resumed.recorded_units() == 0.0  # a resumed stage's tail teaches no rate


def test_a_converted_model_is_sized_from_its_gguf_header_before_it_exists(smollm2_dir):
    """A plan knows a packaged model's size before converting it (the GGUF header's tensor
    sizes, a tied matrix once), equal to the converted directory's exact count; so a real model's
    later stages are "never timed" until one of their kind has run, not estimated at the tiny
    world's rates, while the conversion itself keeps its fixed estimate."""
    from reasonlab.convert import ConvertConfig, converted_params

    n = converted_params(ConvertConfig(gguf="packaged", out="unused"))
    assert n == eta.safetensors_params(smollm2_dir) == eta.model_params(str(smollm2_dir), {}) == 134_515_008
    assert eta.estimate("grpo", 1e12, n, {}) is None
    assert eta.estimate("convert", 1.0, n, {}) == pytest.approx(eta.DEFAULT_RATES["convert"] + eta.OVERHEAD)


def test_a_time_budget_caps_a_stage_estimate(tmp_path):
    """A trainer stage with `max_minutes` is estimated at no more than its budget (the budget itself
    for a model never timed)."""
    plan = make_plan(load_pipeline("recipes/pipeline.yaml", overrides=[f"out={tmp_path}"])).stages
    r1 = next(p for p in plan if p.spec.name == "r1_zero")
    free = eta.estimate(r1.spec.kind, r1.units, r1.params, {})
    r1.config.max_minutes = free / 60 / 4
    evals = sum(eta.estimate("eval", p.eval_units, p.params, {}) for p in plan if p.eval_units)
    stages, _ = time_left(plan, {})
    assert stages - evals == pytest.approx(sum(eta.estimate(p.spec.kind, p.units, p.params, {}) for p in plan)
                                           - free * 3 / 4)
    assert eta.budgeted(eta.estimate("grpo", 1e15, 7e9, {}), 3600.0) == 3600.0


def test_a_budgeted_stage_is_timed_but_teaches_no_rate(tmp_path):
    """Its work was counted from `steps`, which the budget may cut short: its seconds are recorded,
    its units are not (so no rate is learned from them)."""
    import json

    from reasonlab.pipeline.run import execute

    recipe = tmp_path / "r.yaml"
    pre = "{preset: test, steps: 6, batch_size: 4, seq_len: 64, vocab_size: 300, tensorboard: false"
    recipe.write_text(f"out: {tmp_path / 'run'}\neval: {{n: 2, samples: 0, max_new_tokens: 4}}\nstages:\n"
                      f"  - {{name: a, kind: pretrain, config: {pre}}}}}\n"
                      f"  - {{name: b, kind: pretrain, config: {pre}, seed: 1, max_minutes: 60}}}}\n")
    execute(make_plan(load_pipeline(str(recipe))), log=lambda m: None)
    times = json.loads((tmp_path / "run" / "stage_times.json").read_text())
    assert times["a"]["units"] > 0 and times["b"]["units"] == 0 and times["b"]["seconds"] > 0

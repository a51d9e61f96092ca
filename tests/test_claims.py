"""Claims judged by paired statistics: the bootstrap, the verdicts, the per-problem outcomes read
from evaluation files and scaling points, and the report's claim records."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from reasonlab.evaluation.metrics import paired_bootstrap, paired_difference
from reasonlab.pipeline import claims
from reasonlab.pipeline.plan import StageState
from reasonlab.pipeline.recipe import Comparison, PipelineConfig, StageSpec
from reasonlab.pipeline.results import ModelRow, check_claims
from reasonlab.pipeline.stages import Result


def _row(stage: str, train_flops: float, eval_file: str, sampling_flops: float = 0.0) -> ModelRow:
    """A results row with only what claims read (the rest zero)."""
    return ModelRow(stage, stage, "sft", 0.0, [0.0, 0.0], None, None, None, None, None, 0, 0, 0.0, 0.0, 0.0,
                    train_flops, 0.0, 0.0, 0.0, eval_file, sampling_flops)


def test_paired_bootstrap_matches_the_normal_approximation_on_a_large_sample():
    rng = random.Random(3)
    a = [float(rng.random() < 0.45) for _ in range(400)]
    b = [x if rng.random() < 0.8 else 1.0 - x for x in a]  # 20% of problems flip: discordant pairs
    diff, lo, hi = paired_bootstrap(a, b)
    ndiff, nlo, nhi = paired_difference(b, a)  # that one is b - a of its own arguments
    assert diff == pytest.approx(sum(a) / 400 - sum(b) / 400)
    assert diff == pytest.approx(ndiff, abs=1e-3)
    assert lo == pytest.approx(nlo, abs=0.006) and hi == pytest.approx(nhi, abs=0.006)
    assert paired_bootstrap(a, b) == (diff, lo, hi)  # seeded: the same inputs, the same interval


def test_paired_intervals_are_far_tighter_than_separate_ones():
    """Two models that agree on 90% of 400 problems and differ by 6 points: the paired interval
    excludes zero although the two Wilson intervals overlap (the issue's complaint)."""
    from reasonlab.evaluation.metrics import wilson_interval

    a = [1.0] * 160 + [1.0] * 32 + [0.0] * 8 + [0.0] * 200  # 48% right
    b = [1.0] * 160 + [0.0] * 32 + [1.0] * 8 + [0.0] * 200  # 42% right; 40 discordant problems
    diff, lo, hi = paired_bootstrap(a, b)
    assert diff == pytest.approx(0.06) and lo > 0.02
    (alo, _), (_, bhi) = wilson_interval(192, 400), wilson_interval(168, 400)
    assert alo < bhi  # the separate intervals overlap


@pytest.mark.parametrize("values,verdict", [((0.1, 0.02, 0.18), "holds"), ((-0.1, -0.18, -0.02), "reversed"),
                                            ((0.02, -0.03, 0.07), "not shown"), ((0.0, 0.0, 0.0), "not shown")])
def test_verdicts(values, verdict):
    assert claims.judge(*values) == (verdict == "holds", verdict)


def _samples(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in [{"_header": {}}] + rows) + "\n")
    return path


def test_model_outcomes_read_greedy_vote_and_pass(tmp_path):
    f = _samples(tmp_path / "m.samples.jsonl", [
        {"problem": "p0", "kind": "greedy", "correct": 1.0, "key": "5"},
        {"problem": "p0", "kind": "sample", "correct": 0.0, "key": "4"},
        {"problem": "p0", "kind": "sample", "correct": 0.0, "key": "4"},
        {"problem": "p0", "kind": "sample", "correct": 1.0, "key": "5"},
        {"problem": "p1", "kind": "greedy", "correct": 0.0, "key": None},
        {"problem": "p1", "kind": "sample", "correct": 1.0, "key": "7"},
        {"problem": "p1", "kind": "sample", "correct": 0.0, "key": None},  # unparseable: no vote
    ])
    assert claims.model_outcomes(f, "greedy_accuracy") == {"p0": 1.0, "p1": 0.0}
    assert claims.model_outcomes(f, "maj_accuracy") == {"p0": 0.0, "p1": 1.0}
    assert claims.model_outcomes(f, "pass_at_k") == {"p0": 1.0, "p1": 1.0}


def _state(name, kind, products):
    return StageState(StageSpec(name=name, kind=kind), "h", set(), Result(products))


def test_check_claims_pairs_models_and_scaling_points_and_checks_compute(tmp_path):
    n = 60
    model_rows = []
    for name, right, flops in (("big", 45, 2e12), ("small", 30, 1e12)):  # big: right on 0..44, small on 0..29
        rows = [{"problem": f"p{i}", "kind": "greedy", "correct": float(i < right), "key": str(i)} for i in range(n)]
        model_rows.append(_row(name, flops, str(_samples(tmp_path / f"{name}.samples.jsonl", rows))))
    scale = tmp_path / "scale.json"
    point = lambda b, per: {"budget": b, "accuracy": sum(per) / n, "tokens_per_problem": 10.0 * b, "per_problem": per}  # noqa: E731
    scale.write_text(json.dumps({"model": "m", "problem_ids": [f"p{i}" for i in range(n)], "methods": {
        "greedy": [point(1, [1.0] * 10 + [0.0] * 50)],
        "self-consistency": [point(16, [0.5] * 60)]}}))
    cfg = PipelineConfig(stages=[StageSpec("big", "sft"), StageSpec("small", "sft"), StageSpec("scaling", "scale")],
                         compare=[Comparison("big", "small", "more is better"),
                                  Comparison("small", "big", "less is better"),
                                  Comparison("big", "small", "better at no more compute", at_most_compute=True),
                                  Comparison("scaling/self-consistency@16", "scaling/greedy@1", "voting helps"),
                                  Comparison("scaling/self-consistency@16", "big", "voting beats the big model")])
    states = {"scaling": _state("scaling", "scale", {"scale": str(scale)})}
    got = check_claims(cfg, model_rows, states)
    assert [c.verdict for c in got] == ["holds", "reversed", "not shown at equal compute (a used more FLOPs, training plus trace sampling)",
                                           "holds", "reversed"]
    first = got[0]
    assert set(first.to_json()) >= {"a", "b", "metric", "n", "diff", "ci95", "holds", "a_train_flops"}
    assert first.n == n and first.diff == pytest.approx(0.25) and first.ci95[0] > 0.1
    assert got[3].diff == pytest.approx(0.5 - 10 / 60, abs=1e-4) and got[3].costs["a_tokens_per_problem"] == 160
    assert claims.Claim.from_json(first.to_json()) == first
    assert "+25.0 points [" in claims.describe(first)


def test_equal_compute_counts_trace_sampling_unless_the_claim_says_not_to(tmp_path):
    """A distilled student: 5e13 FLOPs of SFT on traces that cost 4.4e13 to sample, right on 20 of
    40 problems; the RL student: 8e13 FLOPs, right on 10. Training alone, 5e13 <= 8e13; with the
    sampling, 9.4e13 > 8e13."""
    n = 40
    rows = []
    for name, right, flops, sampling in (("distilled", 20, 5e13, 4.4e13), ("rl", 10, 8e13, 0.0)):
        per = [{"problem": f"p{i}", "kind": "greedy", "correct": float(i < right), "key": str(i)} for i in range(n)]
        rows.append(_row(name, flops, str(_samples(tmp_path / f"{name}.samples.jsonl", per)), sampling))
    cfg = PipelineConfig(stages=[StageSpec("distilled", "sft"), StageSpec("rl", "grpo")], compare=[
        Comparison("distilled", "rl", "all compute", at_most_compute=True),
        Comparison("distilled", "rl", "training compute", at_most_compute=True, count_sampling=False)])
    total, training = check_claims(cfg, rows, {})
    assert total.costs == {"a_train_flops": 5e13, "a_sampling_flops": 4.4e13, "b_train_flops": 8e13, "b_sampling_flops": 0.0}
    assert (total.holds, total.verdict) == (False, "not shown at equal compute (a used more FLOPs, training plus trace sampling)")
    assert (training.holds, training.verdict) == (True, "holds") and training.diff == pytest.approx(0.25)
    assert training.cost("a") == "9.4e+13 FLOPs (4.4e+13 sampling traces)" and training.cost("b") == "8.0e+13 FLOPs"


def test_a_claim_on_a_model_never_evaluated_says_so(tmp_path):
    cfg = PipelineConfig(stages=[StageSpec("a", "sft"), StageSpec("b", "sft")], compare=[Comparison("a", "b", "x")])
    [c] = check_claims(cfg, [], {})
    assert c.verdict == "not evaluated (a has no evaluation; b has no evaluation)" and "holds" not in c.to_json()


def _seed_records(rng, gains, n=400):
    """Per-seed claim records of A vs B on n problems, A ahead by about `gain` on each seed."""
    outs = []
    for gain in gains:
        b = [float(rng.random() < 0.5) for _ in range(n)]
        a = [1.0 if (x == 0.0 and rng.random() < 2 * gain) else x for x in b]
        outs.append((a, b, claims.compare("c", "a", "b", "greedy_accuracy", dict(enumerate(a)), dict(enumerate(b)))))
    return outs


def test_pooled_interval_matches_a_bootstrap_stratified_by_seed():
    """Resampling problems within each seed and averaging the seeds' mean differences gives the
    interval `across_seeds` derives from the per-seed intervals."""
    import numpy as np

    outs = _seed_records(random.Random(5), [0.04, 0.03, 0.06])
    res = claims.across_seeds([rec.to_json() for _, _, rec in outs])
    rng = np.random.default_rng(0)
    means = np.zeros(4000)
    for a, b, _ in outs:
        d = np.asarray(a) - np.asarray(b)
        means += d[rng.integers(0, len(d), size=(4000, len(d)))].mean(axis=1) / len(outs)
    lo, hi = np.percentile(means, [2.5, 97.5])
    assert res["mean"] == pytest.approx(np.mean([np.mean(np.subtract(a, b)) for a, b, _ in outs]), abs=1e-3)
    assert res["pooled95"][0] == pytest.approx(lo, abs=0.006) and res["pooled95"][1] == pytest.approx(hi, abs=0.006)
    assert res["holds_pooled"] and res["pooled95"][1] - res["pooled95"][0] < outs[0][2].ci95[1] - outs[0][2].ci95[0]


def test_seed_interval_pays_for_the_spread_between_seeds():
    """Seeds that disagree (+9, 0, +19 points: the small student's distillation claim) leave the
    t interval wide across zero while the pooled one excludes it; two seeds use t(1) = 12.7."""
    recs = [{"diff": d, "ci95": [d - 0.045, d + 0.045]} for d in (0.09, 0.002, 0.188)]
    res = claims.across_seeds(recs)
    assert res["t95"][0] < 0 < res["t95"][1] and not res["holds_t"]
    assert res["holds_pooled"]
    two = claims.across_seeds(recs[:2])
    assert two["t95"][1] - two["mean"] == pytest.approx(12.706 * 0.0622 / 2 ** 0.5, abs=2e-3)
    assert claims.across_seeds(recs[:1]) is None
    assert claims.across_seeds([{"claim": "x", "verdict": "not evaluated"}] + recs[:1]) is None


def _results(tmp_path, name, diffs):
    run = tmp_path / name
    run.mkdir()
    claims = [{"claim": f"claim {i}", "a": "x", "b": "y", "metric": "greedy_accuracy", "n": 400, "diff": d,
               "ci95": [d - 0.04, d + 0.04], "holds": d - 0.04 > 0, "verdict": "holds" if d > 0.04 else "not shown"}
              for i, d in enumerate(diffs)]
    rows = [{"name": "base", "greedy_accuracy": 0.02 + diffs[0] / 10}]
    (run / "results.json").write_text(json.dumps({"claims": claims, "rows": rows, "cpu": "test cpu"}))
    return str(run)


def test_pipeline_results_compares_finished_runs_without_running_anything(tmp_path):
    """`bench/pipeline_results.py --runs` reads replicates run one by one (`reasonlab run seed=K`)."""
    runs = [_results(tmp_path, f"seed-{k}", d) for k, d in enumerate([(0.10, 0.05), (0.12, 0.0), (0.08, 0.06)])]
    bench = Path(__file__).resolve().parents[1] / "bench" / "pipeline_results.py"
    out = subprocess.run([sys.executable, str(bench), "--runs", *runs], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "claim 0: +10.0 [+6.0, +14.0] * | +12.0 [+8.0, +16.0] * | +8.0 [+4.0, +12.0] *  -> holds on 3/3" in out.stdout
    assert "-> holds on 2/3" in out.stdout  # claim 1 misses on seed 1
    assert "- base: 3.0 ± 0.2" in out.stdout  # 3.0, 3.2, 2.8
    assert out.stdout.rstrip().endswith("claims_held: 1/2")
    other = _results(tmp_path, "other", [0.1])
    bad = subprocess.run([sys.executable, str(bench), "--runs", runs[0], other], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "not the same recipe" in bad.stderr


def test_a_scaling_claim_is_judged_against_greedy_of_the_same_prompt(tmp_path):
    """Hand-made scaling results: greedy of the plain prompt 10/60, greedy of the prefilled prompt
    the vote sampled from 40/60, the vote 45/60. Left without a b, the vote's claim picks its
    stage's greedy answer to the same prompt (+5 points, not the +58 against the plain prompt);
    naming a cot point (another prompt) as b is refused; a model claim without a b is refused."""
    n = 60
    point = lambda b, right: {"budget": b, "accuracy": right / n, "tokens_per_problem": 10.0 * b,  # noqa: E731
                              "per_problem": [1.0] * right + [0.0] * (n - right)}
    scale = tmp_path / "scale.json"
    scale.write_text(json.dumps({"model": "m", "problem_ids": [f"p{i}" for i in range(n)], "methods": {
        "greedy": [point(1, 40)], "cot:zero-shot": [point(1, 10)], "self-consistency": [point(16, 45)]}}))
    cfg = PipelineConfig(stages=[StageSpec("scaling", "scale")],
                         compare=[Comparison("scaling/self-consistency@16", claim="voting beats greedy")])
    cfg.validate()
    assert cfg.compare[0].b == "scaling/greedy@1"
    [got] = check_claims(cfg, [], {"scaling": _state("scaling", "scale", {"scale": str(scale)})})
    assert got.b_value == pytest.approx(40 / 60) and got.diff == pytest.approx(5 / 60, abs=1e-3)
    from reasonlab.errors import ReasonlabError

    bad = PipelineConfig(stages=[StageSpec("scaling", "scale")],
                         compare=[Comparison("scaling/self-consistency@16", "scaling/cot:zero-shot@1", "vote")])
    with pytest.raises(ReasonlabError, match="greedy of another prompt; leave b out for scaling/greedy@1"):
        bad.validate()
    prompts = PipelineConfig(stages=[StageSpec("scaling", "scale")],
                             compare=[Comparison("scaling/greedy@1", "scaling/cot:zero-shot@1", "the prefill helps")])
    prompts.validate()  # the prompt's effect, compared on its own
    no_b = PipelineConfig(stages=[StageSpec("m", "sft")], compare=[Comparison("m", claim="x")])
    with pytest.raises(ReasonlabError, match="'m' needs a b"):
        no_b.validate()

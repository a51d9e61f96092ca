"""`reasonlab run`: recipes validate before anything runs, stages are cached by hash (a change
reruns the stage and what depends on it, nothing else), a killed stage resumes, costs follow a
model's lineage, and the report has a row per model with finite numbers."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from conftest import run_cli

from reasonlab.errors import ReasonlabError
from reasonlab.pipeline.plan import StageState, lineage, plan
from reasonlab.pipeline.recipe import StageSpec, load_pipeline
from reasonlab.pipeline.run import execute
from reasonlab.pipeline.stages import Result


def run_stages(cfg, log=print):
    return execute(plan(cfg), log)


def _recipe(tmp_path, body: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(body)
    return str(path)


TWO = """
out: {out}
eval: {{n: 4, samples: 1, max_new_tokens: 8}}
stages:
  - {{name: base, kind: pretrain, config: {{preset: test, steps: 10, batch_size: 4, seq_len: 64, vocab_size: 300}}}}
  - name: rl
    kind: grpo
    config: {{model: "{{base.model}}", task: arithmetic, steps: 4, save_every: 2, prompts_per_step: 2,
             generations_per_prompt: 2, max_new_tokens: 8, eval_n: 2, tensorboard: false}}
"""


@pytest.mark.parametrize("body, error", [
    ("stages: [{name: a, kind: bake}]", r"stages\.a\.kind: 'bake' is not one of pretrain"),
    ("stages: [{name: a, kind: pretrain}, {name: a, kind: pretrain}]", r"stages\[1\]\.name: 'a' is used twice"),
    ("stages: [{name: a, kind: sft, config: {model: '{b.model}', data: x}}]", r"\{b\.model\} refers to no earlier stage"),
    ("stages: [{name: b, kind: pretrain}, {name: a, kind: sft, config: {model: '{b.data}', data: x}}]",
     r"stage b makes model, not data"),
    ("stages: [{name: a, kind: pretrain, config: {stepz: 3}}]", r"stages\.a\.config.*stepz"),
    ("stages: [{name: a, kind: pretrain}]\ncompare: [{a: a, b: zz}]", r"compare: 'zz' is not a stage"),
])
def test_bad_recipes_fail_before_any_stage_runs(tmp_path, body, error):
    with pytest.raises(ReasonlabError, match=error):
        plan(load_pipeline(_recipe(tmp_path, body)))
    assert not (tmp_path / "runs").exists()


def test_unchanged_stages_are_skipped_a_change_reruns_downstream_and_a_killed_stage_resumes(tmp_path):
    path = _recipe(tmp_path, TWO.format(out=tmp_path / "run"))
    logs = []
    first = run_stages(load_pipeline(path), log=logs.append)
    assert (tmp_path / "run" / "rl" / "final" / "config.json").exists()
    logs.clear()
    again = run_stages(load_pipeline(path), log=logs.append)
    # the first run evaluated both models too (evaluations are jobs of the run)
    assert logs[0] == "plan: 2 stages, 2 up to date, 0 to run; nothing to run"
    assert logs[1].split()[:2] == ["up", "to"] and logs[2].startswith("  up to date rl [grpo] (last 0:")
    assert len(logs) == 4 and logs[3].startswith("stages: 0 run, 2 up to date")
    assert again["rl"].hash == first["rl"].hash
    assert [(p.hash, p.status) for p in plan(load_pipeline(path)).stages] == [(first["base"].hash, "up to date"),
                                                                            (first["rl"].hash, "up to date")]
    # a changed upstream stage reruns it and everything downstream
    logs.clear()
    changed = run_stages(load_pipeline(path, overrides=["stage.base.steps=11"]), log=logs.append)
    assert re.fullmatch(r"plan: 2 stages, 0 up to date, 2 to run; ETA ~0:\d\d with 2 evaluation\(s\)", logs[0])
    assert "[base] settings or inputs changed: starting it afresh" in logs
    assert "[rl] settings or inputs changed: starting it afresh" in logs
    assert changed["rl"].hash != first["rl"].hash
    # killed after its step-2 checkpoint: the marker says unfinished, final/ is missing
    marker = tmp_path / "run" / "rl" / "stage.json"
    state = json.loads(marker.read_text())
    marker.write_text(json.dumps({"hash": state["hash"], "done": False}))
    import shutil

    shutil.rmtree(tmp_path / "run" / "rl" / "final")
    shutil.rmtree(sorted((tmp_path / "run" / "rl" / "checkpoints").glob("step-*"))[-1])
    logs.clear()
    run_stages(load_pipeline(path, overrides=["stage.base.steps=11"]), log=logs.append)
    assert logs[2].startswith("  resume     rl [grpo]")
    assert "[rl] grpo (resuming)" in logs and any("resum" in m and "step 2" in m for m in logs), logs
    steps = [json.loads(x)["step"] for x in (tmp_path / "run" / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 4


def _state(name, kind, deps=(), flops=0.0, teacher_cost=True):
    return StageState(StageSpec(name=name, kind=kind, teacher_cost=teacher_cost), name, set(deps), Result({}, flops))


def test_lineage_includes_the_teacher_only_when_its_cost_counts():
    states = {s.spec.name: s for s in [
        _state("base", "pretrain", flops=100), _state("teacher", "grpo", ["base"], 10),
        _state("student_base", "pretrain", flops=50), _state("data", "traces", ["teacher"], 1, teacher_cost=False),
        _state("student", "sft", ["student_base", "data"], 2)]}
    assert lineage("student", states) == ["student_base", "data", "student"]
    states["data"].spec.teacher_cost = True
    assert lineage("student", states) == ["base", "teacher", "student_base", "data", "student"]
    assert lineage("student", states, through_teachers=False) == ["student_base", "data", "student"]


def test_a_distilled_students_cost_is_its_training_with_the_traces_sampling_apart():
    """Teacher GRPO 10, traces sampled for 3, student SFT 2, RL student 7 (FLOPs): the distilled row
    is 2 of training and 3 of sampling; the teacher's 10 counts only with `teacher_cost: true`."""
    from reasonlab.pipeline.recipe import PipelineConfig
    from reasonlab.pipeline.results import row_for

    states = {s.spec.name: s for s in [
        _state("base", "pretrain", flops=100), _state("teacher", "grpo", ["base"], 10),
        _state("data", "traces", ["teacher"], 3, teacher_cost=False),
        _state("student", "sft", ["base", "data"], 2), _state("student_rl", "grpo", ["base"], 7)]}
    res = {"greedy_accuracy": 0.5, "greedy_accuracy_ci95": [0.4, 0.6], "n_problems": 10, "format_rate": 1.0,
           "mean_completion_tokens": 5.0, "tokens_per_correct": 10.0, "inference_flops": 0.0}
    row = lambda name: row_for(name, states, res, PipelineConfig(), Path("x.samples.jsonl"))  # noqa: E731
    assert (row("student").train_flops, row("student").sampling_flops) == (2.0, 3.0)
    assert (row("student_rl").train_flops, row("student_rl").sampling_flops) == (7.0, 0.0)
    assert (row("base").train_flops, row("base").sampling_flops) == (100.0, 0.0)
    states["data"].spec.teacher_cost = True
    assert (row("student").train_flops, row("student").sampling_flops) == (12.0, 3.0)


def _interrupt_while(started, *args: str) -> None:
    """Run the CLI, press Ctrl-C once `started` exists, and check that it stopped cleanly: exit
    130 with one line, no traceback, and every JSON file it left readable."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    proc = subprocess.Popen([sys.executable, "-m", "reasonlab.cli", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            # a background job inherits SIGINT ignored, and then Python never raises KeyboardInterrupt
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not started.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.rstrip().endswith("interrupted") and "Traceback" not in err, err[-2000:]
    run_dir = started.parent.parent
    for f in run_dir.rglob("*.json"):
        json.loads(f.read_text())
    assert json.loads(started.read_text())["done"] is False


def test_quick_default_pipeline_runs_end_to_end_and_reports_every_model(tmp_path):
    """`reasonlab run --quick` (the default recipe), stopped by Ctrl-C in the scaling stage and
    run again: the rerun keeps what finished and resumes; every model gets a row with finite numbers,
    costs add up along each lineage, the report and its figures exist, and `reasonlab report`
    rebuilds it from a partial run."""
    out = tmp_path / "run"
    _interrupt_while(out / "scaling" / "stage.json", "run", "--quick", "--out", str(out))
    proc = run_cli("run", "--quick", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^  up to date base \[pretrain\]", proc.stderr, re.M)  # finished before Ctrl-C: kept
    assert re.search(r"^  resume     scaling \[scale\]", proc.stderr, re.M)
    results = json.loads((out / "results.json").read_text())
    rows = {r["stage"]: r for r in results["rows"]}
    assert list(rows) == ["base", "r1_zero", "cold", "r1_rl", "r1_sft", "r1", "student_base", "student_distilled",
                          "student_rl", "journey", "shortcut"]
    assert {rows[n]["method"] for n in ("r1_zero", "student_rl")} == {"grpo"} and rows["r1"]["method"] == "sft+grpo"
    for row in results["rows"]:
        for key in ("greedy_accuracy", "greedy_accuracy_lenient", "maj_accuracy", "pass_at_k", "format_rate",
                    "mean_tokens", "train_flops",
                    "train_seconds", "usd", "inference_flops_per_problem"):
            assert isinstance(row[key], float) and math.isfinite(row[key]), (row["stage"], key)
        assert row["name"] and row["method"]
    own = {n: json.loads((out / n / "stage.json").read_text())["result"]["flops"] for n in rows}
    assert rows["r1"]["train_flops"] == own["r1"] + rows["r1_sft"]["train_flops"] > own["r1"] > 0
    assert rows["r1_rl"]["train_flops"] == own["r1_rl"] + rows["cold"]["train_flops"]
    # --quick distills the reference solutions, which cost nothing to sample
    assert (rows["student_distilled"]["train_flops"], rows["student_distilled"]["sampling_flops"]) == (own["student_distilled"], 0.0)
    distill = next(c for c in results["claims"] if c["a"] == "student_distilled")
    assert (distill["a_train_flops"], distill["a_sampling_flops"]) == (own["student_distilled"], 0.0)
    for rm in ("orm", "prm"):  # a reward model's training is counted in its stage's cost
        assert json.loads((out / rm / "stage.json").read_text())["result"]["flops"] > 0, rm
    scale = json.loads((out / "scaling" / "scale.json").read_text())["methods"]
    assert {"greedy", "self-consistency", "best-of-n:orm", "beam", "dvts", "cot:few-shot"} <= set(scale)
    assert len(results["claims"]) == 11 and results["findings"][0].startswith("scaling (model base): ")
    methods = [c for c in results["claims"] if "/" in c["a"] and "/cot:" not in c["a"]]
    assert len(methods) == 5 and all(c["b"] == c["a"].split("/")[0] + "/greedy@1" for c in methods)
    for c in results["claims"]:  # every claim a paired difference on the same problems
        assert set(c) >= {"a", "b", "metric", "n", "diff", "ci95", "holds"}, c
        assert c["ci95"][0] <= c["diff"] <= c["ci95"][1] and c["n"] in (4, 8)  # scaling stages: 4 problems
    same = results["examples"]["same_problem"]
    assert [m["name"] for m in same["models"]][0] == "base" and len(same["models"]) >= 3
    report, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "| R1 (final GRPO) | sft+grpo |" in report and "## Claims" in report and "## Example completions" in report
    assert "| greedy % [95% CI] | lenient % |" in report
    assert all(r["greedy_accuracy_lenient"] >= r["greedy_accuracy"] for r in results["rows"])  # tags read both ways
    assert page.count("data:image/png;base64,") == 4 and "<table>" in page and "src='plots/" not in page
    assert page.count("<h2>Inference-time scaling</h2>") == 1 and "<pre>" in page
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(out / "tensorboard" / "pipeline"), size_guidance={"tensors": 0}).Reload()
    scalars = tb.Tags()["scalars"]
    assert {"models/greedy_accuracy", "models/r1/greedy_accuracy", "seconds/r1_zero",
            "scaling/scaling/self-consistency/accuracy"} <= set(scalars)
    assert [e.value for e in tb.Scalars("models/greedy_accuracy")] == pytest.approx(
        [r["greedy_accuracy"] for r in results["rows"]])
    assert "report/text_summary" in tb.Tags()["tensors"]
    # a partial run: the last stage never finished; the report is rebuilt from what exists
    marker = out / "shortcut" / "stage.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "done": False}))
    again = run_cli("report", str(out))
    assert again.returncode == 0 and "stages not finished: shortcut" in again.stderr
    assert "| shortcut student |" not in (out / "report.md").read_text() and "| journey student |" in again.stdout


def test_a_stage_directory_not_made_by_the_pipeline_is_never_deleted(tmp_path):
    path = _recipe(tmp_path, TWO.format(out=tmp_path / "run"))
    keep = tmp_path / "run" / "base" / "precious.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("mine")
    with pytest.raises(ReasonlabError, match=r"stages\.base: .* exists but was not made by `reasonlab run`"):
        run_stages(load_pipeline(path), log=lambda m: None)
    assert keep.read_text() == "mine"


def test_findings_state_the_paired_gain_and_its_token_cost(tmp_path):
    from reasonlab.pipeline.results import findings

    def pt(budget, per, tokens):
        return {"budget": budget, "accuracy": sum(per) / len(per), "tokens_per_problem": tokens, "per_problem": per}

    f = tmp_path / "scale.json"
    greedy = [1.0] * 24 + [0.0] * 76
    curves = {"cot:zero-shot": [pt(1, greedy, 38)],
              "self-consistency": [pt(1, [0.0] * 100, 42), pt(16, [1.0] * 26 + [0.0] * 74, 656)],
              "best-of-n:oracle": [pt(16, [1.0] * 51 + [0.0] * 49, 656)]}  # a selector with the answer key never counts
    f.write_text(json.dumps({"model": "runs/x/base/final", "methods": curves}))
    [line] = findings({"scaling": str(f)})
    assert line.startswith("scaling (model base): self-consistency at budget 16 reached 26.0% vs 24.0% for "
                           "cot:zero-shot at budget 1, +2.0 points [")
    assert "paired (not a clear gain), at 17.3x the tokens" in line
    curves["self-consistency"][1] = pt(16, [1.0] * 45 + [0.0] * 55, 656)  # right wherever greedy was, and more
    f.write_text(json.dumps({"model": "runs/x/base/final", "methods": curves}))
    assert "+21.0 points [" in findings({"scaling": str(f)})[0] and "paired (holds)" in findings({"scaling": str(f)})[0]
    # with the greedy baseline of the methods' own (prefilled) prompt: methods against it, cot apart
    curves = {"greedy": [pt(1, [1.0] * 40 + [0.0] * 60, 30)], "cot:zero-shot": [pt(1, greedy, 38)],
              "cot:think": [pt(1, [1.0] * 41 + [0.0] * 59, 30)],
              "self-consistency": [pt(16, [1.0] * 45 + [0.0] * 55, 480)]}
    f.write_text(json.dumps({"model": "runs/x/base/final", "methods": curves}))
    method, prompt = findings({"scaling": str(f)})
    assert method.startswith("scaling (model base): self-consistency at budget 16 reached 45.0% vs 40.0% for greedy")
    assert prompt.startswith("scaling (model base): prompt effect: cot:think at budget 1 reached 41.0% vs 24.0% for "
                             "cot:zero-shot") and "paired (holds)" in prompt


def test_run_plan_prints_each_stage_and_evaluation_and_runs_nothing(tmp_path):
    path = _recipe(tmp_path, TWO.format(out=tmp_path / "run"))
    proc = run_cli("run", path, "--plan")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("plan: 2 stages, 0 up to date, 2 to run; ETA ~") and "with 2 evaluation(s)" in lines[0]
    assert lines[1].startswith("  run        base [pretrain]") and lines[2].startswith("  run        rl [grpo]")
    first = plan(load_pipeline(path))
    assert f"  rl: hash {first.stage('rl').hash}, needs base, ~" in proc.stdout
    assert f"  eval:rl: to run, {first.evals[1].path}" in proc.stdout
    assert not (tmp_path / "run").exists()


def test_a_scale_stage_cached_before_its_greedy_curve_is_made_again(tmp_path):
    """A kind whose output changed shape carries a version in its stage hash: a scale stage
    finished by the earlier code (hash without it) is planned to run again, while kinds at
    version 1 keep the hash they always had (their caches stay valid)."""
    import hashlib

    from reasonlab.pipeline.plan import stage_config, stage_hash

    def old_hash(kind_name, settings, deps):
        blob = json.dumps({"kind": kind_name, "settings": settings, "deps": deps}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    settings = {"model": "m", "n": 4}
    assert stage_hash("sft", settings, ["a"]) == old_hash("sft", settings, ["a"])
    assert stage_hash("scale", settings, ["a"]) != old_hash("scale", settings, ["a"])
    path = _recipe(tmp_path, f"""
out: {tmp_path / "run"}
stages:
  - {{name: scaling, kind: scale, config: {{model: somewhere, n: 4}}}}
""")
    [stage] = plan(load_pipeline(path)).stages
    (tmp_path / "run" / "scaling").mkdir(parents=True)
    marker = tmp_path / "run" / "scaling" / "stage.json"
    marker.write_text(json.dumps({"hash": stage.hash, "done": True}))
    assert plan(load_pipeline(path)).stages[0].status == "up to date"
    _, settings_now, _ = stage_config(stage.spec, stage.dir, {})
    marker.write_text(json.dumps({"hash": old_hash("scale", settings_now, []), "done": True}))  # the earlier code's
    assert plan(load_pipeline(path)).stages[0].status == "run"

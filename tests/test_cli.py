"""The command line: smoke runs, and bad input as one-line errors with a non-zero exit."""

import json

import pytest
from conftest import run_cli


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0]


def test_missing_model_dir(tmp_path):
    proc = run_cli("eval", "--model", str(tmp_path / "nope"), "--n", "2", "--out", str(tmp_path / "r.json"))
    assert_one_line_error(proc, "model directory not found", "nope")


def test_unknown_task(tiny_model_dir, tmp_path):
    proc = run_cli("eval", "--model", str(tiny_model_dir), "--task", "sudoku9000", "--out", str(tmp_path / "r.json"))
    assert_one_line_error(proc, "unknown task 'sudoku9000'")


def test_jsonl_row_without_answer(tiny_model_dir, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n" + json.dumps({"question": "2+2?"}) + "\n")
    proc = run_cli("eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{data}", "--out", str(tmp_path / "r.json"))
    assert_one_line_error(proc, "data.jsonl", "row 1", "'answer'")


def test_bad_override_and_unknown_key(tmp_path):
    assert_one_line_error(run_cli("pretrain", "--out", str(tmp_path), "stepz=3"), "unknown key 'stepz'")
    assert_one_line_error(run_cli("pretrain", "--out", str(tmp_path), "steps=lots"), "steps", "expected int")
    assert_one_line_error(run_cli("pretrain", "--out", str(tmp_path), "--preset", "huge", "steps=1"), "unknown preset")


def test_run_takes_an_override_in_the_recipe_place_as_an_override(tmp_path):
    """`reasonlab run seed=1` means the default recipe with seed=1, not a recipe file named seed=1."""
    assert_one_line_error(run_cli("run", "seedz=1", "--quick", "--out", str(tmp_path)),
                          "recipes/pipeline.yaml: unknown key 'seedz'")
    assert_one_line_error(run_cli("run", "recipes/nope.yaml", "--out", str(tmp_path)), "recipe: recipes/nope.yaml does not exist")


@pytest.mark.slow
def test_pretrain_then_eval_smoke(tmp_path):
    out = tmp_path / "base"
    proc = run_cli("pretrain", "--out", str(out), "--preset", "test", "--steps", "4", "batch_size=4", "seq_len=64",
                   "vocab_size=300")
    assert proc.returncode == 0, proc.stderr
    assert (out / "final" / "config.json").exists() and (out / "metrics.jsonl").exists()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4
    proc = run_cli("eval", "--model", str(out / "final"), "--task", "countdown", "--n", "3", "--samples", "2",
                   "--out", str(tmp_path / "ev.json"), "max_new_tokens=8")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "ev.json").read_text())
    assert res["n_problems"] == 3 and "pass@2" in res and "maj@2" in res
    assert json.loads(proc.stdout.strip().splitlines()[-1])["greedy_accuracy"] == res["greedy_accuracy"]


@pytest.mark.slow
def test_grpo_smoke_and_resume(pretrained_dir, tmp_path):
    args = ["grpo", "--config", "recipes/r1-zero.yaml", "--model", str(pretrained_dir), "--out", str(tmp_path / "g"),
            "--steps", "1", "prompts_per_step=2", "generations_per_prompt=2", "max_new_tokens=6", "eval_n=2",
            "tensorboard=false", "device=cpu"]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "g" / "final" / "config.json").exists()
    assert_one_line_error(run_cli(*args), "--resume")  # checkpoints exist: refuse to start over
    proc = run_cli(*args[:8], "2", *args[9:], "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "continuing from" in proc.stderr


def test_grpo_missing_model(tmp_path):
    proc = run_cli("grpo", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "g"), "device=cpu")
    assert_one_line_error(proc, "model directory not found")


def test_named_options_are_generated_from_each_command_config_dataclass():
    """A command's named options are its config dataclass's fields, with their types and help
    written once in the dataclass; every other field is listed as a key=value setting; a given
    option reaches the config, one not given leaves the recipe's value. `reasonlab` itself
    starts without torch."""
    import subprocess
    import sys

    import typer

    from reasonlab.cli import app
    from reasonlab.clioptions import ConfigCommand, config_class, settings
    from reasonlab.train.trainer import TrainSettings

    group = typer.main.get_command(app)
    commands = dict(group.commands)
    commands.update({f"rm {k}": v for k, v in group.commands["rm"].commands.items()})
    configured = {name: c for name, c in commands.items() if isinstance(c, ConfigCommand)}
    assert {"pretrain", "eval", "grpo", "sft", "traces", "journey", "scale", "rm train", "plan", "convert",
            "run"} <= set(configured)
    for name, command in configured.items():
        cls = config_class(command.config)
        known = settings(cls)
        params = {p.name: p for p in command.get_params(typer.Context(command))}
        assert command.fields and set(command.fields) <= set(params), name
        for field in command.fields:
            assert params[field].help.startswith(known[field][0].split("[")[0][:30]), (name, field)
            assert params[field].default is None  # not given: the recipe's value stands
        if issubclass(cls, TrainSettings) and name != "plan":  # a trainer: a killed run's error says "pass --resume"
            assert "resume" in command.fields, name
    shown = " ".join(run_cli("grpo", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "--steps <int>" in shown and "--resume --no-resume <bool>" in shown  # typed from GRPOConfig's fields
    proc = run_cli("scale", "--help")
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0 and "held-out problems" in text  # --n's help, from ScaleConfig
    assert "prefill: text that opens the model's turn" in text and "Settings as key=value (ScaleConfig)" in text
    light = subprocess.run([sys.executable, "-c", "import sys, reasonlab.cli; print('torch' in sys.modules)"],
                           capture_output=True, text=True)
    assert light.stdout.strip() == "False", light.stderr
    proc = run_cli("grpo", "--steps", "many")  # a value of the wrong type: typer's usage error, no traceback
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--steps" in proc.stderr


def test_a_generated_option_overrides_the_recipe_and_a_key_value_overrides_both(tmp_path, monkeypatch):
    """recipe file < named option < key=value, through the real command line (the training
    itself replaced by a function that keeps the config it is given)."""
    from typer.testing import CliRunner

    import reasonlab.rl.grpo
    from reasonlab.cli import app

    seen = []
    monkeypatch.setattr(reasonlab.rl.grpo, "run_grpo", lambda cfg, log: seen.append(cfg) or "done")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps: 3\nprompts_per_step: 2\n")
    runner = CliRunner()
    for args, steps in [([], 3), (["--steps", "5"], 5), (["--steps", "5", "steps=7"], 7)]:
        result = runner.invoke(app, ["grpo", "--config", str(recipe), "--task", "countdown", *args])
        assert result.exit_code == 0, result.output
        assert (seen[-1].steps, seen[-1].task, seen[-1].prompts_per_step, seen[-1].resume) == (steps, "countdown", 2, False)
    assert runner.invoke(app, ["grpo", "--config", str(recipe), "--resume"]).exit_code == 0 and seen[-1].resume
    count = len(seen)
    bad = runner.invoke(app, ["grpo", "--steps", "many"])
    assert bad.exit_code == 2 and len(seen) == count  # a usage error, nothing run

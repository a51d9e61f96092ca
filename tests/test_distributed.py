"""`accelerate launch` with two CPU processes (gloo): the real data-parallel path, end to end,
and the shipped accelerate configs for GPU users parse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

CONFIGS = REPO / "configs" / "accelerate"


def _launch(model: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    accelerate = Path(sys.executable).parent / "accelerate"
    cmd = [str(accelerate), "launch", "--config_file", str(CONFIGS / "ddp.yaml"), "--num_processes", "2",
           "--num_cpu_threads_per_process", "1", "-m", "reasonlab.cli", "grpo", "--model", str(model),
           "--out", str(out), "prompts_per_step=2", "generations_per_prompt=4", "max_new_tokens=16", "eval_n=4",
           "sample_every=0", "tensorboard=false", "rewards={tag_count: 1.0}", "lr=1e-2", *extra]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300, env=env)


@pytest.mark.slow
def test_grpo_on_two_cpu_processes_trains_checkpoints_and_resumes(pretrained_dir, tmp_path):
    from safetensors.torch import load_file

    from reasonlab.train.metrics import read_metrics

    out = tmp_path / "ddp"
    first = _launch(pretrained_dir, out, "--steps", "2", "save_every=1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count(str(out / "final")) == 2  # both processes ran to the end
    second = _launch(pretrained_dir, out, "--steps", "3", "--resume", "save_every=1")
    assert second.returncode == 0, second.stderr[-3000:]
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]  # one writer, resume truncated nothing twice
    assert all(r["groups"] == 2 for r in rows[1:])  # averaged over the two processes' 2 groups each
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000002", "step-0000003"]
    base, final = load_file(pretrained_dir / "model.safetensors"), load_file(out / "final" / "model.safetensors")
    assert any(not torch.equal(base[k], final[k]) for k in base)


@pytest.mark.parametrize("name", ["ddp.yaml", "fsdp.yaml", "zero2.yaml", "zero3.yaml"])
def test_shipped_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(CONFIGS / name))
    assert cfg.num_processes >= 2 and cfg.num_machines == 1
    expected = {"ddp.yaml": "MULTI_GPU", "fsdp.yaml": "FSDP", "zero2.yaml": "DEEPSPEED", "zero3.yaml": "DEEPSPEED"}
    assert str(cfg.distributed_type).endswith(expected[name])
    if name.startswith("zero"):
        assert cfg.deepspeed_config["zero_stage"] == int(name[4])


PIPELINE = """
out: {out}
eval: {{n: 4, samples: 2, max_new_tokens: 12}}
stages:
  - {{name: base, kind: pretrain, config: {{preset: test, steps: 10, batch_size: 4, seq_len: 64, vocab_size: 300}}}}
  - {{name: data, kind: traces, config: {{teacher: reference, n: 8, samples: 1}}}}
  - {{name: cold, kind: sft, config: {{model: "{{base.model}}", data: "{{data.data}}", steps: 2, batch_size: 4,
                                      tensorboard: false}}}}
  - name: rl
    kind: grpo
    config: {{model: "{{cold.model}}", task: arithmetic, steps: 2, prompts_per_step: 2, generations_per_prompt: 2,
             max_new_tokens: 8, eval_n: 2, sample_every: 0, tensorboard: false}}
"""


@pytest.mark.slow
def test_reasonlab_run_under_accelerate_launch_trains_on_both_processes_and_reports_once(tmp_path):
    import json

    from reasonlab.cost import Prices

    recipe, out = tmp_path / "recipe.yaml", tmp_path / "run"
    recipe.write_text(PIPELINE.format(out=out))
    accelerate = Path(sys.executable).parent / "accelerate"
    cmd = [str(accelerate), "launch", "--config_file", str(CONFIGS / "ddp.yaml"), "--num_processes", "2",
           "--num_cpu_threads_per_process", "1", "-m", "reasonlab.cli", "run", str(recipe)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("# Results: run") == 1  # one report, printed by the main process
    assert proc.stderr.count("plan: 4 stages") == 1 and proc.stderr.count("] [base] started") == 1  # one process logs
    for stage in ("base", "cold", "rl"):  # the trainers ran data-parallel, pretraining too
        assert json.loads((out / stage / "final" / "reasonlab_train.json").read_text())["processes"] == 2
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["stage"] for r in rows] == ["base", "cold", "rl"]
    cost = {s: json.loads((out / s / "stage.json").read_text())["result"] for s in ("data", "cold", "rl")}
    assert cost["rl"]["devices"] == cost["cold"]["devices"] == 2 and cost["data"]["devices"] == 1
    gpu_seconds = sum(c["seconds"] * c["devices"] for c in cost.values())  # dollars are per GPU-hour
    assert rows[2]["usd"] == pytest.approx(gpu_seconds / 3600 * Prices().gpu_hour_usd)
    assert sum(1 for _ in (out / "data" / "traces.jsonl").open()) == 8  # sampled once, not once per process


@pytest.mark.slow
def test_rm_train_under_accelerate_launch_rolls_out_once_per_share_and_trains_on_both(pretrained_dir, tmp_path):
    """Two processes each roll out half of the problems, both train on the labelled examples (as
    many as one process makes; a batch too short to give each process a row is dropped, where it
    once left one process with nothing to run), and one reward model with its record is saved."""
    import json

    accelerate = Path(sys.executable).parent / "accelerate"
    out = tmp_path / "rm"
    cmd = [str(accelerate), "launch", "--config_file", str(CONFIGS / "ddp.yaml"), "--num_processes", "2",
           "--num_cpu_threads_per_process", "1", "-m", "reasonlab.cli", "rm", "train", "--model", str(pretrained_dir),
           "--out", str(out), "n=6", "heldout=4", "samples=2", "max_new_tokens=8", "epochs=1", "batch_size=11",
           "tensorboard=false"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((out / "final" / "reasonlab_train.json").read_text())
    examples = json.loads((out / "examples.json").read_text())
    assert info["processes"] == 2 and info["method"] == "rm"
    assert len(examples["train"]) == info["train_examples"] == 12 and len(examples["heldout"]) == 8
    assert info["steps"] == 1  # 12 examples, 11 a step (6 and 5 a process): the tail of 1 has no row for one process


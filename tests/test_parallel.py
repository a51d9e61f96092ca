"""`workers: 2` in a recipe: independent stages run side by side in worker processes and make
the same models as one worker; a failing stage stops the run with its name and keeps what
finished (pure scheduling math is in `reasonlab.pipeline.run`'s doctests)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reasonlab.errors import ReasonlabError
from reasonlab.pipeline.plan import plan
from reasonlab.pipeline.recipe import load_pipeline
from reasonlab.pipeline.run import execute


def _pre(steps: int, seed: int) -> str:
    return f"{{preset: test, steps: {steps}, batch_size: 4, seq_len: 64, vocab_size: 300, seed: {seed}}}"



RECIPE = """
out: OUT
workers: WORKERS
eval: {n: 4, samples: 1, max_new_tokens: 8}
stages:
  - {name: base, kind: pretrain, config: PRE_BASE}
  - {name: other, kind: pretrain, config: PRE_OTHER}
  - name: rl
    kind: grpo
    config: {model: "{base.model}", task: arithmetic, steps: 2, prompts_per_step: 2,
             generations_per_prompt: 2, max_new_tokens: 8, eval_n: 2, tensorboard: false}
""".replace("PRE_BASE", _pre(40, 0)).replace("PRE_OTHER", _pre(12, 1))


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(next(model_dir.glob("*.safetensors"))))


def _run(tmp_path: Path, name: str, workers: int, body: str = RECIPE):
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(body.replace("OUT", str(tmp_path / name)).replace("WORKERS", str(workers)))
    logs: list[str] = []
    return execute(plan(load_pipeline(str(recipe))), log=logs.append), logs


def test_two_workers_run_independent_stages_side_by_side_and_make_the_same_models_as_one(tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the 2 workers on 2 cores: the scheduler alone differs
    try:
        one, _ = _run(tmp_path, "one", 1)
    finally:
        torch.set_num_threads(threads)
    two, logs = _run(tmp_path, "two", 2)
    assert list(two) == ["base", "other", "rl"] and all(s.result.products for s in two.values())
    started = [i for i, m in enumerate(logs) if m.endswith("[other] started")]
    base_done = [i for i, m in enumerate(logs) if m.startswith("[base] done in")]
    assert started and base_done and started[0] < base_done[0], logs  # other began while base was training
    rl_started = next(i for i, m in enumerate(logs) if m.endswith("[rl] started"))
    assert rl_started > base_done[0]  # and rl waited for its input
    assert re.search(r"^\[\d/\d+ done \d:\d\d, ETA ~\d+:\d\d\] \[base\] started$", "\n".join(logs), re.M)
    for name in ("base", "other", "rl"):
        a, b = _weights(Path(one[name].result.products["model"])), _weights(Path(two[name].result.products["model"]))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    # the evaluations ran as jobs too, and each stage's worker output went to its own log file
    assert len(list((tmp_path / "two" / "eval").glob("*.json"))) == 3
    assert (tmp_path / "two" / "logs" / "rl.log").exists()
    times = json.loads((tmp_path / "two" / "stage_times.json").read_text())
    assert {"base", "other", "rl", "eval:base", "eval:rl"} <= set(times)
    # timed side by side, and said so: their rates are divided by eta.SIDE_BY_SIDE
    assert all(t.get("shared") for t in times.values())
    assert not any(t.get("shared") for t in json.loads((tmp_path / "one" / "stage_times.json").read_text()).values())
    assert any(m.startswith("plan: ") and m.endswith("one stage at a time") for m in logs), logs
    again, logs = _run(tmp_path, "two", 2)  # all up to date: nothing is started
    assert [s.hash for s in again.values()] == [s.hash for s in two.values()]
    assert not any(m.endswith("started") for m in logs)


def test_a_failing_stage_stops_the_run_naming_it_and_finished_stages_stay_done(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    body = RECIPE + f'  - {{name: sft, kind: sft, config: {{model: "{{base.model}}", data: "{bad}", steps: 2}}}}\n'
    with pytest.raises(ReasonlabError, match=r"^sft: .*bad\.jsonl.*\(see .*logs/sft\.log\)$"):
        _run(tmp_path, "run", 2, body)
    marker = lambda name: json.loads((tmp_path / "run" / name / "stage.json").read_text())  # noqa: E731
    assert marker("base")["done"] is True and marker("sft")["done"] is False  # its input stays finished
    # the stages killed with it (other, rl: whichever were still running) left a marker that
    # resumes; fixing the data reruns only what did not finish
    bad.write_text('{"prompt": "1+1=", "completion": "2"}\n' * 4)
    again, logs = _run(tmp_path, "run", 2, body)
    assert all(marker(n)["done"] for n in again) and "[base] started" not in "\n".join(logs)

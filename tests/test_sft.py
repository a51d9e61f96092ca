"""The SFT trainer: the loss falls and every parameter moves on a tiny model, exact resume,
the non-finite guard, and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli

from reasonlab.errors import ReasonlabError
from reasonlab.sft.trainer import SFTConfig, SFTTrainer
from reasonlab.train.metrics import read_metrics


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    from reasonlab.tasks import get_task
    from reasonlab.world.corpus import careful_trace

    task = get_task("arithmetic")
    path = tmp_path_factory.mktemp("sft") / "traces.jsonl"
    rows = [{"messages": [{"role": "user", "content": task.prompt(p)},
                          {"role": "assistant", "content": careful_trace(p)}]} for p in task.problems("train", 24)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(model, data, out, **kw) -> SFTConfig:
    base = dict(model=str(model), data=str(data), out=str(out), batch_size=8, micro_batch_size=4, lr=3e-3,
                save_every=0, tensorboard=False, device="cpu", max_length=256)
    return SFTConfig(**{**base, **kw})


def test_loss_falls_and_every_parameter_changes(pretrained_dir, traces, tmp_path):
    trainer = SFTTrainer(_cfg(pretrained_dir, traces, tmp_path, epochs=8), log=lambda *_: None)
    assert trainer.total_steps == 8 * 24 // 8
    before = {k: v.clone() for k, v in trainer.policy.named_parameters()}
    trainer.train()
    for name, p in trainer.policy.named_parameters():
        assert not torch.equal(before[name], p), f"{name} did not change"
    losses = [r["loss"] for r in read_metrics(tmp_path)]
    assert len(losses) == 24 and sum(losses[-3:]) / 3 < 0.85 * sum(losses[:3]) / 3, losses
    info = json.loads((tmp_path / "final" / "reasonlab_train.json").read_text())
    assert info["method"] == "sft" and info["steps"] == 24 and info["train_flops"] > 0


def test_resume_is_bitwise_exact_across_an_epoch_boundary(pretrained_dir, traces, tmp_path):
    SFTTrainer(_cfg(pretrained_dir, traces, tmp_path / "a", steps=5), log=lambda *_: None).train()
    SFTTrainer(_cfg(pretrained_dir, traces, tmp_path / "b", steps=2, save_every=2), log=lambda *_: None).train()
    SFTTrainer(_cfg(pretrained_dir, traces, tmp_path / "b", steps=5, resume=True), log=lambda *_: None).train()
    a = (tmp_path / "a" / "final" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "b" / "final" / "model.safetensors").read_bytes()


def test_non_finite_loss_skips_steps_then_stops(pretrained_dir, traces, tmp_path):
    trainer = SFTTrainer(_cfg(pretrained_dir, traces, tmp_path, steps=5, max_nonfinite=2), log=lambda *_: None)
    before = {k: v.clone() for k, v in trainer.policy.named_parameters()}
    trainer.policy.lm_head.register_forward_hook(lambda m, i, o: o * float("nan"))
    with pytest.raises(ReasonlabError, match="non-finite"):
        trainer.train()
    assert trainer.step == 2 and not (tmp_path / "final").exists()
    for name, p in trainer.policy.named_parameters():
        assert torch.equal(before[name], p)


def test_a_time_budget_ends_the_run_with_a_final_model_and_resumes_within_it(pretrained_dir, traces, tmp_path,
                                                                             monkeypatch):
    """max_minutes stops after the step that reaches it and saves final/ as after the last step; a
    resumed run counts its earlier time (no step once it is spent, more under a larger budget)."""
    import itertools
    import types

    import reasonlab.train.trainer as trainer_module

    clock = itertools.count(0, 30)  # every reading 30 s after the last: each step measures 30 s
    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(time=lambda: next(clock)))
    logs = []

    def run(minutes, **kw):
        cfg = _cfg(pretrained_dir, traces, tmp_path, steps=10, save_every=1, max_minutes=minutes, **kw)
        SFTTrainer(cfg, log=logs.append).train()
        return json.loads((tmp_path / "final" / "reasonlab_train.json").read_text())

    info = run(1.5)
    assert (info["steps"], info["train_seconds"]) == (3, 90)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    assert "stopped after step 3 of 10" in logs[-1] and "max_minutes=1.5" in logs[-1]
    assert run(1.5, resume=True)["steps"] == 3  # the budget is spent: no further step
    assert run(2.5, resume=True)["steps"] == 5
    with pytest.raises(ReasonlabError, match="max_minutes"):
        SFTTrainer(_cfg(pretrained_dir, traces, tmp_path / "bad", max_minutes=-1), log=lambda *_: None)


def test_cli_trains_and_reports_bad_data_in_one_line(pretrained_dir, traces, tmp_path):
    ok = run_cli("sft", "--model", str(pretrained_dir), "--data", str(traces), "--out", str(tmp_path / "run"),
                 "steps=2", "batch_size=4", "tensorboard=false")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "run" / "final" / "config.json").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n")
    err = run_cli("sft", "--model", str(pretrained_dir), "--data", str(bad), "--out", str(tmp_path / "x"))
    assert err.returncode == 2 and err.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "bad.jsonl:1" in err.stderr


def test_loss_equals_cross_entropy_over_completion_tokens_of_the_full_logits(pretrained_dir, traces, tmp_path):
    from reasonlab.sft.data import IGNORE, collate

    trainer = SFTTrainer(_cfg(pretrained_dir, traces, tmp_path, steps=1), log=lambda *_: None)
    mb = collate(trainer.examples[:5], trainer.tokenizer.pad_token_id)
    logits = trainer.model(input_ids=mb["input_ids"], attention_mask=mb["attention_mask"]).logits  # [B, L, V]
    logp = logits[:, :-1].log_softmax(-1)  # [B, L-1, V]
    targets = mb["labels"][:, 1:]  # [B, L-1]
    keep = targets != IGNORE
    expected = -logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)[keep].sum()
    torch.testing.assert_close(trainer._loss(mb), expected, rtol=1e-5, atol=1e-4)


def test_packed_rows_give_the_same_loss_as_separate_examples_and_train(pretrained_dir, traces, tmp_path):
    from reasonlab.sft.data import IGNORE, collate, pack

    trainer = SFTTrainer(_cfg(pretrained_dir, traces, tmp_path / "a", steps=1), log=lambda *_: None)
    examples = trainer.examples[:6]
    rows = pack(examples, 600)  # examples are ~120-230 tokens: two or three to a row
    assert len(rows) <= 3 and all(len(r.input_ids) <= 600 for r in rows)
    targets = lambda exs: sum(sum(y != IGNORE for y in e.labels[1:]) for e in exs)  # noqa: E731
    assert targets(rows) == targets(examples)
    with torch.no_grad():
        separate = trainer._loss(collate(examples, trainer.tokenizer.pad_token_id))
        packed = trainer._loss(collate(rows, trainer.tokenizer.pad_token_id))
    torch.testing.assert_close(packed, separate, rtol=1e-5, atol=1e-4)  # no attention across examples
    run = SFTTrainer(_cfg(pretrained_dir, traces, tmp_path / "b", packing=True, batch_size=2, micro_batch_size=2,
                          epochs=6, max_length=600), log=lambda *_: None)
    assert len(run.examples) < 24 and run.total_steps == 6 * len(run.examples) // 2
    run.train()
    losses = [r["loss"] for r in read_metrics(tmp_path / "b")]
    assert sum(losses[-2:]) < 0.85 * sum(losses[:2]), losses

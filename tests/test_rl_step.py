"""The redesigned GRPO step with a tiny real model: every loss option runs and learns nothing
non-finite; the sampler-mismatch correction sees an exact sampler as exact and masks a
deliberately perturbed one."""

from __future__ import annotations

import math

import pytest
import torch

from reasonlab.rewards import REWARDS
from reasonlab.rl.config import GRPOConfig
from reasonlab.rl.grpo import GRPOTrainer
from reasonlab.rl.mismatch import sampler_weights
from reasonlab.rollout.base import RolloutEngine


@pytest.fixture(autouse=True)
def chars_reward():
    REWARDS["chars"] = lambda completions, **_: [len(c) / 10 for c in completions]  # varies within a group
    yield
    REWARDS.pop("chars")


def cfg(model, out, **kw) -> GRPOConfig:
    base = dict(model=str(model), out=str(out), task="arithmetic", steps=2, prompts_per_step=2,
                generations_per_prompt=4, max_new_tokens=8, lr=1e-3, eval_n=2, save_every=0, sample_every=0,
                tensorboard=False, device="cpu", rewards={"chars": 1.0, "accuracy": 1.0}, micro_batch_size=3)
    base.update(kw)
    return GRPOConfig(**base)


OPTIONS = [
    dict(loss_type="bnpo"),
    dict(loss_type="cispo"),
    dict(loss_type="sapo", baseline="rloo"),
    dict(loss_type="grpo", importance_sampling_level="sequence", mu=2),  # GSPO
    dict(loss_type="dapo", importance_sampling_level="sequence_token", delta=1.5),
    dict(loss_type="dr_grpo", baseline="reinforce_pp", top_entropy_quantile=0.5),
    dict(loss_type="dapo", baseline="reinforce_pp_baseline", beta=0.04, kl_bias_correction=True),
    dict(loss_type="grpo", importance_sampling_correction="on", importance_sampling_mode="token_truncate"),
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_every_option_takes_finite_steps(pretrained_dir, tmp_path, opts):
    trainer = GRPOTrainer(cfg(pretrained_dir, tmp_path, **opts), log=lambda *_: None)
    before = [p.clone() for p in trainer.policy.parameters()]
    row = trainer.train_step()
    assert row["nonfinite"] == 0 and math.isfinite(row["loss"]) and math.isfinite(row["grad_norm"])
    assert row["skipped"] == 0 and row["reward_std"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.policy.parameters()))
    if opts.get("importance_sampling_correction") == "on":  # HF samples from the policy: ratio 1 up to rounding
        assert row["sampling/sampling_logp_difference/mean"] < 1e-4
        assert row["sampling/importance_sampling_ratio/mean"] == pytest.approx(1.0, abs=1e-3)


class Perturbed(RolloutEngine):
    """The policy's own sampler, but it reports every odd prompt's token log-probs 1 nat too low
    (as a mismatched inference engine would: the trainer finds those tokens e times likelier)."""

    samples_from_policy = False

    def __init__(self, inner):
        self.inner, self.tokenizer, self.n_params = inner, inner.tokenizer, inner.n_params

    def generate(self, prompts, params):
        out = self.inner.generate(prompts, params)
        for i, group in enumerate(out):
            for c in group:
                if i % 2 and c.logprobs is not None:
                    c.logprobs = [lp - 1.0 for lp in c.logprobs]
        return out


def test_a_perturbed_sampler_is_measured_and_masked(pretrained_dir, tmp_path):
    trainer = GRPOTrainer(cfg(pretrained_dir, tmp_path, importance_sampling_correction="auto"), log=lambda *_: None)
    assert not trainer.correct_sampler  # auto: our engine samples from the policy itself
    trainer.engine, trainer.correct_sampler = Perturbed(trainer.engine), True
    row = trainer.train_step()
    # half the tokens are off by exactly 1 nat, the other half by ~0
    assert row["sampling/sampling_logp_difference/max"] == pytest.approx(1.0, abs=1e-3)
    assert 0.2 < row["sampling/sampling_logp_difference/mean"] < 0.8
    # sequence_mask (TRL's default, C_max 3): a sequence of ≥ 2 perturbed tokens has ratio ≥ e² > 3 → 0
    assert row["sampling/importance_sampling_ratio/min"] == 0.0
    assert row["sampling/importance_sampling_ratio/max"] > 1.0 - 1e-3


def test_sampler_weights_modes_by_hand():
    t = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    s = torch.tensor([[-0.5, -0.5], [0.2, float("nan")]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    seq = sampler_weights(t, s, mask, "sequence_truncate", clip_max=2.0)
    assert seq[:, 0].tolist() == pytest.approx([2.0, math.exp(-0.2)])  # e^1 capped at 2; NaN token counts 1
    seq_mask = sampler_weights(t, s, mask, "sequence_mask", clip_max=2.0, clip_min=0.9)
    assert seq_mask[:, 0].tolist() == pytest.approx([0.0, 0.0])  # e^1 > 2 and e^-0.2 < 0.9: both masked
    tok = sampler_weights(t, s, mask, "token_truncate", clip_max=1.5, clip_min=0.9)
    assert tok.flatten().tolist() == pytest.approx([1.5, 1.5, 0.9, 1.0])


def test_on_policy_correction_from_the_loss_pass_equals_a_separate_pre_pass(pretrained_dir, tmp_path, monkeypatch):
    """mu = 1: the sampler factor from the loss forward's own detached log-probs gives the same
    update and metrics as computing them in a forward pass of their own before the update."""
    def step(pre_pass: bool, out):
        monkeypatch.setattr(GRPOTrainer, "_pre_pass", property(lambda self: pre_pass))
        trainer = GRPOTrainer(cfg(pretrained_dir, out), log=lambda *_: None)
        trainer.engine, trainer.correct_sampler = Perturbed(trainer.engine), True
        row = trainer.train_step()
        return row, [p.detach().clone() for p in trainer.policy.parameters()]

    (row_a, after_a), (row_b, after_b) = step(True, tmp_path / "a"), step(False, tmp_path / "b")
    assert row_a["sampling/importance_sampling_ratio/min"] == 0.0  # the perturbation was masked
    for key in ("loss", "sampling/sampling_logp_difference/mean", "sampling/importance_sampling_ratio/mean"):
        assert row_b[key] == pytest.approx(row_a[key], rel=1e-4, abs=1e-6), key
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(after_a, after_b))

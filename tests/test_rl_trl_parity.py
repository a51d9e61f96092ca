"""Parity with TRL's own loss code: for every option TRL has, identical float64 inputs go through
`trl.GRPOTrainer._compute_loss` (TRL's function, not a re-implementation) and through
`reasonlab.rl.losses.policy_loss`; loss and gradient must agree to 1e-6.

TRL's method needs a trainer; we build the instance without `__init__` and set only the
attributes `_compute_loss` reads, and its forward (`_get_per_token_logps_and_entropies`) returns
our leaf tensor so both gradients are with respect to the same log-probs.
"""

from __future__ import annotations

import types
from collections import defaultdict

import pytest
import torch

trl = pytest.importorskip("trl")

from reasonlab.rl.losses import LossSettings, entropy_threshold, high_entropy_mask, policy_loss  # noqa: E402

B, T, MAX_LEN = 6, 7, 9
CASES = {  # name → (our settings, TRL attributes / args that mean the same)
    "grpo": (dict(loss_type="grpo"), dict(loss_type="grpo")),
    "bnpo": (dict(loss_type="bnpo"), dict(loss_type="bnpo")),
    "dapo": (dict(loss_type="dapo"), dict(loss_type="dapo")),
    "dr_grpo": (dict(loss_type="dr_grpo"), dict(loss_type="dr_grpo")),
    "clip_higher": (dict(loss_type="dapo", eps_high=0.28), dict(loss_type="dapo", epsilon_high=0.28)),
    "cispo": (dict(loss_type="cispo", cispo_max=1.1), dict(loss_type="cispo", epsilon_high=1.1)),
    "sapo": (dict(loss_type="sapo", sapo_tau_pos=1.0, sapo_tau_neg=1.05), dict(loss_type="sapo")),
    "gspo": (dict(loss_type="grpo", importance_sampling_level="sequence"),
             dict(loss_type="grpo", importance_sampling_level="sequence")),
    "gspo_dapo": (dict(loss_type="dapo", importance_sampling_level="sequence"),
                  dict(loss_type="dapo", importance_sampling_level="sequence")),
    "delta": (dict(loss_type="grpo", delta=1.25), dict(loss_type="grpo", delta=1.25)),
    "kl": (dict(loss_type="grpo", beta=0.04, kl_bias_correction=False), dict(loss_type="grpo", beta=0.04, use_bias_correction_kl=False)),
    "kl_bias_corrected": (dict(loss_type="dapo", beta=0.04, kl_bias_correction=True),
                          dict(loss_type="dapo", beta=0.04, use_bias_correction_kl=True)),
    "sampler_is": (dict(loss_type="grpo"), dict(loss_type="grpo", use_vllm=True)),
    "top_entropy": (dict(loss_type="dapo"), dict(loss_type="dapo", top_entropy_quantile=0.4)),
    # both defaults: the KL term bias-corrected (TRL's default, and ours)
    "sapo_kl_is": (dict(loss_type="sapo", beta=0.1), dict(loss_type="sapo", beta=0.1, use_vllm=True)),
}


def _inputs(seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 3, 5, 1, 6, 7])
    mask = (torch.arange(T)[None] < lengths[:, None]).long()  # [B, T]
    old = -torch.rand(B, T, generator=gen, dtype=torch.float64) * 3
    return {
        "logp": old + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.4,
        "old": old,
        "ref": old + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.2,
        # both signs on every seed, so each clip side is exercised
        "adv": torch.randn(B, generator=gen, dtype=torch.float64).abs() * torch.tensor([1.0, -1.0] * (B // 2)),
        "entropy": torch.rand(B, T, generator=gen, dtype=torch.float64) * 2,
        "is_ratio": torch.exp(torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.1),
        "mask": mask,
    }


def _trl_trainer(attrs: dict, logp: torch.Tensor, entropy: torch.Tensor):
    from accelerate import Accelerator
    from trl import GRPOTrainer

    t = GRPOTrainer.__new__(GRPOTrainer)
    args = types.SimpleNamespace(use_bias_correction_kl=attrs.pop("use_bias_correction_kl", True),
                                 delta=attrs.pop("delta", None), sapo_temperature_pos=1.0,
                                 sapo_temperature_neg=1.05, steps_per_generation=1)
    base = dict(loss_type="grpo", epsilon_low=0.2, epsilon_high=0.2, beta=0.0, importance_sampling_level="token",
                top_entropy_quantile=1.0, off_policy_mask_threshold=None, use_vllm=False, aux_loss_enabled=False,
                _entropy_bonus_enabled=False, current_gradient_accumulation_steps=1, max_completion_length=MAX_LEN)
    base.update(attrs)
    base["vllm_importance_sampling_correction"] = base["use_vllm"]
    for k, v in base.items():
        object.__setattr__(t, k, v)
    object.__setattr__(t, "args", args)
    object.__setattr__(t, "model", types.SimpleNamespace(training=True))
    object.__setattr__(t, "accelerator", Accelerator(cpu=True))
    object.__setattr__(t, "_metrics", {"train": defaultdict(list), "eval": defaultdict(list)})
    object.__setattr__(t, "_get_per_token_logps_and_entropies", lambda *a, **k: (logp, entropy, None))
    return t


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_and_gradient_equal_trls_compute_loss(case):
    ours_kw, trl_kw = CASES[case]
    x = _inputs(sum(map(ord, case)))
    mask = x["mask"]
    # TRL
    a = x["logp"].clone().requires_grad_(True)
    trainer = _trl_trainer(dict(trl_kw), a, x["entropy"])
    inputs = {"prompt_ids": torch.ones(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
              "completion_ids": torch.ones(B, T, dtype=torch.long), "completion_mask": mask,
              "advantages": x["adv"], "old_per_token_logps": x["old"], "ref_per_token_logps": x["ref"],
              "importance_sampling_ratio": x["is_ratio"], "num_items_in_batch": mask.sum().double()}
    theirs = trainer._compute_loss(trainer.model, inputs)
    theirs.backward()
    # reasonlab
    b = x["logp"].clone().requires_grad_(True)
    s = LossSettings(max_len=MAX_LEN, **ours_kw)
    keep = None
    if "top_entropy_quantile" in trl_kw:
        q = trl_kw["top_entropy_quantile"]
        keep = high_entropy_mask(x["entropy"], mask, entropy_threshold(x["entropy"][mask.bool()], q))
    sampler = x["is_ratio"] if trl_kw.get("use_vllm") else None
    ours = policy_loss(b, x["old"], x["adv"], mask, s, ref_logp=x["ref"], sampler_weight=sampler, token_mask=keep)
    ours.mean().backward()
    assert ours.mean().item() == pytest.approx(theirs.item(), abs=1e-6)
    assert torch.allclose(a.grad, b.grad, atol=1e-6), (a.grad - b.grad).abs().max()


def test_trl_clip_metrics_match_ours():
    x = _inputs(7)
    trainer = _trl_trainer({"loss_type": "dapo", "epsilon_high": 0.28}, x["logp"].clone().requires_grad_(True),
                           x["entropy"])
    inputs = {"prompt_ids": torch.ones(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
              "completion_ids": torch.ones(B, T, dtype=torch.long), "completion_mask": x["mask"],
              "advantages": x["adv"], "old_per_token_logps": x["old"], "num_items_in_batch": x["mask"].sum().double()}
    trainer._compute_loss(trainer.model, inputs)
    terms = policy_loss(x["logp"], x["old"], x["adv"], x["mask"], LossSettings("dapo", eps_high=0.28))
    for k in ("clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"):
        assert terms.stats[k].item() / terms.stats["tokens"].item() == pytest.approx(trainer._metrics["train"][k][0])

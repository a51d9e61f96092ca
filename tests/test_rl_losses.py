"""GRPO-family losses and advantages against hand-derived values and an independent reference."""

import math
import zlib

import pytest
import torch

from reasonlab.rl.advantages import group_advantages, to_tensor, zero_std_groups
from reasonlab.rl.losses import LOSSES, policy_loss, token_entropy, token_logprobs

# Two completions, three token slots. Old log-probs are 0, so the ratio is exp(logp).
# Completion 1: ratios 1.0, 1.5, 0.5, advantage +1.  Completion 2: ratios 1.0, 0.7, (pad), advantage −2.
RATIOS = torch.tensor([[1.0, 1.5, 0.5], [1.0, 0.7, 1.0]])
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
ADV = torch.tensor([1.0, -2.0])
# Per-token terms with ε = 0.2, by hand: −min(ρA, clip(ρ)A)
#   completion 1: −min(1, 1) = −1;  −min(1.5, 1.2) = −1.2;  −min(0.5, 0.8) = −0.5
#   completion 2: −min(−2, −2) = 2; −min(−1.4, −1.6) = 1.6
HAND = {"grpo": ((-1 - 1.2 - 0.5) / 3 + (2 + 1.6) / 2) / 2,  # 0.45
        "dapo": (-1 - 1.2 - 0.5 + 2 + 1.6) / 5,  # 0.18
        "dr_grpo": (-1 - 1.2 - 0.5 + 2 + 1.6) / (2 * 4)}  # 0.1125 with max_len 4


def call(loss_type, **kw):
    logp = RATIOS.log().requires_grad_(True)
    return policy_loss(logp, torch.zeros(2, 3), ADV, MASK, loss_type=loss_type, max_len=4, **kw)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_hand_derived_values(loss_type):
    loss, stats = call(loss_type)
    assert loss.item() == pytest.approx(HAND[loss_type], abs=1e-6)
    assert stats["clip_ratio/low_mean"] == pytest.approx(1 / 5)  # ρ=0.7 with A<0
    assert stats["clip_ratio/high_mean"] == pytest.approx(1 / 5)  # ρ=1.5 with A>0
    assert stats["clip_ratio/region_mean"] == pytest.approx(2 / 5)


def test_clip_higher_dapo_style():
    loss, stats = call("grpo", eps_low=0.2, eps_high=0.28)
    # ρ=1.5 now clips at 1.28 instead of 1.2
    assert loss.item() == pytest.approx(((-1 - 1.28 - 0.5) / 3 + 1.8) / 2, abs=1e-6)
    assert stats["clip_ratio/high_mean"] == pytest.approx(1 / 5)


def test_kl_k3_term_by_hand():
    loss, stats = call("grpo", beta=0.1, ref_logp=torch.zeros(2, 3))
    # k3 with ref = old = 0: KL = 1/ρ + ln ρ − 1
    kl = lambda r: 1 / r + math.log(r) - 1  # noqa: E731
    seq1 = (-1 + (-1.2 + 0.1 * kl(1.5)) + (-0.5 + 0.1 * kl(0.5))) / 3
    seq2 = (2 + (1.6 + 0.1 * kl(0.7))) / 2
    assert loss.item() == pytest.approx((seq1 + seq2) / 2, abs=1e-6)
    assert stats["kl"] == pytest.approx((kl(1.5) + kl(0.5) + kl(0.7)) / 5, abs=1e-6)
    with pytest.raises(ValueError, match="ref_logp"):
        call("grpo", beta=0.1)


def test_on_policy_gradient_is_minus_advantage_over_length():
    """With ρ = 1 (first inner step), d loss / d logp_t = −A_i / |o_i| / B for "grpo"."""
    logp = torch.zeros(2, 3, requires_grad=True)
    loss, _ = policy_loss(logp, torch.zeros(2, 3), ADV, MASK, loss_type="grpo")
    loss.backward()
    expected = torch.tensor([[-1 / 3 / 2] * 3, [2 / 2 / 2, 2 / 2 / 2, 0.0]])
    assert torch.allclose(logp.grad, expected, atol=1e-7)


def reference_loss(logp, old, adv, mask, loss_type, eps_low, eps_high, beta, ref, max_len):
    """Written independently, token by token, straight from the papers' formulas."""
    seq_terms, total, n_tokens = [], 0.0, 0
    for i in range(logp.shape[0]):
        terms = []
        for t in range(logp.shape[1]):
            if not mask[i, t]:
                continue
            rho = torch.exp(logp[i, t] - old[i, t])
            surrogate = torch.minimum(rho * adv[i], torch.clamp(rho, 1 - eps_low, 1 + eps_high) * adv[i])
            term = -surrogate
            if beta:
                term = term + beta * (torch.exp(ref[i, t] - logp[i, t]) - (ref[i, t] - logp[i, t]) - 1)
            terms.append(term)
        seq_terms.append(sum(terms) / max(len(terms), 1))
        total = total + sum(terms)
        n_tokens += len(terms)
    if loss_type == "grpo":
        return sum(seq_terms) / len(seq_terms)
    if loss_type == "dapo":
        return total / n_tokens
    return total / (logp.shape[0] * max_len)


@pytest.mark.parametrize("loss_type", sorted(LOSSES))
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_matches_independent_reference_in_value_and_gradient(loss_type, beta):
    gen = torch.Generator().manual_seed(zlib.crc32(f"{loss_type}{beta}".encode()))
    B, T = 5, 7
    old = -torch.rand(B, T, generator=gen, dtype=torch.float64) * 3
    logp0 = old + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.3
    ref = old + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.2
    adv = torch.randn(B, generator=gen, dtype=torch.float64)
    lengths = [7, 3, 5, 1, 6]
    mask = torch.tensor([[1] * n + [0] * (T - n) for n in lengths])
    kw = dict(loss_type=loss_type, eps_low=0.2, eps_high=0.28, beta=beta, ref_logp=ref if beta else None, max_len=8)
    a = logp0.clone().requires_grad_(True)
    ours, _ = policy_loss(a, old, adv, mask, **kw)
    ours.backward()
    b = logp0.clone().requires_grad_(True)
    theirs = reference_loss(b, old, adv, mask, loss_type, 0.2, 0.28, beta, ref, 8)
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-6)
    assert torch.allclose(a.grad, b.grad, atol=1e-6)


def test_unknown_loss_type():
    with pytest.raises(ValueError, match="unknown loss_type"):
        call("ppo")


def test_group_advantages_scalings_by_hand():
    r, v = to_tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    none = group_advantages(r, v, 3, "none")
    assert torch.allclose(none, torch.tensor([2 / 3, -1 / 3, -1 / 3, 0, 0, 0]), atol=1e-6)
    group = group_advantages(r, v, 3, "group")
    std = math.sqrt(((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2)  # unbiased std of (1, 0, 0)
    assert torch.allclose(group[:3], none[:3] / (std + 1e-4), atol=1e-5)
    assert torch.all(group[3:] == 0)  # a zero-std group gets no signal, not a NaN
    batch = group_advantages(r, v, 3, "batch")
    assert torch.allclose(batch, none / (none.std() + 1e-4), atol=1e-5)


def test_none_rewards_are_skipped_not_nan():
    r, v = to_tensor([1.0, None, 0.0, None, None, None])
    for scale in ("group", "batch", "none"):
        adv = group_advantages(r, v, 3, scale)
        assert not torch.isnan(adv).any()
        assert adv[1] == 0 and torch.all(adv[3:] == 0)
    # the None row takes no part in its group's mean: (1, 0) → ±0.5
    assert torch.allclose(group_advantages(r, v, 3, "none")[[0, 2]], torch.tensor([0.5, -0.5]))
    assert zero_std_groups(r, v, 3).tolist() == [False, True]


def test_token_logprobs_and_entropy():
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])
    lp = token_logprobs(logits, torch.tensor([[0, 0]]))
    assert torch.allclose(lp, torch.tensor([[math.log(0.5), math.log(0.75)]]))
    ent = token_entropy(logits)
    assert ent[0, 0].item() == pytest.approx(math.log(2))
    assert ent[0, 1].item() == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))

"""GRPO-family losses and advantages against hand-derived values and an independent reference."""

import math
import zlib

import pytest
import torch

from reasonlab.rl.advantages import advantages, to_tensor
from reasonlab.rl.losses import LossSettings, policy_loss, token_entropy, token_logprobs

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


def settings(loss_type, **kw):
    return LossSettings(loss_type, max_len=4, **kw)


def run(s, ref=None, sampler=None, keep=None):
    logp = RATIOS.log().requires_grad_(True)
    terms = policy_loss(logp, torch.zeros(2, 3), ADV, MASK, s, ref_logp=ref, sampler_weight=sampler, token_mask=keep)
    return terms.mean().item(), {k: v.item() / terms.stats["tokens"].item() for k, v in terms.stats.items()}


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_hand_derived_values(loss_type):
    loss, stats = run(settings(loss_type))
    assert loss == pytest.approx(HAND[loss_type], abs=1e-6)
    assert stats["clip_ratio/low_mean"] == pytest.approx(1 / 5)  # ρ=0.7 with A<0
    assert stats["clip_ratio/high_mean"] == pytest.approx(1 / 5)  # ρ=1.5 with A>0
    assert stats["clip_ratio/region_mean"] == pytest.approx(2 / 5)


def test_bnpo_is_the_micro_batch_token_mean():
    assert run(settings("bnpo"))[0] == pytest.approx(HAND["dapo"], abs=1e-6)  # one micro-batch: dapo's value


def test_clip_higher_dapo_style():
    loss, stats = run(settings("grpo", eps_low=0.2, eps_high=0.28))
    # ρ=1.5 now clips at 1.28 instead of 1.2
    assert loss == pytest.approx(((-1 - 1.28 - 0.5) / 3 + 1.8) / 2, abs=1e-6)
    assert stats["clip_ratio/high_mean"] == pytest.approx(1 / 5)


def test_two_sided_delta_clip_by_hand():
    """δ caps the ratio before the PPO min, which only matters for A < 0 with a large ratio."""
    ratios = torch.tensor([[3.0, 1.0]])
    logp = ratios.log().requires_grad_(True)
    s = LossSettings("dapo", delta=2.0)
    loss = policy_loss(logp, torch.zeros(1, 2), torch.tensor([-1.0]), torch.ones(1, 2), s).mean()
    # token 1: −min(min(3, 2)·(−1), clip(3)·(−1)) = −min(−2, −1.2) = 2; token 2: −min(−1, −1) = 1
    assert loss.item() == pytest.approx((2 + 1) / 2)
    plain = policy_loss(logp, torch.zeros(1, 2), torch.tensor([-1.0]), torch.ones(1, 2), LossSettings("dapo")).mean()
    assert plain.item() == pytest.approx((3 + 1) / 2)


def test_gspo_sequence_ratio_by_hand():
    """GSPO: one ratio per completion, the geometric mean of its token ratios, clipped as a whole."""
    loss, _ = run(settings("grpo", importance_sampling_level="sequence"))
    w1 = math.exp((math.log(1.0) + math.log(1.5) + math.log(0.5)) / 3)  # 0.9086 inside the clip range
    w2 = math.exp((math.log(1.0) + math.log(0.7)) / 2)  # 0.8367 inside
    assert loss == pytest.approx((-w1 * 1 + w2 * 2) / 2, abs=1e-6)


def test_gspo_token_has_the_sequence_value_and_per_token_gradients():
    logp = RATIOS.log().requires_grad_(True)
    seq = policy_loss(logp, torch.zeros(2, 3), ADV, MASK, LossSettings("grpo", importance_sampling_level="sequence"))
    logp2 = RATIOS.log().requires_grad_(True)
    tok = policy_loss(logp2, torch.zeros(2, 3), ADV, MASK,
                      LossSettings("grpo", importance_sampling_level="sequence_token"))
    assert tok.mean().item() == pytest.approx(seq.mean().item(), abs=1e-7)
    tok.mean().backward()
    # d/d logp_t of −sg(w)·exp(logp_t − sg(logp_t))·A / |o| / B = −w·A/|o|/B on every token (unclipped)
    w1 = math.exp(math.log(1.5 * 0.5) / 3)
    assert logp2.grad[0].tolist() == pytest.approx([-w1 / 3 / 2] * 3, abs=1e-6)


def test_cispo_by_hand():
    """CISPO: −sg(min(ρ, ε_max))·A·logπ, token mean; gradients flow through log π only."""
    logp = RATIOS.log().requires_grad_(True)
    terms = policy_loss(logp, torch.zeros(2, 3), ADV, MASK, LossSettings("cispo", cispo_max=1.2))
    caps = [[1.0, 1.2, 0.5], [1.0, 0.7, 0.0]]
    lps = RATIOS.log()
    expect = -sum(caps[i][t] * ADV[i].item() * lps[i, t].item() for i in range(2) for t in range(3) if MASK[i, t]) / 5
    assert terms.mean().item() == pytest.approx(expect, abs=1e-6)
    terms.mean().backward()
    assert logp.grad[0, 1].item() == pytest.approx(-1.2 * 1.0 / 5, abs=1e-6)
    assert terms.stats["cispo_clip_ratio"].item() == 1  # ρ = 1.5 > 1.2 with A > 0


def test_sapo_by_hand():
    """SAPO: −σ(τ(ρ − 1))·4/τ·A, τ_pos for A > 0 and τ_neg otherwise; sequence mean."""
    loss, _ = run(settings("sapo", sapo_tau_pos=1.0, sapo_tau_neg=2.0))
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    seq1 = sum(-sig(1.0 * (r - 1)) * 4 / 1.0 * 1.0 for r in (1.0, 1.5, 0.5)) / 3
    seq2 = sum(-sig(2.0 * (r - 1)) * 4 / 2.0 * -2.0 for r in (1.0, 0.7)) / 2
    assert loss == pytest.approx((seq1 + seq2) / 2, abs=1e-6)


def test_sampler_weight_and_entropy_mask_multiply_token_terms():
    sampler = torch.tensor([[1.0, 0.5, 0.0], [2.0, 1.0, 1.0]])
    keep = torch.tensor([[True, True, False], [True, False, False]])
    loss, _ = run(settings("dapo"), sampler=sampler, keep=keep)
    # token terms −1, −1.2, −0.5 | 2, 1.6 (see HAND), × sampler × keep, over 5 tokens
    assert loss == pytest.approx((-1 * 1.0 + -1.2 * 0.5 + 2 * 2.0) / 5, abs=1e-6)


def test_kl_k3_term_by_hand():
    loss, stats = run(settings("grpo", beta=0.1, kl_bias_correction=False), ref=torch.zeros(2, 3))
    # k3 with ref = old = 0: KL = 1/ρ + ln ρ − 1
    kl = lambda r: 1 / r + math.log(r) - 1  # noqa: E731
    seq1 = (-1 + (-1.2 + 0.1 * kl(1.5)) + (-0.5 + 0.1 * kl(0.5))) / 3
    seq2 = (2 + (1.6 + 0.1 * kl(0.7))) / 2
    assert loss == pytest.approx((seq1 + seq2) / 2, abs=1e-6)
    assert stats["kl"] == pytest.approx((kl(1.5) + kl(0.5) + kl(0.7)) / 5, abs=1e-6)
    with pytest.raises(ValueError, match="ref_logp"):
        run(settings("grpo", beta=0.1, kl_bias_correction=False))
    corrected, _ = run(settings("grpo", beta=0.1, kl_bias_correction=True), ref=torch.zeros(2, 3))
    seq1 = (-1 + (-1.2 + 0.1 * kl(1.5) * 1.5) + (-0.5 + 0.1 * kl(0.5) * 0.5)) / 3  # KL × ρ
    seq2 = (2 + (1.6 + 0.1 * kl(0.7) * 0.7)) / 2
    assert corrected == pytest.approx((seq1 + seq2) / 2, abs=1e-6)


def test_on_policy_gradient_is_minus_advantage_over_length():
    """With ρ = 1 (first inner step), d loss / d logp_t = −A_i / |o_i| / B for "grpo"."""
    logp = torch.zeros(2, 3, requires_grad=True)
    policy_loss(logp, torch.zeros(2, 3), ADV, MASK, LossSettings("grpo")).mean().backward()
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


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
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
    s = LossSettings(loss_type, eps_low=0.2, eps_high=0.28, beta=beta, kl_bias_correction=False, max_len=8)  # uncorrected k3, as the reference
    a = logp0.clone().requires_grad_(True)
    ours = policy_loss(a, old, adv, mask, s, ref_logp=ref if beta else None).mean()
    ours.backward()
    b = logp0.clone().requires_grad_(True)
    theirs = reference_loss(b, old, adv, mask, loss_type, 0.2, 0.28, beta, ref, 8)
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-6)
    assert torch.allclose(a.grad, b.grad, atol=1e-6)


def test_unknown_loss_type_and_level():
    with pytest.raises(ValueError, match="unknown loss_type"):
        run(settings("ppo"))
    with pytest.raises(ValueError, match="importance_sampling_level"):
        run(settings("grpo", importance_sampling_level="word"))


def test_group_baseline_scalings_by_hand():
    r, v = to_tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    none = advantages(r, v, 3, scale="none")
    assert torch.allclose(none, torch.tensor([2 / 3, -1 / 3, -1 / 3, 0, 0, 0]), atol=1e-6)
    group = advantages(r, v, 3, scale="group")
    std = math.sqrt(((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2)  # unbiased std of (1, 0, 0)
    assert torch.allclose(group[:3], none[:3] / (std + 1e-4), atol=1e-5)
    assert torch.all(group[3:] == 0)  # a zero-std group gets no signal, not a NaN
    batch = advantages(r, v, 3, scale="batch")  # TRL: the std of the rewards over the batch
    assert torch.allclose(batch, none / (r.std() + 1e-4), atol=1e-5)


def test_rloo_and_reinforce_pp_baselines_by_hand():
    r, v = to_tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    rloo = advantages(r, v, 3, "rloo", "none")
    # leave-one-out: 1 − mean(0, 0) = 1; 0 − mean(1, 0) = −0.5; group 2: 1 − 0.5, 1 − 0.5, 0 − 1
    assert torch.allclose(rloo, torch.tensor([1.0, -0.5, -0.5, 0.5, 0.5, -1.0]))
    pp = advantages(r, v, 3, "reinforce_pp")
    assert torch.allclose(pp, (r - 0.5) / (r.std() + 1e-4), atol=1e-6)
    centred = r - torch.tensor([1 / 3] * 3 + [2 / 3] * 3)
    ppb = advantages(r, v, 3, "reinforce_pp_baseline")
    assert torch.allclose(ppb, (centred - centred.mean()) / (centred.std() + 1e-4), atol=1e-6)


@pytest.mark.parametrize("baseline", ["group", "rloo", "reinforce_pp", "reinforce_pp_baseline"])
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_advantages_from_split_processes_equal_one_process(baseline, scale):
    """Groups on two 'processes' (3 and 1 groups) with batch sums added across them give the
    one-process advantages: `reduce` is the only communication."""
    gen = torch.Generator().manual_seed(1)
    r = torch.randint(0, 3, (16,), generator=gen).float() / 2
    v = torch.rand(16, generator=gen) > 0.15
    whole = advantages(r, v, 4, baseline, scale)
    parts = [(slice(0, 12)), (slice(12, 16))]

    def reduce_for(me):
        def reduce(t):  # the sum this process would get from all_reduce: its own + the other's
            other = [p for p in parts if p != me][0]
            return t + _moments_of(r[other], v[other], baseline, t)
        return reduce

    def _moments_of(rr, vv, base, like):
        captured = {}
        advantages(rr, vv, 4, base, scale, reduce=lambda t: captured.setdefault("t", t))
        return captured["t"] if "t" in captured else torch.zeros_like(like)

    split = torch.cat([advantages(r[p], v[p], 4, baseline, scale, reduce=reduce_for(p)) for p in parts])
    assert torch.allclose(whole, split, atol=1e-6)


def test_none_rewards_are_skipped_not_nan():
    r, v = to_tensor([1.0, None, 0.0, None, None, None])
    for scale in ("group", "batch", "none"):
        adv = advantages(r, v, 3, scale=scale)
        assert not torch.isnan(adv).any()
        assert adv[1] == 0 and torch.all(adv[3:] == 0)
    # the None row takes no part in its group's mean: (1, 0) → ±0.5
    assert torch.allclose(advantages(r, v, 3, scale="none")[[0, 2]], torch.tensor([0.5, -0.5]))


def test_token_logprobs_and_entropy():
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])
    lp = token_logprobs(logits, torch.tensor([[0, 0]]))
    assert torch.allclose(lp, torch.tensor([[math.log(0.5), math.log(0.75)]]))
    ent = token_entropy(logits)
    assert ent[0, 0].item() == pytest.approx(math.log(2))
    assert ent[0, 1].item() == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))

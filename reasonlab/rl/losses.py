"""The policy-gradient objective of the GRPO family, as pure tensor functions.

Per completion token t of row i, with advantage A_i, log-ratio r_it = log π − log π_old and an
importance weight w (`importance_sampling_level`):
    token          w_it = exp(r_it)                                   (PPO, GRPO)
    sequence       w_i  = exp(mean_t r_it)                            (GSPO, Zheng et al. 2025)
    sequence_token w_it = sg(w_i) · π_it / sg(π_it): w_i's value, per-token gradient (GSPO-token)
the token objective ℓ_it (the registry `LOSSES`, one entry per `loss_type`):
    grpo, bnpo, dapo, dr_grpo   −min(w·A, clip(w, 1 − ε_low, 1 + ε_high)·A); with `delta`, w is
                                first capped at δ (two-sided clip, INTELLECT-2)
    cispo                       −sg(min(w, ε_max))·A·log π            (MiniMax-M1's CISPO)
    sapo                        −σ(τ(w − 1))·(4/τ)·A, τ = τ_pos if A > 0 else τ_neg (SAPO, Qwen)
then × the sampler correction (TIS/MIS, `rl/mismatch.py`), × the high-entropy mask
(`top_entropy_quantile`, Wang et al. 2025 "80/20"), and + β·KL with the k3 estimator
KL_it = exp(log π_ref − log π) − (log π_ref − log π) − 1, × w with `kl_bias_correction` (TRL's
`use_bias_correction_kl`).

Aggregation, how a step's token terms become one number, is the other axis of the registry:
    sequence     (grpo, sapo)   mean over each completion's tokens, then over completions
    token        (dapo, cispo)  sum over all tokens / tokens in the whole step (TRL's dapo)
    constant     (dr_grpo)      sum / (completions × max_completion_length)   (Dr. GRPO)
    micro_batch  (bnpo)         token mean of each micro-batch, averaged over micro-batches
`policy_loss` returns a micro-batch's numerator and its share of the normaliser; the trainer sums
the normaliser over the whole step on all processes once (`rl/update.py`), so micro-batches,
gradient accumulation and uneven processes never change the objective. bnpo is the exception by
definition: TRL defines it as the *local* batch's token mean, so its objective depends on the
split (as in TRL); use dapo for the split-invariant token mean.
Departures from TRL: none in the formulas (the tests check each against TRL 1.16's own
`_compute_loss`); clip diagnostics are token means even at sequence level; the high-entropy
mask's quantile is taken over the whole step on every process (TRL takes it per micro-batch, so
there the tokens kept depend on the split); a row that no reward could score is left out of the
loss batch (TRL keeps it with advantage 0, so its tokens count in the normaliser and its KL term
trains).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

LEVELS = ("token", "sequence", "sequence_token")


@dataclass(frozen=True)
class LossSettings:
    """The loss's knobs (GRPOConfig's fields of the same names)."""

    loss_type: str = "grpo"
    eps_low: float = 0.2
    eps_high: float = 0.2
    delta: float | None = None  #: two-sided clip: w ≤ δ before the PPO min (None: off)
    importance_sampling_level: str = "token"
    beta: float = 0.0
    kl_bias_correction: bool = True  #: TRL's default (use_bias_correction_kl); matters only with beta > 0
    cispo_max: float = 5.0  #: CISPO's ε_max (TRL: `epsilon_high` under loss_type="cispo")
    sapo_tau_pos: float = 1.0
    sapo_tau_neg: float = 1.05
    max_len: int = 0  #: completion-length cap for dr_grpo (0: the batch's width)


@dataclass
class LossTerms:
    """One micro-batch's part of the step's loss: `numerator / count` alone, `numerator / (count
    summed over the step)` when the step has several micro-batches or processes."""

    numerator: torch.Tensor  # [] with grad
    count: torch.Tensor  # [] this micro-batch's share of the normaliser
    stats: dict[str, torch.Tensor] = field(default_factory=dict)  # detached sums over tokens; "tokens" counts them

    def mean(self) -> torch.Tensor:
        return self.numerator / self.count.clamp(min=1)  # []


def _ppo_clip(w, logp, adv, s: LossSettings) -> torch.Tensor:
    clipped = w.clamp(1 - s.eps_low, 1 + s.eps_high)  # [B, T|1]
    if s.delta is not None:
        w = w.clamp(max=s.delta)  # [B, T|1]
    return -torch.min(w * adv, clipped * adv)  # [B, T|1]


def _cispo(w, logp, adv, s: LossSettings) -> torch.Tensor:
    return -w.clamp(max=s.cispo_max).detach() * adv * logp  # [B, T]


def _sapo(w, logp, adv, s: LossSettings) -> torch.Tensor:
    tau = torch.where(adv > 0, s.sapo_tau_pos, s.sapo_tau_neg)  # [B, 1]
    return -torch.sigmoid(tau * (w - 1)) * 4 / tau * adv  # [B, T|1]


@dataclass(frozen=True)
class LossType:
    objective: Callable[..., torch.Tensor]
    aggregation: str
    paper: str


LOSSES: dict[str, LossType] = {
    "grpo": LossType(_ppo_clip, "sequence", "DeepSeekMath (Shao et al. 2024)"),
    "bnpo": LossType(_ppo_clip, "micro_batch", "TRL's bnpo (local-batch token mean)"),
    "dapo": LossType(_ppo_clip, "token", "DAPO (Yu et al. 2025)"),
    "dr_grpo": LossType(_ppo_clip, "constant", "Dr. GRPO (Liu et al. 2025)"),
    "cispo": LossType(_cispo, "token", "MiniMax-M1 (2025)"),
    "sapo": LossType(_sapo, "sequence", "SAPO (Gao et al. 2025)"),
}


def importance_weights(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, level: str) -> torch.Tensor:
    """w at `level`: [B, T] for token and sequence_token, [B, 1] for sequence."""
    log_ratio = logp - old_logp  # [B, T]
    if level == "token":
        return torch.exp(log_ratio)  # [B, T]
    seq = (log_ratio * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1)  # [B, 1]
    if level == "sequence":
        return torch.exp(seq)  # [B, 1]
    if level == "sequence_token":
        return torch.exp(seq.detach() + logp - logp.detach())  # [B, T]
    raise ValueError(f"unknown importance_sampling_level {level!r} (choose from {', '.join(LEVELS)})")


def normaliser(mask: torch.Tensor, how: str, max_len: int) -> torch.Tensor:
    """This micro-batch's share of the step's normaliser (needs no forward: masks only)."""
    rows = mask.new_tensor(float(mask.shape[0]))  # []
    if how == "sequence":
        return rows  # []
    if how == "token":
        return mask.sum()  # []
    if how == "constant":
        return rows * max_len  # []
    if how == "micro_batch":
        return mask.new_tensor(1.0)  # []
    raise ValueError(f"unknown aggregation {how!r}")


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, how: str, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(numerator, count) of one micro-batch; loss = Σ numerators / Σ counts over the step."""
    if how == "sequence":
        numerator = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).sum()  # []
    elif how == "micro_batch":
        numerator = (per_token * mask).sum() / mask.sum().clamp(min=1)  # []
    else:
        numerator = (per_token * mask).sum()  # []
    return numerator, normaliser(mask, how, max_len)


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    s: LossSettings = LossSettings(),
    *,
    ref_logp: torch.Tensor | None = None,
    sampler_weight: torch.Tensor | None = None,
    token_mask: torch.Tensor | None = None,
) -> LossTerms:
    """One micro-batch's loss terms and detached diagnostics.

    Shapes: logp, old_logp, ref_logp, mask [B, T] (mask 1 on completion tokens that train);
    advantages [B]; sampler_weight [B, T] or [B, 1] (the TIS/MIS factor, `rl/mismatch.py`);
    token_mask [B, T] (the high-entropy selection).
    """
    if s.loss_type not in LOSSES:
        raise ValueError(f"unknown loss_type {s.loss_type!r} (choose from {', '.join(LOSSES)})")
    spec = LOSSES[s.loss_type]
    mask = mask.to(logp.dtype)  # [B, T]
    adv = advantages.to(logp.dtype).unsqueeze(-1)  # [B, 1]
    w = importance_weights(logp, old_logp, mask, s.importance_sampling_level)  # [B, T|1]
    per_token = spec.objective(w, logp, adv, s)  # [B, T|1]
    if token_mask is not None:
        per_token = per_token * token_mask.to(logp.dtype)  # [B, T]
    if sampler_weight is not None:
        per_token = per_token * sampler_weight.to(logp.dtype)  # [B, T|1]
    stats = _clip_stats(w.detach(), adv, mask, s)
    if s.beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta != 0 needs ref_logp")
        d = ref_logp - logp  # [B, T]
        kl = torch.exp(d) - d - 1  # [B, T]
        if s.kl_bias_correction:
            kl = kl * w  # [B, T]
        per_token = per_token + s.beta * kl  # [B, T]
        stats["kl"] = (kl.detach() * mask).sum()  # []
    numerator, count = aggregate(per_token, mask, spec.aggregation, s.max_len or logp.shape[-1])  # [], []
    return LossTerms(numerator, count, stats)


def _clip_stats(w: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, s: LossSettings) -> dict[str, torch.Tensor]:
    """Token counts of clipped terms, TRL's `clip_ratio/*` (or `cispo_clip_ratio`) numerators."""
    w = w.expand_as(mask)  # [B, T]
    out = {"tokens": mask.sum()}  # []
    if s.loss_type == "cispo":
        out["cispo_clip_ratio"] = (((w > s.cispo_max) & (adv > 0)) * mask).sum()  # []
        return out
    low = (w < 1 - s.eps_low) & (adv < 0)  # [B, T] clipped from below
    high = (w > 1 + s.eps_high) & (adv > 0)  # [B, T] clipped from above
    out["clip_ratio/low_mean"] = (low * mask).sum()  # []
    out["clip_ratio/high_mean"] = (high * mask).sum()  # []
    out["clip_ratio/region_mean"] = ((low | high) * mask).sum()  # []
    return out


def entropy_threshold(entropies: torch.Tensor, top_quantile: float) -> float:
    """The (1 − top_quantile)-quantile of a step's completion-token entropies [K] (all processes).

    >>> round(entropy_threshold(torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]), 0.2), 4)
    3.2
    """
    if entropies.numel() == 0:
        return 0.0
    return float(torch.quantile(entropies.float(), 1 - top_quantile))


def high_entropy_mask(entropy: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
    """[B, T] True on completion tokens whose entropy is at least `threshold` (the step's
    (1 − top_entropy_quantile)-quantile over every completion token on every process).

    >>> high_entropy_mask(torch.tensor([[0.1, 2.0, 0.5]]), torch.tensor([[1, 1, 0]]), 0.5).tolist()
    [[False, True, False]]
    """
    return (entropy * mask >= threshold) & mask.bool()  # [B, T]


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) per position: logits [B, T, V], targets [B, T] → [B, T] (fp32)."""
    logits = logits.float()  # [B, T, V]
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)  # [B, T]


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each position's distribution: [B, T, V] → [B, T]."""
    logp = logits.float().log_softmax(-1)  # [B, T, V]
    return -(logp.exp() * logp).sum(-1)  # [B, T]

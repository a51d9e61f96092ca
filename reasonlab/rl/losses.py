"""The clipped policy-gradient objective of the GRPO family, as pure tensor functions.

Per token t of completion i, with ratio ρ = exp(logπ − logπ_old) and advantage A_i:
    ℓ_it = −min(ρ·A_i, clip(ρ, 1 − ε_low, 1 + ε_high)·A_i) + β·KL_it,
    KL_it = exp(logπ_ref − logπ) − (logπ_ref − logπ) − 1        (k3 estimator, ≥ 0)
Variants differ only in how token losses are averaged (the registry `LOSSES`):
  - "grpo":    mean over each completion's tokens, then over completions (DeepSeekMath);
  - "dapo":    sum over all tokens / number of tokens in the batch (token-level, DAPO);
  - "dr_grpo": sum over all tokens / (completions × max_completion_length) (Dr. GRPO: a
               constant, so long wrong answers are not favoured).
DAPO's clip-higher is `eps_high > eps_low`; Dr. GRPO also turns off std scaling of advantages
(`advantages.group_advantages(scale="none")`), a separate setting as in TRL.
Departures from the papers: none in the formulas; the KL term is added per token before
aggregation (as in TRL), and β = 0 skips it entirely.
"""

from __future__ import annotations

from typing import Callable

import torch


def _seq_mean(per_token: torch.Tensor, mask: torch.Tensor, max_len: int) -> torch.Tensor:
    per_seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)  # [B]
    return per_seq.mean()  # []


def _token_mean(per_token: torch.Tensor, mask: torch.Tensor, max_len: int) -> torch.Tensor:
    return (per_token * mask).sum() / mask.sum().clamp(min=1)  # []


def _constant_norm(per_token: torch.Tensor, mask: torch.Tensor, max_len: int) -> torch.Tensor:
    return (per_token * mask).sum() / (per_token.shape[0] * max_len)  # []


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]] = {
    "grpo": _seq_mean,
    "dapo": _token_mean,
    "dr_grpo": _constant_norm,
}


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: str = "grpo",
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    max_len: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss (a scalar with grad) and detached diagnostics.

    Shapes: logp, old_logp, ref_logp, mask [B, T] (mask 1 on completion tokens); advantages [B].
    `max_len` is the completion-length cap used by "dr_grpo" (default T).
    """
    if loss_type not in LOSSES:
        raise ValueError(f"unknown loss_type {loss_type!r} (choose from {', '.join(LOSSES)})")
    mask = mask.to(logp.dtype)  # [B, T]
    adv = advantages.to(logp.dtype).unsqueeze(-1)  # [B, 1]
    ratio = torch.exp(logp - old_logp)  # [B, T]
    clipped = ratio.clamp(1 - eps_low, 1 + eps_high)  # [B, T]
    per_token = -torch.min(ratio * adv, clipped * adv)  # [B, T]
    stats: dict[str, float] = {}
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta != 0 needs ref_logp")
        delta = ref_logp - logp  # [B, T]
        kl = torch.exp(delta) - delta - 1  # [B, T]
        per_token = per_token + beta * kl  # [B, T]
        stats["kl"] = _token_mean(kl.detach(), mask, 0).item()
    loss = LOSSES[loss_type](per_token, mask, max_len or logp.shape[-1])  # []
    with torch.no_grad():
        low = (ratio < 1 - eps_low) & (adv < 0)  # [B, T] clipped from below
        high = (ratio > 1 + eps_high) & (adv > 0)  # [B, T] clipped from above
        stats["clip_ratio/low_mean"] = _token_mean(low.to(mask.dtype), mask, 0).item()
        stats["clip_ratio/high_mean"] = _token_mean(high.to(mask.dtype), mask, 0).item()
        stats["clip_ratio/region_mean"] = _token_mean((low | high).to(mask.dtype), mask, 0).item()
    return loss, stats


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) per position: logits [B, T, V], targets [B, T] → [B, T] (fp32)."""
    logits = logits.float()  # [B, T, V]
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)  # [B, T]


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each position's distribution: [B, T, V] → [B, T]."""
    logp = logits.float().log_softmax(-1)  # [B, T, V]
    return -(logp.exp() * logp).sum(-1)  # [B, T]

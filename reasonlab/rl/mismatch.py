"""Sampler-mismatch correction: the rollouts' sampler is not exactly the trained policy.

vLLM samples with its own kernels (bf16, paged attention), so even before any update its token
probabilities differ from the trainer's, and treating its samples as on-policy biases the
gradient (Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL
training"; users of TRL and verl report collapse without a correction). With the trainer's
log-probs log π_θ and the sampler's log π_s of the same tokens, the per-token factor
ρ = π_θ / π_s multiplies each token's loss:
    token_truncate     min(ρ_t, C_max) (and ≥ C_min when set)            truncated IS (TIS)
    token_mask         ρ_t, or 0 outside [C_min, C_max]                  masked IS (MIS)
    sequence_truncate  ρ_i = Π_t ρ_t per completion, clamped             sequence-level TIS
    sequence_mask      ρ_i, or 0 outside [C_min, C_max] (TRL's default)  sequence-level MIS
Exactly TRL's `vllm_importance_sampling_mode` / `_clip_min` / `_clip_max`; tokens the sampler
gave no log-prob for (NaN) get ρ = 1. The metrics carry TRL's names and are over the whole step on
every process (sums reduced once), not means of per-process means.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


def sampler_weights(trainer_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor, mode: str,
                    clip_max: float | None = 3.0, clip_min: float | None = None) -> torch.Tensor:
    """The correction factor: [B, T] for token modes, [B, 1] for sequence modes.

    >>> t, s = torch.tensor([[0.0, -1.0, -0.5]]), torch.tensor([[-2.0, -1.0, float("nan")]])
    >>> sampler_weights(t, s, torch.ones(1, 3), "token_truncate").tolist()  # e^2 ≈ 7.39 capped at 3
    [[3.0, 1.0, 1.0]]
    >>> sampler_weights(t, s, torch.ones(1, 3), "token_mask").tolist()
    [[0.0, 1.0, 1.0]]
    """
    if mode not in MODES:
        raise ValueError(f"unknown importance sampling mode {mode!r} (choose from {', '.join(MODES)})")
    diff = torch.nan_to_num((trainer_logp - sampler_logp) * mask, nan=0.0)  # [B, T]
    if mode.startswith("sequence"):
        diff = diff.sum(-1, keepdim=True)  # [B, 1]
    ratio = torch.exp(diff)  # [B, T|1]
    if mode.endswith("truncate"):
        return torch.clamp(ratio, min=clip_min, max=clip_max)  # [B, T|1]
    lo = -math.inf if clip_min is None else clip_min
    hi = math.inf if clip_max is None else clip_max
    return ratio.masked_fill((ratio < lo) | (ratio > hi), 0.0)  # [B, T|1]


def mismatch_sums(trainer_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor,
                  weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """Sums, counts, minima and maxima of |log π_θ − log π_s| and of the factor, for `mismatch_metrics`."""
    delta = (trainer_logp - sampler_logp).abs()  # [B, T]
    known = mask.bool() & ~torch.isnan(delta)  # [B, T]
    d = delta[known]  # [K]
    w = weights.flatten() if weights.shape[-1] == 1 else weights[mask.bool()]  # [R] sequences or tokens
    z = delta.new_zeros(())
    return {"d_sum": d.sum() if d.numel() else z, "d_n": z + d.numel(), "d_max": d.max() if d.numel() else z,
            "w_sum": w.sum() if w.numel() else z, "w_n": z + w.numel(),
            "w_min": w.min() if w.numel() else z + math.inf, "w_max": w.max() if w.numel() else z - math.inf}


def merge_sums(parts: list[dict[str, torch.Tensor]], device=None) -> dict[str, torch.Tensor]:
    """One process's `mismatch_sums` over its micro-batches (none: an empty step)."""
    z = torch.zeros((), device=device)
    out = {k: sum((p[k] for p in parts), z) for k in ("d_sum", "d_n", "w_sum", "w_n")}
    out["d_max"] = torch.stack([z] + [p["d_max"] for p in parts]).max()
    out["w_max"] = torch.stack([z - math.inf] + [p["w_max"] for p in parts]).max()
    out["w_min"] = torch.stack([z + math.inf] + [p["w_min"] for p in parts]).min()
    return out


def mismatch_metrics(sums: dict[str, torch.Tensor], reduce_sum: Callable, reduce_max: Callable) -> dict[str, float]:
    """TRL's `sampling/*` metrics over the whole step (all processes); none for a step that
    measured no token (every row left out as idle), rather than zeros that read as a perfect match."""
    total = reduce_sum(torch.stack([sums["d_sum"], sums["d_n"], sums["w_sum"], sums["w_n"]]))  # [4]
    peak = reduce_max(torch.stack([sums["d_max"], sums["w_max"], -sums["w_min"]]))  # [3]
    if total[1] == 0 and total[3] == 0:
        return {}
    return {"sampling/sampling_logp_difference/mean": float(total[0] / total[1].clamp(min=1)),
            "sampling/sampling_logp_difference/max": float(peak[0]),
            "sampling/importance_sampling_ratio/min": float(-peak[2]) if total[3] > 0 else 0.0,
            "sampling/importance_sampling_ratio/mean": float(total[2] / total[3].clamp(min=1)),
            "sampling/importance_sampling_ratio/max": float(peak[1]) if total[3] > 0 else 0.0}

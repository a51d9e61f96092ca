"""Advantages from a step's rewards: the baselines of the GRPO family (DAPO's filter of groups
without signal is `sampling.ScoredGroup.has_signal`).

Rewards are [P, G] (P groups of G completions of one prompt, each group on one process); `valid`
marks rows that could be scored (a row no reward function could score is left out of every
statistic and gets advantage 0 — never a NaN). Batch statistics are over the *global* step: the
caller passes `reduce`, a sum over processes (`Accelerator.reduce`), so one process and several
give the same advantages; group statistics need no communication because groups never split.

Baselines (`baseline`), A_i = (r_i − b_i) / s_i:
    group                b = the group's mean                     (GRPO, DeepSeekMath)
    rloo                 b = the mean of the *other* rows of the group (RLOO, Ahmadian et al. 2024)
    reinforce_pp         b = the global batch mean, s = the batch std (REINFORCE++, Hu 2025)
    reinforce_pp_baseline  r − group mean, then whitened over the global batch (REINFORCE++-baseline)
Scaling (`scale`, for group and rloo; TRL's `scale_rewards`): "group" divides by the group's std,
"batch" by the std of the rewards over the global batch (TRL's definition), "none" only centres
(Dr. GRPO). The REINFORCE++ baselines whiten over the batch by definition and ignore `scale`.
Stds are unbiased (torch.std, as TRL), with eps 1e-4 added to the divisor (TRL's).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

SCALES = ("group", "batch", "none")
BASELINES = ("group", "rloo", "reinforce_pp", "reinforce_pp_baseline")
Reduce = Callable[[torch.Tensor], torch.Tensor]


def _local(t: torch.Tensor) -> torch.Tensor:
    return t


def to_tensor(rewards: list[float | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards [N] with None → 0, and the mask [N] of rows that were scored."""
    valid = torch.tensor([r is not None for r in rewards], dtype=torch.bool)  # [N]
    values = torch.tensor([0.0 if r is None else float(r) for r in rewards])  # [N]
    return values, valid


def batch_moments(x: torch.Tensor, m: torch.Tensor, reduce: Reduce = _local) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased std of x over the rows where m is 1, on every process together."""
    x, m = x.double(), m.double()  # [P, G]
    n, s1, s2 = reduce(torch.stack([m.sum(), (x * m).sum(), (x * x * m).sum()]))  # [3] summed over processes
    mean = s1 / n.clamp(min=1)  # []
    var = (s2 - n * mean**2).clamp(min=0) / (n - 1).clamp(min=1)  # []
    return mean, var.sqrt()  # [], []


def advantages(rewards: torch.Tensor, valid: torch.Tensor, group_size: int, baseline: str = "group",
               scale: str = "group", reduce: Reduce = _local, eps: float = 1e-4) -> torch.Tensor:
    """Advantages [N] for flat prompt-major rewards [N] (see the module docstring).

    >>> r, v = to_tensor([1.0, 0.0, 0.0, 0.0, 1.0, None])
    >>> [round(x, 4) for x in advantages(r, v, 3, scale="none").tolist()]
    [0.6667, -0.3333, -0.3333, -0.5, 0.5, 0.0]
    >>> [round(x, 4) for x in advantages(r, v, 3, "rloo", scale="none").tolist()]
    [1.0, -0.5, -0.5, -1.0, 1.0, 0.0]
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    r = rewards.view(-1, group_size).double()  # [P, G]
    m = valid.view(-1, group_size).double()  # [P, G]
    count = m.sum(-1, keepdim=True)  # [P, 1]
    group_sum = (r * m).sum(-1, keepdim=True)  # [P, 1]
    mean = group_sum / count.clamp(min=1)  # [P, 1]
    if baseline == "reinforce_pp":
        b_mean, b_std = batch_moments(r, m, reduce)  # [], []
        out = (r - b_mean) / (b_std + eps)  # [P, G]
    elif baseline == "reinforce_pp_baseline":
        centred = r - mean  # [P, G]
        b_mean, b_std = batch_moments(centred, m, reduce)  # [], []
        out = (centred - b_mean) / (b_std + eps)  # [P, G]
    else:
        if baseline == "rloo":  # mean of the other scored rows; a lone scored row has no baseline
            others = (group_sum - r) / (count - 1).clamp(min=1)  # [P, G]
            out = torch.where(count > 1, r - others, torch.zeros_like(r))  # [P, G]
        else:
            out = r - mean  # [P, G]
        if scale == "group":
            var = (((r - mean) * m) ** 2).sum(-1, keepdim=True) / (count - 1).clamp(min=1)  # [P, 1]
            out = out / (var.sqrt() + eps)  # [P, G]
        elif scale == "batch":
            out = out / (batch_moments(r, m, reduce)[1] + eps)  # [P, G]
    return torch.where(m.bool(), out, torch.zeros_like(out)).reshape(-1).to(rewards.dtype)  # [N]

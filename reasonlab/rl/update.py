"""A step's gradients from its micro-batches, with the objective fixed by the whole step.

The loss of a step is Σ numerators / Σ normalisers over every micro-batch on every process
(`losses.aggregate`). The normaliser depends only on masks, so it is summed over the step and
all-reduced once, before any backward; each micro-batch then backpropagates
    numerator · N / global normaliser
(N processes: DDP averages gradients over processes, which the factor N undoes). Micro-batch
size, gradient accumulation and how rows are spread over processes — evenly or not — leave the
gradient unchanged (tests/test_rl_distributed.py checks 1 process against 2 uneven ones).

DDP all-reduces once per synchronised backward, so every process must run the same number of
backward passes: a process with fewer micro-batches repeats one with weight 0 (`pad_micro_batches`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from reasonlab.rl.losses import LOSSES, LossSettings, LossTerms, normaliser
from reasonlab.rl.records import LossBatch

Reduce = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PrePass:
    """Tensors a micro-batch needs before its loss forward, each [B, C] (`sampler_weight` [B, C|1]);
    None where the step's settings do not use it."""

    old: torch.Tensor | None = None  #: log-probs of the policy that sampled (off-policy, or the sampler check)
    ref: torch.Tensor | None = None  #: the reference model's log-probs (β > 0)
    sampler_weight: torch.Tensor | None = None  #: TRL's sampler-mismatch factor (`rl/mismatch.py`)
    entropy: torch.Tensor | None = None  #: token entropy, for the high-entropy mask's quantile
    keep: torch.Tensor | None = None  #: the high-entropy token mask

    @property
    def filled(self) -> bool:
        return any(v is not None for v in (self.old, self.ref, self.sampler_weight, self.entropy, self.keep))


@dataclass
class MicroBatch:
    rows: LossBatch
    real: bool = True  #: False for a zero-weight repeat that only keeps DDP's collectives in step
    pre: PrePass = field(default_factory=PrePass)  #: shared with its zero-weight repeats


def split(batch: LossBatch, size: int) -> list[MicroBatch]:
    return [MicroBatch(batch.rows(i, i + size)) for i in range(0, batch.n, size)]


def pad_micro_batches(mbs: list[MicroBatch], n_max: int, stand_in: Callable[[], LossBatch]) -> list[MicroBatch]:
    """`n_max` micro-batches (the most any process has): repeats of the first with weight 0, or a
    1-row stand-in when this process has no rows at all."""
    out = list(mbs) or [MicroBatch(stand_in(), real=False)]
    while len(out) < n_max:
        out.append(MicroBatch(out[0].rows, real=False, pre=out[0].pre))
    return out


def step_normaliser(mbs: list[MicroBatch], s: LossSettings, reduce_sum: Reduce, idle: float = 0.0) -> torch.Tensor:
    """Σ over the step's real micro-batches on all processes of each one's normaliser, plus the
    share of the rows left out as idle (`drop_idle_rows`)."""
    local = sum((share(mb.rows, s).double() for mb in mbs if mb.real), torch.tensor(float(idle), dtype=torch.float64))
    return reduce_sum(local)  # []


def share(rows: LossBatch, s: LossSettings) -> torch.Tensor:
    """These rows' part of the step's normaliser (masks only)."""
    return normaliser(rows.loss_mask, LOSSES[s.loss_type].aggregation, s.max_len or rows.targets.shape[1])  # []


def drop_idle_rows(batch: LossBatch, s: LossSettings, all_rows_needed: bool = False) -> tuple[LossBatch, float]:
    """The loss batch without its rows of advantage 0, and those rows' share of the normaliser.

    Every term of the objective is proportional to the advantage unless β > 0 (the KL term), so
    such a row adds nothing to the gradient: its forward and backward are skipped and only its
    share of the step's normaliser (masks alone) is kept, leaving the objective and its gradient
    unchanged. Not done when β > 0, for bnpo (its normaliser is the micro-batch's, so the split
    matters) or when `all_rows_needed` (the high-entropy mask's quantile is over every token).
    With an all-zero-advantage step nothing is left to train: the trainer then makes no update.
    The step's diagnostics (entropy, clip shares, sampler mismatch) then cover the trained rows.

    >>> m = torch.ones(3, 2); ids = torch.zeros(3, 3, dtype=torch.long)
    >>> b = LossBatch(ids, ids, ids[:, 1:], m, m, torch.tensor([0.5, 0.0, -0.5]), m, ids[:, :1], ids[:, :1],
    ...               torch.arange(3))
    >>> kept, idle = drop_idle_rows(b, LossSettings("dapo"))
    >>> kept.advantages.tolist(), idle
    ([0.5, -0.5], 2.0)
    """
    keep = batch.advantages != 0  # [N]
    if s.beta != 0 or LOSSES[s.loss_type].aggregation == "micro_batch" or all_rows_needed or bool(keep.all()):
        return batch, 0.0
    return batch.select(keep), float(share(batch.select(~keep), s))


@dataclass
class Accumulated:
    loss: float  # the step's loss (all processes)
    sums: dict[str, float]  # diagnostics summed over the step's real micro-batches and processes


@dataclass
class UpdateResult:
    """What a step's `mu` optimizer updates did: the mean loss, the last gradient norm, whether the
    step was skipped (no rows anywhere, or a non-finite loss or gradient) and the token-mean
    diagnostics of the loss (entropy, clip shares)."""

    loss: float = 0.0
    grad_norm: float = 0.0
    skipped: bool = False
    nonfinite: bool = False
    diagnostics: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        return {"loss": self.loss, **self.diagnostics, "grad_norm": self.grad_norm,
                "skipped": int(self.skipped), "nonfinite": int(self.nonfinite)}


def accumulate(mbs: list[MicroBatch], loss_of: Callable[[MicroBatch], LossTerms], s: LossSettings, *,
               backward: Callable[[torch.Tensor], None], no_sync: Callable[[], object], world: int,
               reduce_sum: Reduce, idle: float = 0.0) -> Accumulated:
    """Backward every micro-batch of one optimizer step (see the module docstring); `idle` is the
    normaliser share of rows left out of `mbs` because they cannot move the weights."""
    total = step_normaliser(mbs, s, reduce_sum, idle)  # []
    scale = world / float(total.clamp(min=1e-12))
    loss, sums = torch.zeros((), dtype=torch.float64), {}
    for i, mb in enumerate(mbs):
        with nullcontext() if i == len(mbs) - 1 else no_sync():
            terms = loss_of(mb)
            backward(terms.numerator * (scale if mb.real else 0.0))
        for k, v in terms.stats.items():  # every process has the same keys, stand-ins add 0
            sums[k] = sums.get(k, 0.0) + (v.detach().double() if mb.real else 0.0)
        if mb.real:
            loss += terms.numerator.detach().double() * scale / world
    keys = sorted(sums)
    reduced = reduce_sum(torch.stack([loss] + [torch.as_tensor(sums[k], dtype=torch.float64) for k in keys]))
    return Accumulated(float(reduced[0]), {k: float(v) for k, v in zip(keys, reduced[1:])})

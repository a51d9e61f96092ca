"""The typed records of one GRPO step after sampling (`reasonlab.sampling.ScoredGroup`: one problem's
prompt ids and its G completions exactly as the engine returned them, token ids and the sampler's
per-token log-probs, each with every reward's value): `RewardMatrix` (the step's rewards) and
`LossBatch` (what the loss forward reads). Nothing crosses files as a tuple or an untyped dict;
the loss path never re-tokenises text. `LossBatch.build` packs groups into left-padded prompts and
right-padded completions, each prompt stored once for its group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from reasonlab.rl.advantages import to_tensor
from reasonlab.sampling import ScoredGroup


@dataclass
class RewardMatrix:
    """A step's weighted rewards, prompt-major: `values` [P·G] (0 where unscored) and `scored` [P·G]
    (bool: the completion could be scored; an unscorable one takes no part in its group's baseline)."""

    values: torch.Tensor
    scored: torch.Tensor

    @classmethod
    def of(cls, groups: list[ScoredGroup]) -> RewardMatrix:
        return cls(*to_tensor([r for g in groups for r in g.reward]))  # [N], [N]


@dataclass
class LossBatch:
    """Rows = scored completions. Prompt tokens sit left-padded in the first P columns of
    `input_ids`, completion tokens right-padded after them."""

    input_ids: torch.Tensor  # [N, P+C] long
    attention_mask: torch.Tensor  # [N, P+C] 1 on real prompt and completion tokens
    targets: torch.Tensor  # [N, C] the completion tokens (what the loss scores)
    completion_mask: torch.Tensor  # [N, C] 1 on real completion tokens
    loss_mask: torch.Tensor  # [N, C] float, 1 on tokens that train (DAPO's overlong filter zeroes a row)
    advantages: torch.Tensor  # [N]
    sampler_logp: torch.Tensor  # [N, C] the engine's log-prob of each token (NaN where it gave none)
    prompt_ids: torch.Tensor  # [U, P] each group's prompt once, left-padded
    prompt_mask: torch.Tensor  # [U, P]
    group: torch.Tensor  # [N] row → its prompt's index in prompt_ids

    @property
    def n(self) -> int:
        return self.input_ids.shape[0]

    @property
    def tokens(self) -> int:
        """Positions a plain forward over [prompt; completion] runs."""
        return int(self.attention_mask.sum())

    @property
    def shared_tokens(self) -> int:
        """Positions the shared-prefix forward runs (each prompt once)."""
        return int(self.prompt_mask.sum()) + int(self.completion_mask.sum())

    def rows(self, start: int, stop: int) -> LossBatch:
        """Rows start:stop, with only the prompts those rows use."""
        return self._take(slice(start, stop))

    def select(self, keep: torch.Tensor) -> LossBatch:
        """The rows where `keep` [N] (bool) is true, in order, with only the prompts they use."""
        return self._take(torch.nonzero(keep).squeeze(-1))

    def _take(self, index) -> LossBatch:
        per_row = {f.name: getattr(self, f.name)[index] for f in fields(self)
                   if f.name not in ("prompt_ids", "prompt_mask", "group")}
        used, group = torch.unique(self.group[index], return_inverse=True)  # [U'], [b]
        return LossBatch(**per_row, prompt_ids=self.prompt_ids[used], prompt_mask=self.prompt_mask[used], group=group)

    def to(self, device) -> LossBatch:
        return LossBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @classmethod
    def build(cls, groups: list[ScoredGroup], advantages: torch.Tensor, pad_id: int, overlong_filter: bool = False
              ) -> LossBatch:
        """Pack the scored rows of `groups`; `advantages` [P·G] is prompt-major like the groups."""
        rows = [(u, s.completion, float(advantages[i])) for i, (u, s) in enumerate(
            (u, s) for u, g in enumerate(groups) for s in g.completions) if s.reward is not None]
        used = sorted({u for u, _, _ in rows})
        remap = {u: k for k, u in enumerate(used)}
        prompts = [groups[u].prompt_ids for u in used]
        P = max(map(len, prompts), default=1)
        C = max((len(c.token_ids) for _, c, _ in rows), default=1)
        N = len(rows)
        ids = torch.full((N, P + C), pad_id, dtype=torch.long)  # [N, P+C]
        attn = torch.zeros(N, P + C, dtype=torch.long)  # [N, P+C]
        loss_mask = torch.zeros(N, C)  # [N, C]
        sampler = torch.full((N, C), math.nan)  # [N, C]
        for j, (u, c, _) in enumerate(rows):
            p, t = groups[u].prompt_ids, c.token_ids
            ids[j, P - len(p) : P], ids[j, P : P + len(t)] = torch.tensor(p), torch.tensor(t, dtype=torch.long)
            attn[j, P - len(p) : P + len(t)] = 1
            loss_mask[j, : len(t)] = 0.0 if overlong_filter and c.finish_reason == "length" else 1.0
            if c.logprobs is not None:
                sampler[j, : len(t)] = torch.tensor(c.logprobs[: len(t)])
        p_ids = torch.full((len(used), P), pad_id, dtype=torch.long)  # [U, P]
        p_mask = torch.zeros(len(used), P, dtype=torch.long)  # [U, P]
        for k, p in enumerate(prompts):
            p_ids[k, P - len(p) :], p_mask[k, P - len(p) :] = torch.tensor(p), 1
        return cls(input_ids=ids, attention_mask=attn, targets=ids[:, P:], completion_mask=attn[:, P:],
                   loss_mask=loss_mask, advantages=torch.tensor([a for _, _, a in rows]), sampler_logp=sampler,
                   prompt_ids=p_ids, prompt_mask=p_mask, group=torch.tensor([remap[u] for u, _, _ in rows], dtype=torch.long))

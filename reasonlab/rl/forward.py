"""The loss forward: logits of every completion token, computing each prompt once for its group.

A step's G completions of one prompt share that prompt, which is often longer than the
completions (arithmetic: ~58 prompt tokens, ~35 completion tokens). `shared_prefix_logits` runs
the unique prompts once with a KV cache, repeats each prompt's keys and values for its
completions (the repeat is differentiable, so gradients from every completion flow back into the
one prompt forward), then runs the completions against that cache. The result equals the plain
forward over `[prompt; completion]` rows (`full_logits`), up to float rounding, with about
P·(G − 1) fewer token positions per group in both forward and backward.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from reasonlab.rl.records import LossBatch
from reasonlab.rollout.kvcache import cache_kwarg


def full_logits(model, mb: LossBatch) -> torch.Tensor:
    """[B, C, V] predictions of the completion tokens from `[prompt; completion]` rows."""
    pos = (mb.attention_mask.cumsum(-1) - 1).clamp(min=0)  # [B, L]
    out = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask, position_ids=pos,
                logits_to_keep=mb.targets.shape[1] + 1, use_cache=False)
    return out.logits[:, :-1]  # [B, C, V]


def shared_prefix_logits(model, mb: LossBatch) -> torch.Tensor:
    """Same as `full_logits`, with each of the micro-batch's prompts computed once (see the
    module docstring): `prompt_ids` [U, P] once, then every row's completion against its cache."""
    kw = cache_kwarg(model)
    p_mask = mb.prompt_mask  # [U, P]
    p_pos = (p_mask.cumsum(-1) - 1).clamp(min=0)  # [U, P]
    cache = DynamicCache()
    out = model(input_ids=mb.prompt_ids, attention_mask=p_mask, position_ids=p_pos, logits_to_keep=1,
                use_cache=True, **{kw: cache})
    first = out.logits[:, -1:][mb.group]  # [B, 1, V] prediction of each row's first completion token
    if mb.targets.shape[1] == 1:
        return first
    for layer in cache.layers:
        layer.batch_select_indices(mb.group)  # [U, …] → [B, …], differentiable
    g_mask = p_mask[mb.group]  # [B, P]
    c_mask = mb.completion_mask  # [B, C]
    c_pos = g_mask.sum(-1, keepdim=True) + torch.arange(c_mask.shape[1], device=c_mask.device)  # [B, C]
    rest = model(input_ids=mb.targets[:, :-1], attention_mask=torch.cat([g_mask, c_mask[:, :-1]], -1),
                 position_ids=c_pos[:, :-1], use_cache=True, **{kw: cache}).logits  # [B, C-1, V]
    return torch.cat([first, rest], 1)  # [B, C, V]

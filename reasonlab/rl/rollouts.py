"""One step's rollouts: sample G completions per prompt, score them, build the loss batch.

DAPO's dynamic sampling lives here: groups whose rewards are all equal carry no signal, so they
are dropped and more prompts are drawn (up to `max_refills` extra rounds) until the step has
`prompts_per_step` informative groups. The loss batch packs left-padded prompts and
right-padded completions so the forward only computes logits for completion positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from reasonlab.rewards import combine, get_reward
from reasonlab.rl.advantages import to_tensor, zero_std_groups
from reasonlab.rollout import SamplingParams


@dataclass
class Rollouts:
    prompts: list[str]  # one per completion (flat, prompt-major)
    completions: list  # rollout.Completion, flat
    rewards: torch.Tensor  # [N]
    valid: torch.Tensor  # [N] scored rows
    per_reward: dict[str, list]
    stats: dict = field(default_factory=dict)


def score(cfg, problems, completions, template) -> tuple[list, dict[str, list]]:
    """Weighted total reward per completion and each reward's column; rewards read the
    template's response (prefill + completion) in its answer format."""
    G = cfg.generations_per_prompt
    columns = {
        "answer": [p.answer for p in problems for _ in range(G)],
        "question": [p.question for p in problems for _ in range(G)],
        "task": cfg.task,
        "completion_tokens": [c.num_tokens for c in completions],
        "group": [i // G for i in range(len(completions))],
        "max_completion_length": cfg.max_new_tokens,
        "answer_format": template.answer_format,
    }
    texts = [template.response(c.text) for c in completions]
    per = {name: get_reward(name)(texts, **columns) for name in cfg.rewards}
    return combine(per, cfg.rewards), per


def _round(cfg, engine, task, template, problems, seed):
    prompts = [engine.prompt(template, task, p) for p in problems]
    params = SamplingParams(cfg.max_new_tokens, cfg.temperature, cfg.top_p, n=cfg.generations_per_prompt, seed=seed)
    groups = engine.generate(prompts, params)
    completions = [c for g in groups for c in g]
    total, per = score(cfg, problems, completions, template)
    return [p for p in prompts for _ in range(cfg.generations_per_prompt)], completions, total, per


def _select(rnd: tuple, rows: list[int]) -> tuple:
    prompts, completions, total, per = rnd
    return ([prompts[i] for i in rows], [completions[i] for i in rows], [total[i] for i in rows],
            {k: [col[i] for i in rows] for k, col in per.items()})


def _signal(total: list, group_size: int) -> tuple[torch.Tensor, list[int]]:
    """Zero-std flags per group [P] and the rows of the groups that carry signal."""
    zero = zero_std_groups(*to_tensor(total), group_size)
    return zero, [i for i in range(len(total)) if not zero[i // group_size]]


def collect(cfg, engine, task, template, next_problems, step_seed: int) -> Rollouts:
    """Rollouts for one step; `next_problems(k)` draws k training problems."""
    G = cfg.generations_per_prompt
    rnd = _round(cfg, engine, task, template, next_problems(cfg.prompts_per_step), step_seed)
    zero, rows = _signal(rnd[2], G)
    stats = {"frac_reward_zero_std": zero.float().mean().item(), "refills": 0}
    if cfg.dynamic_sampling:
        rnd = _select(rnd, rows)
        while len(rnd[1]) < cfg.rows_per_step and stats["refills"] < cfg.max_refills:
            stats["refills"] += 1
            more = _round(cfg, engine, task, template, next_problems(cfg.prompts_per_step),
                          step_seed + 7919 * stats["refills"])
            more = _select(more, _signal(more[2], G)[1][: cfg.rows_per_step - len(rnd[1])])
            rnd = (rnd[0] + more[0], rnd[1] + more[1], rnd[2] + more[2], {k: rnd[3][k] + more[3][k] for k in rnd[3]})
    prompts, completions, total, per = rnd
    r, v = to_tensor(total)
    stats["groups"] = len(completions) // G
    return Rollouts(prompts, completions, r, v, per, stats)


def loss_batch(tokenizer, rollouts: Rollouts, advantages: torch.Tensor, overlong_filter: bool, device) -> dict:
    """Tensors for the loss forward; rows without a score are dropped entirely."""
    rows = [i for i in range(len(rollouts.completions)) if rollouts.valid[i]]
    prompt_ids = tokenizer([rollouts.prompts[i] for i in rows], add_special_tokens=False)["input_ids"] if rows else []
    comp = [rollouts.completions[i].token_ids for i in rows]
    P, C = max(map(len, prompt_ids), default=1), max(map(len, comp), default=1)
    pad = tokenizer.pad_token_id
    ids = torch.full((len(rows), P + C), pad, dtype=torch.long)  # [N, P+C]
    attn = torch.zeros(len(rows), P + C, dtype=torch.long)  # [N, P+C]
    cmask = torch.zeros(len(rows), C)  # [N, C]
    for j, (p, c) in enumerate(zip(prompt_ids, comp)):
        ids[j, P - len(p) : P], ids[j, P : P + len(c)] = torch.tensor(p), torch.tensor(c)
        attn[j, P - len(p) : P + len(c)] = 1
        cut = overlong_filter and rollouts.completions[rows[j]].finish_reason == "length"
        cmask[j, : len(c)] = 0.0 if cut else 1.0
    batch = {"input_ids": ids.to(device), "attention_mask": attn.to(device), "targets": ids[:, P:].to(device),
             "mask": cmask.to(device), "advantages": advantages[rows].to(device), "completion_len": C,
             "tokens": int(attn.sum())}
    batch.update(_prompt_groups(ids[:, :P], attn[:, :P], [rollouts.prompts[i] for i in rows], device))
    batch["completion_mask"] = attn[:, P:].to(device)  # [N, C] 1 on real completion tokens
    batch["shared_tokens"] = int(batch["prompt_mask"].sum()) + int(attn[:, P:].sum())
    return batch


def _prompt_groups(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, prompts: list[str], device) -> dict:
    """Each distinct prompt once ([U, P]) and every row's index into them ([N])."""
    first: dict[str, int] = {}  # prompt text → its first row
    for j, p in enumerate(prompts):
        first.setdefault(p, j)
    index = {p: u for u, p in enumerate(first)}
    group = torch.tensor([index[p] for p in prompts], dtype=torch.long)  # [N]
    keep = list(first.values())
    return {"prompt_ids": prompt_ids[keep].to(device), "prompt_mask": prompt_mask[keep].to(device),
            "group": group.to(device)}

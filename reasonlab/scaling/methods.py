"""The inference-time scaling methods, each a function `(ctx) -> {curve name: [points]}` in a
registry. A point is `{"budget", "accuracy", "accuracy_ci95", "tokens_per_problem",
"flops_per_problem"}`; tokens count everything generated plus every token a reward model reads.

Sample-based methods (self-consistency, best-of-N, weighted vote) draw the largest budget's N
samples once per problem and read every smaller budget off the first b of them (samples are
i.i.d., so this is the same in distribution as drawing b). Adaptive self-consistency is replayed
on the same stream: it stops at the first m where the leader cannot be overtaken within N (or
holds `confidence` of the votes), so its tokens are those of the first m samples.
"""

from __future__ import annotations

from typing import Callable

from reasonlab.evaluation.metrics import wilson_interval
from reasonlab.rollout.base import SamplingParams
from reasonlab.scaling.select import best_of, can_stop, oracle, vote

METHODS: dict[str, Callable] = {}


def method(name: str):
    def deco(fn):
        METHODS[name] = fn
        return fn
    return deco


def point(ctx, budget, picked: list[dict | None], gen_tokens: int, prompt_tokens: int, rm_tokens: int = 0) -> dict:
    """One curve point from the picked sample of every problem and the tokens spent."""
    n = len(picked)
    right = sum(bool(s and s.get("correct")) for s in picked)
    flops = 2.0 * ctx.engine.n_params * (gen_tokens + prompt_tokens) + 2.0 * ctx.rm_params * rm_tokens
    return {"budget": budget, "accuracy": right / n, "accuracy_ci95": list(wilson_interval(right, n)),
            "tokens_per_problem": (gen_tokens + rm_tokens) / n, "flops_per_problem": flops / n}


@method("cot")
def cot(ctx) -> dict:
    """Prompt templates at one sample each (greedy): answer directly, the task's own prompt
    (zero-shot), a prefilled `<think>`, and k solved examples before the question."""
    curves = {}
    for name in ("direct", "zero-shot", "think", "few-shot"):
        prompts, prefill = ctx.prompts_for(name)
        if prompts is None:
            continue
        groups = ctx.engine.generate(prompts, SamplingParams(ctx.cfg.max_new_tokens, temperature=0.0))
        picked = [ctx.score(i, prefill + g[0].text, g[0]) for i, g in enumerate(groups)]
        curves[f"cot:{name}"] = [point(ctx, 1, picked, sum(g[0].num_tokens for g in groups),
                                       sum(g[0].prompt_tokens for g in groups))]
    return curves


@method("self-consistency")
def self_consistency(ctx) -> dict:
    samples = ctx.samples()
    fixed, adaptive = [], []
    for b in ctx.cfg.budgets:
        firsts = [s[:b] for s in samples]
        fixed.append(point(ctx, b, [vote(s) for s in firsts], _tokens(firsts), ctx.prompt_tokens))
        used = [_adaptive_prefix(s, b, ctx.cfg.confidence) for s in samples]
        adaptive.append(point(ctx, b, [vote(s) for s in used], _tokens(used), ctx.prompt_tokens))
    return {"self-consistency": fixed, "self-consistency:adaptive": adaptive}


def _adaptive_prefix(samples: list[dict], budget: int, confidence: float) -> list[dict]:
    for m in range(1, budget + 1):
        if can_stop([s["key"] for s in samples[:m]], budget, confidence):
            return samples[:m]
    return samples[:budget]


@method("best-of-n")
def best_of_n(ctx) -> dict:
    """Best-of-N by the verifier (oracle), by mean token log-probability, and by the ORM when
    one is given; plus majority vote weighted by the ORM's score (or by exp(mean log-prob))."""
    samples = ctx.samples(with_reward=bool(ctx.cfg.orm))
    curves: dict[str, list] = {"best-of-n:oracle": [], "best-of-n:logprob": [], "weighted-majority": []}
    if ctx.cfg.orm:
        curves["best-of-n:orm"] = []
    for b in ctx.cfg.budgets:
        firsts = [s[:b] for s in samples]
        gen, rm = _tokens(firsts), sum(x.get("rm_tokens", 0) for s in firsts for x in s)
        curves["best-of-n:oracle"].append(point(ctx, b, [oracle(s) for s in firsts], gen, ctx.prompt_tokens))
        curves["best-of-n:logprob"].append(point(ctx, b, [best_of(s, "logprob") for s in firsts], gen, ctx.prompt_tokens))
        weight = "reward" if ctx.cfg.orm else "prob"
        curves["weighted-majority"].append(point(ctx, b, [vote(s, weight) for s in firsts], gen, ctx.prompt_tokens,
                                                 rm if ctx.cfg.orm else 0))
        if ctx.cfg.orm:
            curves["best-of-n:orm"].append(point(ctx, b, [best_of(s, "reward") for s in firsts], gen,
                                                 ctx.prompt_tokens, rm))
    return curves


@method("beam")
def beam(ctx) -> dict:
    """PRM-guided beam search and DVTS at every budget that is a multiple of `expansions`."""
    from reasonlab.scaling.beam import search

    prm = ctx.prm()
    curves: dict[str, list] = {"beam": [], "dvts": []}
    for b in [b for b in ctx.cfg.budgets if b >= ctx.cfg.expansions]:
        for name, diverse in (("beam", False), ("dvts", True)):
            before = prm.tokens
            found = search(ctx.engine, ctx.prompts, prm.score, b, ctx.cfg.expansions, diverse=diverse,
                           step_tokens=ctx.cfg.max_new_tokens, temperature=ctx.cfg.temperature, seed=ctx.cfg.seed)
            picked = [ctx.score(i, r.text, None) for i, r in enumerate(found)]
            curves[name].append(point(ctx, b, picked, sum(r.tokens for r in found), ctx.prompt_tokens,
                                      prm.tokens - before))
    return curves


@method("budget")
def budget(ctx) -> dict:
    """s1 budget forcing, greedy: thinking capped at each of `caps` tokens, and extended by
    "Wait" 1…max(waits) times."""
    from reasonlab.scaling.budget import budget_force

    curves: dict[str, list] = {"budget:cap": [], "budget:wait": []}
    for key, runs in (("budget:cap", [dict(cap=c) for c in ctx.cfg.caps]),
                      ("budget:wait", [dict(waits=w) for w in ctx.cfg.waits])):
        for kw in runs:
            forced = budget_force(ctx.engine, ctx.prompts, max_tokens=ctx.cfg.max_new_tokens, **kw)
            picked = [ctx.score(i, f.text, None) for i, f in enumerate(forced)]
            curves[key].append({**point(ctx, kw.get("cap", kw.get("waits")), picked, sum(f.tokens for f in forced),
                                        sum(f.prefill_tokens for f in forced)),
                                "thinking_tokens_per_problem": sum(f.thinking_tokens for f in forced) / len(forced),
                                "waits_per_problem": sum(f.waits for f in forced) / len(forced)})
    return curves


def _tokens(groups: list[list[dict]]) -> int:
    return sum(x["tokens"] for s in groups for x in s)


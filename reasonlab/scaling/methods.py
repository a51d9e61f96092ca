"""The inference-time scaling methods, each a function `(ctx) -> {curve name: [points]}` in a
registry. A point is `{"budget", "accuracy", "accuracy_ci95", "tokens_per_problem",
"flops_per_problem", "per_problem"}` (per problem, the expected correctness over resamples, in
problem order, so two points compare paired); tokens count everything generated plus every token a reward model reads.

Sample-based methods (self-consistency, best-of-N, weighted vote) draw a pool of samples once
per problem (`pool`, at least the largest budget) and read each budget b off `resamples` random
b-subsets of it, in random order: each figure is the mean over those subsets. One draw of 16
samples is a noisy estimate of maj@16 (on 100 problems, two draws from the same model differed
by 13 points here), the mean over subsets is not. Adaptive self-consistency is replayed on the
same ordered subsets: it stops at the first m where the leader cannot be overtaken within b (or
holds `confidence` of the votes), so its tokens are those of the first m samples.
"""

from __future__ import annotations

from collections.abc import Callable

from reasonlab.evaluation.metrics import wilson_interval
from reasonlab.scaling.beam import search
from reasonlab.scaling.budget import budget_force
from reasonlab.scaling.select import best_of, can_stop, oracle, vote

METHODS: dict[str, Callable] = {}


def method(name: str):
    def deco(fn):
        METHODS[name] = fn
        return fn
    return deco


def point(ctx, budget, picks: list[list[dict | None]], gen_tokens: int, prompt_tokens: int, rm_tokens: int = 0) -> dict:
    """One curve point from the picked sample of every problem, in each of R resamples
    (`picks[r][i]`), and the tokens spent over all R (so divided by R here)."""
    r, n = len(picks), len(picks[0])
    per_problem = [sum(bool(pick[i] and pick[i].get("correct")) for pick in picks) / r for i in range(n)]
    right = sum(per_problem)  # expected correct problems
    flops = 2.0 * ctx.engine.n_params * (gen_tokens + prompt_tokens) + 2.0 * ctx.rm_params * rm_tokens
    return {"budget": budget, "accuracy": right / n, "accuracy_ci95": list(wilson_interval(round(right), n)),
            "tokens_per_problem": (gen_tokens + rm_tokens) / (n * r), "flops_per_problem": flops / (n * r),
            "per_problem": [round(x, 4) for x in per_problem]}  # for paired comparisons (pipeline claims)


@method("greedy")
def greedy(ctx) -> dict:
    """One greedy answer per problem from the prompt every other method samples from: the
    baseline each is judged against (run by `run_scale` whatever the methods)."""
    picked, gen, prompt = ctx.greedy()
    return {"greedy": [point(ctx, 1, [picked], gen, prompt)]}


@method("cot")
def cot(ctx) -> dict:
    """Prompt templates at one sample each (greedy), on the model's own template without the
    scaling `prefill`: answer directly, the task's own prompt (zero-shot), a prefilled `<think>`,
    and k solved examples before the question. The prompt's effect, apart from any method's."""
    curves = {}
    for name in ("direct", "zero-shot", "think", "few-shot"):
        prompts, prefill = ctx.prompts_for(name)
        if prompts is None:
            continue
        if name == "zero-shot" and not ctx.cfg.prefill:
            curves["cot:zero-shot"] = greedy(ctx)["greedy"]  # the same prompts: decoded once
            continue
        groups = ctx.engine.generate(prompts, ctx.cfg.sampling_params(greedy=True))
        picked = [ctx.score(i, prefill + g[0].text, g[0], ctx.own) for i, g in enumerate(groups)]
        curves[f"cot:{name}"] = [point(ctx, 1, [picked], sum(g[0].num_tokens for g in groups),
                                       sum(g[0].prompt_tokens for g in groups))]
    return curves


@method("self-consistency")
def self_consistency(ctx) -> dict:
    fixed, adaptive = [], []
    for b in ctx.cfg.budgets:
        subsets = ctx.subsets(b)
        prompt = ctx.prompt_tokens * len(subsets)
        full = point(ctx, b, [[vote(s) for s in sub] for sub in subsets], _tokens(subsets), prompt)
        used = [[_adaptive_prefix(s, b, ctx.cfg.confidence) for s in sub] for sub in subsets]
        early = point(ctx, b, [[vote(s) for s in sub] for sub in used], _tokens(used), prompt)
        fixed.append(full)
        adaptive.append({**early, "token_share": early["tokens_per_problem"] / max(full["tokens_per_problem"], 1e-9),
                         "accuracy_change": early["accuracy"] - full["accuracy"]})
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
    ctx.samples(with_reward=bool(ctx.cfg.orm))
    pickers = {"best-of-n:oracle": (oracle, False), "best-of-n:logprob": (lambda s: best_of(s, "logprob"), False),
               "weighted-majority": (lambda s: vote(s, "reward" if ctx.cfg.orm else "prob"), bool(ctx.cfg.orm))}
    if ctx.cfg.orm:
        pickers["best-of-n:orm"] = (lambda s: best_of(s, "reward"), True)
    curves: dict[str, list] = {name: [] for name in pickers}
    for b in ctx.cfg.budgets:
        subsets = ctx.subsets(b)
        gen, rm = _tokens(subsets), sum(x.get("rm_tokens", 0) for sub in subsets for s in sub for x in s)
        for name, (pick, scored) in pickers.items():
            curves[name].append(point(ctx, b, [[pick(s) for s in sub] for sub in subsets], gen,
                                      ctx.prompt_tokens * len(subsets), rm if scored else 0))
    return curves


@method("beam")
def beam(ctx) -> dict:
    """PRM-guided beam search and DVTS at each of `search_budgets` (default: every budget of at
    least `expansions`)."""
    prm = ctx.prm()
    curves: dict[str, list] = {"beam": [], "dvts": []}
    for b in ctx.cfg.search_budgets or [b for b in ctx.cfg.budgets if b >= ctx.cfg.expansions]:
        for name, diverse in (("beam", False), ("dvts", True)):
            before = prm.tokens
            found = search(ctx.engine, ctx.prompts, prm.score, b, ctx.cfg.expansions, diverse=diverse,
                           step_tokens=ctx.cfg.max_new_tokens, temperature=ctx.cfg.temperature, seed=ctx.cfg.seed)
            picked = [ctx.score(i, r.text, None) for i, r in enumerate(found)]
            curves[name].append(point(ctx, b, [picked], sum(r.tokens for r in found), ctx.prompt_tokens,
                                      prm.tokens - before))
    return curves


@method("budget")
def budget(ctx) -> dict:
    """s1 budget forcing, greedy: thinking capped at each of `caps` tokens, and extended by
    `wait_word` ("Wait") 1…max(waits) times."""
    curves: dict[str, list] = {"budget:cap": [], "budget:wait": []}
    for key, runs in (("budget:cap", [dict(cap=c) for c in ctx.cfg.caps]),
                      ("budget:wait", [dict(waits=w) for w in ctx.cfg.waits])):
        for kw in runs:
            forced = budget_force(ctx.engine, ctx.prompts, max_tokens=ctx.cfg.max_new_tokens,
                                  wait_word=ctx.cfg.wait_word, **kw)
            picked = [ctx.score(i, f.text, None) for i, f in enumerate(forced)]
            curves[key].append({**point(ctx, kw.get("cap", kw.get("waits")), [picked], sum(f.tokens for f in forced),
                                        sum(f.prefill_tokens for f in forced)),
                                "thinking_tokens_per_problem": sum(f.thinking_tokens for f in forced) / len(forced),
                                "waits_per_problem": sum(f.waits for f in forced) / len(forced)})
    return curves


def _tokens(subsets: list[list[list[dict]]]) -> int:
    """Generated tokens of every sample in every problem's subset, over all resamples."""
    return sum(x["tokens"] for sub in subsets for s in sub for x in s)

"""One step's sampling and scoring: G completions per prompt, every reward function, as `Group`s.

DAPO's dynamic sampling lives here: groups whose rewards are all equal carry no signal, so they
are dropped and more prompts are drawn (up to `max_refills` extra rounds) until the step has
`prompts_per_step` informative groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonlab.rewards import combine, get_reward
from reasonlab.rl.records import Group
from reasonlab.rollout import SamplingParams


@dataclass
class Sampled:
    groups: list[Group]
    zero_std_fraction: float  # of the first round's groups (TRL's frac_reward_zero_std)
    refills: int
    processed_tokens: int  # prompt + generated tokens of every round, dropped groups included (the cost)


def processed_tokens(groups: list[Group]) -> int:
    """Tokens the engine processed for `groups`: each prompt once (prefilled once for its G
    completions) and every generated token."""
    return sum(len(g.prompt_ids) + sum(c.num_tokens for c in g.completions) for g in groups)


def score(cfg, task, problems, completions, template) -> dict[str, list[float | None]]:
    """Each reward function's column over `completions` (prompt-major, G per problem); rewards
    read the template's response (prefill + completion) in its answer format."""
    G = cfg.generations_per_prompt
    columns = {
        "answer": [p.answer for p in problems for _ in range(G)],
        "question": [p.question for p in problems for _ in range(G)],
        "task": task,  # the Task object itself: `accuracy` calls its verify
        "completion_tokens": [c.num_tokens for c in completions],
        "group": [i // G for i in range(len(completions))],
        "max_completion_length": cfg.max_new_tokens,
        "answer_format": template.answer_format,
    }
    texts = [template.response(c.text) for c in completions]
    return {name: get_reward(name)(texts, **columns) for name in cfg.rewards}


def sample_groups(cfg, engine, task, template, problems, seed: int, logprobs: bool) -> list[Group]:
    """Generate and score one round; `logprobs` asks the engine for the sampler's log-probs."""
    prompts = [engine.prompt(template, task, p) for p in problems]
    params = SamplingParams(cfg.max_new_tokens, cfg.temperature, cfg.top_p, n=cfg.generations_per_prompt,
                            seed=seed, logprobs=logprobs)
    outs = engine.generate(prompts, params)
    per = score(cfg, task, problems, [c for g in outs for c in g], template)
    total = combine(per, cfg.rewards)
    G, groups = cfg.generations_per_prompt, []
    for i, (problem, prompt, comps) in enumerate(zip(problems, prompts, outs)):
        ids = comps[0].prompt_ids
        if ids is None:  # an engine that does not report them: the same tokenisation it used
            ids = engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        rows = slice(i * G, (i + 1) * G)
        groups.append(Group(problem, list(ids), comps, {k: col[rows] for k, col in per.items()}, total[rows]))
    return groups


def collect(cfg, engine, task, template, next_problems, step_seed: int, logprobs: bool = False) -> Sampled:
    """The step's groups; `next_problems(k)` draws k training problems."""
    groups = sample_groups(cfg, engine, task, template, next_problems(cfg.prompts_per_step), step_seed, logprobs)
    zero = sum(not g.has_signal for g in groups) / max(1, len(groups))
    refills, spent = 0, processed_tokens(groups)
    if cfg.dynamic_sampling:
        groups = [g for g in groups if g.has_signal]
        while len(groups) < cfg.prompts_per_step and refills < cfg.max_refills:
            refills += 1
            more = sample_groups(cfg, engine, task, template, next_problems(cfg.prompts_per_step),
                                 step_seed + 7919 * refills, logprobs)
            spent += processed_tokens(more)
            groups += [g for g in more if g.has_signal][: cfg.prompts_per_step - len(groups)]
    return Sampled(groups, zero, refills, spent)

"""One step's sampling and scoring: G completions per prompt, every reward function, as `ScoredGroup`s
(`reasonlab.sampling`).

DAPO's dynamic sampling lives here: groups whose rewards are all equal carry no signal, so they
are dropped and more prompts are drawn (up to `max_refills` extra rounds) until the step has
`prompts_per_step` informative groups. What the policy writes is read from the first round
(`first_round`), before any group is dropped: a step whose groups were all dropped still shows its
reward and completion lengths, and the reward is not raised by keeping only groups with signal.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonlab.sampling import ScoredGroup, sample


@dataclass
class Sampled:
    groups: list[ScoredGroup]
    zero_std_fraction: float  # of the first round's groups (TRL's frac_reward_zero_std)
    refills: int
    processed_tokens: int  # prompt + generated tokens of every round, dropped groups included (the cost)
    first_round: list[ScoredGroup]  # the step's first draw, all of it (the policy as sampled, unfiltered)
    generated_tokens: int  # generated tokens of every round (the engine's throughput)


def processed_tokens(groups: list[ScoredGroup]) -> int:
    """Tokens the engine processed for `groups`: each prompt once (prefilled once for its G
    completions) and every generated token."""
    return sum(len(g.prompt_ids) + sum(s.completion.num_tokens for s in g.completions) for g in groups)


def generated_tokens(groups: list[ScoredGroup]) -> int:
    return sum(s.completion.num_tokens for g in groups for s in g.completions)


def sample_groups(cfg, engine, task, template, problems, seed: int, logprobs: bool) -> list[ScoredGroup]:
    """Generate and score one round; `logprobs` asks the engine for the sampler's log-probs."""
    params = cfg.sampling_params(n=cfg.generations_per_prompt, seed=seed, logprobs=logprobs)
    return sample(engine, template, task, problems, params, rewards=cfg.rewards, lenient=False)


def collect(cfg, engine, task, template, next_problems, step_seed: int, logprobs: bool = False) -> Sampled:
    """The step's groups; `next_problems(k)` draws k training problems."""
    groups = sample_groups(cfg, engine, task, template, next_problems(cfg.prompts_per_step), step_seed, logprobs)
    zero = sum(not g.has_signal for g in groups) / max(1, len(groups))
    refills, spent, first = 0, processed_tokens(groups), groups
    made = generated_tokens(groups)
    if cfg.dynamic_sampling:
        groups = [g for g in groups if g.has_signal]
        while len(groups) < cfg.prompts_per_step and refills < cfg.max_refills:
            refills += 1
            more = sample_groups(cfg, engine, task, template, next_problems(cfg.prompts_per_step),
                                 step_seed + 7919 * refills, logprobs)
            spent, made = spent + processed_tokens(more), made + generated_tokens(more)
            groups += [g for g in more if g.has_signal][: cfg.prompts_per_step - len(groups)]
    return Sampled(groups, zero, refills, spent, first, made)

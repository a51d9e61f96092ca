"""The sampling settings every command that samples shares, declared once.

`Sampling` is a config dataclass block: `max_new_tokens`, `temperature` and `top_p`, each with
its help text written here. Each config that samples (GRPO's rollouts, evaluation, trace
generation, inference-time scaling, reward-model data, a recipe's evaluation of every model)
inherits it, so a recipe or the command line sets them by the same flat keys everywhere, and
builds its engine's `SamplingParams` with `sampling_params`. A config whose default cap differs
redeclares that one field with `sampling_field`, keeping the help text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from reasonlab.rollout.base import SamplingParams

#: the help text of each shared sampling setting
HELP = {
    "max_new_tokens": "generation cap per completion, in tokens",
    "temperature": "sampling temperature (greedy passes use 0 whatever it is)",
    "top_p": "nucleus sampling: sample from the smallest set of tokens holding this much probability (1: off)",
}


def sampling_field(name: str, default, note: str = ""):
    """A field of the shared block with its help text, `default` and an optional config-specific
    `note` after the help.

    >>> sampling_field("max_new_tokens", 128).metadata["help"]
    'generation cap per completion, in tokens'
    """
    return dataclasses.field(default=default, metadata={"help": HELP[name] + (f" ({note})" if note else "")})


@dataclass
class Sampling:
    """How a command samples (see the module docstring)."""

    max_new_tokens: int = sampling_field("max_new_tokens", 64)
    temperature: float = sampling_field("temperature", 1.0)
    top_p: float = sampling_field("top_p", 1.0)

    def sampling_params(self, n: int = 1, seed: int | None = None, greedy: bool = False, **kw) -> SamplingParams:
        """The engine's parameters for `n` samples per prompt (`greedy`: temperature 0, no nucleus).

        >>> p = Sampling(max_new_tokens=8, temperature=0.7, top_p=0.9).sampling_params(n=4, seed=1)
        >>> (p.max_new_tokens, p.temperature, p.top_p, p.n, p.seed)
        (8, 0.7, 0.9, 4, 1)
        >>> g = Sampling(top_p=0.9).sampling_params(greedy=True)
        >>> (g.temperature, g.top_p, g.n)
        (0.0, 1.0, 1)
        """
        if greedy:
            return SamplingParams(self.max_new_tokens, temperature=0.0, n=n, seed=seed, **kw)
        return SamplingParams(self.max_new_tokens, self.temperature, self.top_p, n=n, seed=seed, **kw)

"""What a method cost: FLOPs from the 2·N / 6·N rules, dollars from configurable prices.

Inference costs 2·N FLOPs per processed token (prompt tokens once per prompt, plus every
generated token); training costs 6·N per trained token (forward + backward). Dollars are wall
time at a price per accelerator-hour, or tokens at an API price per million — so the same table
reads as cloud cost at scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Prices:
    """Prices used to turn compute into dollars."""

    gpu_hour_usd: float = field(default=2.0, metadata={"help": "$ per accelerator-hour (wall time)"})
    api_per_million_usd: float = field(default=2.19, metadata={"help": "$ per 1M generated API tokens"})


def inference_flops(n_params: int, tokens: int) -> float:
    """
    >>> inference_flops(1_000_000, 10)
    20000000.0
    """
    return 2.0 * n_params * tokens


def training_flops(n_params: int, tokens: int) -> float:
    """
    >>> training_flops(1_000_000, 10)
    60000000.0
    """
    return 6.0 * n_params * tokens


def gpu_usd(seconds: float, prices: Prices | None = None) -> float:
    """
    >>> gpu_usd(1800, Prices(gpu_hour_usd=3.0))
    1.5
    """
    return seconds / 3600.0 * (prices or Prices()).gpu_hour_usd


def api_usd(tokens: int, prices: Prices | None = None) -> float:
    """
    >>> round(api_usd(500_000, Prices(api_per_million_usd=2.0)), 6)
    1.0
    """
    return tokens / 1e6 * (prices or Prices()).api_per_million_usd

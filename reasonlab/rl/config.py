"""`GRPOConfig`: every setting of `reasonlab grpo`, each documented once (the settings every
training command shares are in `reasonlab.train.trainer.TrainConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reasonlab.config import option
from reasonlab.cost import Prices
from reasonlab.errors import ReasonlabError
from reasonlab.rewards import get_reward
from reasonlab.rl.advantages import BASELINES, SCALES
from reasonlab.rl.losses import LEVELS, LOSSES, LossSettings
from reasonlab.rl.mismatch import MODES
from reasonlab.rollout.options import Sampling
from reasonlab.train.trainer import TrainConfig


@dataclass
class GRPOConfig(TrainConfig, Sampling):
    """Configuration of `reasonlab grpo` (the GRPO family through `loss_type`, `baseline` & co)."""

    model: str = option("runs/pipeline/base/final", "policy to start from: a Hugging Face model directory")
    task: str = option("arithmetic", "training task (train split; eval uses the held-out split)")
    out: str = option("runs/grpo", "output directory: checkpoints/, final/, metrics.jsonl")
    steps: int = option(100, "optimizer steps (each on one batch of rollouts)")
    prompts_per_step: int = option(16, "prompts sampled per step")
    generations_per_prompt: int = option(8, "completions per prompt (the group size G)")
    rewards: dict = option({"accuracy": 1.0, "format": 0.5}, "reward name → weight (see reasonlab.rewards)")
    loss_type: str = option("grpo", "grpo, bnpo, dapo, dr_grpo, cispo or sapo (docs/design.md: RL variants)")
    importance_sampling_level: str = option("token", "policy ratio per token, per sequence (GSPO) or sequence_token (GSPO-token)")
    baseline: str = option("group", "advantage baseline: group (GRPO), rloo, reinforce_pp, reinforce_pp_baseline")
    scale_rewards: str = option("group", "advantage std scaling for group/rloo: group, batch (std over the global batch) or none (Dr. GRPO)")
    eps_low: float = option(0.2, "lower clip range ε_low")
    eps_high: float = option(0.2, "upper clip range ε_high (DAPO clip-higher: 0.28)")
    delta: float = option(0.0, "two-sided clip: cap the ratio at δ before the PPO min (INTELLECT-2; 0: off)")
    cispo_max: float = option(5.0, "CISPO's ratio cap ε_max (TRL's epsilon_high under loss_type=cispo)")
    sapo_tau_pos: float = option(1.0, "SAPO gate temperature for positive advantages")
    sapo_tau_neg: float = option(1.05, "SAPO gate temperature for non-positive advantages")
    top_entropy_quantile: float = option(1.0, "train only the top q of completion tokens by entropy (1: all)")
    beta: float = option(0.0, "KL coefficient to the frozen reference (0: no reference model is loaded)")
    kl_bias_correction: bool = option(True, "multiply the KL term by the policy ratio (TRL's use_bias_correction_kl, on by default there too); only with beta > 0")
    importance_sampling_correction: str = option("auto", "correct the sampler/trainer mismatch: auto (on with vLLM and with the hf engine's bf16 decode copy, off when it decodes from the policy itself), on, off")
    importance_sampling_mode: str = option("sequence_mask", "token_truncate, token_mask, sequence_truncate or sequence_mask (TRL's)")
    importance_sampling_clip_max: float = option(3.0, "upper bound C_max of the correction factor")
    importance_sampling_clip_min: float = option(0.0, "lower bound C_min (0: none)")
    mu: int = option(1, "policy updates per generation batch (μ)")
    lr: float = option(3e-5, "AdamW learning rate (Adam moves every weight ~lr a step: keep it small for RL)")
    shared_prefix: bool = option(True, "loss forward runs each prompt once for its G completions (same values, fewer FLOPs)")
    micro_batch_size: int = option(0, "sequences per forward/backward, gradient accumulation beyond it (0: the largest the memory planner finds fits, at most 64)")
    dynamic_sampling: bool = option(False, "DAPO: drop groups whose rewards are all equal and refill")
    max_refills: int = option(4, "extra generation rounds per step when dynamic sampling refills")
    overlong_filter: bool = option(False, "DAPO: completions cut at max_new_tokens get no loss")
    log_every: int = option(1, "print a progress line every N steps")
    sample_every: int = option(20, "print a few sampled completions every N steps (0: never)")
    eval_every: int = option(0, "greedy accuracy on held-out problems every N steps (0: start and end only)")
    eval_n: int = option(100, "held-out problems per evaluation (0: no held-out evaluation)")
    rollout_backend: str = option("auto", "hf (our transformers loop), vllm, or auto (vllm where installed, on a GPU or for models of 300M parameters and more on a CPU)")
    memory_gb: float = option(0.0, "device memory to plan for in GiB (0: what the device reports); see `reasonlab plan`")
    prices: Prices = field(default_factory=Prices, metadata={"help": "prices for the cost estimate"})

    def validate(self) -> None:
        choices = {"loss_type": LOSSES, "scale_rewards": SCALES, "baseline": BASELINES,
                   "importance_sampling_level": LEVELS, "importance_sampling_mode": MODES,
                   "importance_sampling_correction": ("auto", "on", "off")}
        yaml_bool = {"true": "on", "false": "off"}  # YAML true/false arrive as a bool or its str
        flag = str(self.importance_sampling_correction).lower()
        self.importance_sampling_correction = yaml_bool.get(flag, self.importance_sampling_correction)
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ReasonlabError(f"{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if not 0.0 < self.top_entropy_quantile <= 1.0:
            raise ReasonlabError(f"top_entropy_quantile: must be in (0, 1], got {self.top_entropy_quantile}")
        if self.delta and self.delta <= 1.0:
            raise ReasonlabError(f"delta: the two-sided clip needs δ > 1 (TRL recommends > 1 + eps_high), got {self.delta}")
        for name in ("steps", "prompts_per_step", "generations_per_prompt", "max_new_tokens", "mu"):
            if getattr(self, name) < 1:
                raise ReasonlabError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.eval_n < 0 or self.eval_every < 0:
            raise ReasonlabError(f"eval_n, eval_every: must be >= 0 (0: off), got {self.eval_n}, {self.eval_every}")
        if self.micro_batch_size < 0:
            raise ReasonlabError(f"micro_batch_size: must be >= 0 (0: planned), got {self.micro_batch_size}")
        if self.generations_per_prompt < 2:
            raise ReasonlabError("generations_per_prompt: a group needs at least 2 completions")
        if not self.rewards:
            raise ReasonlabError("rewards: name at least one reward")
        for name, weight in self.rewards.items():
            get_reward(name)
            if not isinstance(weight, (int, float)):
                raise ReasonlabError(f"rewards.{name}: weight must be a number, got {weight!r}")
        if self.rollout_backend not in ("auto", "hf", "vllm"):
            raise ReasonlabError(f"rollout_backend: {self.rollout_backend!r} is not one of auto, hf, vllm")
        if self.beta < 0 or self.eps_low < 0 or self.eps_high < 0:
            raise ReasonlabError("beta, eps_low and eps_high must be >= 0")

    @property
    def rows_per_step(self) -> int:
        return self.prompts_per_step * self.generations_per_prompt

    @property
    def loss_settings(self) -> LossSettings:
        return LossSettings(self.loss_type, self.eps_low, self.eps_high, self.delta or None,
                            self.importance_sampling_level, self.beta, self.kl_bias_correction, self.cispo_max,
                            self.sapo_tau_pos, self.sapo_tau_neg, self.max_new_tokens)

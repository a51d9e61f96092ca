"""Rollout engines: `HFEngine` (transformers, our decode loop); vLLM implements the same API."""

from reasonlab.rollout.base import Completion, RolloutEngine, SamplingParams
from reasonlab.rollout.hf import HFEngine, load_model

__all__ = ["Completion", "RolloutEngine", "SamplingParams", "HFEngine", "load_model"]

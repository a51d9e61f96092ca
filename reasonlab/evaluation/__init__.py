"""Evaluation: `evaluate(EvalConfig)` and the estimators behind its numbers."""

from reasonlab.evaluation.evaluate import EvalConfig, evaluate

__all__ = ["EvalConfig", "evaluate"]

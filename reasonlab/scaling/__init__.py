"""Inference-time scaling: voting, best-of-N, PRM-guided search, budget forcing, reward models."""

"""Reinforcement learning with verifiable rewards: the GRPO family (GRPO, Dr. GRPO, DAPO)."""

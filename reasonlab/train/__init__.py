"""Machinery shared by every trainer: checkpoints with exact resume, metrics, step guards."""

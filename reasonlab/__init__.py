"""reasonlab: build and improve reasoning LLMs, from a laptop CPU to GPUs."""

__version__ = "0.1.0"

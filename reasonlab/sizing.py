"""Defaults sized to the model, for settings a user leaves at 0 ("auto").

The tiny world's models (under `TINY_PARAMS`) write traces of a few dozen tokens; real models
(SmolLM2, Qwen, Llama) reason for hundreds. A generation cap that fits one wastes the other's time or
cuts its answers off, so commands that generate pick it from the model's size.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_PARAMS = 50_000_000
TINY_CAP, REAL_CAP = 128, 512
PROMPT_ROOM = 256  #: context positions kept for the prompt when capping by the model's context


def default_max_new_tokens(n_params: int, model_dir: str | Path | None = None) -> int:
    """128 new tokens for a tiny-world model, 512 for a real one (or an unknown size, e.g. a
    server), never more than the model's context leaves after a prompt.

    >>> default_max_new_tokens(1_000_000), default_max_new_tokens(135_000_000), default_max_new_tokens(0)
    (128, 512, 512)
    """
    cap = TINY_CAP if 0 < n_params < TINY_PARAMS else REAL_CAP
    context = _context(model_dir)
    return max(16, min(cap, context - PROMPT_ROOM)) if context else cap


def _context(model_dir) -> int | None:
    path = Path(model_dir or "") / "config.json"
    if not model_dir or not path.exists():
        return None
    try:
        return int(json.loads(path.read_text()).get("max_position_embeddings") or 0) or None
    except (ValueError, TypeError):
        return None

"""Checkpoints that resume exactly and are never half-written.

A checkpoint is `OUT/checkpoints/step-NNNNNNN/`: the model in `save_pretrained` form (so any
checkpoint is also a usable model) plus `trainer_state.pt` with the optimizer, scheduler, RNG
states, step and data position. It is written to a temp directory and renamed into place; older
checkpoints beyond `keep_last` are deleted only after the new one is complete.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from reasonlab.io import replace_dir_atomic

_NAME = re.compile(r"^step-(\d{7})$")


def checkpoint_dirs(out: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first (temp directories are ignored)."""
    root = Path(out) / "checkpoints"
    if not root.exists():
        return []
    found = [p for p in root.iterdir() if _NAME.match(p.name) and (p / "trainer_state.pt").exists()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])


def save_checkpoint(out: str | Path, step: int, model, tokenizer, state: dict[str, Any], keep_last: int = 2,
                    state_dict: dict | None = None) -> Path:
    """Write checkpoint `step` atomically, then prune to the newest `keep_last`. `state_dict`:
    the full weights when the model itself holds shards (FSDP, ZeRO-3)."""
    root = Path(out) / "checkpoints"
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, state_dict=state_dict)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    torch.save({**state, "step": step, "rng": rng_state()}, tmp / "trainer_state.pt")
    replace_dir_atomic(tmp, final)
    for old in checkpoint_dirs(out)[:-keep_last] if keep_last > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_state(path: str | Path) -> dict[str, Any]:
    """The trainer state of a checkpoint (RNG restored by the caller with `set_rng_state`)."""
    return torch.load(Path(path) / "trainer_state.pt", weights_only=False)


def load_weights(model, path: str | Path) -> None:
    """Load a checkpoint's weights into an existing model (same architecture)."""
    files = sorted(Path(path).glob("*.safetensors"))
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    if unexpected or set(missing) - tied:
        raise RuntimeError(f"checkpoint {path} does not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}")

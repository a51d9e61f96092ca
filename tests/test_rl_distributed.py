"""One process = two uneven processes: the same batch gives the same gradient whether one process
runs it all (in micro-batches of 4) or two gloo processes split it unevenly (2 and 4 rows in
micro-batches of 2: different token counts, other micro-batch boundaries, and the short process
pads with a zero-weight micro-batch), for every loss type — through the trainer's own step code
(tests/dist_grads.py) under accelerate and DDP."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO

WORKER = REPO / "tests" / "dist_grads.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _run(model, out, *spans, procs: int = 1, micro: int = 2) -> dict:
    if procs == 1:
        cmd = [sys.executable, str(WORKER), str(model), str(out), *spans]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
               str(WORKER), str(model), str(out), *spans]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**ENV, "MICRO": str(micro)},
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out)


@pytest.mark.slow
def test_gradient_is_the_same_on_one_process_and_on_two_uneven_ones(tiny_model_dir, tmp_path):
    one = _run(tiny_model_dir, tmp_path / "one.pt", micro=4)  # micro-batches 0:4, 4:6
    two = _run(tiny_model_dir, tmp_path / "two.pt", "0:2", "2:6", procs=2)  # 0:2 | 2:4, 4:6
    for loss_type, ref in one.items():
        if loss_type == "bnpo":
            continue  # by definition (TRL's) bnpo depends on the split: checked below
        assert two[loss_type]["loss"] == pytest.approx(ref["loss"], abs=1e-6), loss_type
        diff = (two[loss_type]["grad"] - ref["grad"]).abs().max().item()
        assert diff < 1e-6, f"{loss_type}: max |Δgrad| {diff:.2e}"
        assert ref["grad"].abs().max() > 1e-4  # a real gradient, not zeros compared with zeros
    # bnpo = the mean of micro-batch token means: 2 micro-batches (4+2 rows) vs 3 (2 | 2+2)
    assert (one["bnpo"]["micro_batches"], two["bnpo"]["micro_batches"]) == (2, 1)  # rank 0 counts its own (0:2)
    assert (two["bnpo"]["grad"] - one["bnpo"]["grad"]).abs().max() > 1e-6

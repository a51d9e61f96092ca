"""Helpers shared by the benchmark scripts: the matmul peak and a busy-machine warning."""

from __future__ import annotations

import os
import sys
import time

import torch


def warn_if_busy() -> None:
    """With 2 cores, any other busy process makes torch's threads wait on each other."""
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores, torch threads {torch.get_num_threads()}, load avg {load:.2f}")
    if load > 0.5 * cores:
        print("WARNING: the machine is busy; figures below may be several-fold too slow", file=sys.stderr)


def matmul_peak_gflops(n: int = 1024, repeats: int = 20, trials: int = 5) -> float:
    """Best fp32 matmul throughput (GFLOP/s) over a few trials: the MFU denominator."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = 0.0
    for _ in range(trials):
        torch.mm(a, b)
        t = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9)
    return best

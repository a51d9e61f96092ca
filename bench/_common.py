"""Helpers shared by the benchmark scripts: the matmul peak and a busy-machine warning."""

from __future__ import annotations

import os
import sys
import time

import torch


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]  # total, idle + iowait


def warn_if_busy(seconds: float = 1.0) -> None:
    """With 2 cores, any other busy process makes torch's threads wait on each other: measure
    how busy the CPUs are while this process sleeps, and warn above a quarter of a core."""
    cores = os.cpu_count() or 1
    busy = 0.0
    if os.path.exists("/proc/stat"):
        total0, idle0 = _cpu_times()
        time.sleep(seconds)
        total1, idle1 = _cpu_times()
        busy = cores * (1 - (idle1 - idle0) / max(1, total1 - total0))
    print(f"machine: {cores} cores, torch threads {torch.get_num_threads()}, "
          f"other processes using {busy:.2f} cores")
    if busy > 0.25:
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


def trl_step_timer(times: list[float]):
    """A transformers `TrainerCallback` that appends each optimizer step's wall time to `times`."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t)

    return StepTimer()

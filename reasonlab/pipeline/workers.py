"""Worker processes for running a plan's jobs side by side (`workers` > 1 in a recipe).

Why it pays on a small CPU: the tiny world's matmuls are too small for two threads to help much
(a pretraining step at 1 thread takes 1.15x its time at 2 threads on a 2-core AVX2 EPYC), so two
stages at one thread each get more work done: each runs ~1.4x slower beside the other (shared
cache and memory), and the default recipe's run took 56 min instead of 72 there. The models do
not change: on that CPU the run made every model's 2,000 evaluation completions character for
character as the one-worker run did (fp32 matmuls there split rows, not sums, across threads); a
CPU whose kernels split sums would differ in the last bits, as between CPU types.

Each job runs with stdout and stderr going to its log file (no two live progress bars in one
terminal); its log lines come back to the main process. Workers are spawned, not forked: torch's
thread pools do not survive a fork.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from reasonlab.errors import ReasonlabError


@dataclass
class Job:
    """One unit of work: a stage, or the evaluation of a stage's model."""

    key: str  # the stage name, or "eval:<stage>"
    call: Callable  # a module-level function (picklable), run as call(*args, log=...)
    args: tuple
    needs: set[str] = field(default_factory=set)  # keys of the jobs that must finish first
    seconds: float = 1.0  # estimated duration (for ordering and the ETA)
    untimed: bool = False  # nothing estimates it: `seconds` is a placeholder for ordering, not in the ETA
    log_file: str = ""  # where a worker process sends the job's stdout and stderr


def cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _serve(jobs, results, threads: int) -> None:
    """A worker: take jobs until told to stop, send back log lines and the outcome of each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop, and
    # stops a worker with SIGTERM: exiting through Python runs its finalizers (a killed process
    # leaves named semaphores, e.g. tqdm's lock, for the resource tracker to warn about)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results.cancel_join_thread()  # and at that exit, never wait to flush a reply nobody reads
    torch.set_num_threads(threads)
    while (item := jobs.get()) is not None:
        job = item
        out = open(job.log_file, "a", buffering=1) if job.log_file else None
        saved = sys.stdout, sys.stderr
        if out:
            sys.stdout = sys.stderr = out
        try:
            value = job.call(*job.args, log=lambda m, k=job.key: results.put(("log", k, m)))
            results.put(("done", job.key, value))
        except Exception as e:  # noqa: BLE001 (reported to the main process, which raises it)
            traceback.print_exc()  # into the job's log file; the main process shows one line
            results.put(("failed", job.key, str(e) if isinstance(e, ReasonlabError) else f"{type(e).__name__}: {e}"))
        finally:
            sys.stdout, sys.stderr = saved
            if out:
                out.close()


class Workers:
    """`n` spawned worker processes (spawn, not fork: torch's thread pools do not survive a fork)."""

    def __init__(self, n: int, threads: int):
        ctx = mp.get_context("spawn")
        self.jobs, self.results = ctx.Queue(), ctx.Queue()
        self.procs = [ctx.Process(target=_serve, args=(self.jobs, self.results, threads), daemon=True)
                      for _ in range(n)]
        for p in self.procs:
            p.start()

    def submit(self, job: Job) -> None:
        self.jobs.put(job)

    def next_event(self, timeout: float):
        """("log" | "done" | "failed", key, payload), or None after `timeout` seconds."""
        try:
            return self.results.get(timeout=timeout)
        except queue.Empty:
            if not all(p.is_alive() for p in self.procs):
                raise RuntimeError("a worker process died (out of memory?); rerun to resume") from None
            return None

    def close(self, kill: bool) -> None:
        for p in self.procs:
            if kill:
                p.terminate()
            else:
                self.jobs.put(None)
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():  # stuck in a long native call
                p.kill()
                p.join()


class Inline:
    """One worker: each job runs in this process as it is submitted, its log lines going straight
    to `log` (prefixed with the job, as a worker's are) and its progress bar to this terminal, an
    error raised as it is."""

    def __init__(self, log):
        self.log, self.events = log, deque()

    def submit(self, job: Job) -> None:
        value = job.call(*job.args, log=lambda m: self.log(f"[{job.key}] {m}"))
        self.events.append(("done", job.key, value))

    def next_event(self, timeout: float):
        return self.events.popleft() if self.events else None

    def close(self, kill: bool) -> None:
        pass

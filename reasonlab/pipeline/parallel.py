"""Running a recipe's independent stages side by side (`workers: N` in a recipe).

A stage is ready when every stage it references has finished; an evaluation is ready when its
model's stage has. With `workers` > 1 the ready jobs run in that many worker processes, each with
`cores // workers` torch threads, the one whose chain to the end of the run is longest first
(estimated from `eta`), so the critical path (pretraining → R1's chain → the distilled student)
never waits behind a leaf. Why it pays on a small CPU: the tiny world's matmuls are too small for
two threads to help much (a pretraining step at 1 thread takes 1.15x its time at 2 threads on a
2-core AVX2 EPYC), so two stages at one thread each get more work done: each runs ~1.4x slower
beside the other (shared cache and memory), and the default recipe's run took 56 min instead of
72 there. The models do not change: on that CPU the run made every model's 2,000 evaluation
completions character for character as the sequential run did (fp32 matmuls there split rows,
not sums, across threads); a CPU whose kernels split sums would differ in the last bits, as
between CPU types.

Each job runs in a worker with stdout and stderr going to `OUT/logs/<job>.log` (no two live
progress bars in one terminal); its log lines come back to the main process, prefixed with the
stage. A failure or Ctrl-C stops the other workers; every stage resumes from its last checkpoint
on the next run, as in a sequential one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Job:
    """One unit of work for a worker: a stage, or the evaluation of a stage's model."""

    key: str  # the stage name, or "eval:<stage>"
    call: Callable  # a module-level function, run in the worker as call(*args, log=...)
    args: tuple
    needs: set[str] = field(default_factory=set)  # keys of the jobs that must finish first
    seconds: float = 1.0  # estimated duration (for ordering and the ETA)
    log_file: str = ""  # where the worker's stdout and stderr go


def cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def critical_path(jobs: dict[str, Job]) -> dict[str, float]:
    """Each job's estimated seconds from its start to the end of the longest chain through it.

    >>> jobs = {"a": Job("a", print, (), seconds=10), "b": Job("b", print, (), {"a"}, 5),
    ...         "c": Job("c", print, (), {"a"}, 1), "d": Job("d", print, (), seconds=3)}
    >>> critical_path(jobs)
    {'a': 15, 'b': 5, 'c': 1, 'd': 3}
    """
    tail: dict[str, float] = {}

    def walk(key: str) -> float:
        if key not in tail:
            after = [walk(k) for k, j in jobs.items() if key in j.needs]
            tail[key] = jobs[key].seconds + max(after, default=0)
        return tail[key]

    return {k: walk(k) for k in jobs}


def simulate(jobs: dict[str, Job], running: dict[str, float], workers: int) -> float:
    """Estimated seconds until every job has run, scheduling as `run_jobs` does; `running` maps
    the jobs already started to their estimated seconds left.

    >>> jobs = {"a": Job("a", print, (), seconds=10), "b": Job("b", print, (), {"a"}, 5),
    ...         "c": Job("c", print, (), seconds=4), "d": Job("d", print, (), seconds=4)}
    >>> simulate(jobs, {}, 2), simulate(jobs, {}, 1), simulate({}, {"x": 7.0}, 2)
    (15.0, 23.0, 7.0)
    """
    rank, pending, now = critical_path(jobs), dict(jobs), 0.0
    ends = dict(running)  # key -> time it finishes
    while pending or ends:
        ready = sorted((k for k, j in pending.items() if not (j.needs & (set(pending) | set(ends)))),
                       key=lambda k: -rank[k])
        for k in ready[: max(0, workers - len(ends))]:
            ends[k] = now + pending.pop(k).seconds
        if not ends:
            break  # the rest wait on jobs that are not in this run: nothing more will start
        key = min(ends, key=ends.get)
        now = ends.pop(key)
    return now


def _serve(jobs, results, threads: int) -> None:
    """A worker: take jobs until told to stop, send back log lines and the outcome of each."""
    import signal
    import sys
    import traceback

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop, and
    # stops a worker with SIGTERM: exiting through Python runs its finalizers (a killed process
    # leaves named semaphores, e.g. tqdm's lock, for the resource tracker to warn about)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results.cancel_join_thread()  # and at that exit, never wait to flush a reply nobody reads
    torch.set_num_threads(threads)
    while (item := jobs.get()) is not None:
        job: Job = item
        out = open(job.log_file, "a", buffering=1) if job.log_file else None
        saved = sys.stdout, sys.stderr
        if out:
            sys.stdout = sys.stderr = out
        try:
            value = job.call(*job.args, log=lambda m, k=job.key: results.put(("log", k, m)))
            results.put(("done", job.key, value))
        except Exception as e:  # noqa: BLE001 (reported to the main process, which raises it)
            from reasonlab.errors import ReasonlabError

            traceback.print_exc()  # into the job's log file; the main process shows one line
            results.put(("failed", job.key, str(e) if isinstance(e, ReasonlabError) else f"{type(e).__name__}: {e}"))
        finally:
            sys.stdout, sys.stderr = saved
            if out:
                out.close()


class Workers:
    """`n` spawned worker processes (spawn, not fork: torch's thread pools do not survive a fork)."""

    def __init__(self, n: int, threads: int):
        import multiprocessing as mp

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
        import queue

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


def run_jobs(jobs: dict[str, Job], workers: int, log, on_done) -> None:
    """Run every job, at most `workers` at a time, each as soon as the jobs it needs are done,
    longest chain first; `on_done(key, value, seconds)` as each finishes (it may update the
    estimates of the jobs still to run). A failure stops the rest (they resume on the next run)
    and raises."""
    from reasonlab.errors import ReasonlabError
    from reasonlab.pipeline.eta import clock

    if not jobs:
        return
    rank, pending = critical_path(jobs), dict(jobs)
    started: dict[str, float] = {}
    pool, t0 = Workers(min(workers, len(jobs)) or 1, max(1, cores() // workers)), time.time()

    def status() -> str:
        now = time.time()
        left = simulate(pending, {k: max(0.0, jobs[k].seconds - (now - t)) for k, t in started.items()}, workers)
        return f"{len(jobs) - len(pending) - len(started)}/{len(jobs)} done {clock(now - t0)}, ETA ~{clock(left)}"

    ok = False
    try:
        while pending or started:
            ready = sorted((k for k, j in pending.items() if not (j.needs & (set(pending) | set(started)))),
                           key=lambda k: -rank[k])
            for key in ready[: max(0, workers - len(started))]:
                pool.submit(pending.pop(key))
                started[key] = time.time()
                log(f"[{status()}] [{key}] started")
            event = pool.next_event(timeout=1.0)
            if event is None:
                continue
            what, key, payload = event
            if what == "log":
                log(f"[{key}] {payload}")
            elif what == "failed":
                raise ReasonlabError(f"{key}: {payload} (see {jobs[key].log_file or 'the log'})")
            else:
                on_done(key, payload, time.time() - started.pop(key))
        ok = True
    finally:
        pool.close(kill=not ok)


def run_stages_parallel(cfg, plan: list, history: dict, log) -> dict:
    """`run_stages` with `cfg.workers` workers: every stage not up to date and every evaluation
    still to do become jobs; returns the stages' states in recipe order."""
    import json
    from pathlib import Path

    from reasonlab.pipeline import eta
    from reasonlab.pipeline.report import evaluate_one
    from reasonlab.pipeline.eta import clock
    from reasonlab.pipeline.run import MODEL_KINDS, StageState, _stage_config, eval_path, run_stage_job
    from reasonlab.pipeline.stages import Result, outputs

    results, states, jobs, info = {}, {}, {}, {}
    logs = Path(cfg.out) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for idx, (spec, p) in enumerate(zip(cfg.stages, plan), 1):
        d = Path(cfg.out) / spec.name
        stage_cfg, _, deps = _stage_config(spec, d, results)
        results[spec.name] = Result(outputs(spec.kind, d))
        old = json.loads((d / "stage.json").read_text()) if (d / "stage.json").exists() else {}
        if p.status == "up to date":
            states[spec.name] = StageState(spec, p.hash, deps, Result(**old["result"]))
        else:
            where = f"[stage {idx}/{len(cfg.stages)}]"
            jobs[spec.name] = Job(spec.name, run_stage_job, (spec, stage_cfg, d, p.hash, deps, old, where),
                                  set(deps), log_file=str(logs / f"{spec.name}.log"))
            info[spec.name] = (p, deps, p.units if old.get("hash") != p.hash else 0.0)
        if p.eval_units:
            path = eval_path(cfg, spec.name, p.hash)
            key = f"eval:{spec.name}"
            jobs[key] = Job(key, evaluate_one, (cfg, spec.name, results[spec.name].products["model"], path),
                            {spec.name}, log_file=str(logs / f"eval-{spec.name}.log"))
    by_key = {p.spec.name: p for p in plan}

    def estimate_all(history: dict) -> None:
        rates, speed = eta.learned_rates(history), eta.machine_factor(history)
        for key, job in jobs.items():
            p = by_key[key.removeprefix("eval:")]
            kind_name, work = ("eval", p.eval_units) if key.startswith("eval:") else (p.spec.kind, p.units)
            job.seconds = eta.estimate(kind_name, work, p.params, rates, speed, shared=True) or 60.0

    def on_done(key: str, value, seconds: float) -> None:
        if key.startswith("eval:"):
            p = by_key[key[5:]]
            new = eta.record_time(cfg.out, key, "eval", seconds, p.eval_units, shared=True)
        else:
            p, deps, work = info[key]
            states[key] = StageState(p.spec, p.hash, deps, value)
            new = eta.record_time(cfg.out, key, p.spec.kind, seconds, work, shared=True)
        log(f"[{key}] done in {clock(seconds)}")
        estimate_all(new)

    estimate_all(history)
    t0 = time.time()
    if jobs:
        log(f"running {len(jobs)} jobs on {cfg.workers} workers, {max(1, cores() // cfg.workers)} torch thread(s) "
            f"each; ETA ~{clock(simulate(jobs, {}, cfg.workers))}")
    run_jobs(jobs, cfg.workers, log, on_done)
    log(f"stages: {len(info)} run, {len(cfg.stages) - len(info)} up to date, {clock(time.time() - t0)}")
    return {s.name: states[s.name] for s in cfg.stages}

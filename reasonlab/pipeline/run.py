"""Running a plan: one scheduler over its jobs, every stage not up to date and every evaluation
still to do, each started once the jobs it needs have finished.

`workers: 1` runs the jobs one at a time in this process, in recipe order (the stages, then the
evaluations); `workers: N` runs them in N worker processes (`workers.py`), the job whose chain to
the end of the run is longest first (estimated from `eta`), so the critical path (pretraining →
R1's chain → the distilled student) never waits behind a leaf. Each job's time goes to
`OUT/stage_times.json` as it finishes, for the ETA of what is left and of later runs. A failure
or Ctrl-C stops the run; every stage resumes from its last checkpoint on the next one.

Under `accelerate launch` every process runs the plan with one worker: training stages
(`DISTRIBUTED_KINDS`) run data-parallel on all of them, the other stages on the main process while the rest
wait for its marker (a file, not a collective: a long sampling stage cannot time out a process
group); the main process alone decides, logs, writes markers and evaluates.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from reasonlab.cost import Prices
from reasonlab.errors import ReasonlabError
from reasonlab.evaluation.evaluate import EvalConfig, evaluate
from reasonlab.io import write_json_atomic
from reasonlab.pipeline import eta
from reasonlab.pipeline.plan import Plan, PlannedEval, PlannedStage, StageState
from reasonlab.pipeline.recipe import EvalSpec
from reasonlab.pipeline.stages import Result, kind
from reasonlab.pipeline.workers import Inline, Job, Workers, cores

#: stage kinds whose trainers run data-parallel under `accelerate launch`
DISTRIBUTED_KINDS = ("grpo", "sft", "pretrain", "rm")


def process_rank() -> tuple[int, int]:
    """(rank, world size) as `accelerate launch` / torchrun set them; (0, 1) in one process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@dataclass
class Work:
    """What a job's time is estimated from and recorded as (`eta`)."""

    stage: str  # the stage it runs or whose model it evaluates
    kind: str  # the stage kind, or "eval"
    units: float
    params: float | None
    rated: bool  # its time makes a rate (not a resumed stage's tail, nor a run a time budget may cut short)
    source: str = ""  # the model whose size the work scales with
    size: Callable[[float], float] | None = None  # the work for a model of that many parameters
    limit: float = 0.0  # its time budget in seconds (0: none)

    def sized(self) -> Work:
        """Count the work in its model's parameters once that model exists. A model an earlier
        stage of this run makes has no size when the plan is made; its work then counts a
        placeholder size, and a rate learned from that is off by the ratio of the sizes (a
        0.5B teacher's GRPO made every later real-model stage's estimate ~400x too long)."""
        if self.params is None and self.source and self.size is not None:
            n = eta.model_params(self.source, {})
            if n is not None:
                self.params, self.units = n, self.size(n)
        return self

    def recorded_units(self) -> float:
        """The units its time is recorded with: none (no rate) for a resumed tail, or while its
        model's size is still unknown."""
        unknown = self.params is None and bool(self.source) and self.size is not None
        return self.units if self.rated and not unknown else 0.0


def execute(plan: Plan, log=print) -> dict[str, StageState]:
    """Run the plan's jobs; every stage's state, in recipe order."""
    cfg, (rank, world) = plan.cfg, process_rank()
    log = log if rank == 0 else (lambda m: None)
    workers = cfg.workers if world == 1 else 1
    for line in plan.lines(side_by_side=workers > 1):
        log(line)
    logs = Path(cfg.out) / "logs"
    jobs: dict[str, Job] = {}
    work: dict[str, Work] = {}
    for p in plan.stages:
        if p.status != "up to date":
            jobs[p.spec.name] = Job(p.spec.name, run_stage, (p,), set(p.deps), log_file=str(logs / f"{p.spec.name}.log"))
            limit = eta.time_limit(p.config)
            work[p.spec.name] = Work(p.spec.name, p.spec.kind, p.units, p.params, p.status == "run" and not limit,
                                     p.source, lambda n, p=p: eta.units(p.spec.kind, p.config, n), limit)
    for e in plan.evals if rank == 0 else []:
        if not e.done:
            key = f"eval:{e.stage}"
            jobs[key] = Job(key, run_eval, (cfg.eval, cfg.prices, e), {e.stage}, log_file=str(logs / f"eval-{e.stage}.log"))
            work[key] = Work(e.stage, "eval", e.units, e.params, True, e.model, lambda n: eta.eval_units(cfg.eval, n))
    if workers > 1 and jobs:
        logs.mkdir(parents=True, exist_ok=True)
    states = {p.spec.name: StageState(p.spec, p.hash, p.deps, Result(**p.marker["result"]))
              for p in plan.stages if p.status == "up to date"}

    def estimate(history: dict) -> None:
        rates, speed = eta.learned_rates(history), eta.machine_factor(history)
        for key, w in work.items():
            w.sized()
            seconds = eta.estimate(w.kind, w.units, w.params, rates, speed, shared=workers > 1, limit=w.limit)
            jobs[key].seconds, jobs[key].untimed = seconds or 60.0, seconds is None

    def on_done(key: str, value, seconds: float) -> None:
        w = work[key]
        if w.kind != "eval":
            p = plan.stage(w.stage)
            states[w.stage] = StageState(p.spec, p.hash, p.deps, value)
        if rank == 0:  # kept across reruns: later plans learn each kind's rate
            estimate(eta.record_time(cfg.out, key, w.kind, seconds, w.sized().recorded_units(), shared=workers > 1))
        log(f"[{key}] done in {eta.clock(seconds)}")

    estimate(plan.history)
    t0 = time.time()
    if jobs:
        log(f"running {len(jobs)} jobs on {workers} worker(s)"
            + (f", {max(1, cores() // workers)} torch thread(s) each" if workers > 1 else "")
            + f"; ETA {eta_text(jobs, {}, workers)}")
    order = None if workers > 1 else list(jobs)  # one worker: recipe order, evaluations last
    run_jobs(jobs, workers, log, on_done, order)
    ran = sum(p.status != "up to date" for p in plan.stages)
    log(f"stages: {ran} run, {len(plan.stages) - ran} up to date, {eta.clock(time.time() - t0)}")
    return {p.spec.name: states[p.spec.name] for p in plan.stages}


def run_jobs(jobs: dict[str, Job], workers: int, log, on_done, order: list[str] | None = None) -> None:
    """Run every job, at most `workers` at a time, each as soon as the jobs it needs are done,
    longest chain first (or in `order`); `on_done(key, value, seconds)` as each finishes (it may
    update the estimates of the jobs still to run). A failure stops the rest (they resume on the
    next run) and raises."""
    if not jobs:
        return
    rank = critical_path(jobs) if order is None else {k: -i for i, k in enumerate(order)}
    pending, started = dict(jobs), {}
    pool = Workers(min(workers, len(jobs)), max(1, cores() // workers)) if workers > 1 else Inline(log)
    t0 = time.time()

    def status() -> str:
        now = time.time()
        running = {k: 0.0 if jobs[k].untimed else max(0.0, jobs[k].seconds - (now - t)) for k, t in started.items()}
        left = eta_text(pending, running, workers, sum(jobs[k].untimed for k in started))
        return f"{len(jobs) - len(pending) - len(started)}/{len(jobs)} done {eta.clock(now - t0)}, ETA {left}"

    ok = False
    try:
        while pending or started:
            ready = sorted((k for k, j in pending.items() if not (j.needs & (set(pending) | set(started)))),
                           key=lambda k: -rank[k])
            for key in ready[: max(0, workers - len(started))]:
                job = pending.pop(key)
                started[key] = time.time()
                log(f"[{status()}] [{key}] started")
                pool.submit(job)
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


def eta_text(jobs: dict[str, Job], running: dict[str, float], workers: int, untimed_running: int = 0) -> str:
    """`simulate` as the console shows it, `~h:mm:ss`, plus how many jobs (of `jobs` and the
    `untimed_running` already started) nothing estimates: their placeholders are left out of the
    figure rather than passed off as an estimate.

    >>> jobs = {"a": Job("a", print, (), seconds=90), "b": Job("b", print, (), {"a"}, 60, untimed=True)}
    >>> eta_text(jobs, {}, 1), eta_text({}, {"x": 30.0}, 1), eta_text({}, {"x": 0.0}, 1, 1)
    ('~1:30 + 1 never timed', '~0:30', '~0:00 + 1 never timed')
    """
    unknown = sum(j.untimed for j in jobs.values()) + untimed_running
    return f"~{eta.clock(simulate(jobs, running, workers))}" + (f" + {unknown} never timed" if unknown else "")


def simulate(jobs: dict[str, Job], running: dict[str, float], workers: int) -> float:
    """Estimated seconds until every job has run, scheduling as `run_jobs` does; `running` maps
    the jobs already started to their estimated seconds left. An untimed job takes no time here.

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
            job = pending.pop(k)
            ends[k] = now + (0.0 if job.untimed else job.seconds)
        if not ends:
            break  # the rest wait on jobs that are not in this run: nothing more will start
        key = min(ends, key=ends.get)
        now = ends.pop(key)
    return now


# ---------------------------------------------------------------- the two kinds of job
def run_stage(p: PlannedStage, log=print) -> Result:
    """One stage, on the processes it belongs to; every process returns its result."""
    rank = process_rank()[0]
    marker = p.dir / "stage.json"
    if rank == 0:
        _prepare(p, log)
    else:  # wait until the main process has prepared the directory (a failed run's marker is stale)
        while not (marker.exists() and (m := json.loads(marker.read_text())).get("hash") == p.hash
                   and not m.get("failed")):
            time.sleep(0.2)
    if rank == 0 or p.spec.kind in DISTRIBUTED_KINDS:
        try:
            result = kind(p.spec.kind, f"stages.{p.spec.name}").run(p.config, p.dir, log)
        except BaseException as e:
            if rank == 0:  # tells the waiting processes to stop too
                write_json_atomic(marker, {"hash": p.hash, "done": False, "failed": f"{type(e).__name__}: {e}"})
            raise
    if rank == 0:
        write_json_atomic(marker, {"hash": p.hash, "done": True, "kind": p.spec.kind, "deps": sorted(p.deps),
                                   "result": asdict(result)})
        return result
    while True:
        m = json.loads(marker.read_text())
        if m.get("failed"):
            raise ReasonlabError(f"stages.{p.spec.name}: the main process failed: {m['failed']}")
        if m.get("done"):
            return Result(**m["result"])
        time.sleep(0.5)


def _prepare(p: PlannedStage, log) -> None:
    """Clear a stage directory whose settings changed, refuse one the pipeline did not make, and
    mark the stage started."""
    d, marker = p.dir, p.dir / "stage.json"
    if d.exists() and not marker.exists() and any(d.iterdir()):
        raise ReasonlabError(f"stages.{p.spec.name}: {d} exists but was not made by `reasonlab run`; "
                             "move it away or choose another --out")
    if d.exists() and p.status == "run" and marker.exists():
        log("settings or inputs changed: starting it afresh")
        shutil.rmtree(d)
    log(f"{p.spec.kind}{' (resuming)' if p.status == 'resume' else ''}")
    d.mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, {"hash": p.hash, "done": False})


def run_eval(spec: EvalSpec, prices: Prices, e: PlannedEval, log=print) -> dict:
    """Evaluate (or resume) one model with the recipe's eval settings."""
    return evaluate(EvalConfig(model=e.model, task=spec.task, n=spec.n, samples=spec.samples,
                               temperature=spec.temperature, top_p=spec.top_p, max_new_tokens=spec.max_new_tokens, seed=spec.seed,
                               out=str(e.path), prices=prices, template=spec.template, precision=spec.precision),
                    log=log)

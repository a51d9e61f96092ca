"""`reasonlab run`: a recipe of stages (pretrain, sft, grpo, traces, journey), each cached, then
every model evaluated on the same held-out problems and one results table written.

A stage's config may reference an earlier stage's products as `{stage.product}` (`{base.model}`,
`{cold.data}`, `{journey.shortcut}`). Each stage runs in `OUT/<name>/` and records a hash of its
kind, its resolved config and its inputs' hashes in `stage.json`:

- same hash and finished: skipped;
- same hash, not finished (killed): run again with `resume=true`, so trainers continue from
  their last checkpoint and trace generation from its last problem;
- different hash (its config or an input changed): its directory is cleared and it reruns, and
  so does everything downstream, since their hashes include this one.

Evaluations are cached the same way (`OUT/eval/<name>-<hash>.json`, resumable). Costs: a model's
`train_flops`/`train_seconds` sum its own stage and every stage it depends on after the base
model (whose pretraining is shared by all rows and shown on its own row); a traces stage with
`teacher_cost: false` counts its sampling but not its teacher's training (the R1 paper's
comparison of distilled students).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reasonlab.cost import Prices
from reasonlab.errors import ReasonlabError
from reasonlab.io import write_json_atomic
from reasonlab.pipeline.claims import split_ref
from reasonlab.pipeline.eta import clock, eta_text, print_plan
from reasonlab.pipeline.stages import Result, kind

REF = re.compile(r"\{([A-Za-z_][\w-]*)\.(\w+)\}")
MODEL_KINDS = ("pretrain", "convert", "sft", "grpo")


@dataclass
class StageSpec:
    """One stage of a recipe."""

    name: str = field(default="", metadata={"help": "stage name: its directory, and how others reference it"})
    kind: str = field(default="", metadata={"help": "pretrain, convert (a GGUF file), sft, grpo, traces, journey, rm (reward model) or scale"})
    config: dict = field(default_factory=dict, metadata={"help": "the stage command's settings; `{stage.product}` references"})
    evaluate: bool = field(default=True, metadata={"help": "evaluate the model this stage makes (model stages only)"})
    label: str = field(default="", metadata={"help": "row name in the results table ('' = the stage name)"})
    teacher_cost: bool = field(default=True, metadata={"help": "traces stages: count the teacher's training in the cost of students trained on these traces (false for R1-Distill's student-only comparison)"})


@dataclass
class EvalSpec:
    """How every model is evaluated (the same problems for all)."""

    task: str = field(default="arithmetic", metadata={"help": "task"})
    n: int = field(default=200, metadata={"help": "held-out problems"})
    samples: int = field(default=8, metadata={"help": "samples per problem for pass@k and maj@k"})
    max_new_tokens: int = field(default=64, metadata={"help": "generation cap"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    seed: int = field(default=0, metadata={"help": "problem selection and sampling seed"})
    template: str = field(default="", metadata={"help": "prompt template for every model ('' = each model's recorded one)"})
    precision: str = field(default="fp32", metadata={"help": "fp32, bf16 (decode from bf16 weights) or auto (bf16 where a matmul measures it faster)"})


@dataclass
class Comparison:
    """A claim the report checks from the numbers: `a` beats `b` on the same problems (a paired
    difference whose 95% interval lies above zero; see `reasonlab.pipeline.claims`)."""

    a: str = field(default="", metadata={"help": "a model stage, or a scaling point `STAGE/CURVE@BUDGET`"})
    b: str = field(default="", metadata={"help": "a model stage, or a scaling point `STAGE/CURVE@BUDGET`"})
    claim: str = field(default="", metadata={"help": "what the comparison tests, e.g. 'SFT+RL >= pure RL'"})
    metric: str = field(default="greedy_accuracy", metadata={"help": "for model stages: greedy_accuracy, maj_accuracy or pass_at_k, each with _lenient appended for the lenient score"})
    at_most_compute: bool = field(default=False, metadata={"help": "the claim also needs a's training FLOPs <= b's"})


@dataclass
class PipelineConfig:
    """Configuration of `reasonlab run`."""

    out: str = field(default="runs/pipeline", metadata={"help": "run directory"})
    eval: EvalSpec = field(default_factory=EvalSpec, metadata={"help": "evaluation settings"})
    stages: list[StageSpec] = field(default_factory=list, metadata={"help": "the stages, in order"})
    compare: list[Comparison] = field(default_factory=list, metadata={"help": "claims the report checks"})
    seed: int = field(default=0, metadata={"help": "added to every stage's own seed (pretraining, sampling, data order): a replicate of the whole run; the evaluation problems stay the same"})
    examples: list[str] = field(default_factory=list, metadata={"help": "model stages whose answers to one problem the report shows ([]: the first model and those the claims name)"})
    prices: Prices = field(default_factory=Prices, metadata={"help": "prices for the $ column"})
    workers: int = field(default=1, metadata={"help": "stages (and evaluations) run side by side when their inputs are ready, each worker with cores/workers torch threads (see `reasonlab.pipeline.parallel`); 1 under `accelerate launch`"})

    def validate(self) -> None:
        if not self.stages:
            raise ReasonlabError("stages: a recipe needs at least one stage")
        if self.workers < 1:
            raise ReasonlabError(f"workers: {self.workers} (needs 1 or more)")
        seen = set()
        for i, s in enumerate(self.stages):
            if not re.fullmatch(r"[A-Za-z_][\w-]*", s.name or ""):
                raise ReasonlabError(f"stages[{i}].name: {s.name!r} is not a valid stage name")
            if s.name in seen or s.name == "eval":
                raise ReasonlabError(f"stages[{i}].name: {s.name!r} is used twice or reserved")
            seen.add(s.name)
            kind(s.kind, f"stages.{s.name}")
        for c in self.compare:
            for ref in (c.a, c.b):
                if split_ref(ref)[0] not in seen:
                    raise ReasonlabError(f"compare: {ref!r} is not a stage (or STAGE/CURVE@BUDGET of one)")


def load_pipeline(path: str | None, quick: bool = False, overrides: list[str] | None = None) -> PipelineConfig:
    """A recipe with its `quick:` section applied when `quick`, then `key=value` overrides
    (`stage.NAME.key=value` sets a stage's config)."""
    import yaml

    from reasonlab.config import _merge, from_dict, parse_overrides

    data: dict = {}
    if path:
        if not Path(path).exists():
            raise ReasonlabError(f"recipe: {path} does not exist")
        data = yaml.safe_load(Path(path).read_text()) or {}
    quick_part = data.pop("quick", {}) or {}
    extra = parse_overrides(list(overrides or []))
    for layer in ([quick_part] if quick else []) + [extra]:
        for name, cfg in (layer.get("stage") or {}).items():
            match = [s for s in data.get("stages", []) if s.get("name") == name]
            if not match:
                raise ReasonlabError(f"stage.{name}: no such stage in {path}")
            match[0]["config"] = _merge(match[0].get("config") or {}, cfg)
        data = _merge(data, {k: v for k, v in layer.items() if k != "stage"})
    cfg = from_dict(PipelineConfig, data, path or "recipe")
    cfg.validate()
    if cfg.seed:
        offset_seeds(cfg)
    return cfg


def offset_seeds(cfg: PipelineConfig) -> None:
    """Add `cfg.seed` to the seed of every stage whose config has one (its own or the default),
    except scaling stages, whose seed also picks the held-out problems (kept the same)."""
    from dataclasses import fields

    for spec in cfg.stages:
        if spec.kind == "scale":
            continue
        own = {f.name: f.default for f in fields(kind(spec.kind, f"stages.{spec.name}").config_cls)}
        if "seed" in own:
            spec.config = {**spec.config, "seed": int(spec.config.get("seed", own["seed"])) + cfg.seed}


def _resolve(value, results: dict[str, Result], where: str):
    """`value` with `{stage.product}` references replaced; the referenced stage names."""
    if isinstance(value, dict):
        pairs = {k: _resolve(v, results, f"{where}.{k}") for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, set().union(*(d for _, d in pairs.values()))
    if isinstance(value, list):
        pairs = [_resolve(v, results, f"{where}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in pairs], set().union(*(d for _, d in pairs))
    if not isinstance(value, str):
        return value, set()
    deps = set()

    def sub(m):
        stage, product = m.group(1), m.group(2)
        if stage not in results:
            raise ReasonlabError(f"{where}: {m.group(0)} refers to no earlier stage")
        if product not in results[stage].products:
            raise ReasonlabError(f"{where}: stage {stage} makes {', '.join(results[stage].products)}, not {product}")
        deps.add(stage)
        return results[stage].products[product]

    return REF.sub(sub, value), deps


@dataclass
class StageState:
    spec: StageSpec
    hash: str
    deps: set
    result: Result


def _stage_config(spec: StageSpec, d: Path, results: dict[str, Result]):
    """The stage's config dataclass, references resolved, outputs placed, validated."""
    from reasonlab.config import from_dict

    k = kind(spec.kind, f"stages.{spec.name}")
    resolved, deps = _resolve(spec.config, results, f"stages.{spec.name}.config")
    settings = {**resolved, **k.places(d)}
    stage_cfg = from_dict(k.config_cls, settings, f"stages.{spec.name}.config")
    if hasattr(stage_cfg, "validate"):
        stage_cfg.validate()
    return stage_cfg, settings, deps


@dataclass
class Planned:
    """A stage as the plan sees it before anything runs."""

    spec: StageSpec
    hash: str
    status: str  # up to date, resume or run
    units: float  # its work (eta.units)
    params: float | None  # the size of the model doing the work, when known
    eval_units: float  # evaluating its model, when that is still to do


def check_stages(cfg: PipelineConfig) -> list[Planned]:
    """Validate every stage's config without running anything (a typo in any stage fails before
    the first one starts); returns each stage's hash, status and work."""
    from reasonlab.pipeline import eta
    from reasonlab.pipeline.stages import outputs

    results: dict[str, Result] = {}
    hashes: dict[str, str] = {}
    sizes: dict[str, float] = {}  # model path -> parameters, for models not made yet
    plan = []
    for spec in cfg.stages:
        d = Path(cfg.out) / spec.name
        stage_cfg, settings, deps = _stage_config(spec, d, results)
        h = hashes[spec.name] = _hash(spec.kind, settings, sorted(hashes[x] for x in deps))
        results[spec.name] = Result(outputs(spec.kind, d))
        marker = d / "stage.json"
        old = json.loads(marker.read_text()) if marker.exists() else {}
        status = "run" if old.get("hash") != h else "up to date" if old.get("done") else "resume"
        source = getattr(stage_cfg, "model", None) or getattr(stage_cfg, "teacher", None) or ""
        params = (eta.preset_params(stage_cfg.preset, stage_cfg.vocab_size) if spec.kind == "pretrain"
                  else eta.model_params(source, sizes) if source else None)
        if spec.kind in MODEL_KINDS and params is not None:
            sizes[results[spec.name].products["model"]] = params
        evaluated = spec.kind in MODEL_KINDS and spec.evaluate and not eval_path(cfg, spec.name, h).exists()
        plan.append(Planned(spec, h, status, eta.units(spec.kind, stage_cfg, params), params,
                            eta.eval_units(cfg.eval, params) if evaluated else 0.0))
    return plan


def eval_path(cfg: PipelineConfig, name: str, stage_hash: str) -> Path:
    """Where a model's evaluation lives: keyed by the model's stage hash and the eval settings,
    so changing either evaluates afresh and changing neither reuses (or resumes) it."""
    settings = hashlib.sha256(json.dumps(vars(cfg.eval), sort_keys=True).encode()).hexdigest()[:8]
    return Path(cfg.out) / "eval" / f"{name}-{stage_hash}-{settings}.json"


#: stage kinds whose trainers run data-parallel under `accelerate launch`; the others run on the
#: main process while the rest wait for its marker
DISTRIBUTED_KINDS = ("grpo", "sft")


def process_rank() -> tuple[int, int]:
    """(rank, world size) as `accelerate launch` / torchrun set them; (0, 1) in one process."""
    import os

    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def run_stages(cfg: PipelineConfig, log=print) -> dict[str, StageState]:
    """Run (or skip, or resume) every stage in order. Under `accelerate launch`, the main process
    decides, logs and writes every marker; training stages run on every process, the others on
    the main one alone, and the rest wait for its marker (a file, not a collective: a long
    sampling stage cannot time out a process group)."""
    import time

    from reasonlab.pipeline import eta

    rank, _ = process_rank()
    log = log if rank == 0 else (lambda m: None)
    history = eta.load_times(cfg.out)
    plan = check_stages(cfg)
    parallel = cfg.workers > 1 and process_rank()[1] == 1
    print_plan(plan, history, log, side_by_side=parallel)
    if parallel:
        from reasonlab.pipeline.parallel import run_stages_parallel

        return run_stages_parallel(cfg, plan, history, log)
    states: dict[str, StageState] = {}
    t0, ran = time.time(), []
    for idx, (spec, planned) in enumerate(zip(cfg.stages, plan), 1):
        where = f"[{idx}/{len(cfg.stages)} {clock(time.time() - t0)}, ETA {eta_text(plan, history, set(states))}]"
        d = Path(cfg.out) / spec.name
        stage_cfg, settings, deps = _stage_config(spec, d, {n: s.result for n, s in states.items()})
        h = _hash(spec.kind, settings, sorted(states[x].hash for x in deps))
        marker = d / "stage.json"
        old = json.loads(marker.read_text()) if marker.exists() else {}
        if old.get("hash") == h and old.get("done"):
            log(f"{where} [{spec.name}] up to date, skipped")
            states[spec.name] = StageState(spec, h, deps, Result(**old["result"]))
            continue
        if rank == 0:
            _prepare(spec, d, old, h, where, log)
        started = time.time()
        result = _run_one(spec, stage_cfg, d, h, deps, rank, log)
        if rank == 0:  # kept across reruns: later plans learn this kind's rate (not from a resumed stage's tail)
            history = eta.record_time(cfg.out, spec.name, spec.kind, time.time() - started,
                                      planned.units if old.get("hash") != h else 0.0)
        states[spec.name] = StageState(spec, h, deps, result)
        ran.append(spec.name)
    log(f"stages: {len(ran)} run, {len(cfg.stages) - len(ran)} up to date, {clock(time.time() - t0)}")
    return states


def _prepare(spec: StageSpec, d: Path, old: dict, h: str, where: str, log) -> None:
    """Clear a stage directory whose settings changed, refuse one the pipeline did not make, and
    mark the stage started."""
    marker = d / "stage.json"
    if d.exists() and not marker.exists() and any(d.iterdir()):
        raise ReasonlabError(f"stages.{spec.name}: {d} exists but was not made by `reasonlab run`; "
                             "move it away or choose another --out")
    if d.exists() and old.get("hash") != h:
        log(f"{where} [{spec.name}] settings or inputs changed: starting it afresh")
        shutil.rmtree(d)
    log(f"{where} [{spec.name}] {spec.kind}{' (resuming)' if old.get('hash') == h else ''}")
    d.mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, {"hash": h, "done": False})


def run_stage_job(spec: StageSpec, stage_cfg, d: Path, h: str, deps: set, old: dict, where: str, log) -> Result:
    """One stage in a worker process (`reasonlab.pipeline.parallel`)."""
    _prepare(spec, d, old, h, where, log)
    return _run_one(spec, stage_cfg, d, h, deps, 0, log)


def _run_one(spec: StageSpec, stage_cfg, d: Path, h: str, deps: set, rank: int, log) -> Result:
    """Run one stage on the processes it belongs to; every process returns its result."""
    import time

    marker = d / "stage.json"
    if rank != 0:  # wait until the main process has prepared the directory (a failed run's marker is stale)
        while not (marker.exists() and (m := json.loads(marker.read_text())).get("hash") == h and not m.get("failed")):
            time.sleep(0.2)
    if rank == 0 or spec.kind in DISTRIBUTED_KINDS:
        try:
            result = kind(spec.kind, f"stages.{spec.name}").run(stage_cfg, d, log)
        except BaseException as e:
            if rank == 0:  # tells the waiting processes to stop too
                write_json_atomic(marker, {"hash": h, "done": False, "failed": f"{type(e).__name__}: {e}"})
            raise
    if rank == 0:
        write_json_atomic(marker, {"hash": h, "done": True, "kind": spec.kind, "deps": sorted(deps), "result": asdict(result)})
        return result
    while True:
        m = json.loads(marker.read_text())
        if m.get("failed"):
            raise ReasonlabError(f"stages.{spec.name}: the main process failed: {m['failed']}")
        if m.get("done"):
            return Result(**m["result"])
        time.sleep(0.5)



def _hash(kind_name: str, settings: dict, dep_hashes: list[str]) -> str:
    blob = json.dumps({"kind": kind_name, "settings": settings, "deps": dep_hashes}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def lineage(name: str, states: dict[str, StageState], through_teachers: bool | None = None) -> list[str]:
    """The stages a model's cost includes: itself and its inputs, transitively, not looking past a
    traces stage with `teacher_cost: false` (or any traces stage when `through_teachers` is
    False: the model's own training chain), in recipe order."""
    seen, todo = set(), [name]
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.add(s)
        spec = states[s].spec
        if spec.kind != "traces" or (spec.teacher_cost if through_teachers is None else through_teachers):
            todo += list(states[s].deps)
    return [n for n in states if n in seen]

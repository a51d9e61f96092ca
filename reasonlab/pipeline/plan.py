"""Planning a recipe once, before anything runs: every stage's resolved config, hash, status,
inputs and work, and every evaluation still to do.

A stage's config may reference an earlier stage's products as `{stage.product}` (`{base.model}`,
`{cold.data}`, `{journey.shortcut}`). Products live at paths fixed by the stage's directory
(`stages.outputs`), so references resolve without running anything. A stage's hash covers its
kind, its resolved config and its inputs' hashes; with `stage.json` in its directory it gives
the stage's status:

- same hash and finished: up to date (skipped);
- same hash, not finished (killed): resume, so trainers continue from their last checkpoint and
  trace generation from its last problem;
- different hash (its config or an input changed): run afresh, and so does everything
  downstream, since their hashes include this one.

Every model a stage makes (with `evaluate: true`) gets an evaluation keyed by the stage's hash
and the recipe's eval settings (`OUT/eval/<name>-<hash>-<settings>.json`): one of the same model
and settings is reused, a killed one resumes. A bad reference or setting in any stage fails here,
before the first stage starts.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from reasonlab.config import from_dict
from reasonlab.convert import converted_params
from reasonlab.errors import ReasonlabError
from reasonlab.pipeline import eta
from reasonlab.pipeline.recipe import PipelineConfig, StageSpec
from reasonlab.pipeline.stages import Result, kind, outputs

REF = re.compile(r"\{([A-Za-z_][\w-]*)\.(\w+)\}")
#: stage kinds that make a model (evaluated when the stage says so)
MODEL_KINDS = ("pretrain", "convert", "sft", "grpo")


@dataclass
class PlannedStage:
    """One stage as the plan sees it before anything runs."""

    spec: StageSpec
    config: object  # the stage kind's config dataclass, references resolved, outputs placed, validated
    dir: Path
    hash: str
    deps: set[str]  # the stages it references
    status: str  # "up to date", "resume" or "run"
    marker: dict  # its stage.json as found ({} when none)
    products: dict[str, str]  # what it makes (paths), for later stages to reference
    units: float  # its work (`eta.units`)
    params: float | None  # the size of the model doing the work, when known
    eval_units: float = 0.0  # evaluating its model, when that is still to do
    source: str = ""  # the model (or teacher) doing the work, whose size `params` is


@dataclass
class PlannedEval:
    """The evaluation of one model stage's model with the recipe's eval settings."""

    stage: str
    model: str
    path: Path  # results JSON; its samples file lies beside it
    units: float
    params: float | None
    done: bool


@dataclass
class StageState:
    """A stage after the run (or as a finished run left it): its spec, hash, inputs and result."""

    spec: StageSpec
    hash: str
    deps: set
    result: Result


@dataclass
class Plan:
    cfg: PipelineConfig
    stages: list[PlannedStage]
    evals: list[PlannedEval]
    history: dict = field(default_factory=dict)  # OUT/stage_times.json: earlier stages' times

    def stage(self, name: str) -> PlannedStage:
        return next(p for p in self.stages if p.spec.name == name)

    def lines(self, side_by_side: bool = False) -> list[str]:
        """The stage list with status and last time, and the ETA of the whole run (for a
        `side_by_side` run, of the run one stage at a time: the side-by-side ETA follows it)."""
        todo = [p for p in self.stages if p.status != "up to date"]
        evals = sum(not e.done for e in self.evals)
        head = f"ETA {eta.eta_text(self.stages, self.history)}" if todo or evals else "nothing to run"
        head += f" with {evals} evaluation(s)" if evals else ""
        head += " one stage at a time" if (todo or evals) and side_by_side else ""
        out = [f"plan: {len(self.stages)} stages, {len(self.stages) - len(todo)} up to date, {len(todo)} to run; {head}"]
        for p in self.stages:
            took = self.history.get(p.spec.name, {}).get("seconds")
            out.append(f"  {p.status:10s} {p.spec.name} [{p.spec.kind}]{f' (last {eta.clock(took)})' if took else ''}")
        return out


    def details(self) -> list[str]:
        """`reasonlab run --plan`: each job's hash, inputs and estimate, then where each
        evaluation goes."""
        rates, speed = eta.learned_rates(self.history), eta.machine_factor(self.history)
        out = []
        for p in self.stages:
            est = 0.0 if p.status == "up to date" else eta.estimate(p.spec.kind, p.units, p.params, rates, speed,
                                                                     limit=eta.time_limit(p.config))
            out.append(f"  {p.spec.name}: hash {p.hash}, needs {', '.join(sorted(p.deps)) or '-'}, "
                       f"{'done' if p.status == 'up to date' else 'never timed' if est is None else '~' + eta.clock(est)}")
        for e in self.evals:
            out.append(f"  eval:{e.stage}: {'done' if e.done else 'to run'}, {e.path}")
        return out


def plan(cfg: PipelineConfig) -> Plan:
    """The recipe's plan (see the module docstring); nothing runs and nothing is written."""
    stages: list[PlannedStage] = []
    evals: list[PlannedEval] = []
    sizes: dict[str, float] = {}  # model path -> parameters, for models not made yet
    for spec in cfg.stages:
        d = Path(cfg.out) / spec.name
        made = {p.spec.name: p for p in stages}
        stage_cfg, settings, deps = stage_config(spec, d, {n: p.products for n, p in made.items()})
        h = stage_hash(spec.kind, settings, sorted(made[x].hash for x in deps))
        marker = json.loads((d / "stage.json").read_text()) if (d / "stage.json").exists() else {}
        status = "run" if marker.get("hash") != h else "up to date" if marker.get("done") else "resume"
        source = getattr(stage_cfg, "model", None) or getattr(stage_cfg, "teacher", None) or ""
        params = (eta.preset_params(stage_cfg.preset, stage_cfg.vocab_size) if spec.kind == "pretrain"
                  else converted_params(stage_cfg) if spec.kind == "convert"
                  else eta.model_params(source, sizes) if source else None)
        products = outputs(spec.kind, d)
        if spec.kind in MODEL_KINDS and params is not None:
            sizes[products["model"]] = params
        p = PlannedStage(spec, stage_cfg, d, h, deps, status, marker, products,
                         eta.units(spec.kind, stage_cfg, params), params, source=source)
        if spec.kind in MODEL_KINDS and spec.evaluate:
            path = eval_path(cfg, spec.name, h)
            e = PlannedEval(spec.name, products["model"], path, eta.eval_units(cfg.eval, params), params, path.exists())
            p.eval_units = 0.0 if e.done else e.units
            evals.append(e)
        stages.append(p)
    return Plan(cfg, stages, evals, eta.load_times(cfg.out))


def stage_config(spec: StageSpec, d: Path, products: dict[str, dict[str, str]]):
    """The stage's config dataclass (references resolved, outputs placed, validated), the
    settings it was made from, and the stages it references."""
    k = kind(spec.kind, f"stages.{spec.name}")
    resolved, deps = _resolve(spec.config, products, f"stages.{spec.name}.config")
    settings = {**resolved, **k.places(d)}
    stage_cfg = from_dict(k.config_cls, settings, f"stages.{spec.name}.config")
    validate = getattr(stage_cfg, "validate", None)
    if validate is not None:
        validate()
    return stage_cfg, settings, deps


def _resolve(value, products: dict[str, dict[str, str]], where: str):
    """`value` with `{stage.product}` references replaced; the referenced stage names."""
    if isinstance(value, dict):
        pairs = {k: _resolve(v, products, f"{where}.{k}") for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, set().union(*(d for _, d in pairs.values()))
    if isinstance(value, list):
        pairs = [_resolve(v, products, f"{where}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in pairs], set().union(*(d for _, d in pairs))
    if not isinstance(value, str):
        return value, set()
    deps = set()

    def sub(m):
        stage, product = m.group(1), m.group(2)
        if stage not in products:
            raise ReasonlabError(f"{where}: {m.group(0)} refers to no earlier stage")
        if product not in products[stage]:
            raise ReasonlabError(f"{where}: stage {stage} makes {', '.join(products[stage])}, not {product}")
        deps.add(stage)
        return products[stage][product]

    return REF.sub(sub, value), deps


def stage_hash(kind_name: str, settings: dict, dep_hashes: list[str]) -> str:
    """The stage's identity: kind, resolved settings, inputs; and the kind's output version once
    raised above 1 (so the caches of kinds whose output never changed stay valid)."""
    record = {"kind": kind_name, "settings": settings, "deps": dep_hashes}
    version = kind(kind_name, "stage").version
    if version > 1:
        record["version"] = version
    blob = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def eval_path(cfg: PipelineConfig, name: str, stage_hash: str) -> Path:
    """Where a model's evaluation lives: keyed by the model's stage hash and the eval settings,
    so changing either evaluates afresh and changing neither reuses (or resumes) it."""
    settings = hashlib.sha256(json.dumps(vars(cfg.eval), sort_keys=True).encode()).hexdigest()[:8]
    return Path(cfg.out) / "eval" / f"{name}-{stage_hash}-{settings}.json"


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

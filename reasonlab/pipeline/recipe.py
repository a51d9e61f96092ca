"""A pipeline recipe: its stages, how every model is evaluated, the claims the report checks.

A recipe is YAML read into `PipelineConfig` (one dataclass, documented once; the CLI's `key=value`
and `stage.NAME.key=value` overrides write into it). A stage's `config` is the settings of its
kind's command (`reasonlab.pipeline.stages`), where `{stage.product}` names an earlier stage's
product (`{base.model}`, `{cold.data}`); `reasonlab.pipeline.plan` resolves them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from reasonlab.config import from_dict, merge_dicts, parse_overrides
from reasonlab.cost import Prices
from reasonlab.errors import ReasonlabError
from reasonlab.pipeline.claims import split_ref
from reasonlab.pipeline.stages import kind
from reasonlab.rollout.options import Sampling


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
class EvalSpec(Sampling):
    """How every model is evaluated (the same problems for all)."""

    task: str = field(default="arithmetic", metadata={"help": "task"})
    n: int = field(default=200, metadata={"help": "held-out problems"})
    samples: int = field(default=8, metadata={"help": "samples per problem for pass@k and maj@k"})
    seed: int = field(default=0, metadata={"help": "problem selection and sampling seed"})
    template: str = field(default="", metadata={"help": "prompt template for every model ('' = each model's recorded one)"})
    precision: str = field(default="fp32", metadata={"help": "fp32, bf16 (decode from bf16 weights) or auto (bf16 where a matmul measures it faster)"})


@dataclass
class Comparison:
    """A claim the report checks from the numbers: `a` beats `b` on the same problems (a paired
    difference whose 95% interval lies above zero; see `reasonlab.pipeline.claims`)."""

    a: str = field(default="", metadata={"help": "a model stage, or a scaling point `STAGE/CURVE@BUDGET`"})
    b: str = field(default="", metadata={"help": "a model stage, or a scaling point `STAGE/CURVE@BUDGET` ('' when a is a scaling method's point: its stage's greedy answer to the same prompt, `STAGE/greedy@1`)"})
    claim: str = field(default="", metadata={"help": "what the comparison tests, e.g. 'SFT+RL >= pure RL'"})
    metric: str = field(default="greedy_accuracy", metadata={"help": "for model stages: greedy_accuracy, maj_accuracy or pass_at_k, each with _lenient appended for the lenient score"})
    at_most_compute: bool = field(default=False, metadata={"help": "the claim also needs a's compute <= b's (FLOPs along each model's lineage; see count_sampling)"})
    count_sampling: bool = field(default=True, metadata={"help": "at_most_compute: a model's compute is its training FLOPs plus the FLOPs of sampling the traces it was trained on (false: training FLOPs alone; the sampling is shown either way)"})


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
    workers: int = field(default=1, metadata={"help": "stages (and evaluations) run side by side when their inputs are ready, each worker with cores/workers torch threads (see `reasonlab.pipeline.workers`); 1 under `accelerate launch`"})

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
            c.b = c.b or baseline(c.a)
            for ref in (c.a, c.b):
                if split_ref(ref)[0] not in seen:
                    raise ReasonlabError(f"compare: {ref!r} is not a stage (or STAGE/CURVE@BUDGET of one)")
            check_same_prompt(c.a, c.b)


def baseline(a: str) -> str:
    """The default `b` of a claim on scaling point `a`: greedy decoding of the same prompt by the
    same model (the scale stage's `greedy` curve).

    >>> baseline("scaling/self-consistency@16")
    'scaling/greedy@1'
    """
    stage, curve, _ = split_ref(a)
    if curve is None:
        raise ReasonlabError(f"compare: {a!r} needs a b (only a scaling point defaults to its stage's greedy answer)")
    return f"{stage}/greedy@1"


def check_same_prompt(a: str, b: str) -> None:
    """A scaling method's point is judged against greedy decoding of the prompt it sampled from,
    never against another prompt's greedy answer (a `cot:` point): that difference mixes the
    method's effect with the prompt's. `cot:` points compare prompts with each other.

    >>> check_same_prompt("scaling/cot:think@1", "scaling/cot:direct@1")
    >>> check_same_prompt("scaling/self-consistency@16", "scaling/cot:zero-shot@1")
    Traceback (most recent call last):
    reasonlab.errors.ReasonlabError: compare: scaling/self-consistency@16 is judged against scaling/cot:zero-shot@1, greedy of another prompt; leave b out for scaling/greedy@1, greedy of the same prompt
    """
    (sa, ca, _), (sb, cb, _) = split_ref(a), split_ref(b)
    method = ca is not None and not ca.startswith("cot:") and ca != "greedy"
    if method and sa == sb and cb is not None and cb.startswith("cot:"):
        raise ReasonlabError(f"compare: {a} is judged against {b}, greedy of another prompt; leave b out "
                             f"for {sa}/greedy@1, greedy of the same prompt")


def load_pipeline(path: str | None, quick: bool = False, overrides: list[str] | None = None) -> PipelineConfig:
    """A recipe with its `quick:` section applied when `quick`, then `key=value` overrides
    (`stage.NAME.key=value` sets a stage's config)."""
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
            match[0]["config"] = merge_dicts(match[0].get("config") or {}, cfg)
        data = merge_dicts(data, {k: v for k, v in layer.items() if k != "stage"})
    cfg = from_dict(PipelineConfig, data, path or "recipe")
    cfg.validate()
    if cfg.seed:
        offset_seeds(cfg)
    return cfg


def offset_seeds(cfg: PipelineConfig) -> None:
    """Add `cfg.seed` to the seed of every stage whose config has one (its own or the default),
    except scaling stages, whose seed also picks the held-out problems (kept the same)."""
    for spec in cfg.stages:
        if spec.kind == "scale":
            continue
        own = {f.name: f.default for f in fields(kind(spec.kind, f"stages.{spec.name}").config_cls)}
        if "seed" in own:
            spec.config = {**spec.config, "seed": int(spec.config.get("seed", own["seed"])) + cfg.seed}

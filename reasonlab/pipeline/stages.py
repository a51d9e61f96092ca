"""The stage kinds a pipeline recipe can use, each a thin call into the library.

A stage kind knows its config dataclass, where its outputs go inside the stage directory, and
what it produces for later stages to reference (`{stage.model}`, `{stage.data}`, …) together
with what it cost. Nothing here trains or samples by itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reasonlab.convert import ConvertConfig, convert_gguf
from reasonlab.errors import ReasonlabError
from reasonlab.rl.config import GRPOConfig
from reasonlab.rl.grpo import run_grpo
from reasonlab.scaling.rm import RMConfig, train_rm
from reasonlab.scaling.scale import ScaleConfig, run_scale
from reasonlab.sft.journey import JourneyConfig, build_journey
from reasonlab.sft.traces import TracesConfig, generate_traces
from reasonlab.sft.trainer import SFTConfig, run_sft
from reasonlab.world.pretrain import PretrainConfig, pretrain


@dataclass
class Result:
    """What a finished stage hands on: named products (paths) and its cost."""

    products: dict[str, str]
    flops: float = 0.0
    seconds: float = 0.0
    usd_api: float = 0.0
    devices: int = 1  # processes that trained it (`accelerate launch`): GPU-hours are seconds x devices


@dataclass
class Kind:
    config_cls: type
    run: Callable  # (config, stage_dir, log) -> Result
    places: Callable  # stage_dir -> dict of config fields fixed by the pipeline (outputs, resume)
    #: raised when what the stage writes changes shape (scale: every run has its `greedy` curve),
    #: so a product cached in the old shape is made again instead of failing a claim later
    version: int = 1


def _trained(final: Path) -> Result:
    if not (final / "reasonlab_train.json").exists():  # a non-main process under `accelerate launch`
        return Result({"model": str(final)})  # returns before the main one saves; the main's marker holds the cost
    info = json.loads((final / "reasonlab_train.json").read_text())
    return Result({"model": str(final)}, info["train_flops"], info["train_seconds"], devices=info.get("processes", 1))


def _run_pretrain(cfg, d: Path, log) -> Result:
    return _trained(pretrain(cfg, log=log))


def _run_grpo(cfg, d: Path, log) -> Result:
    return _trained(run_grpo(cfg, log=log))


def _run_sft(cfg, d: Path, log) -> Result:
    return _trained(run_sft(cfg, log=log))


def _run_traces(cfg, d: Path, log) -> Result:
    s = generate_traces(cfg, log=log)
    if not s["kept"]:  # a stage that trains on it fails with its own one-line error
        log(f"traces: warning: {cfg.teacher} produced no verified trace in {cfg.n} problems × {cfg.samples} samples")
    seconds = sum(json.loads(x)["seconds"] for x in Path(cfg.out + ".done").read_text().splitlines())
    return Result({"data": cfg.out, "attempts": cfg.attempts}, s["flops"] or 0.0, seconds, s["usd_api"])


def _run_journey(cfg, d: Path, log) -> Result:
    build_journey(cfg, log=log)
    return Result({"journey": str(d / "journey.jsonl"), "shortcut": str(d / "shortcut.jsonl")})


def _run_scale(cfg, d: Path, log) -> Result:
    run_scale(cfg, log=log)
    return Result({"scale": str(d / "scale.json")}, 0.0, 0.0)  # inference: reported per problem, not as training


def _run_convert(cfg, d: Path, log) -> Result:
    return Result({"model": str(convert_gguf(cfg.path(), cfg.out, cfg.dtype, log=log, tie=cfg.resolved_tie()))})


def _run_rm(cfg, d: Path, log) -> Result:
    summary = train_rm(cfg, log=log)  # seconds: labelling rollouts and training; FLOPs: the training's
    return Result({"model": str(d / "final")}, summary["train_flops"], summary["seconds"],
                  devices=summary.get("processes", 1))


def _kinds() -> dict[str, Kind]:
    trained = lambda d: {"out": str(d), "resume": True}  # noqa: E731 (a killed stage resumes)
    return {
        "pretrain": Kind(PretrainConfig, _run_pretrain, trained),
        "grpo": Kind(GRPOConfig, _run_grpo, trained),
        "sft": Kind(SFTConfig, _run_sft, trained),
        "traces": Kind(TracesConfig, _run_traces,
                       lambda d: {"out": outputs("traces", d)["data"], "attempts": outputs("traces", d)["attempts"]}),
        "journey": Kind(JourneyConfig, _run_journey, lambda d: {"out": str(d)}),
        "scale": Kind(ScaleConfig, _run_scale, lambda d: {"out": str(d)}, version=2),
        "rm": Kind(RMConfig, _run_rm, trained),
        "convert": Kind(ConvertConfig, _run_convert, lambda d: {"out": str(d / "final")}),
    }


def outputs(kind_name: str, d: Path) -> dict[str, str]:
    """Where a stage of this kind leaves its products: fixed by its directory, so every stage's
    hash can be computed before anything runs."""
    files = {"traces": {"data": "traces.jsonl", "attempts": "attempts.jsonl"},
             "journey": {"journey": "journey.jsonl", "shortcut": "shortcut.jsonl"},
             "scale": {"scale": "scale.json"}}.get(kind_name, {"model": "final"})
    return {k: str(d / v) for k, v in files.items()}


def kind(name: str, where: str) -> Kind:
    kinds = _kinds()
    if name not in kinds:
        raise ReasonlabError(f"{where}.kind: {name!r} is not one of {', '.join(kinds)}")
    return kinds[name]


#: what a method is called in the results table, by the kinds on a model's lineage
def method_of(lineage_kinds: list[str]) -> str:
    """
    >>> method_of(["pretrain"]), method_of(["pretrain", "grpo"]), method_of(["traces", "sft"])
    ('base', 'grpo', 'sft')
    >>> method_of(["pretrain", "traces", "sft", "grpo", "traces", "sft", "grpo"])
    'sft+grpo'
    """
    trained = [k for k in lineage_kinds if k in ("sft", "grpo")]
    if not trained:
        return "base"
    return "+".join(dict.fromkeys(trained))

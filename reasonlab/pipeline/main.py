"""`reasonlab run` and `reasonlab report`: plan the recipe once (`plan.py`), run its jobs with
one scheduler (`run.py`), gather what the run shows (`results.py`), render it (`render.py`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from reasonlab.config import from_dict
from reasonlab.errors import ReasonlabError
from reasonlab.io import write_json_atomic
from reasonlab.pipeline.plan import StageState, plan
from reasonlab.pipeline.recipe import PipelineConfig
from reasonlab.pipeline.render import write_report
from reasonlab.pipeline.results import Results, gather
from reasonlab.pipeline.run import execute, process_rank
from reasonlab.pipeline.stages import Result


def run_pipeline(cfg: PipelineConfig, log=print) -> Results | None:
    """Run the recipe and write its report; the results (None on the processes other than the
    main one under `accelerate launch`, which train with it and leave the rest to it)."""
    the_plan = plan(cfg)
    if process_rank()[0] != 0:
        execute(the_plan, log)
        return None
    write_json_atomic(Path(cfg.out) / "pipeline.json", asdict(cfg))  # what `reasonlab report DIR` reads
    states = execute(the_plan, log)
    results = gather(cfg, states)
    write_report(results, Path(cfg.out))
    return results


def rebuild_report(run_dir: str, log=print) -> tuple[Results, list[str]]:
    """The report of a finished or partial run from what it left on disk: finished stages and
    finished evaluations only (nothing is trained or evaluated); the stages not finished."""
    path = Path(run_dir) / "pipeline.json"
    if not path.exists():
        raise ReasonlabError(f"{run_dir}: no pipeline.json (not a `reasonlab run` directory)")
    cfg = from_dict(PipelineConfig, json.loads(path.read_text()), str(path))
    cfg.out = str(run_dir)
    states, missing = {}, []
    for spec in cfg.stages:
        marker = Path(run_dir) / spec.name / "stage.json"
        m = json.loads(marker.read_text()) if marker.exists() else {}
        if not m.get("done"):
            missing.append(spec.name)
            continue
        states[spec.name] = StageState(spec, m["hash"], set(m.get("deps", [])), Result(**m["result"]))
    if missing:
        log(f"report: stages not finished: {', '.join(missing)}")
    results = gather(cfg, states)
    write_report(results, Path(run_dir))
    return results, missing

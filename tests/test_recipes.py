"""Every recipe under recipes/ loads into its config dataclass and validates."""

from pathlib import Path

import pytest
import yaml

from reasonlab.config import load_config
from reasonlab.rl.config import GRPOConfig

ALL = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
PIPELINES = [p for p in ALL if yaml.safe_load(p.read_text()).get("stages")]
RECIPES = [p for p in ALL if p not in PIPELINES]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_loads_and_validates(path):
    cfg = load_config(GRPOConfig, path)
    assert cfg.rows_per_step == cfg.prompts_per_step * cfg.generations_per_prompt


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
def test_pipeline_recipe_validates_every_stage(path, quick):
    from reasonlab.pipeline.run import check_stages, load_pipeline

    cfg = load_pipeline(str(path), quick=quick)
    check_stages(cfg)
    assert cfg.compare, "a pipeline recipe states the claims its report checks"


def test_the_four_issue_recipes_exist():
    assert {"r1.yaml", "r1-distill.yaml", "sky-t1.yaml", "journey.yaml"} <= {p.name for p in PIPELINES}


def test_bad_grpo_settings_are_one_line_errors(tmp_path):
    from reasonlab.errors import ReasonlabError

    with pytest.raises(ReasonlabError, match="loss_type: 'ppo'"):
        load_config(GRPOConfig, None, ["loss_type=ppo"])
    with pytest.raises(ReasonlabError, match="unknown reward 'speed'"):
        load_config(GRPOConfig, None, ["rewards.speed=1"])
    with pytest.raises(ReasonlabError, match="generations_per_prompt"):
        load_config(GRPOConfig, None, ["generations_per_prompt=1"])

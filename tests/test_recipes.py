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
    from reasonlab.pipeline.plan import plan
    from reasonlab.pipeline.recipe import load_pipeline

    cfg = load_pipeline(str(path), quick=quick)
    plan(cfg)
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


def test_gspo_and_cispo_recipes_set_their_defining_knobs():
    recipes = Path(__file__).resolve().parents[1] / "recipes"
    gspo = load_config(GRPOConfig, recipes / "gspo.yaml")
    assert gspo.importance_sampling_level == "sequence" and gspo.mu > 1 and gspo.eps_high < 1e-3
    cispo = load_config(GRPOConfig, recipes / "cispo.yaml")
    assert cispo.loss_type == "cispo" and cispo.cispo_max == 5.0 and cispo.mu > 1


@pytest.mark.parametrize("override, message", [
    ("baseline=ppo", "baseline: 'ppo'"),
    ("importance_sampling_level=word", "importance_sampling_level: 'word'"),
    ("importance_sampling_mode=clip", "importance_sampling_mode: 'clip'"),
    ("importance_sampling_correction=maybe", "importance_sampling_correction: 'maybe'"),
    ("top_entropy_quantile=0", "top_entropy_quantile"),
    ("delta=0.9", "delta"),
])
def test_bad_rl_variant_settings_are_one_line_errors(override, message):
    from reasonlab.errors import ReasonlabError

    with pytest.raises(ReasonlabError, match=message):
        load_config(GRPOConfig, None, [override])


def test_importance_sampling_correction_accepts_yaml_booleans():
    assert load_config(GRPOConfig, None, ["importance_sampling_correction=true"]).importance_sampling_correction == "on"

"""Every recipe under recipes/ loads into its config dataclass and validates."""

from pathlib import Path

import pytest

from reasonlab.config import load_config
from reasonlab.rl.config import GRPOConfig

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_loads_and_validates(path):
    cfg = load_config(GRPOConfig, path)
    assert cfg.rows_per_step == cfg.prompts_per_step * cfg.generations_per_prompt


def test_bad_grpo_settings_are_one_line_errors(tmp_path):
    from reasonlab.errors import ReasonlabError

    with pytest.raises(ReasonlabError, match="loss_type: 'ppo'"):
        load_config(GRPOConfig, None, ["loss_type=ppo"])
    with pytest.raises(ReasonlabError, match="unknown reward 'speed'"):
        load_config(GRPOConfig, None, ["rewards.speed=1"])
    with pytest.raises(ReasonlabError, match="generations_per_prompt"):
        load_config(GRPOConfig, None, ["generations_per_prompt=1"])

import pytest

from reasonlab.config import describe, load_config, parse_overrides
from reasonlab.errors import ReasonlabError
from reasonlab.evaluation import EvalConfig
from reasonlab.world.pretrain import PretrainConfig


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("steps: 10\nlr: 1.0e-3\nmix:\n  direct: 0.5\n")
    cfg = load_config(PretrainConfig, path, ["steps=20", "mix.drill=0"])
    assert cfg.steps == 20 and cfg.lr == 1e-3 and cfg.mix.direct == 0.5 and cfg.mix.drill == 0.0


def test_unknown_key_names_the_file_and_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("stepz: 10\n")
    with pytest.raises(ReasonlabError, match=r"r.yaml: unknown key 'stepz'"):
        load_config(PretrainConfig, path)
    with pytest.raises(ReasonlabError, match=r"config.mix: unknown key 'bogus'"):
        load_config(PretrainConfig, None, ["mix.bogus=1"])


def test_bad_values_are_one_line_errors(tmp_path):
    with pytest.raises(ReasonlabError, match=r"config.steps: expected int, got 'many'"):
        load_config(PretrainConfig, None, ["steps=many"])
    with pytest.raises(ReasonlabError, match="eval: --model is required"):
        load_config(EvalConfig, None, {})
    with pytest.raises(ReasonlabError, match="not key=value"):
        parse_overrides(["steps"])
    with pytest.raises(ReasonlabError, match="config file not found"):
        load_config(PretrainConfig, tmp_path / "missing.yaml")


def test_every_field_is_documented():
    for cls in (PretrainConfig, EvalConfig):
        for name, _default, help_text in describe(cls):
            assert help_text, f"{cls.__name__}.{name} has no help"

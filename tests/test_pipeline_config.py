"""Configuration of ``transferome run``: every error names the field, before any training."""

from __future__ import annotations

import copy

import pytest
import yaml

from transferome.pipeline import ConfigError, default_config, load_config, validate_config
from transferome.pipeline.template import config_template


def _config() -> dict:
    return {
        "seed": 1,
        "data": {"simulate": {"mode": "bulk", "n_genes": 50}},
        "models": {"control": {}, "xtransfer": {"max_epochs": 3, "lr": 2e-4, "hidden": [8]}},
        "tasks": ["transfer", "gene_mapping"],
    }


def test_valid_config_maps_onto_estimators():
    config = validate_config(_config())
    assert config.seed == 1
    assert config.data["simulate"] == {"mode": "bulk", "n_genes": 50, "seed": 1}
    assert config.tasks == {"transfer": {}, "gene_mapping": {}}
    params = config.model_params("xtransfer")
    assert params == {"max_epochs": 3, "lr": 2e-4, "hidden": (8,)}
    from transferome.models import get_model

    assert get_model("xtransfer")(**params).get_params()["hidden"] == (8,)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("models", "nosuchmodel"), {}, "models.nosuchmodel"),
        (("models", "xtransfer", "learning_rate"), 1e-3, "models.xtransfer.learning_rate"),
        (("models", "xtransfer", "lr"), "fast", "models.xtransfer.lr"),
        (("models", "xtransfer", "max_epochs"), 2.5, "models.xtransfer.max_epochs"),
        (("models", "xtransfer", "hidden"), 8, "models.xtransfer.hidden"),
        (("data", "simulate", "n_gene"), 10, "data.simulate.n_gene"),
        (("data", "context_key"), "", "data.context_key"),
        (("tasks",), ["transfer", "teleport"], "tasks.teleport"),
        (("tasks",), {"transfer": {"max_split": 2}}, "tasks.transfer.max_split"),
        (("seed",), -1, "seed"),
        (("seed",), True, "seed"),
        (("colour",), "blue", "colour"),
    ],
)
def test_invalid_field_is_named(path, value, field):
    raw = _config()
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ConfigError, match=rf"config field {field}\b"):
        validate_config(raw)


def test_missing_file_and_data_source_are_named(tmp_path):
    raw = _config()
    raw["data"] = {"path": "missing.h5ad"}
    with pytest.raises(ConfigError, match=r"data\.path: file .*missing\.h5ad.* does not exist"):
        validate_config(raw, base=tmp_path)
    raw["data"] = {"path": {"mouse": "m.h5ad"}}
    with pytest.raises(ConfigError, match=r"data\.path\.mouse"):
        validate_config(raw, base=tmp_path)
    raw["data"] = {"path": "x.h5ad", "simulate": {}}
    with pytest.raises(ConfigError, match="exactly one of 'simulate'"):
        validate_config(raw, base=tmp_path)
    (tmp_path / "x.h5ad").write_text("")
    raw["data"] = {"path": "x.h5ad", "orthologs": "none.csv"}
    with pytest.raises(ConfigError, match=r"data\.orthologs"):
        validate_config(raw, base=tmp_path)
    raw["data"] = {"path": "x.h5ad", "reader": {"genes": "rows"}}
    with pytest.raises(ConfigError, match=r"data\.reader\.genes"):
        validate_config(raw, base=tmp_path)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "data.h5ad").write_text("")
    file = tmp_path / "run.yaml"
    raw = _config()
    raw["data"] = {"path": "data.h5ad", "context_key": "organ"}
    file.write_text(yaml.safe_dump(raw))
    config = load_config(file)
    assert config.data["path"] == str(tmp_path / "data.h5ad")
    assert config.schema().context_key == "organ"


def test_load_config_rejects_bad_yaml(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(file)
    file.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(file)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("quick", [False, True])
def test_template_is_the_default_run_and_valid(quick):
    text = config_template("my.yaml", quick=quick)
    assert text.count("#") > 20
    raw = yaml.safe_load(text)
    assert raw == default_config(quick=quick)
    config = validate_config(copy.deepcopy(raw))
    from transferome.models import available_models

    assert set(config.models) == set(available_models())
    assert next(iter(config.tasks)) == "transfer"


def test_task_options_are_checked_against_the_models():
    raw = _config()
    raw["tasks"] = {"ablation": {"variants": {"bad": {"w_nothing": 0.0}}}}
    with pytest.raises(ConfigError, match=r"tasks\.ablation\.variants\.bad\.w_nothing"):
        validate_config(raw)
    raw["tasks"] = {"ablation": {"model": "fe"}}
    with pytest.raises(ConfigError, match=r"tasks\.ablation\.model"):
        validate_config(raw)
    raw["tasks"] = {"transfer": {"models": ["control", "linear"]}}
    with pytest.raises(ConfigError, match=r"tasks\.transfer\.models: \['linear'\]"):
        validate_config(raw)

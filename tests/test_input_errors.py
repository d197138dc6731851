"""Bad input refused with a one-line ``error:`` and exit status 2, never a traceback.

Inconsistent model folders, YAML tags in ``--param``, counts below 1 and huge simulations in
a configuration, and outputs that cannot or must not be written are all refused before any
work starts (or any memory is sized from a model's description).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from transferome.cli import main

TARGET = ["--target", "liver:drug_a"]
SIMULATION = {
    "n_genes": 60,
    "n_programs": 4,
    "contexts": ["liver", "kidney", "brain"],
    "drugs": ["tetracycline", "drug_a"],
    "animals_per_group": 2,
    "blood_days": [],
}


def _atlas() -> Any:
    from transferome.datasets import simulate

    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in SIMULATION.items()}
    return simulate(seed=0, **kwargs)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mouse data file and xtransfer, fe and uge model folders fitted on it (tiny)."""
    import torch

    from transferome.models.uge.estimator import UniversalGeneEmbedding

    root = tmp_path_factory.mktemp("inputs")
    atlas = _atlas()
    atlas.adatas["mouse"].write_h5ad(root / "data.h5ad")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for model in ("xtransfer", "fe"):
            args = ["fit", str(root / "data.h5ad"), "--model", model, "--preset", "fast"]
            assert main([*args, "--param", "max_epochs=1", "--out", str(root / model)]) == 0
        params = {**UniversalGeneEmbedding.fast_params, "max_epochs": 1}
        UniversalGeneEmbedding(**params).fit(dict(atlas.adatas)).save(root / "uge")
    finally:
        torch.set_num_threads(threads)
    return root


def _copy_model(folder: Path, model: str, tmp_path: Path) -> Path:
    copy = tmp_path / f"{model}_model"
    shutil.copytree(folder / model, copy)
    return copy


def _edit_json(model: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit ``model.json`` as in a folder of an earlier release, whose weights keep no
    checksums (with them, any edit is refused before these checks; see the last test)."""
    from safetensors.numpy import load_file, save_file

    meta = json.loads((model / "model.json").read_text())
    change(meta)
    (model / "model.json").write_text(json.dumps(meta))
    weights = model / "weights.safetensors"
    save_file(load_file(str(weights)), str(weights))


def _network(model: Path) -> str:
    return "module_config" if "xtransfer" in model.name else "config"


def _set_both(name: str, value: Any) -> Callable[[Path], None]:
    """Change a size alike in the hyperparameters and the network description."""

    def change(model: Path) -> None:
        def edit(meta: dict[str, Any]) -> None:
            meta["params"][name] = value
            meta["extra"][_network(model)][name] = value

        _edit_json(model, edit)

    return change


def _set_network(name: str, value: Any) -> Callable[[Path], None]:
    def change(model: Path) -> None:
        _edit_json(model, lambda meta: meta["extra"][_network(model)].__setitem__(name, value))

    return change


def _set_params(name: str, value: Any) -> Callable[[Path], None]:
    def change(model: Path) -> None:
        _edit_json(model, lambda meta: meta["params"].__setitem__(name, value))

    return change


def _drop_last(*keys: str) -> Callable[[Path], None]:
    def change(model: Path) -> None:
        def edit(meta: dict[str, Any]) -> None:
            target = meta
            for key in keys:
                target = target[key]
            target.pop()

        _edit_json(model, edit)

    return change


def _delete_tensor(name: str) -> Callable[[Path], None]:
    def change(model: Path) -> None:
        from safetensors.numpy import load_file, save_file

        arrays = load_file(str(model / "weights.safetensors"))
        del arrays[name]
        save_file(arrays, str(model / "weights.safetensors"))

    return change


def _assert_one_line_error(err: str, *names: str) -> None:
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, (name, err)


def _predict(model: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["predict", str(model), str(data), *TARGET, "--out", str(out), *extra])


# -- inconsistent model folders -------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "change"),
    [
        ("xtransfer", _set_both("hidden", [16])),
        ("xtransfer", _set_both("latent_dim", 4)),
        ("xtransfer", _set_network("n_genes", 61)),
        ("xtransfer", _set_network("hidden", "ab")),
        ("xtransfer", _set_params("hidden", [16])),
        ("xtransfer", _drop_last("var_names")),
        ("xtransfer", _drop_last("extra", "perturbations")),
        ("xtransfer", _delete_tensor("perturbation_latents")),
        ("xtransfer", _delete_tensor("module.decoder.4.bias")),
        ("fe", _set_both("hidden", [16, 12])),
        ("fe", _set_network("n_samples", 17)),
        ("fe", _drop_last("extra", "obs_names")),
        ("fe", _drop_last("extra", "factor_levels", "context")),
        ("fe", _delete_tensor("module.last.bias")),
    ],
    ids=[
        "xtransfer-hidden",
        "xtransfer-latent_dim",
        "xtransfer-n_genes",
        "xtransfer-hidden-not-a-list",
        "xtransfer-params-disagree",
        "xtransfer-gene-list",
        "xtransfer-perturbation-list",
        "xtransfer-no-latents",
        "xtransfer-no-decoder-bias",
        "fe-hidden",
        "fe-n_samples",
        "fe-sample-list",
        "fe-factor-levels",
        "fe-no-last-bias",
    ],
)
def test_inconsistent_model_folder_is_a_named_error(
    folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    model: str,
    change: Callable[[Path], None],
) -> None:
    copy = _copy_model(folder, model, tmp_path)
    change(copy)
    out = tmp_path / "pred.h5ad"
    assert _predict(copy, folder / "data.h5ad", out) == 2
    err = capsys.readouterr().err
    _assert_one_line_error(err, str(copy))
    assert "model.json" in err or "weights.safetensors" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("model", "name", "value"),
    [
        ("xtransfer", "hidden", [1_000_000]),
        ("xtransfer", "hidden", [10**13]),
        ("fe", "hidden", [10**13, 12]),
        ("uge", "d_ff", 10**13),
    ],
    ids=["xtransfer-million", "xtransfer-huge", "fe-huge", "uge-huge"],
)
def test_model_json_sizes_are_checked_against_the_weights_before_building(  # noqa: PLR0917 - pytest passes fixtures and parameters by name
    folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    model: str,
    name: str,
    value: Any,
) -> None:
    # A network of 10**13 units cannot be allocated at all: the check must come first.
    copy = _copy_model(folder, model, tmp_path)
    _set_both(name, value)(copy)
    started = time.perf_counter()
    assert _predict(copy, folder / "data.h5ad", tmp_path / "pred.h5ad") == 2
    assert time.perf_counter() - started < 10
    err = capsys.readouterr().err
    _assert_one_line_error(err, str(copy), "does not match weights.safetensors", "stored")


# -- YAML tags in --param -------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "!!python/object:os.system",
        "!!python/name:os.system",
        '!!python/object/apply:os.system ["touch {marker}"]',
    ],
    ids=["object", "name", "apply"],
)
def test_param_with_a_yaml_tag_is_refused_naming_it(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    marker = tmp_path / "executed"
    out = tmp_path / "model"
    param = "hidden=" + value.format(marker=marker)
    args = ["fit", str(folder / "data.h5ad"), "--model", "xtransfer", "--param", param]
    assert main([*args, "--out", str(out)]) == 2
    _assert_one_line_error(capsys.readouterr().err, "--param hidden")
    assert not marker.exists()
    assert not out.exists()


# -- values of a configuration ----------------------------------------------------------------
def _write_config(tmp_path: Path, models: dict[str, Any], tasks: dict[str, Any]) -> Path:
    import yaml

    config = {"data": {"simulate": dict(SIMULATION)}, "models": models, "tasks": tasks}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("models", "tasks", "field"),
    [
        ({"xtransfer": {"hidden": [[32]]}}, {"transfer": {}}, "models.xtransfer.hidden"),
        ({"xtransfer": {"hidden": ["a", "b"]}}, {"transfer": {}}, "models.xtransfer.hidden"),
        ({"xtransfer": {"hidden": [32, 0]}}, {"transfer": {}}, "models.xtransfer.hidden"),
        ({"xtransfer": {"max_epochs": -3}}, {"transfer": {}}, "models.xtransfer.max_epochs"),
        ({"fe": {"gene_block": 0}}, {"transfer": {}}, "models.fe.gene_block"),
        ({"additive": {}}, {"transfer": {"max_splits": -1}}, "tasks.transfer.max_splits"),
    ],
    ids=["nested-list", "strings", "zero-width", "negative-epochs", "zero-block", "max_splits"],
)
def test_config_check_refuses_bad_counts_naming_the_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    models: dict[str, Any],
    tasks: dict[str, Any],
    field: str,
) -> None:
    config = _write_config(tmp_path, models, tasks)
    assert main(["run", "--config", str(config), "--check"]) == 2
    _assert_one_line_error(capsys.readouterr().err, field)


@pytest.mark.parametrize("value", ["[[32]]", "[a, b]"], ids=["nested-list", "strings"])
def test_param_with_a_bad_list_is_refused(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    out = tmp_path / "model"
    args = ["fit", str(folder / "data.h5ad"), "--model", "xtransfer", "--preset", "fast"]
    assert main([*args, "--param", f"hidden={value}", "--out", str(out)]) == 2
    _assert_one_line_error(capsys.readouterr().err, "hidden")
    assert not out.exists()


def test_huge_simulation_is_refused_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    config = tmp_path / "config.yaml"
    simulation = {**SIMULATION, "n_genes": 10_000_000_000}
    raw = {"data": {"simulate": simulation}, "models": {"additive": {}}, "tasks": ["transfer"]}
    config.write_text(yaml.safe_dump(raw))
    started = time.perf_counter()
    assert main(["run", "--config", str(config), "--check"]) == 2
    assert time.perf_counter() - started < 10
    _assert_one_line_error(capsys.readouterr().err, "data.simulate.n_genes")


def test_simulation_too_large_in_total_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    config = tmp_path / "config.yaml"
    simulation = {**SIMULATION, "n_genes": 100_000, "animals_per_group": 100_000}
    raw = {"data": {"simulate": simulation}, "models": {"additive": {}}, "tasks": ["transfer"]}
    config.write_text(yaml.safe_dump(raw))
    assert main(["run", "--config", str(config), "--check"]) == 2
    _assert_one_line_error(capsys.readouterr().err, "data.simulate", "values")


# -- outputs that cannot or must not be written -----------------------------------------------
@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a command starts its work (reads its data, loads its model, runs)."""
    import transferome.cli._common as common
    import transferome.pipeline as pipeline
    import transferome.pipeline.steps as steps

    def started(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the command started its work before refusing its output")

    monkeypatch.setattr(common, "read_input", started)
    monkeypatch.setattr(steps, "load_model", started)
    monkeypatch.setattr(pipeline, "run_pipeline", started)


def _commands(base: Path, out: str, model: Path | None = None) -> dict[str, list[str]]:
    data = str(base / "data.h5ad")
    config = str(base / "config.yaml")
    model_dir = str(model or base / "model")
    return {
        "fit": ["fit", data, "--model", "additive", "--out", out],
        "predict": ["predict", model_dir, data, *TARGET, "--out", out],
        "run": ["run", "--config", config, "--out", out],
    }


def _inputs_in(base: Path, folder: Path) -> None:
    """The data file and a configuration reading it in ``base``."""
    shutil.copy(folder / "data.h5ad", base / "data.h5ad")
    (base / "config.yaml").write_text(
        "data:\n  path: data.h5ad\nmodels:\n  additive: {}\ntasks: [transfer]\n"
    )


def _like_results(base: Path) -> None:
    """The files of a finished run (what ``--overwrite`` of ``run`` agrees to replace)."""
    (base / "versions.json").write_text("{}\n")
    if not (base / "config.yaml").exists():
        (base / "config.yaml").write_text("seed: 0\n")


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_out_under_a_file_is_refused_before_any_work(
    folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_work: None,
    command: str,
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder\n")
    out = blocker / ("pred.h5ad" if command == "predict" else "model")
    args = _commands(folder, str(out), folder / "xtransfer")[command]
    assert main(args) == 2
    _assert_one_line_error(capsys.readouterr().err, str(blocker), "not a folder")


@pytest.mark.parametrize("command", ["fit", "predict", "run"])
def test_unwritable_out_is_refused_before_any_work(
    folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_work: None,
    command: str,
) -> None:
    _inputs_in(tmp_path, folder)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        probe = locked / "probe"
        try:
            probe.write_text("")
        except PermissionError:
            pass
        else:
            probe.unlink()
            if os.geteuid() == 0:
                pytest.skip("running as root: folder permissions are not enforced")
            pytest.fail("a folder of mode 0500 is writable")
        out = locked / ("pred.h5ad" if command == "predict" else "results")
        assert main(_commands(tmp_path, str(out), folder / "xtransfer")[command]) == 2
        _assert_one_line_error(capsys.readouterr().err, str(locked), "not writable")
        assert not out.exists()
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("command", ["fit", "predict", "run"])
def test_working_folder_as_out_is_refused_before_any_work(  # noqa: PLR0917 - pytest passes fixtures and parameters by name
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_work: None,
    command: str,
) -> None:
    _inputs_in(tmp_path, folder)
    _like_results(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    args = _commands(tmp_path, ".", folder / "xtransfer")[command]
    assert main([*args, "--overwrite"]) == 2
    _assert_one_line_error(capsys.readouterr().err, "--out .")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("command", ["fit", "run"])
def test_out_holding_the_inputs_is_refused_before_any_work(
    folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_work: None,
    command: str,
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    _inputs_in(results, folder)
    _like_results(results)
    before = sorted(p.name for p in results.iterdir())
    args = _commands(results, str(results))[command]
    assert main([*args, "--overwrite"]) == 2
    _assert_one_line_error(capsys.readouterr().err, "holds the input")
    assert sorted(p.name for p in results.iterdir()) == before


def test_any_change_to_a_saved_model_is_refused_by_its_checksums(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy_model(folder, "xtransfer", tmp_path)
    meta = json.loads((copy / "model.json").read_text())
    meta["params"]["dropout"] = 0.5  # a value no shape check can see
    (copy / "model.json").write_text(json.dumps(meta))
    assert _predict(copy, folder / "data.h5ad", tmp_path / "pred.h5ad") == 2
    _assert_one_line_error(capsys.readouterr().err, "model.json was changed after")
    copy = _copy_model(folder, "fe", tmp_path / "second")
    weights = copy / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01  # one bit of one stored value
    weights.write_bytes(bytes(data))
    assert _predict(copy, folder / "data.h5ad", tmp_path / "pred2.h5ad") == 2
    _assert_one_line_error(capsys.readouterr().err, "no longer match their checksum")

"""Checkpoints of the training engine: files, resumption, corrupt and mismatched folders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from tests.test_training import AutoEncoder, make_adata, small_config, weights
from transferome.errors import ModelFileError
from transferome.training import AnnDataRows, fit_module, read_checkpoint


@pytest.fixture
def data() -> tuple[AnnDataRows, AnnDataRows]:
    adata = make_adata(n_obs=80)
    return AnnDataRows(adata[:60]), AnnDataRows(adata[60:])


def config_for(epochs: int):
    # Dropout, a step schedule and Adam's moments all have to survive the interruption.
    return small_config(max_epochs=epochs, lr_step_size=2, weight_decay=1e-3)


def test_checkpoint_folders_hold_safetensors_and_json(tmp_path, data) -> None:
    train, val = data
    module = AutoEncoder(dropout=0.2)
    result = fit_module(module, train, val, config=config_for(3), checkpoint_dir=tmp_path)
    for name in ("best", "last"):
        folder = tmp_path / name
        assert sorted(p.name for p in folder.iterdir()) == [
            "config.json",
            "history.json",
            "weights.safetensors",
        ]
        tensors = load_file(folder / "weights.safetensors")  # readable without pickle
        assert any(k.startswith("optimizer.state.") for k in tensors)
        meta = json.loads((folder / "config.json").read_text())
        assert meta["training_config"]["max_epochs"] == 3
        assert meta["module_class"] == "AutoEncoder"
    last = read_checkpoint(tmp_path / "last")
    assert last.progress["epoch"] == 2
    pd.testing.assert_frame_equal(
        last.history.drop(columns="seconds"), result.history.drop(columns="seconds")
    )
    best = read_checkpoint(tmp_path / "best")
    assert best.progress["epoch"] == result.best_epoch
    for key, value in weights(module).items():  # the module holds the best weights
        assert torch.equal(best.module_state[key], value)


@pytest.mark.parametrize("with_validation", [True, False])
def test_resume_gives_the_uninterrupted_result(tmp_path, data, *, with_validation: bool) -> None:
    train, val = data
    val = val if with_validation else None
    straight = AutoEncoder(dropout=0.2)
    full = fit_module(straight, train, val, config=config_for(6), checkpoint_dir=tmp_path / "a")

    interrupted = AutoEncoder(dropout=0.2)
    fit_module(interrupted, train, val, config=config_for(3), checkpoint_dir=tmp_path / "b")
    resumed_module = AutoEncoder(dropout=0.2, seed=99)  # fresh weights, overwritten by the resume
    resumed = fit_module(
        resumed_module,
        train,
        val,
        config=config_for(6),
        checkpoint_dir=tmp_path / "b",
        resume_from=tmp_path / "b",
    )
    pd.testing.assert_frame_equal(
        resumed.history.drop(columns="seconds"), full.history.drop(columns="seconds")
    )
    assert resumed.best_epoch == full.best_epoch
    for key, value in weights(straight).items():
        assert torch.equal(weights(resumed_module)[key], value), key
    last = read_checkpoint(tmp_path / "b" / "last")
    assert last.progress["epoch"] == 5


def test_resume_of_a_finished_run_trains_nothing(tmp_path, data) -> None:
    train, val = data
    module = AutoEncoder()
    first = fit_module(module, train, val, config=config_for(2), checkpoint_dir=tmp_path)
    again = AutoEncoder(seed=5)
    second = fit_module(again, train, val, config=config_for(2), resume_from=tmp_path / "last")
    assert len(second.history) == 2
    assert second.best_epoch == first.best_epoch
    for key, value in weights(module).items():
        assert torch.equal(weights(again)[key], value)


def test_corrupt_and_mismatched_checkpoints_are_clear_errors(tmp_path, data) -> None:
    train, val = data
    fit_module(AutoEncoder(), train, val, config=config_for(2), checkpoint_dir=tmp_path)
    last = tmp_path / "last"

    with pytest.raises(ModelFileError, match=r"different shapes.*encoder\.weight"):
        fit_module(AutoEncoder(hidden=4), train, val, config=config_for(3), resume_from=last)

    class Other(AutoEncoder):
        pass

    with pytest.raises(ModelFileError, match="checkpoint of AutoEncoder"):
        fit_module(Other(), train, val, config=config_for(3), resume_from=last)
    with pytest.raises(ModelFileError, match="no checkpoint folder"):
        fit_module(AutoEncoder(), train, config=config_for(3), resume_from=tmp_path / "nope")

    weights_file = last / "weights.safetensors"
    original = weights_file.read_bytes()
    weights_file.write_bytes(original[: len(original) // 2])
    with pytest.raises(ModelFileError, match="corrupt weights"):
        read_checkpoint(last)
    weights_file.write_bytes(original)

    config_file = last / "config.json"
    text = config_file.read_text()
    config_file.write_text(text[:-10])
    with pytest.raises(ModelFileError, match="corrupt checkpoint metadata"):
        read_checkpoint(last)
    meta = json.loads(text)
    meta["progress"]["epoch"] = 7  # as if the weights of another epoch were left behind
    config_file.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="only partly written"):
        read_checkpoint(last)
    config_file.unlink()
    with pytest.raises(ModelFileError, match=r"config\.json is missing"):
        read_checkpoint(last)


def test_checkpoint_state_round_trips_exactly(tmp_path) -> None:
    from transferome.training import write_checkpoint

    module = AutoEncoder()
    optimizer = torch.optim.Adam(module.parameters(), lr=0.1, betas=(0.8, 0.9))
    module.loss({"x": torch.ones(4, 12)})["loss"].backward()
    optimizer.step()
    history = pd.DataFrame({"epoch": [0], "train_loss": [1.5], "val_loss": [np.nan]})
    write_checkpoint(
        tmp_path,
        module=module,
        optimizer=optimizer,
        scheduler=None,
        training_config={"lr": 0.1},
        progress={"epoch": 0, "best_val_loss": float("inf")},
        history=history,
    )
    back = read_checkpoint(tmp_path)
    state = optimizer.state_dict()
    assert back.optimizer_state["param_groups"][0]["betas"] == (0.8, 0.9)
    assert set(back.optimizer_state["state"]) == set(state["state"])  # integer keys kept
    for pid, entry in state["state"].items():
        for name, value in entry.items():
            assert torch.equal(back.optimizer_state["state"][pid][name], value)
    assert back.progress["best_val_loss"] == float("inf")
    assert np.isnan(back.history["val_loss"].iloc[0])
    restored = torch.optim.Adam(AutoEncoder().parameters(), lr=0.5)
    restored.load_state_dict(back.optimizer_state)
    assert restored.param_groups[0]["lr"] == 0.1


def test_resuming_with_other_settings_is_logged(tmp_path, data, caplog) -> None:
    train, _ = data
    fit_module(AutoEncoder(), train, config=config_for(1), checkpoint_dir=tmp_path)
    with caplog.at_level("WARNING", logger="transferome"):
        changed = config_for(2).replace(lr=0.5)
        fit_module(AutoEncoder(), train, config=changed, resume_from=tmp_path)
    assert "lr: 0.01 -> 0.5" in caplog.text
    assert "max_epochs" not in caplog.text  # extending a run is what resuming is for

"""Every neural estimator exposes the same training arguments and can resume a run."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import numpy as np
import pytest
import torch

from tests.conftest import make_counts_adata
from transferome.models import available_models, get_model
from transferome.models._neural import TRAINING_ARGUMENTS, NeuralEstimator
from transferome.training import TrainingConfig
from transferome.training.config import TrainingConfigError

COMMON = {
    "max_epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "early_stopping",
    "accelerator",
    "devices",
    "strategy",
    "precision",
    "random_state",
    "progress",
}
NEURAL = [name for name in available_models() if issubclass(get_model(name), NeuralEstimator)]


def test_neural_models_are_found() -> None:
    assert {"fe", "xtransfer", "uge"} <= set(NEURAL)
    # every model that trains takes the training arguments through the base
    for name in available_models():
        has_epochs = "max_epochs" in inspect.signature(get_model(name).__init__).parameters
        assert has_epochs == (name in NEURAL), name


def test_the_base_declares_every_field_of_training_config() -> None:
    declared = {
        name
        for name in typing.get_type_hints(NeuralEstimator)
        if not name.endswith("_") and name not in ("name", "fast_params", "training_defaults")
    }
    assert declared == set(TRAINING_ARGUMENTS)
    assert tuple(f.name for f in dataclasses.fields(TrainingConfig)) == TRAINING_ARGUMENTS


@pytest.mark.parametrize("name", NEURAL)
def test_training_arguments_reach_the_training_config(name: str) -> None:
    cls = get_model(name)
    defaults = cls()
    assert defaults.training_config() == TrainingConfig(
        **{k: cls.training_default(k) for k in TRAINING_ARGUMENTS}
    )
    given = cls(max_epochs=3, gradient_clip=0.5, lr_step_size=2, num_nodes=1)
    config = given.training_config()
    assert (config.max_epochs, config.gradient_clip, config.lr_step_size) == (3, 0.5, 2)
    assert given.get_params()["gradient_clip"] == 0.5
    assert "gradient_clip=0.5" in repr(given)
    assert "weight_decay" not in repr(given)  # defaults are left out
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_epoch'"):
        cls(max_epoch=3)
    with pytest.raises(TrainingConfigError, match="max_epochs"):
        cls(max_epochs=-1).training_config()


@pytest.mark.parametrize("name", NEURAL)
def test_common_training_arguments(name: str) -> None:
    cls = get_model(name)
    params = set(inspect.signature(cls.__init__).parameters)
    assert params >= COMMON, f"{name} lacks {sorted(COMMON - params)}"
    fit_params = set(inspect.signature(cls.fit).parameters)
    assert {"checkpoint_dir", "resume_from"} <= fit_params


@pytest.mark.parametrize("name", NEURAL)
def test_resumed_fit_equals_uninterrupted_fit(name: str, tmp_path) -> None:
    adata = make_counts_adata(n_per_group=4, n_genes=12, seed=3)
    adata.X = np.log1p(adata.X)
    cls = get_model(name)
    params = {**cls.fast_params, "max_epochs": 4, "random_state": 5}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        straight = cls(**params).fit(adata)
        cls(**{**params, "max_epochs": 2}).fit(adata, checkpoint_dir=tmp_path / "ckpt")
        resumed = cls(**params).fit(adata, resume_from=tmp_path / "ckpt" / "last")
    finally:
        torch.set_num_threads(threads)
    targets = [("liver", "drug_a")]
    np.testing.assert_allclose(
        straight.predict(adata, targets).X, resumed.predict(adata, targets).X, rtol=1e-5, atol=1e-6
    )


def test_seeded_uses_the_seed_and_restores_the_callers_random_state() -> None:
    model = get_model("fe")(random_state=3)
    torch.manual_seed(0)
    with model.seeded():
        inside = torch.rand(3)
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))  # the caller's stream did not move
    torch.manual_seed(3)
    assert torch.equal(inside, torch.rand(3))
    with model.seeded(7):
        other = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(other, torch.rand(3))


def test_a_neural_model_must_say_how_it_writes_and_reads_its_files() -> None:
    class Unfinished(NeuralEstimator):
        def __init__(self, *, width: int = 2, **training: object) -> None:
            super().__init__(**training)
            self.width = width

    with pytest.raises(TypeError, match="abstract"):
        Unfinished()
    assert "max_epochs" in Unfinished.param_names()

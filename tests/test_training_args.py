"""Every neural estimator exposes the same training arguments and can resume a run."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from tests.conftest import make_counts_adata
from transferome.models import available_models, get_model

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
NEURAL = [
    name
    for name in available_models()
    if "max_epochs" in inspect.signature(get_model(name).__init__).parameters
]


def test_neural_models_are_found() -> None:
    assert {"fe", "xtransfer", "uge"} <= set(NEURAL)


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

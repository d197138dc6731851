"""One contract test for every registered model (baselines now, neural models as they land)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from anndata import AnnData

from tests.conftest import make_counts_adata
from transferome.data.schema import Schema
from transferome.errors import DataValidationError, ModelFileError
from transferome.models import available_models, get_model

SCHEMA = Schema()
TARGET = ("heart", "drug_a")


def _easy_task() -> tuple[AnnData, AnnData, np.ndarray]:
    """Log data where drug_a triples the first 5 genes in every context; heart/drug_a held out."""
    adata = make_counts_adata(n_per_group=8, n_genes=24, seed=4)
    boost = (adata.obs["perturbation"] == "drug_a").to_numpy()
    adata.X[np.ix_(boost, np.arange(5))] *= 3.0
    adata.X = np.log1p(adata.X)
    target = (adata.obs["context"] == TARGET[0]) & (adata.obs["perturbation"] == TARGET[1])
    train = adata[~target.to_numpy()].copy()
    truth = np.asarray(adata[target.to_numpy()].X).mean(axis=0)
    return adata, train, truth


def _error(model, train: AnnData, truth: np.ndarray) -> float:
    pred = model.predict(train, [TARGET])
    return float(np.mean((np.asarray(pred.X).mean(axis=0) - truth) ** 2))


@pytest.mark.parametrize("name", available_models())
def test_model_contract(name: str, tmp_path) -> None:
    cls = get_model(name)
    _, train, truth = _easy_task()
    before = train.copy()

    model = cls(**cls.fast_params)
    assert not model.is_fitted
    assert set(vars(model)) <= set(model.get_params())  # __init__ stores params only
    assert all(not k.endswith("_") for k in vars(model))
    assert model.fit(train, schema=SCHEMA) is model
    assert any(k.endswith("_") and not k.startswith("_") for k in vars(model))

    pred = model.predict(train, [TARGET, ("kidney", "drug_b")])
    assert list(pred.var_names) == list(train.var_names)
    for key in (SCHEMA.context_key, SCHEMA.perturbation_key):
        assert key in pred.obs.columns
    assert {tuple(r) for r in pred.obs[["context", "perturbation"]].to_numpy()} == {
        TARGET,
        ("kidney", "drug_b"),
    }
    assert np.isfinite(np.asarray(pred.X)).all()

    # the user's AnnData is unchanged
    np.testing.assert_array_equal(np.asarray(train.X), np.asarray(before.X))
    assert train.obs.equals(before.obs)
    assert train.var_names.equals(before.var_names)

    # save / load round trip gives identical predictions
    folder = model.save(tmp_path / "model")
    loaded = cls.load(folder)
    again = loaded.predict(train, [TARGET, ("kidney", "drug_b")])
    np.testing.assert_array_equal(np.asarray(again.X), np.asarray(pred.X))

    # a corrupt weights file is a ModelFileError
    (tmp_path / "model" / "weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError):
        cls.load(folder)

    # genes that do not match the model's are a DataValidationError
    with pytest.raises(DataValidationError):
        model.predict(train[:, 1:].copy(), [TARGET])

    # beats (or ties, for the control baseline) the control baseline on the planted effect
    control = get_model("control")().fit(train, schema=SCHEMA)
    baseline = _error(control, train, truth)
    if name == "control":
        assert _error(model, train, truth) == pytest.approx(baseline)
    else:
        assert _error(model, train, truth) < baseline


def test_every_model_takes_keyword_hyperparameters() -> None:
    for name in available_models():
        cls = get_model(name)
        params = inspect.signature(cls.__init__).parameters.values()
        kinds = {p.kind for p in params if p.name != "self"}
        assert kinds <= {inspect.Parameter.KEYWORD_ONLY}, name
        assert set(cls.fast_params) <= {p.name for p in params}, name


def test_set_params_and_clone() -> None:
    from transferome.errors import TransferomeError

    for name in available_models():
        cls = get_model(name)
        model = cls(**cls.fast_params)
        for param in model.param_names()[:1]:  # control and additive take none
            assert model.set_params(**{param: getattr(model, param)}) is model
        twin = model.clone()
        assert type(twin) is cls
        assert twin is not model
        assert twin.get_params() == model.get_params()
        assert not twin.is_fitted
        with pytest.raises(TransferomeError, match="no hyperparameter 'nope'"):
            model.set_params(nope=1)

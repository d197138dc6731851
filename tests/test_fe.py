"""FactorizedEmbedding: contract, save/load, imputation, new samples, arithmetic, transfer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from transferome.errors import DataValidationError, ModelFileError
from transferome.models import get_model
from transferome.models.fe.estimator import FactorizedEmbedding

PARAMS = {**FactorizedEmbedding.fast_params, "max_epochs": 12, "batch_size": 6, "gene_block": 6}


def _additive_adata(seed: int = 0, n_per_group: int = 6, n_genes: int = 24) -> AnnData:
    """Context and perturbation effects that add up, plus a per-sample low-rank part."""
    rng = np.random.default_rng(seed)
    contexts, perturbations = ("liver", "kidney", "heart"), ("control", "drug_a", "drug_b")
    base = rng.uniform(1.0, 3.0, n_genes)
    ctx = {c: rng.normal(0, 0.8, n_genes) for c in contexts}
    pert = {p: (0 if p == "control" else rng.normal(0, 1.0, n_genes)) for p in perturbations}
    loadings = rng.normal(0, 0.3, (2, n_genes))
    rows, values = [], []
    for c in contexts:
        for p in perturbations:
            for i in range(n_per_group):
                rows.append((f"{c}-{p}-{i}", c, p))
                values.append(base + ctx[c] + pert[p] + rng.normal(size=2) @ loadings)
    obs = pd.DataFrame(rows, columns=["name", "context", "perturbation"]).set_index("name")
    obs.index.name = None
    x = np.asarray(values, dtype=np.float32) + rng.normal(0, 0.05, (len(rows), n_genes))
    return AnnData(
        X=x.astype(np.float32), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    )


@pytest.fixture(scope="module")
def data() -> AnnData:
    return _additive_adata()


@pytest.fixture(scope="module")
def fitted(data: AnnData) -> FactorizedEmbedding:
    return FactorizedEmbedding(**PARAMS).fit(data)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a) - np.asarray(b)) ** 2))


def test_registry_and_params() -> None:
    assert get_model("fe") is FactorizedEmbedding
    model = FactorizedEmbedding(embedding_dim=7)
    assert model.get_params()["embedding_dim"] == 7
    assert not model.is_fitted
    assert "embedding_dim=7" in repr(model)


def test_fit_reconstructs_and_leaves_input_alone(
    data: AnnData, fitted: FactorizedEmbedding
) -> None:
    before = data.copy()
    recon = fitted.predict(data)
    assert recon is not data
    assert recon.shape == data.shape
    assert list(recon.obs_names) == list(data.obs_names)
    gene_means = np.broadcast_to(data.X.mean(axis=0), data.shape)
    assert _mse(recon.X, data.X) < 0.25 * _mse(gene_means, data.X)
    np.testing.assert_array_equal(data.X, before.X)
    assert data.obs.equals(before.obs)
    history = fitted.history_
    assert len(history) == PARAMS["max_epochs"]
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]
    assert fitted.sample_embeddings_.shape == (data.n_obs, PARAMS["embedding_dim"])
    assert fitted.gene_embeddings_.shape == (data.n_vars, PARAMS["embedding_dim"])
    assert list(fitted.factor_embeddings("context").index) == ["heart", "kidney", "liver"]


def test_same_seed_same_model(data: AnnData) -> None:
    params = {**PARAMS, "max_epochs": 2}
    a = FactorizedEmbedding(**params).fit(data).predict(data).X
    b = FactorizedEmbedding(**params).fit(data).predict(data).X
    np.testing.assert_array_equal(a, b)


def test_pca_start_fits_faster_than_a_random_start(data: AnnData) -> None:
    params = {**PARAMS, "max_epochs": 5}
    errors = {}
    for init in ("pca", "random"):
        model = FactorizedEmbedding(**params, init=init).fit(data, factors=())
        errors[init] = _mse(model.predict(data).X, data.X)
    assert errors["pca"] < 0.5 * errors["random"]
    with pytest.raises(DataValidationError, match="init='svd'"):
        FactorizedEmbedding(**params, init="svd").fit(data)


def test_save_load_round_trip(tmp_path, data: AnnData, fitted: FactorizedEmbedding) -> None:
    folder = fitted.save(tmp_path / "fe")
    assert (folder / "weights.safetensors").is_file()
    loaded = FactorizedEmbedding.load(folder)
    assert loaded.get_params() == fitted.get_params()
    pd.testing.assert_frame_equal(loaded.history_, fitted.history_, check_dtype=False)
    np.testing.assert_array_equal(loaded.predict(data).X, fitted.predict(data).X)
    targets = [("liver", "drug_a"), ("heart", "drug_b")]
    np.testing.assert_array_equal(loaded.predict(data, targets).X, fitted.predict(data, targets).X)
    (folder / "model.json").write_text("{}")
    with pytest.raises(ModelFileError):
        FactorizedEmbedding.load(folder)


def test_imputation_of_masked_entries(data: AnnData) -> None:
    rng = np.random.default_rng(7)
    observed = rng.random(data.shape) > 0.25
    model = FactorizedEmbedding(**PARAMS).fit(data, mask=observed)
    holey = data.copy()
    holey.X = np.where(observed, data.X, np.nan).astype(np.float32)
    filled = model.impute(holey)  # NaN entries are the missing ones by default
    assert np.isfinite(filled.X).all()
    np.testing.assert_array_equal(filled.X[observed], data.X[observed])
    assert np.isnan(holey.X).sum() == (~observed).sum()  # the input keeps its holes
    col_means = np.nanmean(holey.X, axis=0)
    baseline = np.broadcast_to(col_means, data.shape)[~observed]
    assert _mse(filled.X[~observed], data.X[~observed]) < 0.5 * _mse(baseline, data.X[~observed])


def test_transform_embeds_unseen_samples(data: AnnData) -> None:
    new = data.obs_names.str.endswith("-5")
    model = FactorizedEmbedding(**PARAMS).fit(data[~new].copy())
    unseen = data[new].copy()
    unseen.obs_names = [f"new{i}" for i in range(unseen.n_obs)]
    z = model.transform(unseen)
    assert z.shape == (unseen.n_obs, PARAMS["embedding_dim"])
    recon = model.predict(unseen).X
    # Starting point of the optimisation: every new sample at the mean training embedding.
    codes = model._codes(
        {k: unseen.obs[k].astype(str).to_numpy() for k in ("context", "perturbation")}, unseen.n_obs
    )
    start = np.repeat(model.sample_embeddings_.to_numpy().mean(0, keepdims=True), unseen.n_obs, 0)
    mean_start = model._predict_rows(start, model._factor_vectors(codes))
    assert _mse(recon, unseen.X) < _mse(mean_start, unseen.X)
    learned = model.transform(data[~new][:3].copy())
    np.testing.assert_array_equal(learned, model.sample_embeddings_.to_numpy()[:3])


def test_translate_moves_samples_between_contexts(
    data: AnnData, fitted: FactorizedEmbedding
) -> None:
    moved = fitted.translate(data, key="context", source="liver", target="kidney")
    assert moved.n_obs == int((data.obs.context == "liver").sum())
    assert (moved.obs.context == "kidney").all()
    liver = data[data.obs.context == "liver"]
    # Compare each moved sample with the kidney sample of the same perturbation and index.
    kidney = data[[n.replace("liver", "kidney") for n in liver.obs_names]].X
    assert _mse(moved.X, kidney) < 0.5 * _mse(liver.X, kidney)
    with pytest.raises(DataValidationError, match="lung"):
        fitted.translate(data, key="context", source="liver", target="lung")


@pytest.mark.parametrize("transfer", ["factors", "arithmetic"])
def test_transfer_beats_control_on_held_out_cell(data: AnnData, transfer: str) -> None:
    held = (data.obs.context == "liver") & (data.obs.perturbation == "drug_a")
    train = data[~held].copy()
    model = FactorizedEmbedding(**{**PARAMS, "transfer": transfer}).fit(train)
    pred = model.predict(train, [("liver", "drug_a")])
    assert pred.shape == (1, data.n_vars)
    assert pred.obs.context.tolist() == ["liver"]
    assert pred.obs.perturbation.tolist() == ["drug_a"]
    truth = data[held].X.mean(axis=0)
    control = data[(data.obs.context == "liver") & (data.obs.perturbation == "control")]
    assert _mse(pred.X[0], truth) < 0.8 * _mse(control.X.mean(axis=0), truth)


def test_transfer_from_a_single_control(fitted: FactorizedEmbedding, data: AnnData) -> None:
    one = data[["liver-control-0", *data.obs_names[data.obs.context != "liver"]]].copy()
    pred = fitted.predict(one, [("liver", "drug_a")])
    assert pred.shape == (1, data.n_vars)
    assert np.isfinite(pred.X).all()


def test_combination_uses_the_sum_of_parts(fitted: FactorizedEmbedding, data: AnnData) -> None:
    combo = fitted.predict(data, [("liver", "drug_a+drug_b")])
    assert np.isfinite(combo.X).all()
    with pytest.raises(DataValidationError, match="drug_z"):
        fitted.predict(data, [("liver", "drug_z")])


def test_clear_errors(data: AnnData, fitted: FactorizedEmbedding) -> None:
    with pytest.raises(DataValidationError, match="organ"):
        FactorizedEmbedding(**PARAMS).fit(data, factors=["organ"])
    with pytest.raises(DataValidationError, match="transfer"):
        FactorizedEmbedding(transfer="magic").fit(data)
    with pytest.raises(DataValidationError, match="mask"):
        FactorizedEmbedding(**PARAMS).fit(data, mask=np.ones((2, 2), dtype=bool))
    no_ctrl = data[~((data.obs.context == "heart") & (data.obs.perturbation == "control"))]
    with pytest.raises(DataValidationError, match="heart"):
        fitted.predict(no_ctrl.copy(), [("heart", "drug_a")])
    other = data[:2].copy()
    other.obs_names = ["x1", "x2"]
    other = other[:, ::-1].copy()
    with pytest.raises(DataValidationError, match="genes"):
        fitted.transform(other)
    with pytest.raises(DataValidationError, match="factors"):
        FactorizedEmbedding(**{**PARAMS, "max_epochs": 1}).fit(data, factors=()).predict(
            data, [("liver", "drug_a")]
        )

"""XTransfer estimator: fit / predict / combinations / save-load on tiny synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from anndata import AnnData

from transferome.data.schema import Schema
from transferome.errors import DataValidationError, ModelFileError, TransferomeError
from transferome.models.xtransfer import XTransfer
from transferome.models.xtransfer._pairs import anchor_weight

FAST = {**XTransfer.fast_params, "max_epochs": 3}
# enough training to learn the easy task below in a few seconds
TRAINED = {
    **FAST,
    "hidden": (64,),
    "latent_dim": 16,
    "max_epochs": 40,
    "lr": 3e-3,
    "lr_step_size": None,
    "dropout": 0.0,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _easy_data(
    *,
    contexts=("c0", "c1", "c2", "c3"),
    drugs=("d0", "d1", "d2"),
    n_cells=24,
    n_genes=30,
    seed=0,
    drop=(("c0", "d0"),),
) -> AnnData:
    """Log-like data: context baselines plus context-invariant drug shifts on gene blocks."""
    rng = np.random.default_rng(seed)
    base = {c: rng.uniform(1.0, 3.0, n_genes) for c in contexts}
    shift = {}
    for i, d in enumerate(drugs):
        s = np.zeros(n_genes)
        s[i * 5 : i * 5 + 5] = 2.0
        s[i * 5 + 15 : i * 5 + 18] = -0.8
        shift[d] = s
    rows, values = [], []
    for c in contexts:
        for p in ("control", *drugs):
            if (c, p) in drop:
                continue
            mean = base[c] + (shift[p] if p != "control" else 0.0)
            values.append(np.clip(mean + rng.normal(0, 0.2, (n_cells, n_genes)), 0, None))
            rows += [(c, p)] * n_cells
    obs = pd.DataFrame(rows, columns=["context", "perturbation"])
    obs.index = [f"cell{i}" for i in range(len(obs))]
    adata = AnnData(
        X=np.vstack(values).astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]),
    )
    adata.uns["truth"] = {"base": base, "shift": shift}
    return adata


@pytest.fixture(scope="module")
def easy() -> AnnData:
    return _easy_data()


@pytest.fixture(scope="module")
def fitted(easy) -> XTransfer:
    return XTransfer(**TRAINED).fit(easy)


def test_fit_sets_attributes_and_leaves_input_alone(easy):
    before = easy.copy()
    model = XTransfer(**FAST).fit(easy)
    assert model.is_fitted
    assert model.var_names_ == list(easy.var_names)
    assert model.perturbations_ == ["d0", "d1", "d2"]
    assert model.perturbation_latents_.shape == (3, FAST["latent_dim"])
    assert len(model.history_) == FAST["max_epochs"]
    assert {"train_loss", "train_cross", "train_orth"} <= set(model.history_.columns)
    np.testing.assert_array_equal(easy.X, before.X)
    pd.testing.assert_frame_equal(easy.obs, before.obs)


def test_beats_control_baseline_on_held_out_group(easy, fitted):
    truth = easy.uns["truth"]
    pred = fitted.predict(easy, [("c0", "d0")])
    assert pred.shape == (1, easy.n_vars)
    assert list(pred.obs["context"]) == ["c0"]
    assert list(pred.obs["perturbation"]) == ["d0"]
    control = easy[(easy.obs.context == "c0") & (easy.obs.perturbation == "control")].X.mean(0)
    true = np.clip(truth["base"]["c0"] + truth["shift"]["d0"], 0, None)
    err_model = np.mean((pred.X[0] - true) ** 2)
    err_control = np.mean((control - true) ** 2)
    assert err_model < 0.6 * err_control
    assert np.corrcoef(pred.X[0] - control, true - control)[0, 1] > 0.8


@pytest.mark.parametrize("matching", ["random", "mean"])
def test_matching_modes_are_deterministic(easy, fitted, matching):
    model = XTransfer(**{**fitted.get_params(), "matching": matching})
    model.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    first = model.predict(easy, [("c0", "d0"), ("c1", "d1")]).X
    again = model.predict(easy, [("c0", "d0"), ("c1", "d1")]).X
    np.testing.assert_array_equal(first, again)
    assert np.isfinite(first).all()


def _with(fitted: XTransfer, **changes) -> XTransfer:
    model = XTransfer(**{**fitted.get_params(), **changes})
    model.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    return model


def _latents(model: XTransfer, adata: AnnData, mask: np.ndarray):
    with torch.no_grad():
        return model.module_.encode(torch.from_numpy(np.asarray(adata.X[mask])))


def test_mean_matching_and_combination_are_latent_sums(easy, fitted):
    model = _with(fitted, matching="mean")
    obs = easy.obs
    controls = ((obs.context == "c2") & (obs.perturbation == "control")).to_numpy()
    s, _ = _latents(model, easy, controls)
    _, p_a = _latents(model, easy, (obs.perturbation == "d1").to_numpy())
    _, p_b = _latents(model, easy, (obs.perturbation == "d2").to_numpy())
    combo = p_a.mean(0, keepdim=True) + p_b.mean(0, keepdim=True)
    expected = model.module_.predict_from_latents(s, combo.expand_as(s)).mean(0).numpy()
    pred = model.predict(easy, [("c2", "d1+d2")])
    np.testing.assert_allclose(pred.X[0], expected, rtol=1e-4, atol=1e-5)
    # a single perturbation uses only cells measured outside the target context
    _, p_out = _latents(
        model, easy, ((obs.perturbation == "d1") & (obs.context != "c2")).to_numpy()
    )
    single = model.module_.predict_from_latents(s, p_out.mean(0, keepdim=True).expand_as(s))
    np.testing.assert_allclose(
        model.predict(easy, [("c2", "d1")]).X[0], single.mean(0).numpy(), rtol=1e-4, atol=1e-5
    )


def test_combination_prediction_adds_both_effects(easy, fitted):
    truth = easy.uns["truth"]
    pred = fitted.predict(easy, [("c1", "d0+d1")]).X[0]
    control = easy[(easy.obs.context == "c1") & (easy.obs.perturbation == "control")].X.mean(0)
    true_delta = truth["shift"]["d0"] + truth["shift"]["d1"]
    assert np.corrcoef(pred - control, true_delta)[0, 1] > 0.7


def test_control_plus_delta_prediction(easy, fitted):
    model = _with(fitted, matching="mean", prediction="control_plus_delta")
    decoded = _with(fitted, matching="mean").predict(easy, [("c0", "d0")]).X[0]
    obs = easy.obs
    controls = ((obs.context == "c0") & (obs.perturbation == "control")).to_numpy()
    s, _ = _latents(model, easy, controls)
    baseline = model.module_.predict_from_latents(s, torch.zeros_like(s)).mean(0).numpy()
    expected = easy.X[controls].mean(0) + decoded - baseline
    np.testing.assert_allclose(
        model.predict(easy, [("c0", "d0")]).X[0], expected, rtol=1e-4, atol=1e-4
    )


def test_kang_like_single_perturbation_per_context():
    adata = _easy_data(drugs=("stim",), drop=(("c0", "stim"),), n_cells=30)
    model = XTransfer(**TRAINED, matching="mean").fit(adata)
    pred = model.predict(adata, [("c0", "stim")]).X[0]
    control = adata[(adata.obs.context == "c0") & (adata.obs.perturbation == "control")].X.mean(0)
    true_delta = adata.uns["truth"]["shift"]["stim"]
    assert np.corrcoef(pred - control, true_delta)[0, 1] > 0.7
    # the decoded change, added to the measured control, recovers most of the effect
    model = _with(model, prediction="control_plus_delta")
    delta = model.predict(adata, [("c0", "stim")]).X[0] - control
    assert np.mean((delta - true_delta) ** 2) < 0.5 * np.mean(true_delta**2)


def test_save_load_round_trip(tmp_path, easy, fitted):
    targets = [("c0", "d0"), ("c3", "d1+d2")]
    folder = fitted.save(tmp_path / "model")
    loaded = XTransfer.load(folder)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.predict(easy, targets).X, fitted.predict(easy, targets).X)
    pd.testing.assert_frame_equal(loaded.history_, fitted.history_, check_dtype=False)
    renamed = easy.copy()
    renamed.var_names = [f"x{j}" for j in range(easy.n_vars)]
    with pytest.raises(DataValidationError, match="genes do not match"):
        loaded.predict(renamed, targets)
    with pytest.raises(ModelFileError, match="no model folder"):
        XTransfer.load(tmp_path / "nowhere")


def test_stored_latents_used_without_source_cells(easy, fitted):
    controls_only = easy[easy.obs.perturbation == "control"].copy()
    model = _with(fitted, matching="mean")
    pred = model.predict(controls_only, [("c0", "d0")]).X[0]
    with_sources = model.predict(easy, [("c0", "d0")]).X[0]
    control = controls_only[controls_only.obs.context == "c0"].X.mean(0)
    assert np.corrcoef(pred - control, with_sources - control)[0, 1] > 0.9


def test_errors_name_the_problem(easy, fitted):
    with pytest.raises(DataValidationError, match="'nowhere'"):
        fitted.predict(easy, [("nowhere", "d0")])
    with pytest.raises(DataValidationError, match="'d9'"):
        fitted.predict(easy, [("c0", "d9")])
    with pytest.raises(TransferomeError, match="matching"):
        XTransfer(matching="closest").fit(easy)
    with pytest.raises(TransferomeError, match="dropout"):
        XTransfer(**{**FAST, "dropout": 2.0}).fit(easy)
    only_controls = easy[easy.obs.perturbation == "control"].copy()
    with pytest.raises(DataValidationError, match="only the control"):
        XTransfer(**FAST).fit(only_controls)
    with pytest.raises(TransferomeError, match="not fitted"):
        XTransfer().predict(easy, [("c0", "d0")])


def test_custom_keys_and_early_stopping(easy):
    renamed = easy.copy()
    renamed.obs = renamed.obs.rename(columns={"context": "cell_line", "perturbation": "drug"})
    renamed.obs["drug"] = renamed.obs["drug"].replace({"control": "DMSO"})
    schema = Schema(context_key="cell_line", perturbation_key="drug", control="DMSO")
    model = XTransfer(**{**FAST, "early_stopping": 2}).fit(renamed, schema=schema)
    assert "val_loss" in model.history_.columns
    pred = model.predict(renamed, [("c0", "d0")])
    assert list(pred.obs.columns) == ["cell_line", "drug"]


def test_same_seed_same_model(easy):
    first = XTransfer(**FAST).fit(easy).predict(easy, [("c0", "d0")]).X
    again = XTransfer(**FAST).fit(easy).predict(easy, [("c0", "d0")]).X
    np.testing.assert_array_equal(first, again)


def test_anchored_prediction(easy, fitted):
    model = _with(fitted, matching="mean", prediction="anchored")
    obs = easy.obs
    _, p = _latents(model, easy, ((obs.perturbation == "d0") & (obs.context != "c0")).to_numpy())
    p_mean = p.mean(0, keepdim=True)

    def decoded_delta(context):
        mask = ((obs.context == context) & (obs.perturbation == "control")).to_numpy()
        s, _ = _latents(model, easy, mask)
        with_p = model.module_.predict_from_latents(s, p_mean.expand_as(s)).mean(0)
        without = model.module_.predict_from_latents(s, torch.zeros_like(s)).mean(0)
        return (with_p - without).numpy()

    def mean_of(context, perturbation):
        return easy.X[
            ((obs.context == context) & (obs.perturbation == perturbation)).to_numpy()
        ].mean(0)

    sources = ["c1", "c2", "c3"]
    observed = np.array([mean_of(c, "d0") - mean_of(c, "control") for c in sources])
    decoded = np.array([decoded_delta(c) for c in sources])
    weight = anchor_weight(observed, decoded)
    correction = decoded_delta("c0") - decoded.mean(axis=0)
    expected = mean_of("c0", "control") + observed.mean(axis=0) + weight * correction
    np.testing.assert_allclose(
        model.predict(easy, [("c0", "d0")]).X[0], expected, rtol=1e-4, atol=1e-4
    )
    # combinations have no source context: the decoded change is used
    combo = model.predict(easy, [("c1", "d0+d1")]).X[0]
    delta_model = _with(fitted, matching="mean", prediction="control_plus_delta")
    np.testing.assert_allclose(combo, delta_model.predict(easy, [("c1", "d0+d1")]).X[0], rtol=1e-5)


def test_anchor_weight_by_hand():
    # the decoded changes explain the context differences exactly: full weight
    observed = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 0.0]])
    assert anchor_weight(observed, observed + 5.0) == 1.0
    # decoded differences unrelated to the observed ones: no correction (additive)
    assert anchor_weight(observed, np.array([[0.0, 9.0], [0.0, -9.0], [0.0, 0.0]])) == 0.0
    # opposite to the observed ones: clipped to 0; all decoded changes equal: 0
    assert anchor_weight(observed, -observed) == 0.0
    assert anchor_weight(observed, np.ones_like(observed)) == 0.0
    # half the size of the observed differences: weight 2, clipped to 1
    assert anchor_weight(observed, observed / 2) == 1.0
    # twice as large: weight 0.5
    assert anchor_weight(observed, observed * 2) == 0.5
    # a single source cannot be left out
    assert anchor_weight(observed[:1], observed[:1]) == 1.0

"""Signature data with gaps: NaN means "not measured", metrics use the measured genes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

from transferome.benchmark import run_task, with_zero_controls
from transferome.data.schema import Schema, validate
from transferome.errors import DataValidationError
from transferome.metrics import discrimination, group_means, group_metrics
from transferome.models import get_model

SCHEMA = Schema(context_key="line", perturbation_key="drug")
N_GENES = 40
N_REPS = 3


def _signatures(seed: int = 0) -> AnnData:
    """3 lines x 2 drugs x 3 replicate signatures, 15 % of the values not measured."""
    rng = np.random.default_rng(seed)
    rows = [(c, p) for c in ("x", "y", "z") for p in ("d1", "d2") for _ in range(N_REPS)]
    obs = pd.DataFrame(rows, columns=["line", "drug"], index=[f"s{i}" for i in range(len(rows))])
    shift = {p: rng.normal(size=N_GENES) for p in ("d1", "d2")}
    values = np.vstack([shift[p] + 0.3 * rng.normal(size=N_GENES) for _, p in rows])
    values[rng.random(values.shape) < 0.15] = np.nan
    x_d1 = ((obs["line"] == "x") & (obs["drug"] == "d1")).to_numpy()
    values[x_d1, 0] = np.nan  # gene 0 never measured in the held-out group
    values[(obs["drug"] == "d1").to_numpy() & ~x_d1, 1] = np.nan  # nor gene 1 in the sources
    adata = AnnData(values.astype(np.float32), obs=obs)
    adata.var_names = [f"g{i}" for i in range(N_GENES)]
    return adata


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    measured = np.isfinite(x)
    total = np.where(measured, x, 0.0).sum(axis=0)
    count = measured.sum(axis=0)
    return np.divide(total, count, out=np.full(x.shape[1], np.nan), where=count > 0)


def test_validate_rejects_nan_unless_allowed() -> None:
    data = with_zero_controls(_signatures(), schema=SCHEMA)
    n_nan = int(np.isnan(data.X).sum())
    keys = Schema(context_key="line", perturbation_key="drug")
    with pytest.raises(DataValidationError, match=f"contain {n_nan} NaN and 0 infinite") as info:
        validate(data, keys, allow_negative=True)
    assert "pass allow_nan=True / values='delta' for signature data" in str(info.value)
    assert validate(data, keys, allow_negative=True, allow_nan=True).value_type == "signed"
    # run_task validates log values without allow_nan
    with pytest.raises(DataValidationError, match="allow_nan=True / values='delta'"):
        run_task("transfer", data, schema=SCHEMA, models=["additive"])
    infinite = data.copy()
    infinite.X[0, 0] = np.inf
    with pytest.raises(DataValidationError, match="1 infinite"):
        validate(infinite, keys, allow_negative=True, allow_nan=True)


def test_zero_controls_and_group_means_keep_gaps() -> None:
    adata = _signatures()
    data = with_zero_controls(adata, schema=SCHEMA)
    body = data[data.obs["drug"] != "control"]
    np.testing.assert_array_equal(np.isnan(body.X), np.isnan(adata.X))
    means = group_means(adata, schema=SCHEMA)
    x = np.asarray(adata.X, dtype=np.float64)
    rows = ((adata.obs["line"] == "x") & (adata.obs["drug"] == "d1")).to_numpy()
    expected = _nanmean_rows(x[rows])
    np.testing.assert_allclose(means.loc[("x", "d1")].to_numpy(), expected, equal_nan=True)
    assert np.isnan(means.loc[("x", "d1"), "g0"])
    sparse = adata.copy()
    sparse.X = sp.csr_matrix(np.where(np.abs(x) < 0.5, 0.0, x))  # implicit zeros are measured
    dense = adata.copy()
    dense.X = sparse.X.toarray()
    pd.testing.assert_frame_equal(
        group_means(sparse, schema=SCHEMA), group_means(dense, schema=SCHEMA)
    )


def test_metrics_use_the_genes_measured_in_both() -> None:
    rng = np.random.default_rng(1)
    true, pred = rng.normal(size=30), rng.normal(size=30)
    control = np.zeros(30)
    gappy_true, gappy_pred = true.copy(), pred.copy()
    gappy_true[:4] = np.nan
    gappy_pred[4:6] = np.nan
    got = group_metrics(gappy_pred, gappy_true, control, n_degs=5)
    expected = group_metrics(pred[6:], true[6:], control[6:], n_degs=5)
    assert got == pytest.approx(expected)
    nothing = group_metrics(np.full(30, np.nan), true, control)
    assert set(nothing) == set(expected)
    assert all(np.isnan(v) for v in nothing.values())
    # discrimination: the distance of each pair uses the genes finite in both vectors
    deltas = rng.normal(size=(3, 30))
    assert discrimination(deltas, deltas) == pytest.approx(np.ones(3))
    gappy = deltas.copy()
    gappy[0, :10] = np.nan
    gappy[2, 20:] = np.nan
    assert discrimination(deltas, gappy) == pytest.approx(np.ones(3))
    shifted = gappy + 1e-3
    shifted[1] = gappy[0]
    scores = discrimination(shifted, gappy)
    assert scores[1] < 1.0
    assert scores[0] == 1.0
    gappy[1] = np.nan
    assert np.isnan(discrimination(deltas, gappy)[1])


def test_run_task_on_signatures_with_gaps_by_hand() -> None:
    adata = _signatures()
    result = run_task(
        "transfer", adata, schema=SCHEMA, models=["control", "additive"], values="delta", n_degs=8
    )
    table = result.results.set_index(["model", "context", "perturbation", "metric"])["value"]
    additive = result.results.query("model == 'additive'")
    group_level = additive[additive["metric"].isin(["r2", "pearson_delta", "mse", "r2_deg"])]
    assert np.isfinite(group_level["value"]).all()
    assert np.isfinite(additive.query("metric == 'discrimination'")["value"]).all()

    x = np.asarray(adata.X, dtype=np.float64)
    line, drug = adata.obs["line"].to_numpy(), adata.obs["drug"].to_numpy()
    true = _nanmean_rows(x[(line == "x") & (drug == "d1")])
    sources = np.vstack([_nanmean_rows(x[(line == c) & (drug == "d1")]) for c in ("y", "z")])
    pred = np.nan_to_num(_nanmean_rows(sources), nan=0.0)  # no source measured: no change
    pred = pred.astype(np.float32).astype(np.float64)
    measured = np.isfinite(true) & np.isfinite(pred)
    assert not measured[0]
    assert measured[1]
    assert pred[1] == 0.0
    t, p = true[measured], pred[measured]
    degs = np.argsort(-np.abs(t), kind="stable")[:8]

    def got(metric: str) -> float:
        return float(table[("additive", "x", "d1", metric)])

    assert got("mse") == pytest.approx(np.mean((t - p) ** 2), rel=1e-5)
    assert got("r2") == pytest.approx(
        1 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2), rel=1e-5
    )
    assert got("pearson_delta") == pytest.approx(np.corrcoef(t, p)[0, 1], rel=1e-5)
    assert got("pearson_delta_deg") == pytest.approx(np.corrcoef(t[degs], p[degs])[0, 1], rel=1e-5)
    assert got("deg_direction") == pytest.approx(np.mean(np.sign(t[degs]) == np.sign(p[degs])))
    # the control prediction of a change is zero everywhere: pearson_delta is undefined
    assert np.isnan(table[("control", "x", "d1", "pearson_delta")])
    assert table[("control", "x", "d1", "mse")] == pytest.approx(np.mean(t**2), rel=1e-5)
    # three replicates per group: too few for a split-half ceiling
    assert result.results.query("model == 'ceiling'")["value"].isna().all()
    assert "defined in 0 of 6 groups" in result.to_markdown()


def test_baselines_on_signatures_with_gaps() -> None:
    data = with_zero_controls(_signatures(), schema=SCHEMA)
    targets = [("x", "d1"), ("y", "d2")]
    control = get_model("control")().fit(data, schema=SCHEMA).predict(data, targets)
    assert np.all(np.asarray(control.X) == 0.0)
    additive = get_model("additive")().fit(data, schema=SCHEMA)
    assert np.isfinite(additive.shifts_).all()
    with pytest.raises(DataValidationError, match="NaN"):
        get_model("linear")().fit(data, schema=SCHEMA)

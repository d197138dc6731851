"""Metric properties: perfect scores, agreement with sklearn/scipy, NaN without warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import pearsonr
from sklearn.metrics import explained_variance_score, r2_score

from transferome.data.schema import Schema
from transferome.metrics import (
    METRICS,
    accuracy,
    discrimination,
    evaluate_groups,
    explained_variance,
    group_metrics,
    mapping_metrics,
    pearson,
    per_class_accuracy,
    r2,
    random_accuracy,
    summarize,
    top_degs,
)

finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, 12, elements=finite), arrays(np.float64, 12, elements=finite))
def test_agree_with_sklearn(true: np.ndarray, pred: np.ndarray) -> None:
    assert r2(true, pred) == pytest.approx(r2_score(true, pred), abs=1e-9)
    assert explained_variance(true, pred) == pytest.approx(
        explained_variance_score(true, pred), abs=1e-9
    )


def test_pearson_agrees_with_scipy_and_is_symmetric() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(size=30), rng.normal(size=30)
        assert pearson(a, b) == pytest.approx(pearsonr(a, b)[0], abs=1e-12)
        assert pearson(a, b) == pytest.approx(pearson(b, a), abs=1e-15)


def test_perfect_prediction_scores_best_value() -> None:
    rng = np.random.default_rng(1)
    control = rng.gamma(2.0, size=200)
    true = control + rng.normal(size=200)
    scores = group_metrics(true.copy(), true, control, n_degs=50)
    for name, value in scores.items():
        assert value == pytest.approx(METRICS[name].best), name
    assert discrimination(np.eye(4), np.eye(4)) == pytest.approx(np.ones(4))


def test_control_prediction_is_undefined_without_warnings() -> None:
    rng = np.random.default_rng(2)
    control = rng.gamma(2.0, size=100)
    true = control + rng.normal(size=100)
    scores = group_metrics(control.copy(), true, control, n_degs=10)  # warnings are errors
    assert np.isnan(scores["pearson_delta"])
    assert np.isnan(scores["pearson_delta_deg"])
    assert scores["deg_direction"] == 0.0
    assert scores["r2_delta"] <= 0.0
    assert np.isnan(pearson(np.ones(5), np.arange(5.0)))


def test_degs_and_direction() -> None:
    control = np.zeros(6)
    true = np.array([0.1, -3.0, 0.0, 2.0, -0.5, 1.0])
    assert list(top_degs(true, control, 2)) == [1, 3]
    pred = np.array([0.0, -1.0, 0.0, -1.0, 0.0, 0.0])
    assert group_metrics(pred, true, control, n_degs=2)["deg_direction"] == 0.5


def test_discrimination_ranks() -> None:
    truth = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
    pred = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 4.0]])
    # group 0 predicted exactly like group 1's truth: one group closer, rank 1 of 3
    np.testing.assert_allclose(discrimination(pred, truth), [1 - 1 / 3, 1.0, 1.0])
    assert np.isnan(discrimination(pred[:1], truth[:1])).all()


def test_classification_and_random_model() -> None:
    true = ["a", "a", "b", "c"]
    pred = ["a", "b", "b", "a"]
    assert accuracy(true, pred) == 0.5
    per = per_class_accuracy(true, pred)
    assert per.to_dict() == {"a": 0.5, "b": 1.0, "c": 0.0}
    # train frequencies a 3/4, b 1/4; test a 1/2, b 1/4, c 1/4
    assert random_accuracy(["a", "a", "a", "b"], true) == pytest.approx(0.75 * 0.5 + 0.25 * 0.25)


def test_mapping_metrics() -> None:
    ranked = {"x": ["A", "B"], "y": ["C", "D", "E", "F", "G", "H"], "z": ["Q"], "w": ["A"]}
    truth = pd.DataFrame({"source": ["x", "y", "z"], "target": ["A", "G", "R"]})
    scores = mapping_metrics(ranked, truth)
    assert scores["precision_at_1"] == pytest.approx(1 / 3)
    assert scores["precision_at_5"] == pytest.approx(2 / 3)  # G is 5th for y
    assert scores["mrr"] == pytest.approx((1 + 1 / 5 + 0) / 3)


def _profiles() -> tuple[AnnData, AnnData]:
    rng = np.random.default_rng(3)
    genes = [f"g{i}" for i in range(8)]
    rows = [("A", "control")] * 3 + [("A", "p")] * 3 + [("B", "control")] * 2 + [("B", "p")] * 2
    obs = pd.DataFrame(
        rows, columns=["context", "perturbation"], index=[f"c{i}" for i in range(10)]
    )
    truth = AnnData(rng.gamma(2.0, size=(10, 8)).astype(np.float32), obs=obs)
    truth.var_names = genes
    pred = truth[truth.obs["perturbation"] == "p"].copy()
    return pred, truth


def test_evaluate_groups_uses_group_means() -> None:
    pred, truth = _profiles()
    table = evaluate_groups(pred, truth, schema=Schema(), n_degs=4)
    assert set(table["metric"]) == {m for m, i in METRICS.items() if i.kind in ("group", "set")}
    perfect = table.set_index(["context", "metric"])["value"]
    assert perfect[("A", "r2")] == pytest.approx(1.0)
    assert perfect[("B", "discrimination")] == 1.0
    # gene order of the prediction does not matter; unknown genes are an error
    shuffled = pred[:, list(reversed(pred.var_names))].copy()
    again = evaluate_groups(shuffled, truth, schema=Schema(), n_degs=4)
    np.testing.assert_allclose(again["value"], table["value"])
    with pytest.raises(Exception, match="predicted genes differ"):
        evaluate_groups(pred[:, :5].copy(), truth, schema=Schema())


def test_summarize_leaves_nan_out() -> None:
    frame = pd.DataFrame({"model": ["m"] * 3, "metric": ["x"] * 3, "value": [1.0, np.nan, 3.0]})
    row = summarize(frame).iloc[0]
    assert (row["mean"], row["median"], row["n"], row["n_nan"]) == (2.0, 2.0, 2, 1)

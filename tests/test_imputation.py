"""Imputation benchmark: hiding entries, the baselines, FE through the same path, the scores."""

from __future__ import annotations

import numpy as np
import pytest

from transferome.analysis import (
    hide_entries,
    imputation_scores,
    impute_fe,
    impute_gene_mean,
    impute_knn,
    impute_soft,
)
from transferome.errors import DataValidationError


def _low_rank(n: int = 60, m: int = 40, rank: int = 3, noise: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, m)) + rng.uniform(2, 5, m)
    return x + rng.normal(0, noise, (n, m))


# -- hide_entries -----------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_entries_mode_hides_the_exact_fraction(fraction):
    hidden = hide_entries((50, 40), fraction, random_state=3)
    assert hidden.dtype == bool
    assert hidden.shape == (50, 40)
    assert hidden.sum() == round(fraction * 2000)


def test_already_missing_entries_are_never_hidden():
    rng = np.random.default_rng(1)
    observed = rng.random((80, 30)) > 0.4
    hidden = hide_entries(observed, 0.5, random_state=0)
    assert not (hidden & ~observed).any()
    assert hidden.sum() == round(0.5 * observed.sum())
    genes = hide_entries(observed, 0.3, mode="genes", random_state=0)
    assert not (genes & ~observed).any()


def test_hiding_depends_on_the_seed_only():
    a = hide_entries((30, 20), 0.3, random_state=5)
    assert np.array_equal(a, hide_entries((30, 20), 0.3, random_state=5))
    assert not np.array_equal(a, hide_entries((30, 20), 0.3, random_state=6))


def test_genes_mode_hides_one_gene_set_in_the_chosen_samples():
    hidden = hide_entries((40, 50), 0.3, mode="genes", gene_fraction_of_samples=0.5)
    rows = np.flatnonzero(hidden.any(axis=1))
    cols = np.flatnonzero(hidden.any(axis=0))
    assert len(rows) == 20  # half of the samples
    assert len(cols) == 30  # 0.3 / 0.5 of the genes
    # Whole genes: every chosen sample loses every chosen gene, nothing else is hidden.
    assert hidden[np.ix_(rows, cols)].all()
    assert hidden.sum() == 20 * 30 == round(0.3 * hidden.size)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_bad_fractions_are_named(fraction):
    with pytest.raises(DataValidationError, match="fraction must be in"):
        hide_entries((10, 10), fraction)


def test_other_bad_inputs_are_named():
    with pytest.raises(DataValidationError, match="boolean mask"):
        hide_entries(np.ones((4, 4)), 0.3)
    with pytest.raises(DataValidationError, match="mode="):
        hide_entries((10, 10), 0.3, mode="rows")
    with pytest.raises(DataValidationError, match="gene_fraction_of_samples"):
        hide_entries((10, 10), 0.6, mode="genes", gene_fraction_of_samples=0.5)
    with pytest.raises(DataValidationError, match="hides no entry"):
        hide_entries((3, 3), 0.01)


# -- baselines --------------------------------------------------------------------------------
def test_gene_mean_fills_with_the_observed_mean():
    values = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0]])
    filled = impute_gene_mean(values)
    assert np.allclose(filled, [[1.0, 6.0], [3.0, 4.0], [2.0, 8.0]])


def test_baselines_keep_observed_entries_and_fill_every_gap():
    x = _low_rank()
    hidden = hide_entries(x.shape, 0.3)
    values = np.where(hidden, np.nan, x)
    for impute in (impute_gene_mean, impute_knn, impute_soft):
        filled = impute(values)
        assert np.isfinite(filled).all()
        assert np.array_equal(filled[~hidden], x[~hidden])
    assert np.isnan(values).any()  # inputs are not modified


def test_soft_impute_recovers_a_low_rank_matrix_far_better_than_the_gene_mean():
    x = _low_rank(n=80, m=60, rank=3)
    hidden = hide_entries(x.shape, 0.5, random_state=2)
    values = np.where(hidden, np.nan, x)
    soft = imputation_scores(x, impute_soft(values), hidden)
    mean = imputation_scores(x, impute_gene_mean(values), hidden)
    knn = imputation_scores(x, impute_knn(values, k=5), hidden)
    assert soft["nrmse"] < 0.3 * mean["nrmse"]
    assert soft["nrmse"] < knn["nrmse"] < mean["nrmse"]
    assert soft["pearson"] > 0.97


def test_soft_impute_rank_cap_gives_the_same_answer_on_a_low_rank_matrix():
    x = _low_rank(n=120, m=100, rank=3)
    hidden = hide_entries(x.shape, 0.3, random_state=4)
    values = np.where(hidden, np.nan, x)
    capped = imputation_scores(x, impute_soft(values, rank=10), hidden)["nrmse"]
    full = imputation_scores(x, impute_soft(values, rank=None), hidden)["nrmse"]
    assert capped == pytest.approx(full, abs=0.02)
    assert full < 0.2


def test_baseline_errors_name_the_problem():
    with pytest.raises(DataValidationError, match="no observed value"):
        impute_gene_mean(np.array([[1.0, np.nan], [2.0, np.nan]]))
    with pytest.raises(DataValidationError, match="2-D"):
        impute_soft(np.ones(5))
    with pytest.raises(DataValidationError, match="shrinkage"):
        impute_soft(np.ones((3, 3)), shrinkage=1.5)
    with pytest.raises(DataValidationError, match="k must be"):
        impute_knn(np.ones((3, 3)), k=0)


# -- FE through the same path ----------------------------------------------------------------
def test_fe_beats_the_gene_mean_on_a_low_rank_matrix():
    x = _low_rank(n=40, m=24, rank=2, noise=0.02, seed=3)
    hidden = hide_entries(x.shape, 0.3, random_state=1)
    values = np.where(hidden, np.nan, x)
    params = {
        "embedding_dim": 8,
        "hidden": (32,),
        "lr": 1e-2,
        "embedding_lr": 5e-2,
        "batch_size": 16,
        "gene_block": 16,
        "max_epochs": 25,
    }
    filled = impute_fe(values, **params)
    assert np.array_equal(filled[~hidden], x[~hidden])
    fe = imputation_scores(x, filled, hidden)
    mean = imputation_scores(x, impute_gene_mean(values), hidden)
    assert fe["nrmse"] < 0.6 * mean["nrmse"]
    assert fe["pearson"] > mean["pearson"]


# -- scores -----------------------------------------------------------------------------------
def test_scores_on_a_hand_example():
    truth = np.array([[1.0, 2.0], [3.0, np.nan]])
    filled = np.array([[2.0, 2.0], [5.0, 0.0]])
    hidden = np.array([[True, False], [True, False]])
    scores = imputation_scores(truth, filled, hidden, min_per_gene=2)
    # Hidden truth (1, 3), sd 1; errors (1, 2): RMSE sqrt(2.5).
    assert scores["rmse"] == pytest.approx(np.sqrt(2.5))
    assert scores["nrmse"] == pytest.approx(np.sqrt(2.5))
    assert scores["pearson"] == pytest.approx(1.0)
    assert scores["gene_pearson"] == pytest.approx(1.0)
    assert scores["n"] == 2


def test_scores_of_the_truth_and_of_a_constant_guess():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(30, 10))
    hidden = hide_entries(truth.shape, 0.4)
    assert imputation_scores(truth, truth, hidden)["nrmse"] == pytest.approx(0.0)
    guess = np.full_like(truth, truth[hidden].mean())
    scores = imputation_scores(truth, guess, hidden)
    assert scores["nrmse"] == pytest.approx(1.0)
    assert np.isnan(scores["pearson"])


def test_score_errors_name_the_problem():
    truth = np.zeros((3, 3))
    with pytest.raises(DataValidationError, match="same shape"):
        imputation_scores(truth, np.zeros((3, 2)), np.ones((3, 3), dtype=bool))
    with pytest.raises(DataValidationError, match="boolean"):
        imputation_scores(truth, truth, np.ones((3, 3)))
    with pytest.raises(DataValidationError, match="no entry"):
        imputation_scores(truth, truth, np.zeros((3, 3), dtype=bool))
    filled = truth.copy()
    filled[0, 0] = np.nan
    with pytest.raises(DataValidationError, match="hidden entries of filled"):
        imputation_scores(truth, filled, np.ones((3, 3), dtype=bool))

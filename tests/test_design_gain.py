"""Expected-gain experimental design: the error model, the ranking on planted designs, the
batch's diversity, and the reactome of signature data."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from transferome.crossspecies import signature_reactome, suggest_experiments
from transferome.crossspecies.gain import (
    DesignGrid,
    error_ratio,
    expected_gains,
    fit_error_model,
    pick_batch,
    predict_cells,
)
from transferome.crossspecies.reactome import PAIR_NAMES, Reactome
from transferome.data.schema import Schema
from transferome.errors import DataValidationError

CONTEXTS = ("c1", "c2", "c3", "c4", "c5")


def _reactome(measured: dict[str, set[str]], n_genes: int = 200, seed: int = 0) -> Reactome:
    """Each perturbation a random change vector, each context a small deviation of it;
    ``measured`` maps perturbations to the contexts where they were measured."""
    rng = np.random.default_rng(seed)
    perturbations = sorted(measured)
    grid = pd.MultiIndex.from_product([CONTEXTS, perturbations], names=PAIR_NAMES)
    values = pd.DataFrame(np.nan, index=[f"g{i}" for i in range(n_genes)], columns=grid)
    for p in perturbations:
        base = rng.normal(0, 1, n_genes)
        for c in measured[p]:
            values[(c, p)] = base + rng.normal(0, 0.3, n_genes)
    n = pd.DataFrame(
        {"n_treated": values.notna().any().astype(int).to_numpy(), "n_control": 1}, index=grid
    )
    se = pd.DataFrame(np.nan, index=values.index, columns=grid)
    return Reactome(values=values, se=se, n=n, species="human")


def _design(extra: dict[str, set[str]]) -> dict[str, Reactome]:
    measured = {f"p{i}": {"c1", "c2", "c3", "c4"} for i in range(4)}
    measured.update(extra)
    return {"human": _reactome(measured)}


def test_error_model_learns_that_more_contexts_predict_better() -> None:
    reactomes = _design({"p4": {"c1"}, "p5": {"c2", "c3"}})
    model = fit_error_model(reactomes)
    t0, t1, _ = model.theta
    assert t1 > 0.5  # from one context to none, the error grows to the change itself
    assert t0 < 0.3  # with many contexts it falls to the context-specific part (0.3^2 ~ 0.09)
    grid = DesignGrid.from_reactomes(reactomes)
    error = model.error(grid.measured)
    p = grid.perturbations.index
    assert error[0, 4, p("p4")] > error[0, 4, p("p0")]  # p4 seen once, p0 four times


def test_the_cell_that_informs_the_most_others_ranks_first() -> None:
    # p4 measured nowhere: its first measurement informs its four other contexts
    reactomes = _design({"p4": set()})
    grid = DesignGrid.from_reactomes(reactomes)
    table = pick_batch(fit_error_model(reactomes), grid, 1)
    assert table.loc[0, "perturbation"] == "p4"
    assert "measured in 0 of 5 contexts" in table.loc[0, "reason"]
    gains = expected_gains(fit_error_model(reactomes), grid.measured, grid.possible)
    p4 = grid.perturbations.index("p4")
    others = np.delete(gains["gain"], p4, axis=2)
    assert np.nanmin(gains["gain"][..., p4]) > np.nanmax(others)
    assert np.isnan(gains["gain"][grid.measured]).all()  # measured cells are not candidates


def test_a_batch_spreads_over_perturbations_and_contexts() -> None:
    reactomes = _design({"p4": set(), "p5": set()})
    grid = DesignGrid.from_reactomes(reactomes)
    table = pick_batch(fit_error_model(reactomes), grid, 2)
    assert set(table["perturbation"]) == {"p4", "p5"}  # not two copies of one
    assert list(table["context"]) == ["c5", "c5"]  # the context least measured, twice
    # with every context measured alike, the two picks go to two contexts
    alike = {f"p{i}": set(CONTEXTS) for i in range(4)} | {"p4": set(), "p5": set()}
    reactomes = {"human": _reactome(alike)}
    table = pick_batch(fit_error_model(reactomes), DesignGrid.from_reactomes(reactomes), 2)
    assert set(table["perturbation"]) == {"p4", "p5"}
    assert table["context"].nunique() == 2
    assert table["score"].is_monotonic_decreasing
    # the greedy pick counts the first one as measured: p4's second cell gains less than its
    # first did
    third = pick_batch(fit_error_model(reactomes), grid, 3)
    assert third.loc[2, "score"] < third.loc[0, "score"]


def test_candidates_restrict_the_grid_and_bad_ones_are_named() -> None:
    reactomes = _design({"p4": set()})
    grid = DesignGrid.from_reactomes(reactomes, candidates=[("human", "c5", "p0")])
    table = pick_batch(fit_error_model(reactomes, grid), grid, 3)
    assert list(table["perturbation"]) == ["p0"]  # the only possible open cell
    with pytest.raises(DataValidationError, match="unknown species"):
        DesignGrid.from_reactomes(reactomes, candidates=[("mouse", "c1", "p0")])
    with pytest.raises(DataValidationError, match="at least 1"):
        pick_batch(fit_error_model(reactomes), grid, 0)


def test_the_predictors_errors_steer_the_ranking() -> None:
    # p0..p3 measured in c1-c4 alike: by counts alone the open cells (c5, p) tie
    reactomes = _design({})
    grid = DesignGrid.from_reactomes(reactomes)
    model = fit_error_model(reactomes)
    own = model.error(grid.measured)
    errors = own.copy()
    p2 = grid.perturbations.index("p2")
    errors[0, 4, p2] *= 10.0  # the predictor expects (c5, p2) to be much harder
    ratio = error_ratio(model, grid, errors)
    assert ratio[0, 4, p2] == pytest.approx(10.0)
    assert np.allclose(np.delete(ratio, p2, axis=2), 1.0)
    table = pick_batch(model, grid, 1, ratio)
    assert table.loc[0, "perturbation"] == "p2"
    assert "interval puts its error at 10x" in table.loc[0, "reason"]
    gains = expected_gains(model, grid.measured, grid.possible, ratio)
    assert gains["own"][0, 4, p2] == pytest.approx(10.0 * own[0, 4, p2])
    # NaN errors (no interval) leave the count model as it is
    errors[0, 4, p2] = np.nan
    assert np.allclose(error_ratio(model, grid, errors), 1.0)
    with pytest.raises(DataValidationError, match="shape"):
        error_ratio(model, grid, errors[:, :2])


def test_predict_cells_gives_changes_and_interval_errors() -> None:
    reactomes = _design({"p4": set()})
    grid = DesignGrid.from_reactomes(reactomes)
    cells = predict_cells(reactomes, grid)
    human = cells.changes["human"]
    # every open cell has a prediction: the unmeasured p4 as no change
    assert set(human) == {(c, p) for c in CONTEXTS for p in ("p0", "p1", "p2", "p3", "p4")} - {
        (c, p) for c in CONTEXTS[:4] for p in ("p0", "p1", "p2", "p3")
    }
    assert not np.any(human[("c1", "p4")])
    p4 = grid.perturbations.index("p4")
    assert np.isnan(cells.errors[0, :, p4]).all()
    assert np.isnan(cells.errors[grid.measured]).all()
    known = np.delete(cells.errors[0, 4], p4)
    assert np.isfinite(known).all()
    assert (known > 0).all()
    # a perturbation's change is shared by its contexts (context noise 0.3): the prediction
    # of (c5, p0) is close to the truth, and its expected error is of the order of 0.3^2
    # (p0's change is drawn first, so it is the same in the fully measured reactome)
    truth = _reactome({f"p{i}": set(CONTEXTS) for i in range(4)} | {"p4": set()})
    error = np.mean((human[("c5", "p0")] - truth.values[("c5", "p0")].to_numpy()) ** 2)
    assert error < 0.3
    assert 0.02 < known[0] < 0.5


def test_suggest_experiments_uses_the_expected_gain() -> None:
    reactomes = _design({"p4": set()})
    table = suggest_experiments(reactomes, 2)
    assert list(table.columns[:6]) == [
        "rank",
        "species",
        "context",
        "perturbation",
        "score",
        "reason",
    ]
    assert table.loc[0, "perturbation"] == "p4"


def test_signature_reactome_averages_finite_values() -> None:
    obs = pd.DataFrame(
        {
            "context": ["a", "a", "b", "a", "b"],
            "perturbation": ["d1", "d1", "d1", "control", "control"],
        },
        index=[f"r{i}" for i in range(5)],
    )
    x = np.array(
        [[1.0, np.nan], [3.0, 2.0], [-1.0, -2.0], [0.0, 0.0], [0.0, 0.0]], dtype=np.float32
    )
    r = signature_reactome(ad.AnnData(x, obs=obs), schema=Schema(species_key=None))
    assert r.values[("a", "d1")].tolist() == [2.0, 2.0]
    assert r.values[("b", "d1")].tolist() == [-1.0, -2.0]
    assert int(r.n.loc[("a", "d1"), "n_treated"]) == 2
    with pytest.raises(DataValidationError, match="only control"):
        signature_reactome(ad.AnnData(x[3:], obs=obs.iloc[3:]), schema=Schema(species_key=None))

"""The design benchmark: acquisition curves from one starting design, their summary, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_design_gain import CONTEXTS, _reactome
from transferome.benchmark.design import (
    CURVE_COLUMNS,
    acquisition_curve,
    design_benchmark,
    starting_design,
)
from transferome.crossspecies.gain import DesignGrid
from transferome.errors import DataValidationError


@pytest.fixture(scope="module")
def full():
    # six perturbations measured in all five contexts: 30 cells, 9 at the start, 3 a round
    return {"human": _reactome({f"p{i}": set(CONTEXTS) for i in range(6)}, n_genes=60)}


def test_every_strategy_starts_from_the_same_design(full) -> None:
    curves = {
        strategy: acquisition_curve(full, strategy, seed=1, steps=2, step=0.1)
        for strategy in ("suggested", "counts only", "random", "largest interval", "oracle")
    }
    for curve in curves.values():
        assert list(curve.columns) == CURVE_COLUMNS
        assert curve["measured"].tolist() == [9, 12, 15]
        assert curve["step"].tolist() == [0, 1, 2]
        # the completed matrix's error is the open cells' error spread over all cells
        open_share = 1 - curve["measured"] / 30
        np.testing.assert_allclose(curve["error"], curve["error_open"] * open_share)
    starts = {round(c.loc[0, "error"], 12) for c in curves.values()}
    assert len(starts) == 1


def test_oracle_and_interval_pick_the_largest_errors(full) -> None:
    from transferome.benchmark.design import _pick
    from transferome.crossspecies.gain import CellPredictions

    grid = DesignGrid.from_reactomes(full)
    measured = starting_design(grid, np.random.default_rng(0), 0.3)
    grid = DesignGrid(grid.species, grid.contexts, grid.perturbations, measured, grid.possible)
    open_cells = [tuple(i) for i in np.argwhere(~measured)]
    true = np.where(measured, 0.0, 1.0)
    true[open_cells[4]], true[open_cells[7]] = 5.0, 3.0
    # the predictor's expected errors: 0.5 everywhere, 9 for cell 2, none (NaN: no
    # prediction) for cells 4 and 7, which therefore come first
    widths = np.where(measured, np.nan, 0.5)
    widths[open_cells[2]] = 9.0
    widths[open_cells[4]] = widths[open_cells[7]] = np.nan
    preds = CellPredictions({"human": {}}, widths)
    rng = np.random.default_rng(0)
    picked = _pick("oracle", full, grid, preds, true, k=2, rng=rng, other_species_weight=0.0)
    assert picked == [open_cells[4], open_cells[7]]
    picked = _pick(
        "largest interval", full, grid, preds, true, k=3, rng=rng, other_species_weight=0.0
    )
    assert set(picked[:2]) == {open_cells[4], open_cells[7]}
    assert picked[2] == open_cells[2]


def test_starting_design_draws_a_share_of_the_measured_cells(full) -> None:
    grid = DesignGrid.from_reactomes(full)
    mask = starting_design(grid, np.random.default_rng(0), 0.5)
    assert mask.sum() == 15
    assert not (mask & ~grid.measured).any()
    again = starting_design(grid, np.random.default_rng(0), 0.5)
    np.testing.assert_array_equal(mask, again)
    with pytest.raises(DataValidationError, match="start"):
        starting_design(grid, np.random.default_rng(0), 1.5)


def test_design_benchmark_summarises_over_seeds(full) -> None:
    steps = []
    result = design_benchmark(
        full,
        strategies=("suggested", "random"),
        seeds=(0, 1, 2),
        steps=1,
        step=0.1,
        on_step=steps.append,
    )
    assert len(steps) == 6
    assert set(result.curves["seed"]) == {0, 1, 2}
    summary = result.summary.set_index("strategy")
    assert summary.loc["random", "vs_random"] == 0
    assert (summary["seeds"] == 3).all()
    assert np.isfinite(summary.loc["suggested", "auc_sd"])
    auc = result.curves.groupby(["strategy", "seed"])["error"].mean()
    assert summary.loc["suggested", "auc_mean"] == pytest.approx(auc["suggested"].mean())


def test_bad_requests_are_named(full) -> None:
    with pytest.raises(DataValidationError, match="unknown strateg"):
        acquisition_curve(full, "best", seed=0)
    with pytest.raises(DataValidationError, match="unknown strateg"):
        design_benchmark(full, strategies=("random", "psychic"))
    with pytest.raises(DataValidationError, match="steps"):
        acquisition_curve(full, "random", seed=0, steps=0)
    with pytest.raises(DataValidationError, match="seed"):
        design_benchmark(full, seeds=())

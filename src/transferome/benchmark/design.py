"""Experimental design as a benchmark: acquisition curves of strategies that pick experiments.

A design benchmark replays a campaign on data that measured every cell. For each seed a random
share (``start``) of the measured (species, context, perturbation) cells counts as measured;
then, in ``steps`` rounds, a batch of ``step`` (a share of the cells) is acquired by each
strategy:

``suggested``
    :func:`~transferome.crossspecies.gain.pick_batch`, the expected reduction of the
    prediction error of everything still unmeasured, with each cell's error scaled to what the
    predictor's interval says (:func:`~transferome.crossspecies.gain.error_ratio`);
``counts only``
    the same gain from the error model's counts alone (no interval);
``random``
    a random batch;
``largest interval``
    the cells whose predicted error (squared interval half-width) is largest; a cell whose
    perturbation is measured nowhere in its species has no prediction and comes first;
``oracle``
    the cells whose *true* current error is largest (a reference that reads the held-back
    values: what picking by each cell's own error could buy at best).

After each round the predictor (``stacked`` by default), fitted per species on what is
measured, predicts every open cell. The error of the round is that of the completed matrix:
the mean over all cells of the mean squared error over genes, 0 for a measured cell (so it is
the error left on the unmeasured cells, summed, over the number of cells); an unpredictable
cell is predicted as no change. ``error_open`` is the mean over the cells still open.
The area under the curve is the mean of its points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from transferome.crossspecies.gain import (
    CellPredictions,
    DesignGrid,
    error_ratio,
    fit_error_model,
    pick_batch,
    predict_cells,
)
from transferome.crossspecies.reactome import Reactome
from transferome.errors import DataValidationError

__all__ = [
    "DESIGN_STRATEGIES",
    "DesignBenchmarkResult",
    "acquisition_curve",
    "design_benchmark",
    "starting_design",
    "summarize_curves",
]

DESIGN_STRATEGIES: tuple[str, ...] = (
    "suggested",
    "counts only",
    "random",
    "largest interval",
    "oracle",
)
CURVE_COLUMNS = ["strategy", "seed", "step", "measured", "error", "error_open"]


def _errors(
    full: Mapping[str, Reactome], grid: DesignGrid, measured: np.ndarray, preds: CellPredictions
) -> np.ndarray:
    """Return the mean squared error over genes of every possible cell.

    0 where measured, NaN where not possible.
    """
    out = np.full(measured.shape, np.nan)
    for s, species in enumerate(grid.species):
        values = full[species].values
        for c, p in zip(*np.nonzero(grid.possible[s]), strict=True):
            if measured[s, c, p]:
                out[s, c, p] = 0.0
                continue
            pair = (grid.contexts[c], grid.perturbations[p])
            y = values[pair].to_numpy(dtype=float)
            out[s, c, p] = float(np.nanmean((y - preds.changes[species][pair]) ** 2))
    return out


def _pick(
    strategy: str,
    full: Mapping[str, Reactome],
    grid: DesignGrid,
    preds: CellPredictions,
    errors: np.ndarray,
    *,
    k: int,
    rng: np.random.Generator,
    other_species_weight: float,
) -> list[tuple[int, int, int]]:
    open_cells = np.argwhere(grid.possible & ~grid.measured)
    if strategy == "random":
        return [tuple(open_cells[i]) for i in rng.choice(len(open_cells), k, replace=False)]
    if strategy in ("largest interval", "oracle"):
        score = (preds.errors if strategy == "largest interval" else errors)[tuple(open_cells.T)]
        score = np.where(np.isfinite(score), score, np.inf)
        order = np.lexsort((rng.random(len(score)), -score))
        return [tuple(open_cells[i]) for i in order[:k]]
    model = fit_error_model(full, grid, other_species_weight=other_species_weight)
    ratio = error_ratio(model, grid, preds.errors) if strategy == "suggested" else None
    table = pick_batch(model, grid, k, ratio)
    return [
        grid.index(tuple(row))
        for row in table[["species", "context", "perturbation"]].itertuples(index=False)
    ]


def starting_design(grid: DesignGrid, rng: np.random.Generator, start: float) -> np.ndarray:
    """Draw the measured mask a campaign starts from.

    A random ``start`` share of the grid's measured cells (at least one), drawn from ``rng``
    (``np.random.default_rng(seed)`` gives the start of :func:`acquisition_curve` for that
    seed).
    """
    if not 0 < start < 1:
        raise DataValidationError(f"start must lie in (0, 1), got {start}")
    cells = np.argwhere(grid.measured)
    measured = np.zeros_like(grid.measured)
    for i in rng.choice(len(cells), max(1, round(start * len(cells))), replace=False):
        measured[tuple(cells[i])] = True
    return measured


def acquisition_curve(
    full: Mapping[str, Reactome],
    strategy: str,
    seed: int,
    *,
    start: float = 0.3,
    step: float = 0.05,
    steps: int = 6,
    model: str = "stacked",
    other_species_weight: float = 0.0,
) -> pd.DataFrame:
    """One strategy's acquisition curve from one seed's starting design.

    Parameters
    ----------
    full
        Species -> reactome measuring every cell that can be acquired (the truth).
    strategy
        One of :data:`DESIGN_STRATEGIES`.
    seed
        Seeds the starting design (the same for every strategy) and the strategy's draws.
    start, step, steps
        Share of the cells measured at the start, share acquired per round, rounds.
    model
        The registered predictor fitted per species after each round.
    other_species_weight
        What a measurement in another species counts for in the error model (0: the
        predictor is fitted per species, so other species inform nothing).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CURVE_COLUMNS`, one row per round (``step`` 0 is the start).
    """
    if strategy not in DESIGN_STRATEGIES:
        raise DataValidationError(
            f"unknown strategy {strategy!r}; choose from {list(DESIGN_STRATEGIES)}"
        )
    if not 0 < step < 1:
        raise DataValidationError(f"step must lie in (0, 1), got {step}")
    if steps < 1:
        raise DataValidationError(f"steps must be at least 1, got {steps}")
    grid0 = DesignGrid.from_reactomes(full)
    possible = grid0.measured.copy()  # the experiments that exist: what the data measured
    cells = np.argwhere(possible)
    if len(cells) < 3:
        raise DataValidationError(f"a design needs at least 3 measured cells, got {len(cells)}")
    rng = np.random.default_rng(seed)
    measured = starting_design(grid0, rng, start)
    k = max(1, round(step * len(cells)))
    points = []
    for number in range(steps + 1):
        grid = DesignGrid(grid0.species, grid0.contexts, grid0.perturbations, measured, possible)
        preds = predict_cells(full, grid, model=model)
        errors = _errors(full, grid, measured, preds)
        open_ = possible & ~measured
        points.append(
            (
                strategy,
                seed,
                number,
                int(measured.sum()),
                float(np.nanmean(errors[possible])),
                float(np.mean(errors[open_])) if open_.any() else 0.0,
            )
        )
        if number == steps or not open_.any():
            break
        k_now = min(k, int(open_.sum()))
        chosen = _pick(
            strategy,
            full,
            grid,
            preds,
            errors,
            k=k_now,
            rng=rng,
            other_species_weight=other_species_weight,
        )
        measured = measured.copy()
        for index in chosen:
            measured[index] = True
    return pd.DataFrame(points, columns=CURVE_COLUMNS)


@dataclass(frozen=True)
class DesignBenchmarkResult:
    """Curves and their summary.

    Attributes
    ----------
    curves
        Every strategy's curve for every seed (:data:`CURVE_COLUMNS`).
    summary
        Computed from ``curves``: one row per strategy, ``auc_mean`` and ``auc_sd`` over
        seeds (area under the error curve: the mean of its points), ``vs_random``
        (relative difference of the mean AUC), ``p_ttest`` / ``p_wilcoxon`` (paired across
        seeds, against random), ``vs_interval_p`` (paired t-test against largest interval;
        suggested only), ``seeds``.
    """

    curves: pd.DataFrame

    @property
    def summary(self) -> pd.DataFrame:
        """The summary of the curves (:func:`summarize_curves`)."""
        return summarize_curves(self.curves)


def summarize_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Summarise the curves of a :class:`DesignBenchmarkResult`."""
    from scipy import stats

    auc = curves.groupby(["strategy", "seed"])["error"].mean().unstack("strategy")
    strategies = [s for s in DESIGN_STRATEGIES if s in auc.columns]
    rows = []
    for strategy in strategies:
        row = {
            "strategy": strategy,
            "auc_mean": float(auc[strategy].mean()),
            "auc_sd": float(auc[strategy].std()) if len(auc) > 1 else np.nan,
            "vs_random": np.nan,
            "p_ttest": np.nan,
            "p_wilcoxon": np.nan,
            "vs_interval_p": np.nan,
            "seeds": len(auc),
        }
        if "random" in auc.columns:
            row["vs_random"] = float(auc[strategy].mean() / auc["random"].mean() - 1)
            diff = auc[strategy] - auc["random"]
            if strategy != "random" and len(auc) > 1 and (diff != 0).any():
                row["p_ttest"] = float(stats.ttest_rel(auc[strategy], auc["random"]).pvalue)
                row["p_wilcoxon"] = float(stats.wilcoxon(diff).pvalue)
        if strategy == "suggested" and "largest interval" in auc.columns and len(auc) > 1:
            diff = auc[strategy] - auc["largest interval"]
            if (diff != 0).any():
                row["vs_interval_p"] = float(
                    stats.ttest_rel(auc[strategy], auc["largest interval"]).pvalue
                )
        rows.append(row)
    return pd.DataFrame(rows)


def design_benchmark(
    full: Mapping[str, Reactome],
    *,
    strategies: Sequence[str] = ("suggested", "random", "largest interval"),
    seeds: Sequence[int] = tuple(range(10)),
    start: float = 0.3,
    step: float = 0.05,
    steps: int = 6,
    model: str = "stacked",
    other_species_weight: float = 0.0,
    on_step: Callable[[str], None] | None = None,
) -> DesignBenchmarkResult:
    """Compute the acquisition curves of ``strategies`` over ``seeds``, and their summary.

    See :func:`acquisition_curve`; ``on_step`` is called after each curve (progress).
    """
    unknown = [s for s in strategies if s not in DESIGN_STRATEGIES]
    if unknown:
        raise DataValidationError(
            f"unknown strategies {unknown}; choose from {list(DESIGN_STRATEGIES)}"
        )
    if not len(seeds):
        raise DataValidationError("give at least one seed")
    frames = []
    for seed in seeds:
        for strategy in strategies:
            frames.append(
                acquisition_curve(
                    full,
                    strategy,
                    int(seed),
                    start=start,
                    step=step,
                    steps=steps,
                    model=model,
                    other_species_weight=other_species_weight,
                )
            )
            if on_step is not None:
                on_step(f"{strategy}, seed {seed}")
    return DesignBenchmarkResult(pd.concat(frames, ignore_index=True))

"""Experimental design stage: acquisition curves of three ways to choose experiments.

The experiments are suggested, random or largest-interval-first; each curve comes with a band
over seeds.

For each seed a random share of the measured species x context x perturbation cells of the
data counts as measured; batches of the others are acquired back by expected gain
(``suggested``), at random, or by the widest interval of the default predictor first; after
each batch the predictor, fitted per species on what is measured, predicts every open cell,
and the curve is the error left on the unmeasured cells (see
:mod:`transferome.benchmark.design`). The stage also lists the first experiments
:func:`~transferome.crossspecies.suggest_experiments` suggests from the first seed's starting
design.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from transferome.errors import DataValidationError
from transferome.pipeline._stage import RunContext, Stage, StageResult, register_stage

__all__: list[str] = []

STRATEGIES = ("suggested", "random", "largest interval")


def _run_design(
    context: RunContext,
    *,
    start: float = 0.3,
    step: float = 0.05,
    steps: int = 6,
    seeds: int = 3,
    budget: int = 5,
) -> StageResult:
    from transferome.benchmark.design import design_benchmark, starting_design
    from transferome.crossspecies import only_measured, suggest_experiments
    from transferome.crossspecies.gain import DesignGrid

    data, config = context.data, context.config
    if int(seeds) < 1:
        raise DataValidationError(f"tasks.design.seeds must be at least 1, got {seeds}")
    full = {s: data.reactome(s) for s in data.adatas}
    result = design_benchmark(
        full,
        strategies=STRATEGIES,
        seeds=[config.seed + i for i in range(int(seeds))],
        start=start,
        step=step,
        steps=steps,
        on_step=context.step,
    )
    grid = DesignGrid.from_reactomes(full)
    measured = starting_design(grid, np.random.default_rng(config.seed), start)
    cells = {grid.cell(tuple(index)) for index in np.argwhere(measured)}
    open_cells = [grid.cell(tuple(index)) for index in np.argwhere(grid.measured & ~measured)]
    suggestions = suggest_experiments(
        only_measured(full, cells), budget, candidates=open_cells, orthologs=data.orthologs
    )
    return StageResult(
        tables={
            "curve": result.curves,
            "auc": result.summary,
            "start": pd.DataFrame(sorted(cells), columns=["species", "context", "perturbation"]),
            "suggestions": suggestions,
        }
    )


def _design_fits(context: RunContext, options: Mapping[str, Any]) -> list[str]:
    # one progress step per curve (a predictor fit per species and round)
    return ["acquisition curve"] * (len(STRATEGIES) * int(options.get("seeds", 3)))


register_stage(
    Stage(
        "design",
        "Experimental design",
        "from a random 30% of the measured (species, {context}, {perturbation}) cells, the "
        "others are acquired back in batches by expected gain (suggested), at random, or by "
        "the widest interval of the default predictor first; the curve is the error left on "
        "the unmeasured cells, mean and band over seeds",
        _run_design,
        lambda context: None,
        _design_fits,
        lambda quick: {"steps": 2, "seeds": 2} if quick else {"steps": 6, "seeds": 3},
    )
)

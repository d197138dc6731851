"""Experimental design stage: the acquisition curve of suggested, largest-uncertainty-first
and random experiments.

From a partial design (a random share of the species x context x perturbation cells of the data
hidden), cells are acquired one at a time: the one :func:`suggest_experiments` ranks first by
expected gain (``suggested``: the reduction of the prediction error of everything still
unmeasured), the one where the completion ensemble disagrees most (``largest uncertainty``), or
one drawn at random; after each acquisition the completion ensemble is refitted and the error of
the completed reactome on the initially hidden cells is measured against the values observed in
the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from transferome.errors import DataValidationError
from transferome.pipeline.stages import RunContext, Stage, StageResult, register_stage

__all__: list[str] = []

Cell = tuple[str, str, str]
STRATEGIES = ("suggested", "largest uncertainty", "random")


def _error(
    ensemble: Any, full: Mapping[str, Any], measured: set[Cell], hidden: list[Cell]
) -> float:
    """Mean squared error over the initially hidden cells (acquired ones read as measured)."""
    errors = []
    for s, c, p in hidden:
        observed = full[s].values[(c, p)]
        value = observed if (s, c, p) in measured else ensemble.mean[s][(c, p)]
        diff = value.reindex(observed.index).to_numpy(float) - observed.to_numpy(float)
        errors.append(float(np.nanmean(diff**2)))
    return float(np.mean(errors))


def _run_design(
    context: RunContext,
    *,
    hidden_fraction: float = 0.5,
    steps: int = 4,
    n_models: int = 3,
    epochs: int = 150,
    budget: int = 5,
) -> StageResult:
    from transferome.crossspecies import (
        CompletionConfig,
        only_measured,
        reactome,
        reactome_ensemble,
        suggest_experiments,
    )

    data, config = context.data, context.config
    if not 0 < hidden_fraction < 1:
        raise DataValidationError(
            f"tasks.design.hidden_fraction must be in (0, 1), got {hidden_fraction}"
        )
    full = {s: reactome(a, schema=data.schema, species=None) for s, a in data.adatas.items()}
    cells = sorted((s, c, p) for s, r in full.items() for c, p in r.measured_pairs())
    rng = np.random.default_rng(config.seed)
    n_hidden = max(1, round(hidden_fraction * len(cells)))
    hidden_index = set(rng.choice(len(cells), n_hidden, replace=False).tolist())
    hidden = [cell for i, cell in enumerate(cells) if i in hidden_index]
    start = {cell for i, cell in enumerate(cells) if i not in hidden_index}
    completion = CompletionConfig(epochs=epochs)
    rows, first_suggestions = [], None
    for strategy in STRATEGIES:
        measured = set(start)
        pick = np.random.default_rng([config.seed, 1])
        for step in range(steps + 1):
            masked = only_measured(full, measured)
            ensemble = reactome_ensemble(
                masked,
                orthologs=data.orthologs,
                n_models=n_models,
                config=completion,
                random_state=config.seed + step,
            )
            rows.append((strategy, step, _error(ensemble, full, measured, hidden)))
            context.step(f"{strategy}, {step} acquired")
            if step == steps:
                break
            open_cells = [cell for cell in hidden if cell not in measured]
            if not open_cells:
                break
            if strategy == "suggested":
                ranked = suggest_experiments(masked, budget, candidates=open_cells, method="gain")
                if first_suggestions is None:
                    first_suggestions = ranked
                measured.add(tuple(ranked.loc[0, ["species", "context", "perturbation"]]))
            elif strategy == "largest uncertainty":
                ranked = suggest_experiments(
                    masked, 1, candidates=open_cells, ensemble=ensemble, method="ensemble"
                )
                measured.add(tuple(ranked.loc[0, ["species", "context", "perturbation"]]))
            else:
                measured.add(open_cells[int(pick.integers(len(open_cells)))])
    curve = pd.DataFrame(rows, columns=["strategy", "acquired", "mse_hidden"])
    tables = {
        "curve": curve,
        "hidden": pd.DataFrame(hidden, columns=["species", "context", "perturbation"]),
    }
    if first_suggestions is not None:
        tables["suggestions"] = first_suggestions
    return StageResult(tables=tables)


def _design_fits(context: RunContext, options: Mapping[str, Any]) -> list[str]:
    steps = int(options.get("steps", 4))
    # one progress step per ensemble (of n_models completion fits) and strategy
    return ["completion ensemble"] * (len(STRATEGIES) * (steps + 1))


register_stage(
    Stage(
        "design",
        "Experimental design",
        "half of the measured (species, {context}, {perturbation}) cells are hidden and "
        "acquired back one at a time, by expected gain (suggested), by the completion "
        "ensemble's disagreement (largest uncertainty) or at random; the curve is the error "
        "of the completed reactome on the hidden cells",
        _run_design,
        lambda context: None,
        _design_fits,
        lambda quick: (
            {"steps": 2, "n_models": 2, "epochs": 20}
            if quick
            else {"steps": 4, "n_models": 3, "epochs": 80}
        ),
    )
)

"""Experimental design: which unmeasured (species, context, perturbation) cell to measure next.

Two rankings. ``method="gain"`` (the default; :mod:`transferome.crossspecies.gain`): the
expected reduction of the prediction error of every cell that stays unmeasured, from an error
model fitted to the data and the intervals of the default predictor, in greedy batches.
``method="ensemble"``: a cell's expected benefit is the disagreement of an ensemble of
reactome completions (query by committee): each member is the completion model of
:mod:`transferome.crossspecies.completion` fitted, from its own seed, to a random subset of
the measured cells. Where the members agree, the measured cells already pin the cell down;
where they disagree, measuring it removes the most uncertainty (the mean variance over genes
estimates the squared error of the ensemble mean there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.crossspecies.completion import (
    Cell,
    CompletionConfig,
    ReactomeCompleter,
    ortholog_groups,
)
from transferome.crossspecies.reactome import Reactome, reactome
from transferome.data.schema import Schema
from transferome.data.species import MultiSpecies
from transferome.errors import DataValidationError

__all__ = [
    "ReactomeEnsemble",
    "measured_cells",
    "only_measured",
    "reactome_ensemble",
    "suggest_experiments",
]

SUGGESTION_COLUMNS = ["rank", "species", "context", "perturbation", "score", "reason"]


@dataclass(frozen=True)
class ReactomeEnsemble:
    """Mean and variance over the members of a completion ensemble.

    Attributes
    ----------
    mean, var
        Species -> genes x (context, perturbation) predictions (mean) and their variance
        across members, over the union of the species' pairs.
    measured
        The measured cells the ensemble was fitted to.
    n_models
        Number of members.
    """

    mean: Mapping[str, pd.DataFrame]
    var: Mapping[str, pd.DataFrame]
    measured: frozenset[Cell]
    n_models: int


def measured_cells(reactomes: Mapping[str, Reactome]) -> set[Cell]:
    """``(species, context, perturbation)`` cells with a measured value."""
    return {(s, c, p) for s, r in reactomes.items() for c, p in r.measured_pairs()}


def only_measured(reactomes: Mapping[str, Reactome], measured: set[Cell]) -> dict[str, Reactome]:
    """Copy ``reactomes`` so that every cell outside ``measured`` reads as unmeasured.

    The values of a hidden ``(species, context, perturbation)`` cell become NaN and its
    ``n_treated`` 0, as if the experiment had not been run (used to simulate a partial design).
    """
    out = {}
    for species, result in reactomes.items():
        values = result.values.copy()
        n = result.n.copy()
        for c, p in result.pairs:
            if (species, c, p) not in measured:
                values[(c, p)] = np.nan
                n.loc[(c, p), "n_treated"] = 0
        out[species] = result.replace(values=values, n=n)
    return out


def _as_reactomes(
    data: Mapping[str, Reactome | AnnData], schema: Schema | None, layer: str | None
) -> dict[str, Reactome]:
    if not isinstance(data, Mapping) or not data:
        raise DataValidationError(
            "data must map each species to its Reactome or AnnData, e.g. {'mouse': adata}"
        )
    out = {}
    for species, item in data.items():
        if isinstance(item, Reactome):
            out[str(species)] = item
        elif isinstance(item, AnnData):
            out[str(species)] = reactome(item, schema=schema, layer=layer)
        else:
            raise DataValidationError(
                f"data[{species!r}] must be a Reactome or an AnnData, got {type(item).__name__}"
            )
    return out


def reactome_ensemble(
    reactomes: Mapping[str, Reactome],
    *,
    orthologs: pd.DataFrame | None = None,
    n_models: int = 4,
    subsample: float = 0.8,
    config: CompletionConfig | None = None,
    random_state: int = 0,
) -> ReactomeEnsemble:
    """Fit ``n_models`` completions, each to a random ``subsample`` of the measured cells.

    Every member keeps at least one measured cell per species. Seeds are drawn from
    ``np.random.default_rng(random_state)``.
    """
    if n_models < 2:
        raise DataValidationError(f"an ensemble needs n_models >= 2, got {n_models}")
    if not 0.0 < subsample <= 1.0:
        raise DataValidationError(f"subsample must lie in (0, 1], got {subsample}")
    groups = ortholog_groups({s: r.genes for s, r in reactomes.items()}, orthologs)
    measured = sorted(measured_cells(reactomes))
    rng = np.random.default_rng(random_state)
    members = []
    for _ in range(n_models):
        drop = rng.random(len(measured)) >= subsample
        for species in reactomes:
            own = [i for i, cell in enumerate(measured) if cell[0] == species]
            if own and drop[own].all():
                drop[own[int(rng.integers(len(own)))]] = False
        hide = [cell for cell, d in zip(measured, drop, strict=True) if d]
        model = ReactomeCompleter(config, random_state=int(rng.integers(2**31 - 1)))
        members.append(model.fit(reactomes, groups=groups, hide=hide).predict())
    mean = {s: sum(m[s] for m in members) / n_models for s in reactomes}
    var = {s: sum((m[s] - mean[s]) ** 2 for m in members) / (n_models - 1) for s in reactomes}
    return ReactomeEnsemble(mean, var, frozenset(measured), n_models)


def _reason(cell: Cell, sd: float, quantile: float, measured: set[Cell], grid) -> str:
    species, context, perturbation = cell
    contexts, perturbations, all_species = grid
    with_p = sum((species, c, perturbation) in measured for c in contexts)
    with_c = sum((species, context, p) in measured for p in perturbations)
    elsewhere = [s for s in all_species if s != species and (s, context, perturbation) in measured]
    parts = [
        f"ensemble members disagree (sd {sd:.3g} over genes, higher than "
        f"{100 * quantile:.0f}% of the candidates)",
        f"{perturbation} measured in {with_p} of {len(contexts)} contexts of {species}",
        f"{context} measured under {with_c} of {len(perturbations)} perturbations in {species}",
        (
            f"measured in {', '.join(elsewhere)}"
            if elsewhere
            else "not measured in any other species"
        ),
    ]
    return "; ".join(parts)


def suggest_experiments(  # noqa: PLR0913 - the data, the budget, keyword-only options
    data: Mapping[str, Reactome | AnnData] | MultiSpecies,
    budget: int = 5,
    *,
    orthologs: pd.DataFrame | None = None,
    candidates: Sequence[Cell] | None = None,
    n_models: int = 4,
    subsample: float = 0.8,
    config: CompletionConfig | None = None,
    ensemble: ReactomeEnsemble | None = None,
    schema: Schema | None = None,
    layer: str | None = None,
    random_state: int = 0,
    method: str = "gain",
    other_species_weight: float = 0.5,
    predictor: str | None = "stacked",
) -> pd.DataFrame:
    """Rank unmeasured (species, context, perturbation) experiments by expected benefit.

    Parameters
    ----------
    data
        Species -> :class:`Reactome` or AnnData (its reactome is computed with ``schema`` and
        ``layer``), or a :class:`~transferome.data.MultiSpecies`.
    budget
        Number of suggestions returned.
    orthologs
        Ortholog table tying the species' genes in the completion model (default: the table
        of ``data`` when it is a :class:`~transferome.data.MultiSpecies`).
    candidates
        Cells that could be measured; default every cell of species x contexts x
        perturbations (the union over species) without a measured value.
    n_models, subsample, config, random_state
        The ensemble (see :func:`reactome_ensemble`).
    ensemble
        A fitted :func:`reactome_ensemble` of the same data to reuse instead of fitting one
        (implies ``method="ensemble"``).
    schema, layer
        Keys and layer of the AnnData in ``data`` (their reactomes); unused for a
        :class:`Reactome`.
    method
        ``"gain"``: the ``budget`` experiments picked greedily by the expected reduction of
        the prediction error over the cells that stay unmeasured (a batch: each pick counts
        as measured before the next). ``"ensemble"``: the cells where a completion ensemble
        disagrees most (each ranked alone).
    other_species_weight
        ``method="gain"``: what a measurement in another species counts for in the error
        model, against one in the same species.
    predictor
        ``method="gain"``: a registered transfer model (default ``stacked``) fitted per
        species on the measured cells; its intervals say how hard each open cell is to
        predict, and scale that cell's part of the gain (its own error and what other
        measurements remove from it; see :func:`~transferome.crossspecies.gain.error_ratio`).
        ``None``: the error model's counts alone.

    Returns
    -------
    pandas.DataFrame
        Columns ``rank, species, context, perturbation, score, reason``, best first. With
        ``"gain"``, ``score`` is the expected error removed (the mean squared error over genes
        summed over cells) and a column ``own_error`` the cell's own predicted error; with
        ``"ensemble"``, the mean over genes of the ensemble variance of the cell.
    """
    if budget < 1:
        raise DataValidationError(f"budget must be at least 1, got {budget}")
    if method not in ("gain", "ensemble"):
        raise DataValidationError(f"method must be 'gain' or 'ensemble', got {method!r}")
    if isinstance(data, MultiSpecies) and orthologs is None:
        orthologs = data.orthologs
    reactomes = _as_reactomes(data, schema, layer)
    if method == "gain" and ensemble is None:
        from transferome.crossspecies.gain import (
            DesignGrid,
            error_ratio,
            fit_error_model,
            pick_batch,
            predict_cells,
        )

        grid = DesignGrid.from_reactomes(reactomes, candidates=candidates)
        model = fit_error_model(reactomes, grid, other_species_weight=other_species_weight)
        ratio = None
        if predictor is not None:
            cells = predict_cells(reactomes, grid, model=predictor)
            ratio = error_ratio(model, grid, cells.errors)
        table = pick_batch(model, grid, budget, ratio)
        return table[[*SUGGESTION_COLUMNS, "own_error"]]
    measured = measured_cells(reactomes)
    pairs = sorted({pair for r in reactomes.values() for pair in r.pairs})
    contexts = sorted({c for c, _ in pairs})
    perturbations = sorted({p for _, p in pairs})
    if candidates is None:
        candidates = [(s, c, p) for s in reactomes for c, p in pairs if (s, c, p) not in measured]
    else:
        candidates = [tuple(map(str, cell)) for cell in candidates]  # type: ignore[misc]
        bad = [cell for cell in candidates if cell[0] not in reactomes or cell[1:] not in pairs]
        if bad:
            raise DataValidationError(
                f"candidate cells {bad[:5]} name an unknown species or (context, perturbation)"
            )
    if not candidates:
        return pd.DataFrame(columns=SUGGESTION_COLUMNS)
    if ensemble is None:
        ensemble = reactome_ensemble(
            reactomes,
            orthologs=orthologs,
            n_models=n_models,
            subsample=subsample,
            config=config,
            random_state=random_state,
        )
    scores = np.array([float(ensemble.var[s][(c, p)].mean()) for s, c, p in candidates])
    order = np.argsort(-scores, kind="stable")[:budget]
    ranks = scores.argsort(kind="stable").argsort() / max(len(scores) - 1, 1)
    labels = (contexts, perturbations, list(reactomes))
    rows = [
        {
            "rank": k + 1,
            "species": candidates[i][0],
            "context": candidates[i][1],
            "perturbation": candidates[i][2],
            "score": scores[i],
            "reason": _reason(candidates[i], np.sqrt(scores[i]), ranks[i], measured, labels),
        }
        for k, i in enumerate(order)
    ]
    return pd.DataFrame(rows, columns=SUGGESTION_COLUMNS)

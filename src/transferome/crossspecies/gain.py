"""Expected gain of an experiment: how much it lowers the prediction error of what stays unmeasured.

A design is a grid of cells (species x context x perturbation), some measured. The error of
predicting an unmeasured cell is modelled from what informs it, the contexts where its
perturbation is measured (``n``) and the perturbations measured in its context (``m``):

    error(s, c, p) = scale[s, p] * (theta0 + theta1 / (1 + n_eff) + theta2 / (1 + m))

with ``n_eff = n + other_species_weight * (contexts of p measured in the other species)`` and
``scale[s, p]`` the mean squared change of perturbation ``p`` (shrunk towards the species' mean;
the species' mean for a perturbation measured nowhere). ``theta >= 0`` is fitted by non-negative
least squares to leave-one-out errors of the measured cells: each in turn is predicted by the
mean change of its perturbation in the other measured contexts (zero where there is none), with
``n`` and ``m`` counted as if it were hidden, and by no change (its error had the
perturbation been measured nowhere, ``n = 0``).

Measuring cell ``i`` removes its own error and lowers that of every unmeasured cell it informs:
the other contexts of its perturbation (``n`` grows by one; in the other species by
``other_species_weight``) and the other perturbations of its context (``m`` grows by one). The
sum is the expected gain. A predictor's own view of each open cell (:func:`predict_cells`: the
default predictor fitted per species on the measured cells, its intervals read as expected
squared errors) enters through :func:`error_ratio`: each cell's modelled error, its own and
what other measurements remove from it, is scaled to what the predictor's interval says.
A batch of ``k`` is picked greedily, each pick counted as measured
before the next is chosen, so that the diminishing returns of one perturbation or context spread
the batch instead of returning k near-copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.optimize import nnls

from transferome._logging import get_logger
from transferome.crossspecies.reactome import Reactome
from transferome.data.schema import Schema
from transferome.errors import DataValidationError

__all__ = [
    "CellPredictions",
    "DesignGrid",
    "ErrorModel",
    "error_ratio",
    "expected_gains",
    "fit_error_model",
    "pick_batch",
    "predict_cells",
]

_log = get_logger(__name__)

Cell = tuple[str, str, str]
_SHRINK = 2.0  # pseudo-count of the species' mean in a perturbation's scale


@dataclass(frozen=True)
class DesignGrid:
    """The cells of a design and which of them are measured.

    Attributes
    ----------
    species, contexts, perturbations
        Labels of the three axes.
    measured
        Boolean species x contexts x perturbations array.
    possible
        Boolean array of the same shape: the cells that exist as experiments (measured or not).
    """

    species: tuple[str, ...]
    contexts: tuple[str, ...]
    perturbations: tuple[str, ...]
    measured: np.ndarray
    possible: np.ndarray

    @classmethod
    def from_reactomes(
        cls, reactomes: Mapping[str, Reactome], candidates: Sequence[Cell] | None = None
    ) -> DesignGrid:
        """Build the grid of ``reactomes``.

        A cell is measured where a value exists; possible where measured, among
        ``candidates``, or (without candidates) everywhere in the grid.
        """
        species = tuple(reactomes)
        pairs = sorted({pair for r in reactomes.values() for pair in r.pairs})
        contexts = tuple(sorted({c for c, _ in pairs}))
        perturbations = tuple(sorted({p for _, p in pairs}))
        shape = (len(species), len(contexts), len(perturbations))
        measured = np.zeros(shape, dtype=bool)
        ci = {c: i for i, c in enumerate(contexts)}
        pi = {p: i for i, p in enumerate(perturbations)}
        for s, name in enumerate(species):
            for c, p in reactomes[name].measured_pairs():
                measured[s, ci[c], pi[p]] = True
        if candidates is None:
            possible = np.ones(shape, dtype=bool)
        else:
            possible = measured.copy()
            si = {s: i for i, s in enumerate(species)}
            for cell in candidates:
                s_name, c_name, p_name = map(str, cell)
                if s_name not in si or c_name not in ci or p_name not in pi:
                    raise DataValidationError(
                        f"candidate cell {cell} names an unknown species, context or perturbation"
                    )
                possible[si[s_name], ci[c_name], pi[p_name]] = True
        return cls(species, contexts, perturbations, measured, possible)

    def cell(self, index: tuple[int, int, int]) -> Cell:
        """Return the ``(species, context, perturbation)`` names of a grid index."""
        s, c, p = index
        return self.species[s], self.contexts[c], self.perturbations[p]

    def index(self, cell: Cell) -> tuple[int, int, int]:
        """Return the grid index of a ``(species, context, perturbation)`` cell."""
        s, c, p = cell
        return self.species.index(s), self.contexts.index(c), self.perturbations.index(p)


@dataclass(frozen=True)
class ErrorModel:
    """Fitted error model (see the module docstring).

    Attributes
    ----------
    theta
        ``(theta0, theta1, theta2)``: floor, perturbation term, context term.
    scale
        species x perturbations mean squared change (shrunk; the species' mean where unmeasured).
    other_species_weight
        What a measurement in another species counts for, against one in the same species.
    n_fitted
        Leave-one-out errors the fit used.
    """

    theta: np.ndarray
    scale: np.ndarray
    other_species_weight: float
    n_fitted: int

    def counts(self, measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``n_eff`` (species x perturbations) and ``m`` (species x contexts)."""
        n = measured.sum(axis=1).astype(float)
        others = n.sum(axis=0, keepdims=True) - n
        return n + self.other_species_weight * others, measured.sum(axis=2).astype(float)

    def error(self, measured: np.ndarray) -> np.ndarray:
        """Predict the squared error of every cell if it were unmeasured.

        The array is species x contexts x perturbations.
        """
        n_eff, m = self.counts(measured)
        t0, t1, t2 = self.theta
        return self.scale[:, None, :] * (
            t0 + t1 / (1.0 + n_eff[:, None, :]) + t2 / (1.0 + m[:, :, None])
        )


def _values(reactomes: Mapping[str, Reactome], grid: DesignGrid) -> list[dict]:
    out = []
    for name in grid.species:
        values = reactomes[name].values
        out.append({pair: values[pair].to_numpy(dtype=float) for pair in values.columns})
    return out


def fit_error_model(
    reactomes: Mapping[str, Reactome],
    grid: DesignGrid | None = None,
    *,
    other_species_weight: float = 0.5,
) -> ErrorModel:
    """Fit :class:`ErrorModel` to the leave-one-out errors of the measured cells."""
    grid = grid or DesignGrid.from_reactomes(reactomes)
    if not 0 <= other_species_weight <= 1:
        raise DataValidationError(
            f"other_species_weight must be in [0, 1], got {other_species_weight}"
        )
    values = _values(reactomes, grid)
    S, C, P = grid.measured.shape
    scale = np.full((S, P), np.nan)
    rows, targets = [], []
    for s in range(S):
        sq = np.full((C, P), np.nan)
        for c in range(C):
            for p in range(P):
                if grid.measured[s, c, p]:
                    y = values[s][(grid.contexts[c], grid.perturbations[p])]
                    sq[c, p] = np.nanmean(y**2)
        overall = np.nanmean(sq) if np.isfinite(sq).any() else 1.0
        k = np.isfinite(sq).sum(axis=0)
        total = np.nansum(sq, axis=0)
        scale[s] = (total + _SHRINK * overall) / (k + _SHRINK)
        m_all = grid.measured[s].sum(axis=1)
        for p in range(P):
            where = np.flatnonzero(grid.measured[s, :, p])
            if not len(where):
                continue
            stack = np.stack([values[s][(grid.contexts[c], grid.perturbations[p])] for c in where])
            total_p = np.nansum(stack, axis=0)
            count_p = np.isfinite(stack).sum(axis=0)
            for row, c_row in enumerate(where):
                y = stack[row]
                others = count_p - np.isfinite(y)
                rest = total_p - np.nan_to_num(y)
                pred = np.divide(rest, others, out=np.zeros_like(rest), where=others > 0)
                n = len(where) - 1
                m = m_all[c_row] - 1
                if n > 0:
                    error = np.nanmean((y - pred) ** 2)
                    rows.append((1.0, 1.0 / (1.0 + n), 1.0 / (1.0 + m)))
                    targets.append(error / scale[s, p])
                # had the perturbation been measured nowhere, the prediction would be no
                # change and the error the change itself: an exact point at n = 0
                rows.append((1.0, 1.0, 1.0 / (1.0 + m)))
                targets.append(np.nanmean(y**2) / scale[s, p])
    if len(rows) < 3:
        raise DataValidationError(
            f"the error model needs at least 3 measured cells, got {len(rows)}"
        )
    theta, _ = nnls(np.asarray(rows), np.asarray(targets))
    return ErrorModel(theta, scale, float(other_species_weight), len(rows))


@dataclass(frozen=True)
class CellPredictions:
    """A predictor's view of the open cells of a design.

    Attributes
    ----------
    changes
        Species -> ``{(context, perturbation): predicted change over the genes}`` for every open,
        possible cell; a cell whose perturbation is measured nowhere in its species is
        predicted as no change.
    errors
        Expected squared error of each cell's prediction (species x contexts x perturbations):
        the mean over genes of the squared half-width of the predictor's interval divided by
        the squared normal quantile of its level; NaN where there is no interval (measured,
        impossible or unpredictable cells, or a predictor without intervals).
    """

    changes: Mapping[str, Mapping[tuple[str, str], np.ndarray]]
    errors: np.ndarray


def _signature_data(r: Reactome, pairs: Sequence[tuple[str, str]]) -> AnnData:
    """Return the measured changes of ``pairs`` as signature data.

    One row per pair, plus one zero control per context of the reactome.
    """
    values = r.values[list(pairs)].to_numpy(dtype=np.float32).T
    contexts = sorted({c for c, _ in r.pairs})
    obs = pd.DataFrame(
        {
            "context": [c for c, _ in pairs] + contexts,
            "perturbation": [p for _, p in pairs] + ["control"] * len(contexts),
        }
    )
    obs.index = obs.index.astype(str)
    zeros = np.zeros((len(contexts), values.shape[1]), dtype=np.float32)
    return AnnData(
        np.vstack([values, zeros]), obs=obs, var=pd.DataFrame(index=r.values.index.astype(str))
    )


def predict_cells(
    reactomes: Mapping[str, Reactome],
    grid: DesignGrid,
    *,
    model: str = "stacked",
    params: Mapping[str, object] | None = None,
) -> CellPredictions:
    """Fit a transfer predictor per species on the measured cells and predict the open ones.

    The measured and open cells are those of ``grid``.

    Parameters
    ----------
    reactomes
        Species -> reactome holding (at least) the values of the measured cells.
    grid
        The design: which cells are measured and which are possible.
    model, params
        A registered model (:func:`~transferome.models.get_model`) and its parameters; its
        intervals (``layers["lower"]`` / ``["upper"]``), when it has them, give the errors.
        Where too little is measured to fit it, a species falls back to ``additive`` (no
        intervals).
    """
    from scipy.stats import norm

    from transferome.models import get_model

    schema = Schema().without_optional_keys()
    changes: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    errors = np.full(grid.measured.shape, np.nan)
    for s, species in enumerate(grid.species):
        r = reactomes[species]
        have = [
            grid.cell((s, c, p))[1:] for c, p in zip(*np.nonzero(grid.measured[s]), strict=True)
        ]
        seen = {p for _, p in have}
        targets = [
            grid.cell((s, c, p))[1:]
            for c, p in zip(*np.nonzero(grid.possible[s] & ~grid.measured[s]), strict=True)
        ]
        known = [t for t in targets if t[1] in seen]
        changes[species] = {t: np.zeros(len(r.values)) for t in targets if t[1] not in seen}
        if not known:
            continue
        train = _signature_data(r, have)
        try:
            fitted = get_model(model)(**dict(params or {})).fit(train, schema=schema)
        except DataValidationError as exc:
            # too little measured to train it (e.g. no perturbation in two contexts): the
            # mean change of each perturbation over its measured contexts, without intervals
            _log.info("%s: %s cannot be fitted (%s); using additive", species, model, exc)
            fitted = get_model("additive")().fit(train, schema=schema)
        result = fitted.predict(train, known)
        labels = list(
            zip(
                result.obs["context"].astype(str),
                result.obs["perturbation"].astype(str),
                strict=True,
            )
        )
        x = np.asarray(result.X, dtype=float)
        width = np.full(len(labels), np.nan)
        if "lower" in result.layers and "upper" in result.layers:
            half = (np.asarray(result.layers["upper"]) - np.asarray(result.layers["lower"])) / 2
            level = float(result.uns.get("interval", 0.8))
            width = np.nanmean(half**2, axis=1) / norm.ppf(0.5 + level / 2) ** 2
        for i, label in enumerate(labels):
            changes[species][label] = x[i]
            errors[grid.index((species, *label))] = width[i]
    return CellPredictions(changes, errors)


def error_ratio(model: ErrorModel, grid: DesignGrid, errors: np.ndarray) -> np.ndarray:
    """How much harder each cell is than the count model says, as a multiplier of its error.

    ``errors`` is a predictor's expected squared error of each cell (species x contexts x
    perturbations; e.g. :attr:`CellPredictions.errors`, from its intervals), NaN where it has
    none. Returns ``errors`` / :meth:`ErrorModel.error` per cell, 1 where ``errors`` is not
    finite and positive. Passed to :func:`expected_gains` / :func:`pick_batch` as ``ratio``,
    it scales both the cell's own error and the share of it that other measurements remove.
    """
    base = model.error(grid.measured)
    errors = np.asarray(errors, dtype=float)
    if errors.shape != base.shape:
        raise DataValidationError(f"errors has shape {errors.shape}, the design grid {base.shape}")
    good = np.isfinite(errors) & (errors > 0) & (base > 0)
    return np.where(good, np.divide(errors, base, out=np.ones_like(base), where=good), 1.0)


def expected_gains(
    model: ErrorModel,
    measured: np.ndarray,
    possible: np.ndarray,
    ratio: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Compute the expected gain of measuring each cell, and its parts.

    Each is species x contexts x perturbations, NaN where the cell is measured or not
    possible.

    ``ratio`` (see :func:`error_ratio`) multiplies each cell's modelled error, its own and
    the reductions that other measurements bring it.

    Returns a dict with ``gain``, ``own`` (the cell's own predicted error), ``perturbation``
    (the error it removes from the other contexts of its perturbation, other species included)
    and ``context`` (from the other perturbations of its context).
    """
    _, t1, t2 = model.theta
    n_eff, m = model.counts(measured)
    open_cells = possible & ~measured
    r = np.ones(measured.shape) if ratio is None else np.asarray(ratio, dtype=float)
    own = model.error(measured) * r
    weight = open_cells * r  # the open cells, each weighted by its ratio
    w = model.other_species_weight
    # the perturbation term: every other open cell of p in the species, n_eff + 1
    drop_same = 1.0 / (1.0 + n_eff) - 1.0 / (2.0 + n_eff)
    drop_other = 1.0 / (1.0 + n_eff) - 1.0 / (1.0 + n_eff + w)
    open_p = weight.sum(axis=1)  # species x perturbations
    per_p_same = model.scale * t1 * drop_same * open_p
    per_p_other = model.scale * t1 * drop_other * open_p
    cross = per_p_other.sum(axis=0, keepdims=True) - per_p_other
    # (less the candidate itself, which is open and counted in open_p)
    perturbation = (per_p_same + cross)[:, None, :] - (model.scale * t1 * drop_same)[:, None, :] * r
    # the context term: every other open cell of the context, m + 1
    drop_m = 1.0 / (1.0 + m) - 1.0 / (2.0 + m)  # species x contexts
    open_scale = (weight * model.scale[:, None, :]).sum(axis=2)  # species x contexts
    context = t2 * drop_m[:, :, None] * (open_scale[:, :, None] - model.scale[:, None, :] * r)
    gain = own + perturbation + context
    mask = np.where(open_cells, 1.0, np.nan)
    return {
        "gain": gain * mask,
        "own": own * mask,
        "perturbation": perturbation * mask,
        "context": context * mask,
    }


def _reason(
    grid: DesignGrid,
    index: tuple[int, int, int],
    parts: Mapping[str, np.ndarray],
    measured: np.ndarray,
    ratio: np.ndarray | None,
) -> str:
    s, c, p = index
    species, context, perturbation = grid.cell(index)
    with_p = int(measured[s, :, p].sum())
    with_c = int(measured[s, c, :].sum())
    other = int(measured[:, :, p].sum() - with_p)
    text = (
        f"expected error removed {parts['gain'][index]:.3g}: its own "
        f"{parts['own'][index]:.3g}, {parts['perturbation'][index]:.3g} from the other "
        f"contexts of {perturbation} (measured in {with_p} of {len(grid.contexts)} contexts"
    )
    if len(grid.species) > 1:
        text += f" of {species}, {other} in other species"
    text += (
        f"), {parts['context'][index]:.3g} from the other perturbations of {context} "
        f"({with_c} of {len(grid.perturbations)} measured)"
    )
    if ratio is not None and ratio[index] != 1.0:
        text += f"; the predictor's interval puts its error at {ratio[index]:.2g}x the counts'"
    return text


def pick_batch(
    model: ErrorModel, grid: DesignGrid, k: int, ratio: np.ndarray | None = None
) -> pd.DataFrame:
    """Pick ``k`` experiments greedily by expected gain.

    Each pick counts as measured before the next is picked (``ratio``: see
    :func:`error_ratio`).

    Returns columns ``rank, species, context, perturbation, score, own_error, reason``;
    ``score`` is the expected gain at the time of the pick.
    """
    if k < 1:
        raise DataValidationError(f"the batch size must be at least 1, got {k}")
    measured = grid.measured.copy()
    rows = []
    for rank in range(1, k + 1):
        parts = expected_gains(model, measured, grid.possible, ratio)
        gain = parts["gain"]
        if not np.isfinite(gain).any():
            break
        # ties (e.g. a perturbation measured nowhere, equal in every context) go to the
        # context with the fewest measurements, so a batch spreads over contexts
        m = measured.sum(axis=2).astype(float)
        flat = int(np.nanargmax(gain * (1.0 + 1e-9 / (1.0 + m[:, :, None]))))
        s_i, c_i, p_i = np.unravel_index(flat, gain.shape)
        index = (int(s_i), int(c_i), int(p_i))
        species, context, perturbation = grid.cell(index)
        rows.append(
            {
                "rank": rank,
                "species": species,
                "context": context,
                "perturbation": perturbation,
                "score": float(gain[index]),
                "own_error": float(parts["own"][index]),
                "reason": _reason(grid, index, parts, measured, ratio),
            }
        )
        measured[index] = True
    columns = ["rank", "species", "context", "perturbation", "score", "own_error", "reason"]
    return pd.DataFrame(rows, columns=columns)

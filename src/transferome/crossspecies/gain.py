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
sum is the expected gain. A batch of ``k`` is picked greedily, each pick counted as measured
before the next is chosen, so that the diminishing returns of one perturbation or context spread
the batch instead of returning k near-copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from transferome.crossspecies.reactome import Reactome
from transferome.errors import DataValidationError

__all__ = ["DesignGrid", "ErrorModel", "expected_gains", "fit_error_model", "pick_batch"]

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
        """The grid of ``reactomes``: measured where a value exists; possible where measured,
        among ``candidates``, or (without candidates) every cell of the grid."""
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
                s, c, p = map(str, cell)
                if s not in si or c not in ci or p not in pi:
                    raise DataValidationError(
                        f"candidate cell {cell} names an unknown species, context or perturbation"
                    )
                possible[si[s], ci[c], pi[p]] = True
        return cls(species, contexts, perturbations, measured, possible)

    def cell(self, index: tuple[int, int, int]) -> Cell:
        s, c, p = index
        return self.species[s], self.contexts[c], self.perturbations[p]

    def index(self, cell: Cell) -> tuple[int, int, int]:
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
        """Predicted squared error of every cell if it were unmeasured (species x contexts x
        perturbations)."""
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
            for row, c in enumerate(where):
                y = stack[row]
                others = count_p - np.isfinite(y)
                rest = total_p - np.nan_to_num(y)
                pred = np.divide(rest, others, out=np.zeros_like(rest), where=others > 0)
                n = len(where) - 1
                m = m_all[c] - 1
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


def expected_gains(model: ErrorModel, measured: np.ndarray, possible: np.ndarray) -> dict:
    """Expected gain of measuring each cell, and its parts (each species x contexts x
    perturbations; NaN where the cell is measured or not possible).

    Returns a dict with ``gain``, ``own`` (the cell's own predicted error), ``perturbation``
    (the error it removes from the other contexts of its perturbation, other species included)
    and ``context`` (from the other perturbations of its context).
    """
    _, t1, t2 = model.theta
    n_eff, m = model.counts(measured)
    open_cells = possible & ~measured
    own = model.error(measured)
    w = model.other_species_weight
    # the perturbation term: every other open cell of p in the species, n_eff + 1
    drop_same = 1.0 / (1.0 + n_eff) - 1.0 / (2.0 + n_eff)
    drop_other = 1.0 / (1.0 + n_eff) - 1.0 / (1.0 + n_eff + w)
    open_p = open_cells.sum(axis=1).astype(float)  # species x perturbations
    per_p_same = model.scale * t1 * drop_same * open_p
    per_p_other = model.scale * t1 * drop_other * open_p
    cross = per_p_other.sum(axis=0, keepdims=True) - per_p_other
    # (less the candidate itself, which is open and counted in open_p)
    perturbation = (per_p_same - model.scale * t1 * drop_same + cross)[:, None, :]
    # the context term: every other open cell of the context, m + 1
    drop_m = 1.0 / (1.0 + m) - 1.0 / (2.0 + m)  # species x contexts
    open_scale = (open_cells * model.scale[:, None, :]).sum(axis=2)  # species x contexts
    context = t2 * drop_m[:, :, None] * (open_scale[:, :, None] - model.scale[:, None, :])
    gain = own + perturbation + context
    mask = np.where(open_cells, 1.0, np.nan)
    return {
        "gain": gain * mask,
        "own": own * mask,
        "perturbation": perturbation * mask,
        "context": context * mask,
    }


def _reason(grid: DesignGrid, index, parts: dict, measured: np.ndarray) -> str:
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
    return text


def pick_batch(model: ErrorModel, grid: DesignGrid, k: int) -> pd.DataFrame:
    """The ``k`` experiments picked greedily by expected gain, each counted as measured before
    the next is picked.

    Returns columns ``rank, species, context, perturbation, score, own_error, reason``;
    ``score`` is the expected gain at the time of the pick.
    """
    if k < 1:
        raise DataValidationError(f"the batch size must be at least 1, got {k}")
    measured = grid.measured.copy()
    rows = []
    for rank in range(1, k + 1):
        parts = expected_gains(model, measured, grid.possible)
        gain = parts["gain"]
        if not np.isfinite(gain).any():
            break
        # ties (e.g. a perturbation measured nowhere, equal in every context) go to the
        # context with the fewest measurements, so a batch spreads over contexts
        m = measured.sum(axis=2).astype(float)
        flat = int(np.nanargmax(gain * (1.0 + 1e-9 / (1.0 + m[:, :, None]))))
        index = np.unravel_index(flat, gain.shape)
        species, context, perturbation = grid.cell(index)
        rows.append(
            {
                "rank": rank,
                "species": species,
                "context": context,
                "perturbation": perturbation,
                "score": float(gain[index]),
                "own_error": float(parts["own"][index]),
                "reason": _reason(grid, index, parts, measured),
            }
        )
        measured[index] = True
    columns = ["rank", "species", "context", "perturbation", "score", "own_error", "reason"]
    return pd.DataFrame(rows, columns=columns)

"""The predictive interval of :class:`~transferome.models.stacked.estimator.StackedTransfer`.

Each gene's change gets the half-width ``quantile * (a + b * spread + c * |prediction|)``:
``spread`` is the expected spread of a new context's change around the sources' mean
(:func:`source_spread`, shrunk towards the gene's pooled spread, :func:`pooled_spread`), and the
coefficients and the quantile are calibrated on the stack's out-of-fold residuals
(:func:`fit_interval`).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

__all__ = ["PRIOR_DF", "fit_interval", "half_width", "pooled_spread", "source_spread"]

PRIOR_DF = 2.0
"""Degrees of freedom of the pooled spread in each prediction's spread."""


def source_spread(rows: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """Return each gene's expected spread of a new context's change around the mean of ``rows``.

    The sources' variance (``n - 1`` degrees of freedom) is shrunk towards ``pooled`` (the
    gene's within-perturbation variance over every perturbation, :data:`PRIOR_DF` degrees of
    freedom), so one or two sources do not read as certainty, and scaled by ``1 + 1/n`` (a new
    draw around a mean of ``n``).
    """
    finite = np.isfinite(rows)
    count = finite.sum(axis=0)
    filled = np.where(finite, rows, 0.0)
    mean = np.divide(filled.sum(axis=0), count, out=np.zeros(rows.shape[1]), where=count > 0)
    square = np.where(finite, (rows - mean) ** 2, 0.0).sum(axis=0)
    df = np.maximum(count - 1, 0)
    variance = (square + PRIOR_DF * pooled**2) / (df + PRIOR_DF)
    inflation = 1.0 + np.divide(1.0, count, out=np.ones(rows.shape[1]), where=count > 0)
    return np.sqrt(variance * inflation)


def pooled_spread(values: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Return the within-perturbation standard deviation of each gene.

    Pooled over the perturbations measured in two or more contexts (contexts x perturbations x
    genes ``values``).
    """
    finite = np.isfinite(values) & measured[:, :, None]
    count = finite.sum(axis=0)
    filled = np.where(finite, values, 0.0)
    mean = np.divide(filled.sum(axis=0), count, out=np.zeros(count.shape), where=count > 0)
    square = np.where(finite, (values - mean[None]) ** 2, 0.0).sum(axis=(0, 1))
    df = np.maximum(count - 1, 0).sum(axis=0)
    return np.sqrt(np.divide(square, df, out=np.zeros(square.shape), where=df > 0))


def fit_interval(
    truths: list[np.ndarray],
    spreads: list[np.ndarray],
    oof: np.ndarray,
    groups: np.ndarray,
    *,
    level: float,
    random_state: int,
) -> tuple[np.ndarray, float]:
    """Fit the interval model's coefficients ``(a, b, c)`` and quantile at ``level``.

    ``truths`` and ``spreads`` are the pseudo-targets' changes and spreads; ``oof`` their
    out-of-fold predictions, stacked over the finite genes of each pseudo-target and weighted
    by ``1 / |truth|``, with ``groups`` the pseudo-target of each row.
    """
    # undo the per-pseudo-target weight: residuals on the scale of the changes
    scale_rows, residuals = [], []
    for k, (truth, gene_spread) in enumerate(zip(truths, spreads, strict=True)):
        ok = np.isfinite(truth)
        mine = groups == k
        if not mine.any():
            continue
        weight = float(np.sqrt(np.sum(truth[ok] ** 2)))
        prediction = oof[mine] * weight
        residuals.append(np.abs(truth[ok] - prediction))
        scale_rows.append(np.column_stack([np.ones(ok.sum()), gene_spread[ok], np.abs(prediction)]))
    z, r = np.vstack(scale_rows), np.concatenate(residuals)
    rng = np.random.default_rng(random_state + 1)
    if r.size > 200_000:
        keep = rng.choice(r.size, 200_000, replace=False)
        z, r = z[keep], r[keep]
    coefficients, _ = nnls(z, r)
    if not np.any(coefficients > 0):
        coefficients = np.array([max(float(np.mean(r)), 1e-12), 0.0, 0.0])
    coefficients[0] = max(coefficients[0], 1e-6 * max(float(np.mean(r)), 1e-12))
    ratio = r / (z @ coefficients)
    return coefficients, float(np.quantile(ratio, level))


def half_width(
    gene_spread: np.ndarray, change: np.ndarray, scale: np.ndarray, quantile: float
) -> np.ndarray:
    """Half-width of each gene's interval around the predicted ``change``."""
    z = np.column_stack([np.ones(gene_spread.size), gene_spread, np.abs(change)])
    return quantile * (z @ scale)

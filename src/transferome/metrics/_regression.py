"""Per-group metrics on mean profiles: plain numpy functions on gene vectors.

Conventions follow scikit-learn and scipy: :func:`r2` equals ``sklearn.metrics.r2_score``
(including its ``force_finite`` rule: a constant truth scores 1.0 when predicted exactly and
0.0 otherwise) and :func:`explained_variance` equals ``explained_variance_score``. Pearson
correlations are NaN when either vector is constant (scipy warns there; these functions do not
emit any warning).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "deg_direction",
    "discrimination",
    "explained_variance",
    "group_metrics",
    "mse",
    "pearson",
    "r2",
    "top_degs",
]


def _pair(true: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(true, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"shapes differ: true {true.shape}, pred {pred.shape}")
    if true.size == 0:
        raise ValueError("metrics need at least one gene")
    return true, pred


def _ratio_score(numerator: float, denominator: float) -> float:
    if denominator == 0.0:
        return 1.0 if numerator == 0.0 else 0.0
    return float(1.0 - numerator / denominator)


def r2(true: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination across genes (``sklearn.metrics.r2_score``)."""
    true, pred = _pair(true, pred)
    return _ratio_score(float(np.sum((true - pred) ** 2)), float(np.sum((true - true.mean()) ** 2)))


def explained_variance(true: np.ndarray, pred: np.ndarray) -> float:
    """Explained variance across genes (``sklearn.metrics.explained_variance_score``)."""
    true, pred = _pair(true, pred)
    return _ratio_score(float(np.var(true - pred)), float(np.var(true)))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN (without a warning) when either vector is constant."""
    a, b = _pair(a, b)
    da, db = a - a.mean(), b - b.mean()
    na, nb = float(np.sqrt(np.sum(da**2))), float(np.sqrt(np.sum(db**2)))
    if na == 0.0 or nb == 0.0:
        return float("nan")
    return float(np.clip(np.sum(da * db) / (na * nb), -1.0, 1.0))


def mse(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean squared error across genes."""
    true, pred = _pair(true, pred)
    return float(np.mean((true - pred) ** 2))


def top_degs(true: np.ndarray, control: np.ndarray, n_degs: int = 50) -> np.ndarray:
    """Positions of the ``n_degs`` genes with the largest ``|true - control|``.

    Ties are broken by gene position (stable sort); all genes when there are fewer.
    """
    true, control = _pair(true, control)
    if n_degs < 1:
        raise ValueError(f"n_degs must be positive, got {n_degs}")
    order = np.argsort(-np.abs(true - control), kind="stable")
    return np.sort(order[:n_degs])


def deg_direction(
    pred: np.ndarray, true: np.ndarray, control: np.ndarray, degs: np.ndarray
) -> float:
    """Fraction of ``degs`` where the predicted change has the sign of the true change.

    A predicted change of exactly zero never has the true sign (unless the true change is
    zero too), so the control prediction scores 0 on genes that change.
    """
    true, pred = _pair(true, pred)
    control = np.asarray(control, dtype=np.float64).ravel()
    idx = np.asarray(degs)
    return float(np.mean(np.sign(pred[idx] - control[idx]) == np.sign(true[idx] - control[idx])))


_ON_GENE_SETS = (
    "r2",
    "explained_variance",
    "pearson",
    "pearson_squared",
    "pearson_delta",
    "r2_delta",
    "mse",
)
_GROUP_METRICS = (
    *(f"{name}{suffix}" for suffix in ("", "_deg") for name in _ON_GENE_SETS),
    "deg_direction",
)


def group_metrics(
    pred: np.ndarray, true: np.ndarray, control: np.ndarray, *, n_degs: int = 50
) -> dict[str, float]:
    """Every ``group`` metric of :data:`~transferome.metrics.METRICS` for one group.

    Parameters
    ----------
    pred, true, control
        Mean predicted, observed and control profiles of the group (one value per gene).
        NaN marks a gene not measured (signature data): every metric is computed on the genes
        finite in all three, and the DEGs are chosen among them; all metrics are NaN when no
        gene is.
    n_degs
        Number of DEGs (the genes with the largest ``|true - control|``).
    """
    true, pred = _pair(true, pred)
    true, control = _pair(true, control)
    measured = np.isfinite(true) & np.isfinite(pred) & np.isfinite(control)
    if not measured.all():
        if not measured.any():
            return dict.fromkeys(_GROUP_METRICS, float("nan"))
        true, pred, control = true[measured], pred[measured], control[measured]
    degs = top_degs(true, control, n_degs)
    delta_true, delta_pred = true - control, pred - control
    out: dict[str, float] = {}
    for suffix, idx in (("", slice(None)), ("_deg", degs)):
        t, p = true[idx], pred[idx]
        out[f"r2{suffix}"] = r2(t, p)
        out[f"explained_variance{suffix}"] = explained_variance(t, p)
        out[f"pearson{suffix}"] = pearson(t, p)
        out[f"pearson_squared{suffix}"] = out[f"pearson{suffix}"] ** 2
        out[f"pearson_delta{suffix}"] = pearson(delta_true[idx], delta_pred[idx])
        out[f"r2_delta{suffix}"] = r2(delta_true[idx], delta_pred[idx])
        out[f"mse{suffix}"] = mse(t, p)
    out["deg_direction"] = deg_direction(pred, true, control, degs)
    return out


def discrimination(pred_deltas: np.ndarray, true_deltas: np.ndarray) -> np.ndarray:
    """Per group: ``1 - rank / n`` of its own truth among all groups' truths by L1 distance.

    Parameters
    ----------
    pred_deltas, true_deltas
        ``(n_groups, n_genes)`` predicted and observed changes against control, row ``i`` of
        both for the same group. NaN marks a gene not measured: each distance is then the
        mean absolute difference over the genes finite in both vectors (the L1 distance
        divided by the number of genes, which ranks alike when every gene is finite), NaN
        when they share none. A group whose own distance is NaN scores NaN; a NaN distance
        to another group counts as farther.

    Returns
    -------
    numpy.ndarray
        One value per group: 1 when its prediction is closest to its own truth; ``rank``
        counts the other groups strictly closer plus half of those at the same distance.
        All NaN when there are fewer than two groups.
    """
    pred_deltas = np.atleast_2d(np.asarray(pred_deltas, dtype=np.float64))
    true_deltas = np.atleast_2d(np.asarray(true_deltas, dtype=np.float64))
    if pred_deltas.shape != true_deltas.shape:
        raise ValueError(f"shapes differ: pred {pred_deltas.shape}, true {true_deltas.shape}")
    n = pred_deltas.shape[0]
    if n < 2:
        return np.full(n, np.nan)
    if np.isfinite(pred_deltas).all() and np.isfinite(true_deltas).all():
        distances = np.stack([np.abs(true_deltas - row).sum(axis=1) for row in pred_deltas])
    else:
        distances = np.stack([_mean_abs_distance(true_deltas, row) for row in pred_deltas])
    own = np.diag(distances)[:, None]
    closer = (distances < own).sum(axis=1)
    ties = (distances == own).sum(axis=1) - 1
    score = 1.0 - (closer + 0.5 * ties) / n
    return np.where(np.isnan(own[:, 0]), np.nan, score)


def _mean_abs_distance(rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Mean ``|row - vector|`` over the genes finite in both, per row; NaN if none is."""
    difference = np.abs(rows - vector)
    finite = np.isfinite(difference)
    total = np.where(finite, difference, 0.0).sum(axis=1)
    count = finite.sum(axis=1)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)

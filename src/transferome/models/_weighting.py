"""Weighting source contexts by likeness.

The numerics behind ``similar``, ``collaborative`` and ``stacked`` (plain numpy, NaN = not
measured).

Notation: a change tensor ``values[c, p, g]`` (context, perturbation, gene) with ``measured[c,
p]``; ``controls[c, g]`` the control mean of each context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "TEMPERATURES",
    "centred_similarity",
    "choose_temperature",
    "context_mean_without",
    "filled_weighted_means",
    "response_similarity",
    "softmax",
    "temperature_from_errors",
    "weighted_mean",
    "weighted_means",
]

TEMPERATURES: tuple[float, ...] = (np.inf, 3.0, 1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02)
"""Softmax temperatures tried by leave-one-context-out (``inf``: the plain mean)."""


def centred_similarity(profiles: np.ndarray, target: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``profiles`` with ``target``, both minus ``centre``.

    Genes not finite in both are left out; a constant profile gives similarity 0.
    """
    rows = np.atleast_2d(profiles) - centre
    t = target - centre
    out = np.zeros(rows.shape[0])
    for i, row in enumerate(rows):
        ok = np.isfinite(row) & np.isfinite(t)
        if ok.sum() < 3:
            continue
        a = row[ok] - row[ok].mean()
        b = t[ok] - t[ok].mean()
        denominator = np.sqrt((a @ a) * (b @ b))
        out[i] = float(a @ b / denominator) if denominator > 0 else 0.0
    return out


def softmax(similarity: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(similarity / temperature)``; ``inf`` (or a single entry) gives equal weights."""
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.size == 0:
        return similarity
    if not np.isfinite(temperature):
        return np.full(similarity.size, 1.0 / similarity.size)
    scores = np.nan_to_num(
        similarity, nan=np.nanmin(similarity) if np.isfinite(similarity).any() else 0.0
    )
    weights = np.exp((scores - scores.max()) / float(temperature))
    return weights / weights.sum()


def weighted_mean(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of ``rows`` gene by gene over the rows that measured the gene.

    A gene no row measured is NaN.
    """
    return weighted_means(rows, np.asarray(weights)[None])[0]


def weighted_means(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:func:`weighted_mean` for several weight vectors at once (``weights``: k x rows)."""
    finite = np.isfinite(rows)
    return filled_weighted_means(np.where(finite, rows, 0.0), finite.astype(np.float64), weights)


def filled_weighted_means(
    filled: np.ndarray, finite: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Compute :func:`weighted_means` from pre-computed ``filled`` and ``finite`` arrays.

    ``filled`` is NaN -> 0 and ``finite`` 0/1; ``weights`` is a vector (one mean) or a matrix
    (one mean per row).
    """
    # einsum, not matmul: products this small run slower through a threaded BLAS
    spec = "s,sg->g" if weights.ndim == 1 else "ks,sg->kg"
    numerator = np.einsum(spec, weights, filled)
    denominator = np.einsum(spec, weights, finite)
    return np.divide(
        numerator, denominator, out=np.full(numerator.shape, np.nan), where=denominator > 0
    )


def relative_errors(predictions: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """:func:`relative_error` of each row of ``predictions``."""
    ok = np.isfinite(predictions) & np.isfinite(truth)
    denominator = np.where(ok, truth**2, 0.0).sum(axis=1)
    numerator = np.where(ok, (predictions - truth) ** 2, 0.0).sum(axis=1)
    return np.divide(
        numerator, denominator, out=np.full(len(numerator), np.nan), where=denominator > 0
    )


def temperature_from_errors(
    temperatures: Sequence[float], errors: Sequence[np.ndarray], *, tolerance: float
) -> tuple[float, dict[float, float]]:
    """Run :func:`choose_temperature` on one row of errors per pseudo-target.

    One column per temperature; also returns the mean error of each temperature.
    """
    table = np.vstack(errors) if len(errors) else np.full((1, len(temperatures)), np.nan)
    means = {
        float(t): float(np.nanmean(table[:, k])) if np.isfinite(table[:, k]).any() else np.nan
        for k, t in enumerate(temperatures)
    }
    return choose_temperature(means, tolerance=tolerance), means


def choose_temperature(errors: dict[float, float], *, tolerance: float = 0.005) -> float:
    """Return the largest temperature whose mean error is within ``tolerance`` of the best.

    ``tolerance`` is relative. Preferring the larger temperature makes alike contexts fall back
    to the plain mean instead of copying the one that happens to correlate best.
    """
    finite = {t: e for t, e in errors.items() if np.isfinite(e)}
    if not finite:
        return float("inf")
    best = min(finite.values())
    allowed = [t for t, e in finite.items() if e <= best + tolerance * abs(best)]
    return float(max(allowed))


def context_mean_without(values: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """``out[c, p]``: mean change of ``p`` over the contexts other than ``c`` (NaN if none)."""
    finite = np.isfinite(values) & measured[:, :, None]
    filled = np.where(finite, values, 0.0)
    total = filled.sum(axis=0, keepdims=True) - filled
    count = finite.sum(axis=0, keepdims=True) - finite
    return np.divide(total, count, out=np.full(values.shape, np.nan), where=count > 0)


def response_similarity(values: np.ndarray, measured: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pieces of the likeness of two contexts' responses, perturbation by perturbation.

    Each context's change is centred on the mean change over contexts (so the shared part of
    a response does not make every context look alike). Returns ``(dot, norm_a, norm_b)``
    of shape ``(contexts, contexts, perturbations)``: for contexts ``a`` and ``b`` and
    perturbation ``q`` measured in both, the inner product of their centred changes and
    each one's squared norm over the genes both measured (zero where not both measured).
    :func:`pooled_similarity` sums them over the perturbations to use.
    """
    finite = np.isfinite(values) & measured[:, :, None]
    filled = np.where(finite, values, 0.0)
    count = finite.sum(axis=0)
    centre = np.divide(filled.sum(axis=0), count, out=np.zeros(count.shape), where=count > 0)
    centred = np.where(finite, filled - centre[None], 0.0)
    mask = finite.astype(np.float64)
    dot = np.einsum("aqg,bqg->abq", centred, centred, optimize=True)
    norm_a = np.einsum("aqg,bqg->abq", centred**2, mask, optimize=True)
    norm_b = np.transpose(norm_a, (1, 0, 2))
    return dot, norm_a, norm_b


def pooled_similarity(
    pieces: tuple[np.ndarray, ...], target: int, sources: Sequence[int], exclude: int | None
) -> np.ndarray:
    """Return the cosine of the centred changes of ``target`` and each source.

    Pooled over the perturbations both measured except ``exclude``; NaN where they share none.
    """
    dot, norm_a, norm_b = pieces
    keep = np.ones(dot.shape[2], dtype=bool)
    if exclude is not None:
        keep[exclude] = False
    idx = list(sources)
    d = dot[target, idx][:, keep].sum(axis=1)
    na = norm_a[target, idx][:, keep].sum(axis=1)
    nb = norm_b[target, idx][:, keep].sum(axis=1)
    denominator = np.sqrt(na * nb)
    return np.divide(d, denominator, out=np.full(len(idx), np.nan), where=denominator > 0)

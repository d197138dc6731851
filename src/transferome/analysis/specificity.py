"""Tissue specificity of genes: the tau index and per-tissue earth mover's distances.

Both follow section 3.2 of Trofimov et al. (2020): tau (Yanai et al. 2005) summarises how
concentrated a gene's mean expression is across tissues (0: housekeeping, 1: one tissue
only); the per-tissue EMD is the Wasserstein distance between a gene's values in one tissue
and in all the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome.errors import DataValidationError

__all__ = ["group_means", "tau_index", "tissue_emd"]


def _matrix_and_labels(
    adata: AnnData, key: str, layer: str | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not isinstance(adata, AnnData):
        raise DataValidationError(f"expected an AnnData, got {type(adata).__name__}")
    if key not in adata.obs.columns:
        raise DataValidationError(
            f"obs key {key!r} is missing; obs has columns {list(map(str, adata.obs.columns))}"
        )
    if layer is not None and layer not in adata.layers:
        raise DataValidationError(f"layer {layer!r} not found; layers: {list(adata.layers)}")
    matrix = adata.X if layer is None else adata.layers[layer]
    values = np.asarray(matrix.toarray() if sp.issparse(matrix) else matrix, dtype=np.float64)
    if not np.isfinite(values).all():
        raise DataValidationError("expression values contain NaN or infinite entries")
    labels = adata.obs[key].astype(str).to_numpy()
    groups = sorted(set(labels))
    if len(groups) < 2:
        raise DataValidationError(
            f"obs[{key!r}] has {len(groups)} group(s); tissue specificity needs at least 2"
        )
    return values, labels, [str(g) for g in adata.var_names]


def group_means(adata: AnnData, key: str, *, layer: str | None = None) -> pd.DataFrame:
    """Mean expression of every gene in each group of ``obs[key]`` (groups x genes)."""
    values, labels, genes = _matrix_and_labels(adata, key, layer)
    groups = sorted(set(labels))
    means = np.vstack([values[labels == g].mean(axis=0) for g in groups])
    return pd.DataFrame(means, index=pd.Index(groups, name=key), columns=genes)


def tau_index(adata: AnnData, key: str, *, layer: str | None = None) -> pd.Series:
    """Tau index of tissue specificity of every gene.

    ``tau_j = sum_c (1 - m_jc / max_c m_jc) / (C - 1)`` over the ``C`` groups of ``obs[key]``,
    with ``m_jc`` the mean expression of gene ``j`` in group ``c``. Values must be
    non-negative (log-normalised expression); a gene with zero mean everywhere gets NaN.

    Returns
    -------
    pandas.Series
        Tau per gene, in [0, 1].
    """
    means = group_means(adata, key, layer=layer).to_numpy()
    if (means < 0).any():
        raise DataValidationError(
            "tau needs non-negative expression (e.g. log1p of normalised counts); "
            f"found group means down to {means.min():.4g}"
        )
    peak = means.max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(peak > 0, means / np.where(peak > 0, peak, 1.0), np.nan)
    tau = (1.0 - scaled).sum(axis=0) / (means.shape[0] - 1)
    return pd.Series(tau, index=adata.var_names.astype(str), name="tau")


def tissue_emd(
    adata: AnnData,
    key: str,
    *,
    layer: str | None = None,
    groups: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Earth mover's distance of each gene between each group and the rest.

    ``d_jc = W(x_j[group == c], x_j[group != c])`` with ``W`` the one-dimensional Wasserstein
    distance (:func:`scipy.stats.wasserstein_distance`, computed here in closed form from the
    two empirical distribution functions).

    Returns
    -------
    pandas.DataFrame
        Genes x groups; ``idxmax(axis=1)`` gives the group each gene is most specific to.
    """
    values, labels, genes = _matrix_and_labels(adata, key, layer)
    chosen = sorted(set(labels)) if groups is None else [str(g) for g in groups]
    unknown = sorted(set(chosen) - set(labels))
    if unknown:
        raise DataValidationError(f"group(s) {unknown} not found in obs[{key!r}]")
    columns = {}
    for group in chosen:
        inside = labels == group
        columns[group] = _wasserstein_columns(values[inside], values[~inside])
    frame = pd.DataFrame(columns, index=genes)
    frame.columns.name = key
    return frame


def _wasserstein_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise 1-D Wasserstein distance between the rows of ``a`` and of ``b``."""
    both = np.sort(np.vstack([a, b]), axis=0)
    deltas = np.diff(both, axis=0)
    a_sorted, b_sorted = np.sort(a, axis=0), np.sort(b, axis=0)
    out = np.empty(a.shape[1])
    for j in range(a.shape[1]):
        points = both[:-1, j]
        cdf_a = np.searchsorted(a_sorted[:, j], points, side="right") / a.shape[0]
        cdf_b = np.searchsorted(b_sorted[:, j], points, side="right") / b.shape[0]
        out[j] = np.sum(np.abs(cdf_a - cdf_b) * deltas[:, j])
    return out

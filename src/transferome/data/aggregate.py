"""Aggregates of observations shared by the layers above (models, metrics, crossspecies).

The mean profile of each (context, perturbation) group, NaN-aware for signature data, and of
each context's controls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome.data._stream import dense, iter_row_blocks, on_disk, row_stats, stored_source
from transferome.data.schema import Schema, obs_labels
from transferome.errors import DataValidationError

__all__ = ["code_means", "column_moments", "context_deltas", "control_means", "group_means"]


def group_means(
    adata: AnnData, *, schema: Schema, groups: Sequence[tuple[str, str]] | None = None
) -> pd.DataFrame:
    """Mean profile of each (context, perturbation) group (rows: a MultiIndex, columns: genes).

    ``groups`` restricts and orders the rows; every listed group must be observed. NaN values
    (genes not measured in an observation, as in signature data) are left out: a gene's mean
    is over the members that measured it, and NaN where none did.
    """
    for key in (schema.context_key, schema.perturbation_key):
        if key not in adata.obs.columns:
            raise DataValidationError(
                f"obs key {key!r} is missing; obs has columns {list(map(str, adata.obs.columns))}"
            )
    contexts = obs_labels(adata, schema.context_key)
    perturbations = obs_labels(adata, schema.perturbation_key)
    codes = pd.MultiIndex.from_arrays([contexts, perturbations])
    observed = codes.unique().sort_values()
    wanted = observed if groups is None else pd.MultiIndex.from_tuples(list(groups))
    observed_set = set(observed)
    missing = [g for g in wanted if g not in observed_set]
    if missing:
        raise DataValidationError(
            f"group(s) {missing[:5]} have no observations in obs[{schema.context_key!r}] x "
            f"obs[{schema.perturbation_key!r}]"
        )
    if wanted.is_unique:
        group_codes = np.asarray(wanted.get_indexer(codes), dtype=np.int64)
    else:  # a group listed twice: its rows count for the last listing
        row_of = {g: i for i, g in enumerate(wanted)}
        group_codes = np.array([row_of.get(g, -1) for g in codes], dtype=np.int64)
    if on_disk(stored_source(adata)[0]):
        # streamed from the file, a block of rows at a time (statistics cached per group)
        stats = row_stats(adata, group_codes, len(wanted))
        means = np.vstack([s.means for s in stats]) if stats else np.zeros((0, adata.n_vars))
    else:
        means = code_means(adata.X, group_codes, len(wanted))
    index = pd.MultiIndex.from_tuples(
        list(wanted), names=[schema.context_key, schema.perturbation_key]
    )
    return pd.DataFrame(means, index=index, columns=list(map(str, adata.var_names)))


def code_means(matrix: Any, codes: np.ndarray, n_rows: int) -> np.ndarray:
    """Mean of the rows of ``matrix`` with each code ``0 .. n_rows - 1`` (float64).

    ``codes`` gives each row's group (-1: in none). NaN values are left out of a mean
    (NaN where a group measured nothing); a group without rows is NaN.
    """
    codes = np.asarray(codes)
    keep = codes >= 0
    indicator = sp.csr_matrix(
        (np.ones(int(keep.sum())), (codes[keep], np.flatnonzero(keep))),
        shape=(n_rows, matrix.shape[0]),
    )
    if not sp.issparse(matrix):
        return _dense_code_means(indicator, np.asarray(matrix))
    if np.isnan(matrix.data).any():
        return _sparse_nan_means(indicator, matrix)
    sums = indicator @ matrix
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    sizes = np.asarray(indicator.sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / sizes[:, None]


def _dense_code_means(
    indicator: sp.csr_matrix, matrix: np.ndarray, chunk_rows: int = 4096
) -> np.ndarray:
    """Compute the group means of a dense matrix, NaN-aware, in float64.

    A block of rows at a time: a float32 matrix is never copied whole to float64.
    """
    sums = np.zeros((indicator.shape[0], matrix.shape[1]))
    counts = np.zeros_like(sums)
    for start in range(0, matrix.shape[0], chunk_rows):
        block = np.asarray(matrix[start : start + chunk_rows], dtype=np.float64)
        part = indicator[:, start : start + chunk_rows]
        missing = np.isnan(block)
        if missing.any():
            sums += np.asarray(part @ np.where(missing, 0.0, block))
            counts += np.asarray(part @ (~missing).astype(np.float64))
        else:
            sums += np.asarray(part @ block)
            counts += np.asarray(part.sum(axis=1))
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def _sparse_nan_means(indicator: sp.csr_matrix, matrix: Any) -> np.ndarray:
    """Compute the group means of a sparse matrix over the measured (non-NaN) values.

    NaN where a group measured nothing. Implicit zeros are measured values.
    """
    matrix = matrix.tocsr()
    missing = np.isnan(matrix.data)
    layout = (matrix.indices, matrix.indptr)
    measured = sp.csr_matrix((np.where(missing, 0.0, matrix.data), *layout), matrix.shape)
    absent = sp.csr_matrix((missing.astype(np.float64), *layout), matrix.shape)
    sums = (indicator @ measured).toarray()
    counts = np.asarray(indicator.sum(axis=1)) - (indicator @ absent).toarray()
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def control_means(adata: AnnData, *, schema: Schema) -> pd.DataFrame:
    """Mean control profile of each context that has controls (rows: contexts)."""
    labels = obs_labels(adata, schema.perturbation_key)
    is_control = labels == schema.control
    if not is_control.any():
        raise DataValidationError(
            f"no {schema.control!r} observations in obs[{schema.perturbation_key!r}]"
        )
    if schema.context_key not in adata.obs.columns:
        raise DataValidationError(
            f"obs key {schema.context_key!r} is missing; obs has columns "
            f"{list(map(str, adata.obs.columns))}"
        )
    # the control groups of the AnnData itself (no subset: views of on-disk data stay views)
    contexts = sorted(set(obs_labels(adata, schema.context_key)[is_control]))
    means = group_means(adata, schema=schema, groups=[(c, schema.control) for c in contexts])
    means.index = means.index.get_level_values(0)
    return means


def context_deltas(adata: AnnData, *, schema: Schema) -> pd.DataFrame:
    """Compute the mean change of every perturbed group whose context has controls.

    The change is the group's mean profile minus its context's control mean, both from one
    pass of :func:`group_means` (a backed AnnData is streamed a block of rows at a time).

    Returns
    -------
    pandas.DataFrame
        Rows: a MultiIndex ``(context, perturbation)`` of the perturbed groups; columns: genes.

    Raises
    ------
    DataValidationError
        No perturbed group has controls in its context.
    """
    means = group_means(adata, schema=schema)
    control_rows = [(c, p) for c, p in means.index if p == schema.control]
    controls = means.loc[control_rows]
    controls.index = controls.index.get_level_values(0)
    perturbed = [(c, p) for c, p in means.index if p != schema.control and c in controls.index]
    if not perturbed:
        raise DataValidationError(
            f"no perturbed group in obs[{schema.perturbation_key!r}] has controls in its "
            f"context; the baselines learn changes against the context's controls"
        )
    values = means.loc[perturbed].to_numpy() - controls.loc[[c for c, _ in perturbed]].to_numpy()
    index = pd.MultiIndex.from_tuples(perturbed, names=["context", "perturbation"])
    return pd.DataFrame(values, index=index, columns=means.columns)


def column_moments(
    adata: AnnData, *, columns: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) variance of each column of ``X`` (or of ``columns``), float64.

    One pass a block of rows at a time (an on-disk ``X`` is never read whole); the blocks'
    moments are merged pairwise (Chan et al.), so the variance does not lose precision to a
    large mean.
    """
    n_cols = adata.n_vars if columns is None else len(columns)
    count, mean, m2 = 0, np.zeros(n_cols), np.zeros(n_cols)
    for positions, block in iter_row_blocks(adata):
        if columns is not None:
            block = block[:, columns]
        values = dense(block, np.float64)
        n = len(positions)
        block_mean = values.mean(axis=0)
        block_m2 = ((values - block_mean) ** 2).sum(axis=0)
        delta = block_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + block_m2 + delta**2 * (count * n / total)
        count = total
    if count == 0:
        raise DataValidationError("the data have no observations")
    return mean, m2 / count

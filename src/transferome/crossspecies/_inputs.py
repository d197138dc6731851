"""Inputs of gene mapping: context mean profiles and the ortholog table as a sparse matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome.data.schema import detect_value_type, obs_labels
from transferome.errors import DataValidationError

__all__ = ["context_means", "one_to_one", "ortholog_matrix", "profile_features"]


def context_means(adata: AnnData, key: str, layer: str | None, role: str) -> pd.DataFrame:
    if not isinstance(adata, AnnData):
        raise DataValidationError(
            f"method 'profile' needs AnnData for {role}, got {type(adata).__name__}"
        )
    if key not in adata.obs.columns:
        raise DataValidationError(
            f"{role}: obs key {key!r} (context_key) is missing; obs has {list(adata.obs.columns)}"
        )
    if layer is not None and layer not in adata.layers:
        raise DataValidationError(
            f"{role}: layer {layer!r} not found; layers: {list(adata.layers)}"
        )
    matrix = adata.layers[layer] if layer is not None else adata.X
    kind = detect_value_type(matrix, allow_negative=True)
    if kind in ("counts", "linear"):
        raise DataValidationError(
            f"{role}: profile mapping needs log-normalised values, found {kind}; "
            "run normalize_total + log1p first or pass layer="
        )
    labels = obs_labels(adata, key)
    codes, uniques = pd.factorize(labels, sort=True)
    indicator = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))))
    sums = indicator @ matrix
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    sizes = np.asarray(indicator.sum(axis=1))
    means = sums / sizes
    return pd.DataFrame(means.T, index=adata.var_names.astype(str), columns=list(uniques))


def profile_features(
    source: AnnData, target: AnnData, key: str, layer: str | None, min_mean: float
) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    s = context_means(source, key, layer, "source")
    t = context_means(target, key, layer, "target")
    shared = pd.Index(sorted(set(s.columns) & set(t.columns)))
    if len(shared) < 3:
        raise DataValidationError(
            f"source and target share {len(shared)} labels in obs[{key!r}] "
            f"({list(shared)}); profile mapping needs at least 3 matched contexts"
        )
    s, t = s[shared].to_numpy(), t[shared].to_numpy()
    s[s.max(axis=1) < min_mean] = np.nan
    t[t.max(axis=1) < min_mean] = np.nan
    return s, t, shared


def _detect_column(table: pd.DataFrame, genes: pd.Index, role: str, exclude: str | None) -> str:
    best, best_overlap = None, 0
    for column in table.columns:
        if column == exclude or pd.api.types.is_numeric_dtype(table[column]):
            continue
        overlap = int(table[column].astype(str).isin(genes).sum())
        if overlap > best_overlap:
            best, best_overlap = column, overlap
    if best is None:
        raise DataValidationError(
            f"no column of the ortholog table holds {role} gene names "
            f"(e.g. {list(genes[:3])}); columns: {list(table.columns)}; pass ortholog_columns="
        )
    return str(best)


def ortholog_matrix(
    orthologs: pd.DataFrame,
    source_genes: pd.Index,
    target_genes: pd.Index,
    columns: tuple[str, str] | None,
    score_column: str | None,
) -> sp.csr_matrix:
    """Read an ortholog table as a sparse target x source matrix of its scores.

    Parameters
    ----------
    orthologs
        Ortholog table, one row per gene pair; pairs of genes outside ``source_genes`` or
        ``target_genes`` are dropped, repeated pairs summed.
    source_genes, target_genes
        The genes of the two species: the columns and the rows of the matrix.
    columns
        ``(source column, target column)`` of ``orthologs``; ``None``: each the text column
        holding most of the source (target) genes.
    score_column
        Column of positive pair scores (e.g. sequence identity); ``None``: every pair scores 1.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``len(target_genes) x len(source_genes)``, zero where the table has no pair.
    """
    if not isinstance(orthologs, pd.DataFrame):
        raise DataValidationError(f"orthologs must be a DataFrame, got {type(orthologs).__name__}")
    if columns is None:
        source_col = _detect_column(orthologs, source_genes, "source", None)
        target_col = _detect_column(orthologs, target_genes, "target", source_col)
    else:
        source_col, target_col = columns
    for col in (source_col, target_col, score_column):
        if col is not None and col not in orthologs.columns:
            raise DataValidationError(
                f"ortholog table has no column {col!r}; columns: {list(orthologs.columns)}"
            )
    s_idx = source_genes.get_indexer(orthologs[source_col].astype(str))
    t_idx = target_genes.get_indexer(orthologs[target_col].astype(str))
    keep = (s_idx >= 0) & (t_idx >= 0)
    if score_column is None:
        scores = np.ones(int(keep.sum()))
    else:
        scores = pd.to_numeric(orthologs[score_column], errors="coerce").to_numpy()[keep]
        if not np.isfinite(scores).all() or (scores <= 0).any():
            raise DataValidationError(
                f"ortholog score column {score_column!r} must hold positive numbers"
            )
    matrix = sp.coo_matrix(
        (scores, (t_idx[keep], s_idx[keep])), shape=(len(target_genes), len(source_genes))
    ).tocsr()
    matrix.sum_duplicates()
    return matrix


def one_to_one(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    pattern = (matrix > 0).astype(np.int64).tocsr()
    row_n = np.asarray(pattern.sum(axis=1)).ravel()
    col_n = np.asarray(pattern.sum(axis=0)).ravel()
    coo = pattern.tocoo()
    keep = (row_n[coo.row] == 1) & (col_n[coo.col] == 1)
    return coo.row[keep], coo.col[keep]

"""Total-count normalisation + log1p, and the words for what unlogged values were found to be."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp


def _as_float(matrix: Any) -> Any:
    if sp.issparse(matrix):
        return sp.csr_matrix(matrix, dtype=np.float32)
    return np.asarray(matrix, dtype=np.float32)


def _normalize_log(counts: Any, target_sum: float) -> Any:
    """``log1p(counts / total * target_sum)`` per row; rows of zeros stay zero."""
    totals = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    if sp.issparse(counts):
        out = sp.csr_matrix(sp.diags(scale) @ counts, dtype=np.float32)
        out.data = np.log1p(out.data)
        return out
    return np.log1p(counts * scale[:, None]).astype(np.float32)


def _row_totals(matrix: Any, chunk_rows: int = 4096) -> np.ndarray:
    if isinstance(matrix, np.ndarray) or sp.issparse(matrix):
        return np.asarray(matrix.sum(axis=1)).ravel().astype(np.float64)
    # X of a backed AnnData: a block of rows at a time
    blocks = [
        np.asarray(matrix[start : start + chunk_rows].sum(axis=1)).ravel()
        for start in range(0, matrix.shape[0], chunk_rows)
    ]
    return np.concatenate(blocks).astype(np.float64)


def _describe(value_type: str, matrix: Any) -> str:
    """Say what ``counts`` / ``linear`` values are, in words, for the messages."""
    if value_type == "counts":
        return "raw counts (non-negative integers)"
    totals = _row_totals(matrix)
    positive = totals[totals > 0]
    if positive.size and positive.max() - positive.min() <= 1e-3 * positive.max():
        return (
            f"normalised values that are not logged (every observation sums to "
            f"{positive.max():.4g}, e.g. CPM / TPM)"
        )
    return (
        "fractional counts (non-integer values above the log range whose totals differ "
        "between observations, e.g. salmon NumReads)"
    )

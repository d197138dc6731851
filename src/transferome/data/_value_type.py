"""What a matrix holds (counts, log, linear or signed values), from one pass over its values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

import transferome.data._stream as _stream
from transferome.data._values import ValueSummary
from transferome.errors import DataValidationError

__all__ = ["ValueType", "check_matrix", "detect_value_type", "iter_value_chunks", "value_type_of"]

ValueType = Literal["counts", "log", "linear", "signed"]
"""What ``X`` (or the chosen layer) holds.

``counts``: non-negative integers; ``log``: non-negative, non-integer values in a log range
(``normalize_total`` + ``log1p``, log2 RMA arrays); ``linear``: non-negative, non-integer
values too large to be logged (normalised but not logged); ``signed``: values that may be
negative (changes against control, z-scores), only accepted with ``allow_negative=True``.
"""

_LOG_MAX = 50.0  # log1p of any realistic count, or a log2 array intensity, stays below this


def check_matrix(adata: AnnData, layer: str | None) -> None:
    """Refuse what no model can read: not an AnnData, no rows or genes, an unknown layer."""
    if not isinstance(adata, AnnData):
        raise DataValidationError(f"expected an AnnData, got {type(adata).__name__}")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise DataValidationError(f"the data are empty ({adata.n_obs} x {adata.n_vars})")
    if layer is not None and layer not in adata.layers:
        raise DataValidationError(f"layer {layer!r} not found; layers: {list(adata.layers)}")


def iter_value_chunks(matrix: Any, chunk_rows: int | None = None) -> Iterator[np.ndarray]:
    """Yield the stored values of a dense, sparse or backed matrix in row chunks.

    For sparse matrices only the explicitly stored values are yielded (implicit zeros are
    valid values for every check made on them).
    """
    if sp.issparse(matrix):
        yield np.asarray(matrix.data)
        return
    if isinstance(matrix, np.ndarray) and matrix.ndim != 2:
        yield matrix.reshape(-1)
        return
    # dense arrays too: the checks make temporary copies of what they are given
    n_rows = matrix.shape[0]
    chunk_rows = int(chunk_rows or _stream.CHUNK_ROWS)
    for start in range(0, n_rows, chunk_rows):
        block = matrix[start : start + chunk_rows]
        if sp.issparse(block):
            yield np.asarray(block.data)
        else:
            yield np.asarray(block).reshape(-1)


def detect_value_type(
    matrix: Any, *, allow_negative: bool = False, allow_nan: bool = False
) -> ValueType:
    """Classify the values of ``matrix`` (see :data:`ValueType`); checks finiteness too.

    Parameters
    ----------
    matrix
        Dense, sparse or backed matrix.
    allow_negative
        Accept negative values (changes against control, z-scores).
    allow_nan
        Accept NaN as "not measured" (signature data with unmeasured genes); NaN entries are
        left out of the classification. Infinite values are always an error.

    Raises
    ------
    DataValidationError
        NaN (unless ``allow_nan``) or infinite values, or negative values when
        ``allow_negative`` is false.
    """
    summary = ValueSummary.empty()
    for values in iter_value_chunks(matrix):
        summary = summary.merge(ValueSummary.of(values))
    return value_type_of(summary, allow_negative=allow_negative, allow_nan=allow_nan)


def value_type_of(
    summary: ValueSummary, *, allow_negative: bool = False, allow_nan: bool = False
) -> ValueType:
    """Classify values from their :class:`ValueSummary`; the checks of :func:`detect_value_type`."""
    kind = summary.kind
    if kind not in "fiuc":
        raise DataValidationError(f"expression values must be numbers, found dtype {summary.dtype}")
    if kind == "c":
        raise DataValidationError("expression values must be real numbers, found complex")
    n_nan, n_inf = summary.n_nan, summary.n_inf
    if n_inf or (n_nan and not allow_nan):
        raise DataValidationError(
            f"expression values contain {n_nan} NaN and {n_inf} infinite entries; "
            "remove or impute them before use"
            + (
                " (pass allow_nan=True / values='delta' for signature data with unmeasured genes)"
                if n_nan and not n_inf
                else ""
            )
        )
    if summary.n_negative:
        if not allow_negative:
            raise DataValidationError(
                f"expression values contain {summary.n_negative} negative entries "
                f"(minimum {summary.minimum:.4g}); counts and log-normalised values "
                "are non-negative (pass allow_negative=True for changes or z-scores)"
            )
        return "signed"
    if summary.integer:
        return "counts"
    return "log" if summary.abs_max <= _LOG_MAX else "linear"

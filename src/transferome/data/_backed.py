"""Backed AnnData (``anndata.read_h5ad(path, backed="r")``) at the boundaries of the library.

In a backed AnnData ``X`` stays on disk: ``adata.X`` is an h5py dataset (dense) or an anndata
sparse dataset, and neither numpy nor scipy take them as a matrix. Paths that read some rows
at a time (validation, the source-weighting models, XTransfer, UGE) read them from the file
as they go. Paths that need every value at once load ``X`` a single time, in the dtype stored
in the file (float32 stays float32), through :func:`in_memory` or :func:`dense_array`, after
checking that it fits in the memory available; otherwise they stop with a
:class:`~transferome.errors.DataValidationError` that says how to proceed. The user's AnnData
and file are never modified.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from transferome.errors import DataValidationError

__all__ = ["dense_array", "in_memory", "is_backed"]

_CHUNK_ROWS = 4096
_CGROUP = Path("/sys/fs/cgroup")


def is_backed(adata: Any) -> bool:
    """Whether ``adata`` is an AnnData (or a view of one) whose ``X`` is on disk."""
    return isinstance(adata, AnnData) and bool(adata.isbacked)


def _available_bytes() -> int | None:
    """Memory this process can still take (the system's, capped by a cgroup limit), or None."""
    available: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            available = None
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            used = int((_CGROUP / "memory.current").read_text().strip())
            left = max(int(limit) - used, 0)
            available = left if available is None else min(available, left)
    except (OSError, ValueError):
        pass
    return available


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB"


def _check_fits(n_bytes: float, shape: tuple[int, int], what: str) -> None:
    available = _available_bytes()
    if available is not None and n_bytes > available:
        raise DataValidationError(
            f"{what} needs the whole expression matrix in memory, but the on-disk matrix of "
            f"this backed AnnData ({shape[0]} x {shape[1]}) takes {_gib(n_bytes)} and only "
            f"{_gib(available)} are available; load the observations you need into memory "
            "first (adata[rows].to_memory()) or use a machine with more memory"
        )


def _stored_x_bytes(adata: AnnData) -> float:
    """Bytes ``X`` of a backed AnnData (or view) takes once read into memory."""
    try:
        node = adata.file["X"]
    except KeyError:
        return 0.0
    if isinstance(node, h5py.Dataset):
        shape = node.shape
        total = float(node.size) * node.dtype.itemsize
    else:  # a sparse group: data, indices, indptr
        shape = tuple(int(n) for n in node.attrs["shape"])
        total = float(sum(node[k].size * node[k].dtype.itemsize for k in node))
    if len(shape) != 2 or not shape[0] or not shape[1]:
        return total
    # a view reads its own rows and columns only
    return total * (adata.n_obs / shape[0]) * (adata.n_vars / shape[1])


def in_memory(adata: AnnData, *, what: str, copy: bool = False) -> AnnData:
    """``adata`` with ``X`` in memory.

    An in-memory AnnData is returned as it is (a copy with ``copy``). A backed one is read
    from its file into a new in-memory AnnData, ``X`` in the dtype stored there; the other
    parts, already in memory, are shared unless ``copy``. ``adata`` and its file are left as
    they are (still backed, still open).

    Parameters
    ----------
    adata
        The data.
    what
        Name of the function or model, for the message.
    copy
        Return an independent copy (as ``adata.copy()`` does for in-memory data).

    Raises
    ------
    DataValidationError
        ``X`` of the backed AnnData does not fit in the memory available.
    """
    if not is_backed(adata):
        return adata.copy() if copy else adata
    _check_fits(_stored_x_bytes(adata), (adata.n_obs, adata.n_vars), what)
    return adata.to_memory(copy=copy)


def _rows_block(matrix: Any, start: int, stop: int) -> np.ndarray:
    block = matrix[start:stop]
    return block.toarray() if sp.issparse(block) else np.asarray(block)


def dense_array(matrix: Any, dtype: Any = np.float32, *, what: str) -> np.ndarray:
    """A new dense ``dtype`` array of a dense, sparse or backed matrix.

    A backed matrix (an h5py dataset or an anndata sparse dataset) is read a block of rows at
    a time into the result, so it never passes through a whole copy of another dtype.
    ``what`` names the function or model in the message.

    Raises
    ------
    DataValidationError
        ``matrix`` is on disk (a backed AnnData's ``X`` or layer) and the array does not fit
        in the memory available.
    """
    dtype = np.dtype(dtype)
    if isinstance(matrix, np.ndarray):
        return np.array(matrix, dtype=dtype, copy=True)
    if sp.issparse(matrix):
        return np.asarray(matrix.toarray(), dtype=dtype)
    n_rows, n_cols = (int(n) for n in matrix.shape)
    _check_fits(float(n_rows) * n_cols * dtype.itemsize, (n_rows, n_cols), what)
    out = np.empty((n_rows, n_cols), dtype=dtype)
    for start in range(0, n_rows, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n_rows)
        out[start:stop] = _rows_block(matrix, start, stop)
    return out

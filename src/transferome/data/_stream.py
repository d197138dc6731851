"""Reading an on-disk expression matrix a block of rows at a time, and group statistics.

The statistics of groups of its rows are computed in one pass.

An AnnData read with ``read_h5ad(path, backed=True)`` keeps ``X`` (and its layers) in the file:
``X`` is an h5py dataset (dense) or an anndata sparse dataset, and so is ``X`` of every view of
it, at the root of the view. Taking ``view.X`` would read all of the view's rows at once, so the
functions here go to the stored matrix at the root and read contiguous runs of its rows.

:func:`row_stats` gives, for each group of rows (a ``codes`` vector), what validation and every
mean-based model need: the number of rows, the gene sums over the measured (non-NaN) values,
how many values were NaN, and a summary of the stored values (their type, sign, range and
whether all are whole numbers). The statistics of a set of rows of a file are cached (keyed by
the file, its modification time, the columns and the rows themselves), so the many fits of one
benchmark, each on a different union of the same groups, read the file once.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from anndata.abc import CSCDataset, CSRDataset

from transferome.data._values import ValueSummary, _GroupValues

__all__ = [
    "RowStats",
    "ValueSummary",
    "clear_cache",
    "dense",
    "dense_rows",
    "iter_row_blocks",
    "memory_block",
    "on_disk",
    "read_rows",
    "row_stats",
    "stored_source",
]

CHUNK_ROWS = 4096
# A run of wanted rows this dense in its window (or denser) is read as one contiguous slice;
# sparser ones row by row (a few rows of a group scattered over a large file).
_CONTIGUOUS_DENSITY = 0.25
_CACHE_BYTES = 512 * 2**20


def on_disk(matrix: Any) -> bool:
    """Whether ``matrix`` is stored in a file (an h5py dataset or an anndata sparse dataset)."""
    return isinstance(matrix, h5py.Dataset | CSRDataset | CSCDataset)


def stored_source(
    adata: AnnData, layer: str | None = None
) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """Return the stored matrix behind ``adata.X`` (or a layer), and the rows and columns held.

    The rows and columns are those of the stored matrix that ``adata`` holds (``None``: all, in
    order). For a view of an AnnData whose matrix is on disk this is the root's matrix and the
    view's positions in it; otherwise ``adata``'s own matrix.
    """
    if adata.is_view:
        root = adata._adata_ref  # the AnnData a view (of a view) was taken from
        matrix = root.layers[layer] if layer is not None else root.X
        if on_disk(matrix):
            rows = np.arange(root.n_obs)[adata._oidx]
            cols = np.arange(root.n_vars)[adata._vidx]
            full_cols = cols.size == root.n_vars and bool(np.all(cols == np.arange(cols.size)))
            return matrix, rows, None if full_cols else cols
    matrix = adata.layers[layer] if layer is not None else adata.X
    return matrix, None, None


def _as_block(block: Any) -> Any:
    if sp.issparse(block):
        return sp.csr_matrix(block)
    return np.asarray(block)


def iter_row_blocks(
    adata: AnnData,
    *,
    layer: str | None = None,
    rows: np.ndarray | None = None,
    chunk_rows: int | None = None,
) -> Iterator[tuple[np.ndarray, Any]]:
    """Yield ``(positions, block)``: rows of ``X`` (or a layer) a block at a time.

    ``positions`` are row positions in ``adata`` (sorted by where the rows are stored) and
    ``block`` holds those rows (CSR or ndarray, the stored dtype). ``rows`` restricts the rows
    read (positions in ``adata``); every wanted row is read exactly once. On-disk matrices are
    read in contiguous runs of at most ``chunk_rows`` stored rows (default :data:`CHUNK_ROWS`);
    in-memory ones are sliced.
    """
    chunk_rows = int(chunk_rows or CHUNK_ROWS)
    matrix, root_rows, cols = stored_source(adata, layer)
    if matrix is None:
        raise ValueError("the AnnData has no matrix to read")
    local = np.arange(adata.n_obs) if rows is None else np.asarray(rows, dtype=np.int64)
    if not on_disk(matrix):
        if sp.issparse(matrix) and not isinstance(matrix, sp.csr_matrix | sp.csr_array):
            matrix = sp.csr_matrix(matrix)
        for start in range(0, local.size, chunk_rows):
            part = local[start : start + chunk_rows]
            if rows is None:
                yield part, _as_block(matrix[int(part[0]) : int(part[-1]) + 1])
            else:
                yield part, _as_block(matrix[part])
        return
    stored = local if root_rows is None else root_rows[local]
    order = np.argsort(stored, kind="stable")
    stored, local = stored[order], local[order]
    start = 0
    while start < stored.size:
        first = int(stored[start])
        stop = int(np.searchsorted(stored, first + chunk_rows, side="left"))
        wanted = stored[start:stop]
        span = int(wanted[-1]) - first + 1
        if wanted.size >= _CONTIGUOUS_DENSITY * span:
            block = _as_block(matrix[first : first + span])
            if wanted.size != span:
                block = block[wanted - first]
        else:
            # rows scattered over the file (a group of a shuffled atlas): up to chunk_rows of
            # them, wherever they are, in one read
            stop = min(start + chunk_rows, stored.size)
            # h5py takes increasing indices without repeats
            unique, inverse = np.unique(stored[start:stop], return_inverse=True)
            block = _as_block(matrix[unique])
            if unique.size != stop - start:
                block = block[inverse]
        if cols is not None:
            block = block[:, cols]
        yield local[start:stop], block
        start = stop


def read_rows(adata: AnnData, rows: np.ndarray, *, layer: str | None = None) -> Any:
    """Rows ``rows`` (positions in ``adata``, in that order) of ``X`` or a layer, in memory."""
    rows = np.asarray(rows, dtype=np.int64)
    parts, where = [], []
    for positions, block in iter_row_blocks(adata, layer=layer, rows=rows):
        parts.append(block)
        where.append(positions)
    if not parts:
        matrix, _, _ = stored_source(adata, layer)
        empty = np.zeros((0, adata.n_vars), dtype=getattr(matrix, "dtype", np.float32))
        return sp.csr_matrix(empty) if _is_sparse(matrix) else empty
    stacked = sp.vstack(parts, format="csr") if sp.issparse(parts[0]) else np.vstack(parts)
    # back to the order asked for: position k of the result is rows[k]
    found = np.concatenate(where)
    order = np.argsort(found, kind="stable")
    return stacked[order[np.searchsorted(found[order], rows)]]


def memory_block(block: Any) -> Any:
    """Convert a block read from an on-disk matrix for :func:`dense_rows`.

    The result is canonical float32 CSR (duplicates summed) or a float32 ndarray.
    """
    if hasattr(block, "to_memory"):  # anndata's lazy sparse slice
        block = block.to_memory()
    if sp.issparse(block):
        csr = sp.csr_matrix(block, dtype=np.float32)
        csr.sum_duplicates()
        return csr
    return np.asarray(block, dtype=np.float32)


def dense(block: Any, dtype: Any = np.float32) -> np.ndarray:
    """Return a block of rows (CSR or ndarray, as :func:`iter_row_blocks` yields) as dense."""
    return np.asarray(block.toarray() if sp.issparse(block) else block, dtype=dtype)


def dense_rows(matrix: Any, rows: np.ndarray) -> np.ndarray:
    """Return rows ``rows`` of an in-memory matrix as a new dense float32 array.

    The matrix is a CSR matrix (canonical: no duplicate entries) or an ndarray; no intermediate
    sparse matrix is made.
    """
    if not sp.issparse(matrix):
        return np.asarray(matrix[rows], dtype=np.float32)  # fancy indexing copies
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    starts, stops = indptr[rows], indptr[rows + 1]
    lengths = stops - starts
    out = np.zeros((len(rows), matrix.shape[1]), dtype=np.float32)
    total = int(lengths.sum())
    if total == 0:
        return out
    row_of = np.repeat(np.arange(len(rows)), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.repeat(starts, lengths) + offsets
    out[row_of, indices[positions]] = data[positions]
    return out


def _is_sparse(matrix: Any) -> bool:
    return sp.issparse(matrix) or isinstance(matrix, CSRDataset | CSCDataset)


@dataclass(frozen=True)
class RowStats:
    """Statistics of one set of rows.

    Attributes
    ----------
    n_rows
        Rows in the set.
    sums
        ``(genes,)`` float64 sum of the measured (non-NaN) values of each gene.
    n_nan
        ``(genes,)`` NaN values of each gene, or ``None`` when there are none.
    values
        Summary of the stored values (for sparse matrices the explicitly stored ones).
    """

    n_rows: int
    sums: np.ndarray
    n_nan: np.ndarray | None
    values: ValueSummary

    @property
    def means(self) -> np.ndarray:
        """Mean of each gene over its measured values (NaN where none was measured)."""
        counts = np.full(self.sums.shape, float(self.n_rows))
        if self.n_nan is not None:
            counts = counts - self.n_nan
        return np.divide(self.sums, counts, out=np.full(self.sums.shape, np.nan), where=counts > 0)

    @property
    def nbytes(self) -> int:
        return int(self.sums.nbytes + (0 if self.n_nan is None else self.n_nan.nbytes))


class _StatsCache:
    """Statistics of row sets of on-disk matrices, least recently used first out."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, RowStats] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> RowStats | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key: tuple, item: RowStats) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = item
            self._bytes += item.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0


_CACHE = _StatsCache(_CACHE_BYTES)


def clear_cache() -> None:
    """Forget the cached statistics of on-disk matrices."""
    _CACHE.clear()


def _matrix_identity(matrix: Any) -> tuple | None:
    """Name an on-disk matrix and its content: file, node, size and modification time."""
    try:
        node = matrix if isinstance(matrix, h5py.Dataset) else matrix.group
        filename = node.file.filename
        stat = os.stat(filename)
        return (os.path.realpath(filename), node.name, stat.st_size, stat.st_mtime_ns)
    except (AttributeError, OSError, TypeError, ValueError):
        return None


def _digest(array: np.ndarray | None) -> str:
    if array is None:
        return "all"
    return hashlib.blake2b(
        np.ascontiguousarray(array, dtype=np.int64).tobytes(), digest_size=16
    ).hexdigest()


def row_stats(
    adata: AnnData, codes: np.ndarray, n_groups: int, *, layer: str | None = None
) -> list[RowStats]:
    """:class:`RowStats` of the rows with each code ``0 .. n_groups - 1`` (-1: in no group).

    One pass over the rows of every group whose statistics are not cached (for a matrix on
    disk, where they are cached by file and rows); in-memory matrices are read in blocks too.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.shape != (adata.n_obs,):
        raise ValueError(f"codes has shape {codes.shape}, expected ({adata.n_obs},)")
    matrix, root_rows, cols = stored_source(adata, layer)
    n_genes = adata.n_vars
    identity = _matrix_identity(matrix) if on_disk(matrix) else None
    # rows of each group, in order: one sort instead of a comparison per group
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1))
    members = [order[bounds[g] : bounds[g + 1]] for g in range(n_groups)]
    result: list[RowStats | None] = [None] * n_groups
    keys: list[tuple | None] = [None] * n_groups
    if identity is not None:
        col_key = _digest(cols)
        for g, rows in enumerate(members):
            stored = rows if root_rows is None else root_rows[rows]
            key = (*identity, col_key, _digest(np.sort(stored)))
            keys[g] = key
            result[g] = _CACHE.get(key)
    todo = [g for g in range(n_groups) if result[g] is None]
    if todo:
        for g, stats in zip(
            todo, _scan(adata, codes, todo, members, n_genes, layer=layer), strict=True
        ):
            result[g] = stats
            kept = keys[g]
            if kept is not None:
                _CACHE.put(kept, stats)
    return [r for r in result if r is not None]


def _scan(
    adata: AnnData,
    codes: np.ndarray,
    groups: list[int],
    members: list[np.ndarray],
    n_genes: int,
    *,
    layer: str | None,
) -> list[RowStats]:
    slot = np.full(max(int(codes.max(initial=-1)) + 1, 1), -1, dtype=np.int64)
    slot[groups] = np.arange(len(groups))
    sums = np.zeros((len(groups), n_genes))
    nans = np.zeros((len(groups), n_genes))
    any_nan = np.zeros(len(groups), dtype=bool)
    summaries = _GroupValues(len(groups))
    wanted = np.concatenate([members[g] for g in groups]) if groups else np.zeros(0, np.int64)
    for positions, block in iter_row_blocks(adata, layer=layer, rows=np.sort(wanted)):
        local = slot[codes[positions]]
        summaries.add(block, local)
        if block.dtype.kind not in "fiu":
            continue  # the caller reports the dtype; nothing to add up
        if sp.issparse(block):
            # every stored value into its (group, gene) cell: one bincount, no sparse product
            data = block.data
            cell = np.repeat(local, np.diff(block.indptr)) * n_genes + block.indices
            cells = len(groups) * n_genes
            missing = np.isnan(data) if data.dtype.kind == "f" else None
            if missing is not None and missing.any():
                data = np.where(missing, 0.0, data)
                nans += np.bincount(cell[missing], minlength=cells).reshape(nans.shape)
                any_nan[np.unique(local)] = True
            sums += np.bincount(cell, weights=data, minlength=cells).reshape(sums.shape)
        else:
            indicator = sp.csr_matrix(
                (np.ones(local.size), (local, np.arange(local.size))),
                shape=(len(groups), local.size),
            )
            values = np.asarray(block, dtype=np.float64)
            missing = np.isnan(values)
            if missing.any():
                nans += indicator @ missing.astype(np.float64)
                values = np.where(missing, 0.0, values)
                any_nan[np.unique(local[missing.any(axis=1)])] = True
            sums += indicator @ values
    return [
        RowStats(
            n_rows=int(members[g].size),
            sums=sums[s],
            n_nan=nans[s].astype(np.int64) if any_nan[s] else None,
            values=summaries.summary(s),
        )
        for s, g in enumerate(groups)
    ]

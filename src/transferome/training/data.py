"""Datasets over AnnData rows and tensors, and the batch sampler the engine uses.

A dataset with ``batched_indexing = True`` accepts a whole array of row indices in
``__getitem__`` and returns the batch at once (one sparse or on-disk slice instead of one
read and one collate per row); the engine then hands it index batches directly. Plain
torch datasets still work, one item at a time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from anndata import AnnData

from transferome.data.blocks import dense_rows, memory_block, on_disk, stored_source
from transferome.errors import DataValidationError

__all__ = ["AnnDataRows", "IndexBatchSampler", "TensorRows", "supports_batched_indexing"]

# Rows per on-disk read of a backed AnnData, and how many such chunks stay in memory.
DEFAULT_CHUNK_SIZE = 1024
DEFAULT_CACHE_CHUNKS = 16
# A batch wanting fewer than this share of an uncached chunk's rows reads those rows alone.
_WHOLE_CHUNK = 0.125


def supports_batched_indexing(dataset: Any) -> bool:
    """Whether ``dataset[index_array]`` returns a whole batch (see the module docstring)."""
    return bool(getattr(dataset, "batched_indexing", False))


def _column_tensor(name: str, values: Any, n_rows: int) -> torch.Tensor:
    array = np.asarray(values)
    if array.ndim == 0 or array.shape[0] != n_rows:
        raise DataValidationError(
            f"obs_columns[{name!r}] has {array.shape[0] if array.ndim else 0} rows, "
            f"expected {n_rows} (one per observation)"
        )
    if array.dtype == np.bool_:
        return torch.from_numpy(array.copy())
    if np.issubdtype(array.dtype, np.integer):
        return torch.from_numpy(array.astype(np.int64))
    if np.issubdtype(array.dtype, np.floating):
        return torch.from_numpy(array.astype(np.float32))
    raise DataValidationError(
        f"obs_columns[{name!r}] has dtype {array.dtype}; expected numbers or booleans "
        "(encode categories as integer codes first)"
    )


class AnnDataRows(torch.utils.data.Dataset):
    """A torch dataset over the rows of an AnnData, without densifying the whole matrix.

    Parameters
    ----------
    adata
        Dense or sparse ``X``, or an AnnData opened with ``backed="r"`` (rows are then read
        from disk a batch at a time). It is never modified.
    layer
        Read this layer instead of ``X``.
    obs_columns
        Extra per-row values (integer codes, covariates): name -> array with one entry (or
        row) per observation. Integers become int64 tensors, floats float32.
    chunk_size
        Rows per on-disk read. For a backed AnnData (default 1024) the engine's sampler then
        shuffles whole chunks and rows within a few chunks at a time, so every chunk is read
        once per epoch; for in-memory data ``None`` (rows shuffled freely).
    cache_chunks
        Chunks of a backed matrix kept in memory.

    Notes
    -----
    ``rows[i]`` returns ``{"x": float32 (n_genes,), "index": int64, **columns}``;
    ``rows[index_array]`` returns the same keys with a leading batch dimension.
    """

    batched_indexing = True

    def __init__(
        self,
        adata: AnnData,
        layer: str | None = None,
        obs_columns: Mapping[str, np.ndarray] | None = None,
        *,
        chunk_size: int | None = None,
        cache_chunks: int = DEFAULT_CACHE_CHUNKS,
    ) -> None:
        if not isinstance(adata, AnnData):
            raise DataValidationError(f"expected an AnnData, got {type(adata).__name__}")
        self.n_obs, self.n_vars = adata.n_obs, adata.n_vars
        if layer is not None and layer not in adata.layers:
            raise DataValidationError(
                f"layer {layer!r} not found; the AnnData has layers {sorted(adata.layers)}"
            )
        # a view of on-disk data reads its rows (and columns) from the stored matrix
        stored, self._stored_rows, self._stored_cols = stored_source(adata, layer)
        self.backed = on_disk(stored)
        matrix = stored if self.backed else (adata.layers[layer] if layer else adata.X)
        if matrix is None:
            raise DataValidationError("the AnnData has no X; pass layer= to read a layer")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise DataValidationError(f"chunk_size={chunk_size!r}; expected a positive integer")
        if not isinstance(cache_chunks, int) or cache_chunks < 1:
            raise DataValidationError(f"cache_chunks={cache_chunks!r}; expected a positive integer")
        self.chunk_size = chunk_size or (DEFAULT_CHUNK_SIZE if self.backed else None)
        self.cache_chunks = cache_chunks
        self._cache: OrderedDict[int, Any] = OrderedDict()
        if self.backed:
            self._matrix: Any = matrix
        elif sp.issparse(matrix):
            csr = sp.csr_matrix(matrix, dtype=np.float32)  # shares arrays when it can
            if not csr.has_canonical_format:  # duplicates summed on a copy, never in place
                csr = csr.copy()
                csr.sum_duplicates()
            self._matrix = csr
        else:
            self._matrix = np.asarray(matrix, dtype=np.float32)  # read only, never written
        self.columns = {
            name: _column_tensor(name, values, self.n_obs)
            for name, values in (obs_columns or {}).items()
        }
        reserved = {"x", "index"} & set(self.columns)
        if reserved:
            raise DataValidationError(f"obs_columns may not use the reserved names {reserved}")

    def __len__(self) -> int:
        return self.n_obs

    def _rows(self, index: np.ndarray) -> torch.Tensor:
        if isinstance(self._matrix, np.ndarray):
            return torch.from_numpy(self._matrix[index])  # fancy indexing copies the rows
        if self.backed:
            return torch.from_numpy(self._read_backed(index))
        return torch.from_numpy(dense_rows(self._matrix, index))

    def _backed_chunk_size(self) -> int:
        """Rows per on-disk read: ``chunk_size`` is always set for a backed matrix."""
        assert self.chunk_size is not None
        return self.chunk_size

    def _chunk(self, chunk: int) -> Any:
        """Rows ``[chunk * chunk_size, (chunk + 1) * chunk_size)`` of a backed matrix, cached."""
        block = self._cache.get(chunk)
        if block is None:
            size = self._backed_chunk_size()
            start = chunk * size
            stop = min(start + size, int(self._matrix.shape[0]))
            block = memory_block(self._matrix[start:stop])
            self._cache[chunk] = block
            if len(self._cache) > self.cache_chunks:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(chunk)
        return block

    def _read_backed(self, index: np.ndarray) -> np.ndarray:
        """Gather rows from on-disk chunks; each chunk is read once while it stays cached."""
        stored = index if self._stored_rows is None else self._stored_rows[index]
        width = self._matrix.shape[1]
        out = np.empty((len(index), width), dtype=np.float32)
        size = self._backed_chunk_size()
        chunks = stored // size
        scattered = np.zeros(len(index), dtype=bool)
        for chunk in np.unique(chunks):
            mask = chunks == chunk
            if int(chunk) not in self._cache and mask.sum() < _WHOLE_CHUNK * size:
                scattered |= mask  # a few rows of a chunk not in memory: read on their own
                continue
            local = stored[mask] - chunk * size
            block = self._chunk(int(chunk))
            out[mask] = dense_rows(block, local)
        if scattered.any():
            # random access (e.g. training pairs): every such row of the batch in one read
            wanted, inverse = np.unique(stored[scattered], return_inverse=True)
            block = memory_block(self._matrix[wanted])
            out[scattered] = dense_rows(block, inverse)
        return out if self._stored_cols is None else out[:, self._stored_cols]

    def __getitem__(self, index: Any) -> dict[str, torch.Tensor]:
        scalar = isinstance(index, (int, np.integer)) or (
            isinstance(index, torch.Tensor) and index.ndim == 0
        )
        idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
        if idx.ndim != 1:
            raise IndexError(f"expected an integer or a 1-d array of row indices, got {index!r}")
        if idx.size and (idx.min() < -self.n_obs or idx.max() >= self.n_obs):
            raise IndexError(f"row index out of range for {self.n_obs} rows")
        idx = np.where(idx < 0, idx + self.n_obs, idx)
        x = self._rows(idx) if idx.size else torch.zeros((0, self.n_vars), dtype=torch.float32)
        item = {"x": x, "index": torch.from_numpy(idx)}
        tidx = torch.from_numpy(idx)
        item.update({name: values[tidx] for name, values in self.columns.items()})
        if scalar:
            return {name: value[0] for name, value in item.items()}
        return item


class TensorRows(torch.utils.data.Dataset):
    """A dataset over named tensors sharing their first dimension, indexed a batch at a time.

    Parameters
    ----------
    **tensors
        Name -> tensor (or array); all must have the same number of rows.
    """

    batched_indexing = True

    def __init__(self, **tensors: Any) -> None:
        if not tensors:
            raise DataValidationError("TensorRows needs at least one named tensor")
        self.tensors = {name: torch.as_tensor(value) for name, value in tensors.items()}
        lengths = {name: len(t) for name, t in self.tensors.items()}
        if len(set(lengths.values())) != 1:
            raise DataValidationError(f"tensors have different numbers of rows: {lengths}")
        self.n_rows = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, index: Any) -> dict[str, torch.Tensor]:
        if isinstance(index, np.ndarray):
            index = torch.from_numpy(index.astype(np.int64, copy=False))
        return {name: values[index] for name, values in self.tensors.items()}


class IndexBatchSampler(torch.utils.data.Sampler):
    """Yield arrays of row indices, one per batch, split across data-parallel processes.

    Every process draws the same permutation (from ``seed`` and the epoch), cuts it into
    global batches of ``batch_size * num_replicas`` rows and keeps its own share of each, so
    ``num_replicas`` processes see exactly the batches one process would see with the global
    batch size.

    Parameters
    ----------
    n_rows
        Rows in the dataset.
    batch_size
        Rows per batch in each process.
    shuffle
        Draw a new permutation every epoch (training) or keep the row order (validation).
    seed
        Seed of the permutations.
    num_replicas, rank
        Number of data-parallel processes and the index of this one.
    chunk_size
        If set, shuffle contiguous chunks of this many rows, then rows within groups of
        chunks: batches then touch few regions of an on-disk matrix.
    """

    def __init__(
        self,
        n_rows: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        chunk_size: int | None = None,
    ) -> None:
        if batch_size < 1 or num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"invalid batch_size={batch_size}, num_replicas={num_replicas}, rank={rank}"
            )
        self.n_rows, self.batch_size, self.shuffle, self.seed = n_rows, batch_size, shuffle, seed
        self.num_replicas, self.rank, self.chunk_size = num_replicas, rank, chunk_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of this epoch."""
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n_rows)
        rng = np.random.default_rng([self.seed, self.epoch])
        if not self.chunk_size:
            return rng.permutation(self.n_rows)
        starts = rng.permutation(np.arange(0, self.n_rows, self.chunk_size))
        global_batch = self.batch_size * self.num_replicas
        group = max(4, 2 * -(-global_batch // self.chunk_size))  # chunks shuffled together
        pieces = []
        for g in range(0, len(starts), group):
            rows = np.concatenate(
                [np.arange(s, min(s + self.chunk_size, self.n_rows)) for s in starts[g : g + group]]
            )
            pieces.append(rng.permutation(rows))
        return np.concatenate(pieces) if pieces else np.arange(0)

    def _global_batches(self) -> Sequence[np.ndarray]:
        order = self._order()
        size = self.batch_size * self.num_replicas
        return [order[i : i + size] for i in range(0, len(order), size)]

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.num_replicas == 1:
            yield from self._global_batches()
            return
        if not self.shuffle:  # validation: contiguous shares, uneven sizes are fine
            share = np.array_split(np.arange(self.n_rows), self.num_replicas)[self.rank]
            for i in range(0, len(share), self.batch_size):
                yield share[i : i + self.batch_size]
            return
        order = self._order()
        for batch in self._global_batches():
            if len(batch) < self.num_replicas:  # every process needs a row for each step
                batch = np.concatenate([batch, order[: self.num_replicas - len(batch)]])
            yield np.array_split(batch, self.num_replicas)[self.rank]

    def __len__(self) -> int:
        if self.num_replicas > 1 and not self.shuffle:
            share = len(np.array_split(np.arange(self.n_rows), self.num_replicas)[self.rank])
            return -(-share // self.batch_size)
        return -(-self.n_rows // (self.batch_size * self.num_replicas))

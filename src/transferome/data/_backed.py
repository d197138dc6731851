"""AnnData whose matrix is on disk, at the boundaries of the library.

Two kinds: anndata's ``read_h5ad(path, backed="r")`` and transferome's
``read_h5ad(path, backed=True)`` (:func:`open_lazy`), whose layers stay on disk too and whose
views can be viewed again (:func:`lazy` turns the first into the second). ``X`` is then an h5py
dataset (dense) or an anndata sparse dataset, which neither numpy nor scipy take as a matrix.
Validation, the group means and everything built on them, the ceiling and the training rows
read the file a block of rows at a time (:mod:`transferome.data._stream`), and a row-wise
change of the values (the normalisation of raw counts) is written to a new temporary file the
same way (:func:`rewritten`). Paths that need every value at once load ``X`` a single time, in
the dtype stored in the file (float32 stays float32), through :func:`in_memory` or
:func:`dense_values`, after checking that it fits in the memory available; otherwise they stop
with a :class:`~transferome.errors.DataValidationError` that says how to proceed. The user's
AnnData and file are never modified.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from anndata.io import read_elem, sparse_dataset, write_elem

import transferome.data._stream as _stream
from transferome.data._stream import iter_row_blocks, on_disk, read_rows, stored_source
from transferome.errors import DataValidationError

__all__ = ["dense_values", "in_memory", "is_backed", "lazy", "open_lazy", "rewritten"]

_CGROUP = Path("/sys/fs/cgroup")


def is_backed(adata: Any) -> bool:
    """Whether ``adata`` is an AnnData (or a view of one) whose ``X`` is on disk."""
    if not isinstance(adata, AnnData):
        return False
    return bool(adata.isbacked) or on_disk(stored_source(adata)[0])


def lazy(adata: AnnData) -> AnnData:
    """``adata`` as an AnnData whose ``X`` stays on disk and whose views can be viewed again.

    anndata refuses a view of a view of a backed AnnData; the splits of a benchmark and the
    models' own subsets need exactly that. The result reads ``X`` from the same open file (its
    obs, var and uns are copies; nothing is read from ``X``). Other AnnData are returned as
    they are.
    """
    if not adata.isbacked:
        return adata
    if adata.is_view:
        root = adata._adata_ref
        return lazy(root)[adata._oidx, adata._vidx]
    return AnnData(
        X=adata.X,
        obs=adata.obs.copy(),
        var=adata.var.copy(),
        uns=dict(adata.uns),
        obsm=dict(adata.obsm),
        varm=dict(adata.varm),
        layers=dict(adata.layers),
    )


def open_lazy(path: str | os.PathLike[str]) -> AnnData:
    """Open an ``.h5ad`` file with ``X`` and every layer left on disk (read-only).

    obs, var, uns, obsm and varm are read into memory; ``X`` and the layers are h5py or
    anndata sparse datasets, read a block of rows at a time by the paths that stream (see
    :mod:`transferome.data._stream`). The file stays open as long as the AnnData is used.
    """
    handle = h5py.File(path, "r")
    try:
        parts: dict[str, Any] = {}
        for name in ("obs", "var", "uns", "obsm", "varm"):
            if name in handle:
                parts[name] = read_elem(handle[name])
        x = _dataset(handle["X"]) if "X" in handle else None
        layers = {}
        if "layers" in handle:
            layers = {name: _dataset(node) for name, node in handle["layers"].items()}
    except Exception:
        handle.close()
        raise
    return AnnData(X=x, layers=layers, **parts)


def _dataset(node: Any) -> Any:
    return node if isinstance(node, h5py.Dataset) else sparse_dataset(node)


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
    matrix, _, _ = stored_source(adata)
    if matrix is None:
        return 0.0
    if isinstance(matrix, h5py.Dataset):
        shape = matrix.shape
        total = float(matrix.size) * matrix.dtype.itemsize
    else:  # a sparse group: data, indices, indptr
        node = matrix.group
        shape = tuple(int(n) for n in matrix.shape)
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
    if adata.isbacked:
        return adata.to_memory(copy=copy)
    # X and the layers on disk outside anndata's backed mode: copying reads them
    return adata.copy() if adata.is_view else adata.to_memory()


def dense_values(
    adata: AnnData,
    columns: np.ndarray | None = None,
    *,
    layer: str | None = None,
    what: str,
) -> np.ndarray:
    """Return a new dense float32 array of ``X`` (or a layer) of ``adata``, or some columns.

    An on-disk matrix (of a backed AnnData or a view of one) is read a block of rows at a
    time straight into the result, after checking that the result fits in the memory
    available (``what`` names the function or model in the message); in-memory data are
    converted as they are.
    """
    matrix, _, _ = stored_source(adata, layer)
    if matrix is None:
        raise DataValidationError("the AnnData has no X; pass layer= to use a layer")
    if not on_disk(matrix):
        matrix = adata.X if layer is None else adata.layers[layer]
        part = matrix if columns is None else matrix[:, columns]
        part = part.toarray() if sp.issparse(part) else part
        return np.array(part, dtype=np.float32, copy=True)
    n_cols = adata.n_vars if columns is None else len(columns)
    _check_fits(4.0 * adata.n_obs * n_cols, (adata.n_obs, n_cols), what)
    out = np.empty((adata.n_obs, n_cols), dtype=np.float32)
    for positions, block in iter_row_blocks(adata, layer=layer):
        out[positions] = _stream.dense(block if columns is None else block[:, columns])
    return out


def rewritten(
    adata: AnnData,
    *,
    layer: str | None,
    transform: Callable[[Any], Any],
    keep_input: str | None,
    uns: dict[str, Any],
) -> AnnData:
    """Write a new on-disk AnnData whose ``X`` is ``transform`` of each block of ``adata``.

    The values (``X`` or ``layer``) are read a block of rows at a time, transformed (a
    row-wise function of a CSR or dense float32 block, e.g. normalisation) and written to a
    temporary ``.h5ad`` file, which is opened with :func:`open_lazy` and deleted when the
    result is no longer used (or at exit). ``keep_input`` names a layer that keeps the input
    values (float32); ``uns`` is the result's ``uns``. ``adata`` and its file are untouched.
    """
    folder = Path(tempfile.mkdtemp(prefix="transferome-"))
    path = folder / "values.h5ad"
    try:
        with h5py.File(path, "w") as handle:
            handle.attrs["encoding-type"] = "anndata"
            handle.attrs["encoding-version"] = "0.1.0"
            write_elem(handle, "obs", adata.obs)
            write_elem(handle, "var", adata.var)
            write_elem(handle, "uns", uns)
            for name in ("obsm", "varm", "obsp", "varp"):
                write_elem(handle, name, {})
            layers = handle.create_group("layers")
            layers.attrs["encoding-type"] = "dict"
            layers.attrs["encoding-version"] = "0.1.0"
            targets = [(handle, "X", transform)]
            if keep_input is not None:
                targets.append((layers, keep_input, lambda block: block))
            _write_rows(adata, layer, targets)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    out = open_lazy(path)
    weakref.finalize(out, shutil.rmtree, folder, ignore_errors=True)
    return out


def _write_rows(
    adata: AnnData, layer: str | None, targets: list[tuple[Any, str, Callable[[Any], Any]]]
) -> None:
    """Write ``change`` of the rows of ``adata`` to ``group[name]`` for each of ``targets``.

    ``targets`` holds ``(group, name, change)`` triples; all are written in one pass, a block of
    rows at a time.
    """
    sparse = _stream._is_sparse(stored_source(adata, layer)[0])
    written: dict[str, Any] = {}
    step = _stream.CHUNK_ROWS
    for start in range(0, adata.n_obs, step):
        rows = np.arange(start, min(start + step, adata.n_obs))
        block = read_rows(adata, rows, layer=layer)
        block = sp.csr_matrix(block, dtype=np.float32) if sparse else np.asarray(block, np.float32)
        for group, name, change in targets:
            _append(group, name, change(block), written, shape=adata.shape, start=start)


def _append(
    group: Any,
    name: str,
    block: Any,
    written: dict[str, Any],
    *,
    shape: tuple[int, int],
    start: int,
) -> None:
    """Add a block of rows to ``group[name]`` (created by the first block)."""
    key = f"{group.name}/{name}"
    if sp.issparse(block):
        if key in written:
            written[key].append(sp.csr_matrix(block))
        else:
            write_elem(group, name, sp.csr_matrix(block))
            written[key] = sparse_dataset(group[name])
        return
    if key not in written:
        written[key] = group.create_dataset(name, shape=shape, dtype=np.float32)
        written[key].attrs["encoding-type"] = "array"
        written[key].attrs["encoding-version"] = "0.2.0"
    written[key][start : start + block.shape[0]] = block

"""Readers and writers. Every writer is atomic (temporary file, then rename).

Formats: ``.h5ad``; CSV / TSV expression tables (:func:`read_table`); 10x ``matrix.mtx``
folders (:func:`read_10x_mtx`); GCT 1.2 / 1.3 (:func:`read_gct`). :func:`read` picks the
reader from the file name or the folder layout.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import anndata as ad
from anndata import AnnData

from transferome.data._atomic import atomic_path
from transferome.data._backed import open_lazy
from transferome.data._gct import read_gct, write_gct
from transferome.data._mtx import find_mtx, read_10x_mtx, write_10x_mtx
from transferome.data._tables import read_metadata, read_table, write_table
from transferome.data._text import base_suffix, existing_file
from transferome.errors import ReaderError

__all__ = [
    "FORMATS",
    "read",
    "read_10x_mtx",
    "read_gct",
    "read_h5ad",
    "read_metadata",
    "read_table",
    "write",
    "write_10x_mtx",
    "write_gct",
    "write_h5ad",
    "write_table",
]

FORMATS = {
    "h5ad": ".h5ad",
    "table": ".csv, .tsv, .txt, .tab (optionally .gz)",
    "gct": ".gct (optionally .gz)",
    "10x": "a folder with matrix.mtx(.gz), features.tsv(.gz) or genes.tsv(.gz), barcodes.tsv(.gz)",
}
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")


def read_h5ad(path: str | os.PathLike[str], *, backed: bool = False) -> AnnData:
    """Read an ``.h5ad`` file.

    Parameters
    ----------
    path
        The file.
    backed
        Keep ``X`` and the layers on disk (read-only) instead of loading them into memory:
        validation, group means, the mean-based models, scores and the neural models'
        training read them a block of rows at a time. The AnnData's views can be viewed again
        (unlike anndata's ``backed="r"``); ``obs``, ``var`` and ``uns`` are in memory.
    """
    p = existing_file(path)
    try:
        with warnings.catch_warnings():
            # duplicated names are reported, precisely, by validation
            warnings.filterwarnings("ignore", "(Observation|Variable) names are not unique")
            if backed:
                return open_lazy(p)
            return ad.read_h5ad(p)
    except Exception as exc:  # h5py and anndata raise many types for corrupt files
        raise ReaderError(f"{p}: not a readable .h5ad file ({type(exc).__name__}: {exc})") from exc


def write_h5ad(adata: AnnData, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write ``adata`` to ``path`` atomically; ``adata`` itself is not modified."""
    final = Path(path)
    with atomic_path(final, overwrite=overwrite) as tmp:
        adata.write_h5ad(tmp)
    return final


def format_of(path: str | os.PathLike[str]) -> str:
    """Return the format :func:`read` would use for ``path``: a key of :data:`FORMATS`."""
    p = Path(path)
    if not p.exists():
        raise ReaderError(f"{p}: no such file or directory")
    if p.is_dir():
        if find_mtx(p) is not None:
            return "10x"
        raise ReaderError(f"{p}: a folder, but not a 10x folder (no matrix.mtx or matrix.mtx.gz)")
    suffix = base_suffix(p)
    if p.name.lower().endswith(("matrix.mtx", "matrix.mtx.gz")):
        return "10x"
    if suffix == ".h5ad" and p.suffix.lower() == ".h5ad":
        return "h5ad"
    if suffix == ".gct":
        return "gct"
    if suffix in _TABLE_SUFFIXES:
        return "table"
    known = "; ".join(f"{k}: {v}" for k, v in FORMATS.items())
    raise ReaderError(f"{p}: unknown file type {suffix or '(no suffix)'!r}; expected {known}")


def read(path: str | os.PathLike[str], **kwargs) -> AnnData:
    """Read a dataset, choosing the reader from the file name or folder layout.

    ``.h5ad`` -> :func:`read_h5ad`; ``.csv`` / ``.tsv`` / ``.txt`` / ``.tab`` ->
    :func:`read_table` (needs ``genes_in=``); ``.gct`` -> :func:`read_gct`; a folder (or
    ``matrix.mtx`` file) of 10x files -> :func:`read_10x_mtx`. Keyword arguments go to the
    reader; one it does not take is a :class:`ReaderError`.
    """
    kind = format_of(path)
    readers: dict[str, Callable[..., AnnData]] = {
        "h5ad": read_h5ad,
        "table": read_table,
        "gct": read_gct,
        "10x": read_10x_mtx,
    }
    reader = readers[kind]
    try:
        return reader(path, **kwargs)
    except TypeError as exc:
        raise ReaderError(f"{path}: bad options for the {kind} reader ({exc})") from exc


def write(adata: AnnData, path: str | os.PathLike[str], **kwargs) -> Path:
    """Write ``adata`` in the format named by ``path`` (as :func:`read` would read it back).

    A path without a known suffix is written as a 10x folder.
    """
    p = Path(path)
    suffix = base_suffix(p)
    if suffix == ".h5ad":
        return write_h5ad(adata, p, **kwargs)
    if suffix == ".gct":
        return write_gct(adata, p, **kwargs)
    if suffix in _TABLE_SUFFIXES:
        return write_table(adata, p, **kwargs)
    if suffix == "" or p.is_dir():
        return write_10x_mtx(adata, p, **kwargs)
    raise ReaderError(
        f"{p}: cannot write {suffix!r} files; use .h5ad, .gct, .csv, .tsv or a folder"
    )

"""Readers and writers. Every writer is atomic (temporary file, then rename)."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
from anndata import AnnData

from transferome.data._atomic import atomic_path
from transferome.errors import ReaderError

__all__ = ["read", "read_h5ad", "write_h5ad"]


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise ReaderError(f"{p}: no such file or directory")
    return p


def read_h5ad(path: str | os.PathLike[str], *, backed: bool = False) -> AnnData:
    """Read an ``.h5ad`` file.

    Parameters
    ----------
    path
        The file.
    backed
        Keep ``X`` on disk (read-only) instead of loading it into memory.
    """
    p = _existing(path)
    if p.is_dir():
        raise ReaderError(f"{p} is a directory, expected an .h5ad file")
    try:
        return ad.read_h5ad(p, backed="r" if backed else None)
    except Exception as exc:  # h5py and anndata raise many types for corrupt files
        raise ReaderError(f"{p}: not a readable .h5ad file ({type(exc).__name__}: {exc})") from exc


def write_h5ad(adata: AnnData, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write ``adata`` to ``path`` atomically; ``adata`` itself is not modified."""
    final = Path(path)
    with atomic_path(final, overwrite=overwrite) as tmp:
        adata.write_h5ad(tmp)
    return final


def read(path: str | os.PathLike[str], **kwargs) -> AnnData:
    """Read a dataset, choosing the reader from the file name.

    ``.h5ad`` files are supported here; keyword arguments go to the reader.
    """
    p = _existing(path)
    suffix = "".join(p.suffixes[-1:]).lower()
    if suffix == ".h5ad":
        return read_h5ad(p, **kwargs)
    raise ReaderError(f"{p}: unknown file type {suffix or '(no suffix)'!r}; expected .h5ad")

"""Helpers shared by the loaders: reading, layout checks, filling the schema's obs keys."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome.data.io import read_h5ad
from transferome.errors import ReaderError

__all__ = [
    "log_normalise",
    "mark",
    "read_checked_h5ad",
    "require_columns",
    "set_obs",
]


def require_columns(
    path: Path, columns: Iterable[str], required: Iterable[str], what: str = "obs"
) -> None:
    """Raise :class:`ReaderError` naming the file and the missing columns."""
    present = list(map(str, columns))
    missing = [c for c in required if c not in present]
    if missing:
        raise ReaderError(
            f"{path}: not the expected layout; {what} lacks column(s) {missing} "
            f"(found {present[:20]}{' ...' if len(present) > 20 else ''})"
        )


def read_checked_h5ad(path: str | os.PathLike[str], required_obs: Iterable[str]) -> AnnData:
    """Read an ``.h5ad`` file and check that its obs has the ``required_obs`` columns."""
    p = Path(path)
    if p.suffix.lower() != ".h5ad":
        raise ReaderError(f"{p}: expected an .h5ad file")
    adata = read_h5ad(p)
    require_columns(p, adata.obs.columns, required_obs)
    return adata


def set_obs(obs: pd.DataFrame, key: str, values) -> None:
    """Set ``obs[key]``; an existing, different column is kept as ``{key}_original``."""
    new = pd.Series(values, index=obs.index)
    if key in obs.columns:
        old = obs[key]
        if not old.astype(str).equals(new.astype(str)):
            obs[f"{key}_original"] = old
    obs[key] = new


def log_normalise(adata: AnnData, target_sum: float = 1e4) -> AnnData:
    """Move raw counts to ``layers["counts"]`` (CSR) and set ``X`` to log1p(normalize_total)."""
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    logged = sp.csr_matrix(counts.multiply(scale[:, None]))
    logged.data = np.log1p(logged.data).astype(np.float32)
    adata.layers["counts"] = counts
    adata.X = logged
    return adata


def mark(adata: AnnData, source: str, path: Path, **info) -> AnnData:
    """Record where the data came from (and what the values are) in ``uns["transferome"]``."""
    adata.uns["transferome"] = {"source": source, "file": str(path), **info}
    return adata

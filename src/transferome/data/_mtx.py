"""10x Genomics ``matrix.mtx`` folders.

A folder holds ``matrix.mtx(.gz)``, ``features.tsv(.gz)`` (or the older ``genes.tsv``) and
``barcodes.tsv(.gz)``, optionally with a common file-name prefix (``GSM123_matrix.mtx.gz``).
The matrix is genes x cells; the AnnData is cells x genes.
"""

from __future__ import annotations

import gzip
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp
from anndata import AnnData
from anndata.utils import make_index_unique

from transferome._logging import get_logger
from transferome.data._atomic import atomic_path
from transferome.data._text import PARSE_ERRORS
from transferome.errors import DataValidationError, ReaderError

__all__ = ["find_mtx", "read_10x_mtx", "write_10x_mtx"]

_log = get_logger(__name__)


def _first(folder: Path, names: list[str]) -> Path | None:
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def find_mtx(folder: Path, prefix: str = "") -> Path | None:
    """Find the ``{prefix}matrix.mtx(.gz)`` file of ``folder``, or ``None``."""
    return _first(folder, [f"{prefix}matrix.mtx.gz", f"{prefix}matrix.mtx"])


def _read_tsv(path: Path, min_columns: int) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ReaderError(f"{path}: empty file") from None
    except PARSE_ERRORS as exc:
        raise ReaderError(f"{path}: cannot parse ({type(exc).__name__}: {exc})") from exc
    if frame.shape[1] < min_columns:
        raise ReaderError(
            f"{path}: expected at least {min_columns} tab-separated column(s), "
            f"found {frame.shape[1]}"
        )
    return frame


def read_10x_mtx(
    path: str | os.PathLike[str],
    *,
    prefix: str = "",
    var_names: Literal["gene_symbols", "gene_ids"] = "gene_symbols",
    make_unique: bool = True,
) -> AnnData:
    """Read a 10x ``matrix.mtx`` folder (Cell Ranger v2 or v3 layout).

    Parameters
    ----------
    path
        The folder, or its ``matrix.mtx(.gz)`` file.
    prefix
        Common prefix of the three file names (e.g. ``"GSM123_"``).
    var_names
        Use gene symbols (second column of the features file) or gene ids (first column)
        as ``var_names``; the other goes to ``var``.
    make_unique
        Make duplicated symbols unique (``-1``, ``-2`` suffixes), as scanpy does.

    Returns
    -------
    AnnData
        Sparse CSR ``X`` (cells x genes, float32); ``var["gene_ids"]``,
        ``var["gene_symbols"]`` and ``var["feature_types"]`` when present.
    """
    if var_names not in ("gene_symbols", "gene_ids"):
        raise ReaderError(f"var_names must be 'gene_symbols' or 'gene_ids', got {var_names!r}")
    p = Path(path)
    if p.is_file():
        name = p.name
        if "matrix.mtx" not in name:
            raise ReaderError(f"{p}: expected a 10x folder or a '*matrix.mtx(.gz)' file")
        prefix, p = name[: name.index("matrix.mtx")], p.parent
    if not p.is_dir():
        raise ReaderError(f"{p}: no such folder")
    matrix_file = find_mtx(p, prefix)
    features = _first(p, [f"{prefix}{n}" for n in ("features.tsv.gz", "features.tsv")])
    features = features or _first(p, [f"{prefix}genes.tsv.gz", f"{prefix}genes.tsv"])
    barcodes = _first(p, [f"{prefix}barcodes.tsv.gz", f"{prefix}barcodes.tsv"])
    missing = [
        n
        for n, f in (
            ("matrix.mtx(.gz)", matrix_file),
            ("features.tsv(.gz) or genes.tsv(.gz)", features),
            ("barcodes.tsv(.gz)", barcodes),
        )
        if f is None
    ]
    if matrix_file is None or features is None or barcodes is None:
        raise ReaderError(f"{p}: not a 10x folder, missing {missing} (prefix {prefix!r})")
    try:
        matrix = scipy.io.mmread(matrix_file)
    except PARSE_ERRORS as exc:
        raise ReaderError(
            f"{matrix_file}: not a readable Matrix Market file ({type(exc).__name__}: {exc})"
        ) from exc
    if not sp.issparse(matrix):
        matrix = sp.coo_matrix(np.asarray(matrix))
    if matrix.dtype.kind not in "iuf":
        raise ReaderError(f"{matrix_file}: values must be real numbers, found {matrix.dtype}")
    genes = _read_tsv(features, 1)
    cells = _read_tsv(barcodes, 1)
    n_genes, n_cells = matrix.shape
    if len(genes) != n_genes or len(cells) != n_cells:
        raise ReaderError(
            f"{p}: the matrix is {n_genes} genes x {n_cells} cells but {features.name} lists "
            f"{len(genes)} genes and {barcodes.name} {len(cells)} barcodes"
        )
    var = pd.DataFrame(index=pd.RangeIndex(n_genes))
    var["gene_ids"] = genes[0].to_numpy()
    var["gene_symbols"] = genes[1].to_numpy() if genes.shape[1] > 1 else genes[0].to_numpy()
    if genes.shape[1] > 2:
        var["feature_types"] = genes[2].to_numpy()
    names = pd.Index(var.pop(var_names).astype(str), dtype=object)
    if make_unique and names.duplicated().any():
        _log.info("%s: %d duplicated gene names made unique", features, names.duplicated().sum())
        names = make_index_unique(names)
    var.index = names
    obs = pd.DataFrame(index=pd.Index(cells[0].astype(str), dtype=object))
    if obs.index.duplicated().any():
        dup = list(dict.fromkeys(obs.index[obs.index.duplicated()]))[:5]
        raise ReaderError(f"{barcodes}: duplicated barcodes, e.g. {dup}")
    with warnings.catch_warnings():
        # duplicated names (make_unique=False) are reported, precisely, by validation
        warnings.filterwarnings("ignore", "Variable names are not unique")
        return AnnData(X=sp.csr_matrix(matrix.T, dtype=np.float32), obs=obs, var=var)


def write_10x_mtx(
    adata: AnnData,
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    gene_ids_key: str = "gene_ids",
    feature_type: str = "Gene Expression",
    overwrite: bool = True,
) -> Path:
    """Write a Cell Ranger v3 folder (gzipped ``matrix.mtx``, ``features.tsv``, ``barcodes.tsv``).

    Each file is written atomically. ``var_names`` are the gene symbols;
    ``var[gene_ids_key]`` the gene ids (``var_names`` when absent). Integer values are
    stored as ``integer``, others as ``real``.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    if layer is not None and layer not in adata.layers:
        raise DataValidationError(f"layer {layer!r} not found; layers: {list(adata.layers)}")
    matrix = adata.layers[layer] if layer is not None else adata.X
    if matrix is None:
        raise DataValidationError("adata.X is empty (None); pass layer= to write a layer")
    coo = sp.coo_matrix(matrix).T
    integer = bool(np.all(np.mod(coo.data, 1) == 0))
    symbols = list(map(str, adata.var_names))
    ids = adata.var[gene_ids_key].astype(str).tolist() if gene_ids_key in adata.var else symbols
    if "feature_types" in adata.var:
        types = adata.var["feature_types"].astype(str).tolist()
    else:
        types = [feature_type] * len(symbols)
    features = "".join(f"{i}\t{s}\t{t}\n" for i, s, t in zip(ids, symbols, types, strict=True))
    barcodes = "".join(f"{b}\n" for b in map(str, adata.obs_names))
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("features.tsv.gz", features), ("barcodes.tsv.gz", barcodes)):
        with (
            atomic_path(folder / name, overwrite=overwrite) as tmp,
            gzip.open(tmp, "wt", encoding="utf-8", compresslevel=4) as handle,
        ):
            handle.write(text)
    data = coo.astype(np.int64) if integer else coo.astype(np.float64)
    with (
        atomic_path(folder / "matrix.mtx.gz", overwrite=overwrite) as tmp,
        gzip.open(tmp, "wb", compresslevel=4) as handle,
    ):
        scipy.io.mmwrite(handle, data, field="integer" if integer else "real")
    return folder

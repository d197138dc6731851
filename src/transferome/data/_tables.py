"""CSV / TSV expression tables, with an optional sample metadata table joined by sample id."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome._logging import get_logger
from transferome.data._atomic import atomic_path
from transferome.data._text import (
    PARSE_ERRORS,
    check_field_counts,
    check_numeric,
    existing_file,
    read_header,
    separator_for,
)
from transferome.errors import DataValidationError, ReaderError

__all__ = ["read_metadata", "read_table", "write_table"]

Orientation = Literal["rows", "columns"]
_log = get_logger(__name__)


def _duplicates(values: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    dup: dict[str, None] = {}
    for v in values:
        if v in seen:
            dup[v] = None
        seen.add(v)
    return list(dup)


def _pick_column(path: Path, header: list[str], name: str | None, what: str) -> str:
    if name is None:
        return header[0]
    if name not in header:
        raise ReaderError(f"{path}: {what} column {name!r} not found; header: {header[:10]}")
    return name


def _load_frame(
    path: Path, sep: str, header: list[str], text_columns: list[str], *, exact: bool = False
) -> pd.DataFrame:
    """Parse the table.

    ``exact`` parses floats to the nearest double (slower), otherwise within a unit in the last
    place, which is exact once stored as float32.
    """
    dup = _duplicates(header)
    if dup:
        raise ReaderError(f"{path}: duplicated column names in the header: {dup[:5]}")
    if any(not h for h in header):
        raise ReaderError(f"{path}: the header has an empty column name")
    try:
        with warnings.catch_warnings():
            # rows longer than the header: pandas warns and drops fields; locate the row instead
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # mixed types become object columns, reported by check_numeric
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            frame = pd.read_csv(
                path,
                sep=sep,
                header=0,
                names=header,
                index_col=False,
                dtype=dict.fromkeys(text_columns, str),
                skip_blank_lines=True,
                float_precision="round_trip" if exact else None,
            )
    except (pd.errors.ParserWarning, pd.errors.ParserError) as exc:
        check_field_counts(path, sep, len(header), skip=1)  # names the ragged line
        raise ReaderError(f"{path}: cannot parse ({type(exc).__name__}: {exc})") from None
    except PARSE_ERRORS as exc:
        raise ReaderError(f"{path}: cannot parse ({type(exc).__name__}: {exc})") from exc
    if frame.empty:
        raise ReaderError(f"{path}: empty table (a header but no data rows)")
    return frame


def _ids(path: Path, frame: pd.DataFrame, column: str, what: str) -> pd.Index:
    values = frame[column]
    missing = np.flatnonzero(values.isna().to_numpy() | (values.astype(str).str.strip() == ""))
    if len(missing):
        raise ReaderError(
            f"{path}: {len(missing)} empty {what} id(s) in column {column!r} "
            f"(first at data row {int(missing[0]) + 1})"
        )
    ids = pd.Index(values.astype(str).str.strip(), dtype=object)
    dup = _duplicates(list(ids))
    if dup:
        raise ReaderError(f"{path}: duplicated {what} ids in column {column!r}: {dup[:5]}")
    return ids


def read_metadata(
    path: str | os.PathLike[str],
    *,
    id_column: str | None = None,
    sep: str | None = None,
) -> pd.DataFrame:
    """Read a sample metadata table (one row per sample) indexed by sample id.

    Parameters
    ----------
    path
        CSV / TSV file (``.gz`` allowed).
    id_column
        Column holding the sample ids (default: the first column).
    sep
        Field separator (default: from the suffix, ``,`` for ``.csv``, tab otherwise).
    """
    p = existing_file(path)
    sep = separator_for(p, sep)
    header = read_header(p, sep)
    id_column = _pick_column(p, header, id_column, "sample id")
    frame = _load_frame(p, sep, header, [id_column], exact=True)
    if frame.shape[1] != len(header):  # pragma: no cover - pandas keeps the given names
        raise ReaderError(f"{p}: expected {len(header)} columns, parsed {frame.shape[1]}")
    frame.index = _ids(p, frame, id_column, "sample")
    frame = frame.drop(columns=[id_column])
    frame.index.name = None
    return frame


def _join_metadata(obs: pd.DataFrame, metadata: pd.DataFrame, source: str) -> pd.DataFrame:
    missing = [i for i in obs.index if i not in metadata.index]
    if missing:
        raise ReaderError(
            f"{source}: {len(missing)} sample id(s) of the expression table have no row in the "
            f"metadata, e.g. {missing[:5]}; metadata ids look like {list(metadata.index[:5])}"
        )
    clash = sorted(set(obs.columns) & set(metadata.columns))
    if clash:
        raise ReaderError(f"{source}: metadata columns {clash} also come from the table")
    extra = len(metadata.index.difference(obs.index))
    if extra:
        _log.info("%s: %d metadata row(s) match no sample and are ignored", source, extra)
    return obs.join(metadata.loc[obs.index])


def read_table(
    path: str | os.PathLike[str],
    *,
    genes_in: Orientation | None = None,
    gene_column: str | None = None,
    sample_column: str | None = None,
    annotation_columns: Sequence[str] = (),
    metadata: str | os.PathLike[str] | None = None,
    metadata_id_column: str | None = None,
    sep: str | None = None,
) -> AnnData:
    """Read a CSV / TSV expression table into an AnnData (observations x genes).

    Parameters
    ----------
    path
        The table (``.csv``, ``.tsv``, ``.txt``, ``.tab``; ``.gz`` allowed).
    genes_in
        Orientation, required: ``"rows"`` (one gene per row, one sample per column, as most
        bulk tables) or ``"columns"`` (one sample per row, one gene per column).
    gene_column
        With ``genes_in="rows"``: the column of gene ids (default: the first column).
    sample_column
        With ``genes_in="columns"``: the column of sample ids (default: the first column).
    annotation_columns
        Further text columns, kept in ``var`` (``genes_in="rows"``) or ``obs``
        (``genes_in="columns"``); every other column must hold numbers.
    metadata
        Optional sample metadata table, joined to ``obs`` by sample id; every sample of the
        expression table must have a row there (extra rows are ignored).
    metadata_id_column
        Column of sample ids in ``metadata`` (default: its first column).
    sep
        Field separator of ``path``; default from the suffix (``metadata`` always uses the
        separator of its own suffix).

    Raises
    ------
    ReaderError
        Naming the file and the problem: empty table, ragged rows, values that are not
        numbers, empty or duplicated ids, unmatched metadata ids.
    """
    p = existing_file(path)
    if genes_in not in ("rows", "columns"):
        raise ReaderError(
            f"{p}: say how the table is laid out: genes_in='rows' (one gene per row) or "
            f"genes_in='columns' (one gene per column); got {genes_in!r}"
        )
    if genes_in == "rows" and sample_column is not None:
        raise ReaderError(f"{p}: sample_column is for genes_in='columns'; use gene_column")
    if genes_in == "columns" and gene_column is not None:
        raise ReaderError(f"{p}: gene_column is for genes_in='rows'; use sample_column")
    sep = separator_for(p, sep)
    header = read_header(p, sep)
    what = "gene" if genes_in == "rows" else "sample"
    id_column = _pick_column(p, header, gene_column or sample_column, what)
    annotations = [_pick_column(p, header, a, "annotation") for a in annotation_columns]
    value_columns = [h for h in header if h != id_column and h not in annotations]
    if not value_columns:
        raise ReaderError(f"{p}: no expression columns besides {[id_column, *annotations]}")
    frame = _load_frame(p, sep, header, [id_column, *annotations])
    check_numeric(p, frame, value_columns, first_line=2)
    values = frame.drop(columns=[id_column, *annotations]).to_numpy(dtype=np.float64)
    if np.isnan(values[:, -1]).any():  # short rows are filled with NaN by pandas
        check_field_counts(p, sep, len(header), skip=1)
    ids = _ids(p, frame, id_column, what)
    notes = frame[annotations].astype(str).set_axis(ids, axis=0) if annotations else None
    columns = pd.Index(value_columns, dtype=object)
    if genes_in == "rows":
        obs = pd.DataFrame(index=columns)
        var = notes if notes is not None else pd.DataFrame(index=ids)
        matrix = values.T
    else:
        obs = notes if notes is not None else pd.DataFrame(index=ids)
        var = pd.DataFrame(index=columns)
        matrix = values
    if metadata is not None:
        meta = read_metadata(metadata, id_column=metadata_id_column, sep=None)
        obs = _join_metadata(obs, meta, str(p))
    return AnnData(X=np.ascontiguousarray(matrix, dtype=np.float32), obs=obs, var=var)


def _compression(path: Path) -> dict[str, object] | None:
    # level 4: nearly the size of the default level 9 at a fraction of the time
    return {"method": "gzip", "compresslevel": 4} if path.suffix.lower() == ".gz" else None


def compact(values: np.ndarray) -> np.ndarray:
    """Return an integer copy of ``values`` when they are all integers, else ``values``.

    Integer text is shorter and written 4x faster.
    """
    integer = (
        values.dtype.kind == "f"
        and values.size > 0
        and bool(np.isfinite(values).all())
        and bool(np.array_equal(values, np.round(values)))
        and float(np.abs(values).max()) < 2**53
    )
    return values.astype(np.int64) if integer else values


def _free_name(base: str, taken: list[str]) -> str:
    name = base
    while name in taken:
        name = f"_{name}"
    return name


def _dense(adata: AnnData, layer: str | None) -> np.ndarray:
    if layer is not None and layer not in adata.layers:
        raise DataValidationError(f"layer {layer!r} not found; layers: {list(adata.layers)}")
    matrix = adata.layers[layer] if layer is not None else adata.X
    if matrix is None:
        raise DataValidationError("adata.X is empty (None); pass layer= to write a layer")
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def write_table(
    adata: AnnData,
    path: str | os.PathLike[str],
    *,
    genes_in: Orientation = "rows",
    layer: str | None = None,
    metadata: str | os.PathLike[str] | None = None,
    sep: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Write the expression matrix as a CSV / TSV table (atomically); ``adata`` is unchanged.

    The id column is named ``gene`` (``genes_in="rows"``) or ``sample_id``; ``obs`` goes to
    the separate ``metadata`` file when given (first column: the sample ids), so that
    ``read_table(path, genes_in=..., metadata=...)`` reads the same data back.
    """
    final = Path(path)
    sep = separator_for(final, sep)
    values = compact(_dense(adata, layer))
    if genes_in == "rows":
        frame = pd.DataFrame(values.T, index=adata.var_names, columns=adata.obs_names)
        frame.index.name = _free_name("gene", list(map(str, adata.obs_names)))
    elif genes_in == "columns":
        frame = pd.DataFrame(values, index=adata.obs_names, columns=adata.var_names)
        frame.index.name = _free_name("sample_id", list(map(str, adata.var_names)))
    else:
        raise DataValidationError(f"genes_in must be 'rows' or 'columns', got {genes_in!r}")
    compression = _compression(final)
    if metadata is not None:
        meta_path = Path(metadata)
        obs = adata.obs.copy()
        obs.index.name = _free_name("sample_id", list(map(str, obs.columns)))
        with atomic_path(meta_path, overwrite=overwrite) as tmp:
            obs.to_csv(
                tmp,
                sep=separator_for(meta_path, None),
                compression=_compression(meta_path),
            )
    with atomic_path(final, overwrite=overwrite) as tmp:
        frame.to_csv(tmp, sep=sep, compression=compression)
    return final

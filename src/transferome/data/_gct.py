"""GCT 1.2 and 1.3 files (the Broad / LINCS L1000 format), with row and column metadata.

Layout of GCT 1.3: line 1 ``#1.3``; line 2 ``n_rows n_cols n_row_meta n_col_meta``; then a
header (``id``, the row metadata names, the column ids); then ``n_col_meta`` lines of column
metadata (name, ``n_row_meta`` fillers, one value per column); then one line per row (id, row
metadata, values). GCT 1.2 has no column metadata and exactly two leading columns (``Name``,
``Description``). Rows are genes and columns samples, so the AnnData has the columns as
observations: column metadata go to ``obs``, row metadata to ``var``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data._atomic import atomic_path
from transferome.data._text import (
    PARSE_ERRORS,
    check_field_counts,
    check_numeric,
    existing_file,
    open_text,
)
from transferome.errors import DataValidationError, ReaderError

__all__ = ["read_gct", "write_gct"]


def _typed(values: list[str]) -> np.ndarray | list[str]:
    """Integers or floats when every value is one, else the strings (as cmapR does)."""
    if not values:
        return values
    for kind in (int, float):
        try:
            return np.array([kind(v) for v in values])
        except (ValueError, OverflowError):
            continue
    return values


def _dims(p: Path, line: str, version: str) -> tuple[int, int, int, int]:
    parts = line.split()
    expected = 2 if version == "1.2" else 4
    try:
        numbers = [int(x) for x in parts]
    except ValueError:
        numbers = []
    if len(numbers) != expected or min(numbers) < 0:
        what = "n_rows n_cols" if version == "1.2" else "n_rows n_cols n_row_meta n_col_meta"
        raise ReaderError(f"{p}: line 2 must hold {expected} counts ({what}), got {line!r}")
    if version == "1.2":
        return numbers[0], numbers[1], 1, 0
    return numbers[0], numbers[1], numbers[2], numbers[3]


def _head(p: Path) -> tuple[str, tuple[int, int, int, int], list[list[str]]]:
    """Version, dimensions, and the header + column metadata lines split on tabs."""
    try:
        with open_text(p) as handle:
            first = handle.readline().strip()
            if first not in ("#1.2", "#1.3"):
                raise ReaderError(
                    f"{p}: not a GCT file: line 1 is {first[:40]!r}, expected '#1.2' or '#1.3'"
                )
            version = first[1:]
            dims = _dims(p, handle.readline().strip(), version)
            lines = []
            for _ in range(1 + dims[3]):
                line = handle.readline()
                if not line:
                    raise ReaderError(f"{p}: truncated file: the header or column metadata ends")
                lines.append(line.rstrip("\r\n").split("\t"))
    except PARSE_ERRORS as exc:
        if isinstance(exc, ReaderError):
            raise
        raise ReaderError(f"{p}: cannot read ({type(exc).__name__}: {exc})") from exc
    return version, dims, lines


def read_gct(path: str | os.PathLike[str]) -> AnnData:
    """Read a GCT 1.2 or 1.3 file: columns become observations, rows become genes.

    Parameters
    ----------
    path
        The ``.gct`` file (``.gct.gz`` allowed).

    Returns
    -------
    AnnData
        ``X`` float32 (columns x rows of the file); column metadata in ``obs``, row metadata
        in ``var`` (GCT 1.2: ``var["description"]``). Metadata columns whose every value is
        a number are numeric.

    Raises
    ------
    ReaderError
        Wrong first line or dimension line, header or metadata of the wrong width, a
        truncated file, ragged rows, values that are not numbers, duplicated ids.
    """
    p = existing_file(path)
    version, (n_rows, n_cols, n_row_meta, n_col_meta), lines = _head(p)
    width = 1 + n_row_meta + n_cols
    header, col_meta = lines[0], lines[1:]
    if len(header) != width:
        raise ReaderError(
            f"{p}: header line has {len(header)} fields, expected {width} "
            f"(1 id + {n_row_meta} row metadata + {n_cols} columns)"
        )
    for i, fields in enumerate(col_meta):
        if len(fields) != width:
            raise ReaderError(
                f"{p}: column metadata line {4 + i} has {len(fields)} fields, expected {width}"
            )
    col_ids = [h.strip() for h in header[1 + n_row_meta :]]
    row_meta_names = ["description"] if version == "1.2" else header[1 : 1 + n_row_meta]
    for kind, names in (("column", col_ids), ("row metadata", row_meta_names)):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ReaderError(f"{p}: duplicated {kind} ids in the header: {dup[:5]}")
    skip = 3 + n_col_meta
    names = ["__id__", *[f"__meta{i}__" for i in range(n_row_meta)], *map(str, range(n_cols))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # rows that are too long
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)  # see check_numeric
            frame = pd.read_csv(
                p,
                sep="\t",
                header=None,
                skiprows=skip,
                names=names,
                index_col=False,
                dtype=dict.fromkeys(names[: 1 + n_row_meta], str),
                float_precision=None,  # within one ulp of the double: exact as float32
            )
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=names)
    except (pd.errors.ParserWarning, pd.errors.ParserError) as exc:
        check_field_counts(p, "\t", width, skip=skip)  # names the ragged line
        raise ReaderError(f"{p}: cannot parse ({type(exc).__name__}: {exc})") from None
    except PARSE_ERRORS as exc:
        raise ReaderError(f"{p}: cannot parse the data rows ({type(exc).__name__}: {exc})") from exc
    if len(frame) != n_rows:
        raise ReaderError(
            f"{p}: line 2 declares {n_rows} rows but the file holds {len(frame)} "
            "(truncated or wrong dimension line)"
        )
    value_names = names[1 + n_row_meta :]
    check_numeric(p, frame, value_names, first_line=skip + 1)
    values = frame[value_names].to_numpy(dtype=np.float64)
    if n_rows and n_cols and np.isnan(values[:, -1]).any():
        check_field_counts(p, "\t", width, skip=skip)
    ids = frame["__id__"]
    if ids.isna().any():
        raise ReaderError(f"{p}: {int(ids.isna().sum())} data row(s) have an empty id")
    row_ids = ids.astype(str).str.strip().tolist()
    dup = sorted({r for r in pd.Index(row_ids)[pd.Index(row_ids).duplicated()]})
    if dup:
        raise ReaderError(f"{p}: duplicated row ids: {dup[:5]}")
    obs = pd.DataFrame(index=pd.Index(col_ids, dtype=object))
    for fields in col_meta:
        obs[fields[0].strip()] = _typed([f.strip() for f in fields[1 + n_row_meta :]])
    var = pd.DataFrame(index=pd.Index(row_ids, dtype=object))
    for i, name in enumerate(row_meta_names):
        column = frame[f"__meta{i}__"].fillna("").astype(str).tolist()
        var[name] = _typed(column) if version == "1.3" else column
    return AnnData(X=np.ascontiguousarray(values.T, dtype=np.float32), obs=obs, var=var)


def _cells(values: pd.Series | pd.Index, what: str) -> list[str]:
    out = ["" if pd.isna(v) else str(v) for v in values]
    bad = [v for v in out if "\t" in v or "\n" in v or "\r" in v]
    if bad:
        raise DataValidationError(f"{what} holds tabs or line breaks, e.g. {bad[0]!r}")
    return out


def write_gct(
    adata: AnnData,
    path: str | os.PathLike[str],
    *,
    version: str = "1.3",
    layer: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``adata`` as GCT (atomically): genes as rows, observations as columns.

    GCT 1.3 stores every ``obs`` column as column metadata and every ``var`` column as row
    metadata; GCT 1.2 keeps only ``var["description"]`` (empty when absent).
    """
    from transferome.data._tables import _dense, compact

    if version not in ("1.2", "1.3"):
        raise DataValidationError(f"GCT version must be '1.2' or '1.3', got {version!r}")
    values = compact(_dense(adata, layer).T)
    genes = _cells(adata.var_names, "var_names")
    samples = _cells(adata.obs_names, "obs_names")
    if version == "1.2":
        description = adata.var["description"] if "description" in adata.var else [""] * len(genes)
        row_meta = {"Description": _cells(pd.Series(description), "var['description']")}
        lines = ["#1.2", f"{len(genes)}\t{len(samples)}", "\t".join(["Name", "Description"])]
        col_meta: dict[str, list[str]] = {}
    else:
        row_meta = {str(c): _cells(adata.var[c], f"var[{c!r}]") for c in adata.var.columns}
        col_meta = {str(c): _cells(adata.obs[c], f"obs[{c!r}]") for c in adata.obs.columns}
        dims = f"{len(genes)}\t{len(samples)}\t{len(row_meta)}\t{len(col_meta)}"
        lines = ["#1.3", dims, "\t".join(["id", *row_meta])]
    if samples:
        lines[-1] += "\t" + "\t".join(samples)
    fill = ["na"] * len(row_meta)
    for name, column in col_meta.items():
        lines.append("\t".join([name, *fill, *column]))
    body = pd.DataFrame(values, columns=samples)
    for i, (name, column) in enumerate(row_meta.items()):
        body.insert(i, f"__meta_{name}", column)
    body.insert(0, "__id__", genes)
    with (
        atomic_path(path, overwrite=overwrite) as tmp,
        tmp.open("w", encoding="utf-8", newline="") as handle,
    ):
        handle.write("\n".join(lines) + "\n")
        body.to_csv(handle, sep="\t", header=False, index=False, lineterminator="\n")
    return Path(path)

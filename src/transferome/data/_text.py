"""Helpers shared by the text readers: opening (gzip) files, separators, precise errors.

The readers parse with pandas' C parser for speed and only fall back to a line-by-line pass
to locate a problem (a ragged row, a value that is not a number) for the error message.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from transferome.errors import ReaderError

__all__ = [
    "PARSE_ERRORS",
    "check_field_counts",
    "check_numeric",
    "existing_file",
    "open_text",
    "separator_for",
]

# Exceptions that parsing a damaged or foreign file can raise in pandas, gzip and the codecs.
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    UnicodeDecodeError,
    EOFError,
    OSError,
    zlib.error,
    ValueError,
    OverflowError,
    csv.Error,
)

_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": "\t", ".gct": "\t"}


def existing_file(path: str | os.PathLike[str]) -> Path:
    """Return the path as a :class:`Path`; a :class:`ReaderError` when missing or a folder."""
    p = Path(path)
    if not p.exists():
        raise ReaderError(f"{p}: no such file or directory")
    if p.is_dir():
        raise ReaderError(f"{p} is a directory, expected a file")
    return p


def base_suffix(path: Path) -> str:
    """Lower-case suffix of ``path``, ignoring a trailing ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def separator_for(path: Path, sep: str | None) -> str:
    """Return the field separator: ``sep``, else from the suffix (``.csv`` comma, else tab)."""
    if sep is not None:
        if len(sep) != 1:
            raise ReaderError(f"separator must be one character, got {sep!r}")
        return sep
    return _SEPARATORS.get(base_suffix(path), "\t")


def open_text(path: Path) -> IO[str]:
    """Open a text file for reading, transparently decompressing ``.gz`` files (UTF-8)."""
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _records(path: Path, sep: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank line, 1-based, quotes honoured."""
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter=sep)
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield reader.line_num, fields


def read_header(path: Path, sep: str, skip: int = 0) -> list[str]:
    """Fields of the first non-blank line after ``skip`` lines; ``ReaderError`` if none."""
    try:
        for i, (_, fields) in enumerate(_records(path, sep)):
            if i == skip:
                return [f.strip() for f in fields]
    except PARSE_ERRORS as exc:
        raise ReaderError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    raise ReaderError(f"{path}: empty table (no header line)")


def check_field_counts(path: Path, sep: str, expected: int, skip: int = 0) -> None:
    """Raise a :class:`ReaderError` naming the first line whose field count is not ``expected``.

    ``skip`` non-blank lines (headers) are not checked.
    """
    try:
        for i, (line, fields) in enumerate(_records(path, sep)):
            if i >= skip and len(fields) != expected:
                raise ReaderError(
                    f"{path}: line {line} has {len(fields)} fields, expected {expected} "
                    "(ragged row or truncated file)"
                )
    except ReaderError:
        raise
    except PARSE_ERRORS as exc:
        raise ReaderError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc


def check_numeric(path: Path, frame: pd.DataFrame, columns: list[str], first_line: int) -> None:
    """Raise a :class:`ReaderError` naming the first value in ``columns`` that is not a number.

    ``first_line`` is the file line of the frame's first row (for the message).
    """
    if frame.empty:
        return
    dtypes = frame.dtypes
    for column in columns:
        dtype = dtypes[column]
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            continue
        series = frame[column]
        converted = pd.to_numeric(series.astype(str), errors="coerce")
        bad = np.flatnonzero(converted.isna().to_numpy() & series.notna().to_numpy())
        row = int(bad[0]) if len(bad) else 0
        value = str(series.iloc[row])
        raise ReaderError(
            f"{path}: value {value!r} in column {column!r} (data row {row + 1}, around line "
            f"{first_line + row}) is not a number"
        )

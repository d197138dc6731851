"""CSV tables safe to open in a spreadsheet: no text cell is read as a formula."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["spreadsheet_safe"]

# A cell starting with one of these is a formula in Excel, LibreOffice and Google Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _quote(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _quote_labels(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        return index.set_levels([_quote_labels(level) for level in index.levels])
    if index.dtype == object or isinstance(index.dtype, (pd.CategoricalDtype, pd.StringDtype)):
        return pd.Index([_quote(v) for v in index], name=_quote(index.name))
    return index


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` whose text cells, labels and column names cannot run as formulas.

    A text starting with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) gets a
    leading ``'``, which spreadsheets read as "this is text" (the OWASP advice on CSV
    injection). Numbers are left alone, so ``-0.5`` stays a number. Every CSV table the command
    line and ``transferome run`` write goes through this function.
    """
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if series.dtype == object or isinstance(
            series.dtype, (pd.CategoricalDtype, pd.StringDtype)
        ):
            out[column] = series.astype(object).map(_quote)
    out.columns = _quote_labels(out.columns)
    out.index = _quote_labels(out.index)
    return out

"""Summaries of stored values (type, NaNs, sign, range, whole numbers), added up by group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class ValueSummary:
    """What the validation checks need of a set of stored values."""

    n_values: int
    dtype: str  # of the stored values (the first non-numeric one where several are merged)
    n_nan: int
    n_inf: int
    n_negative: int
    minimum: float  # of the finite values; +inf when none
    abs_max: float  # of the finite values; 0 when none
    integer: bool  # every finite value is a whole number

    @classmethod
    def empty(cls) -> ValueSummary:
        return cls(0, "float32", 0, 0, 0, float("inf"), 0.0, integer=True)

    @property
    def kind(self) -> str:
        """The numpy dtype kind ("f", "i", "u", "b", "c", "O", ...)."""
        return np.dtype(self.dtype).kind

    @classmethod
    def of(cls, values: np.ndarray) -> ValueSummary:
        """Summary of a 1-d array of stored values (one group of one row, as a scan sees it)."""
        values = np.asarray(values).reshape(1, -1)
        accumulated = _GroupValues(1)
        accumulated.add(values, np.zeros(1, dtype=np.int64))
        return accumulated.summary(0)

    def merge(self, other: ValueSummary) -> ValueSummary:
        """Summarise both sets of values together."""
        if not other.n_values and other.kind in "fiu":
            return self
        if not self.n_values and self.kind in "fiu":
            return other
        return ValueSummary(
            self.n_values + other.n_values,
            _merged_dtype(self.dtype, other.dtype),
            self.n_nan + other.n_nan,
            self.n_inf + other.n_inf,
            self.n_negative + other.n_negative,
            min(self.minimum, other.minimum),
            max(self.abs_max, other.abs_max),
            self.integer and other.integer,
        )


def _merged_dtype(a: str, b: str) -> str:
    """Return the dtype of two sets of values together (a non-numeric one wins: it is reported)."""
    if a == b:
        return a
    for dtype in (a, b):
        if np.dtype(dtype).kind not in "fiu":
            return dtype
    return str(np.result_type(np.dtype(a), np.dtype(b)))


class _GroupValues:
    """:class:`ValueSummary` of several groups of rows, added up a block of rows at a time.

    Every statistic is taken per row first (``reduceat`` over a CSR block's rows, or along
    a dense block's rows), then per group, so a block holding many groups is read once.
    """

    def __init__(self, n_groups: int) -> None:
        self.n_values = np.zeros(n_groups, dtype=np.int64)
        self.n_nan = np.zeros(n_groups, dtype=np.int64)
        self.n_inf = np.zeros(n_groups, dtype=np.int64)
        self.n_negative = np.zeros(n_groups, dtype=np.int64)
        self.n_fraction = np.zeros(n_groups, dtype=np.int64)  # finite non-whole values
        self.minimum = np.full(n_groups, np.inf)
        self.abs_max = np.zeros(n_groups)
        self.dtypes: list[str | None] = [None] * n_groups

    def add(self, block: Any, groups: np.ndarray) -> None:
        """Add ``block``'s stored values; ``groups[i]`` is the group of its row ``i``."""
        n_rows, size = block.shape[0], len(self.n_values)
        if sp.issparse(block):
            values = np.asarray(block.data)
            lengths = np.diff(block.indptr)
        else:
            values = np.asarray(block).reshape(-1)
            lengths = np.full(n_rows, block.shape[1] if block.ndim == 2 else 1)
        self.n_values += np.bincount(groups, weights=lengths, minlength=size).astype(np.int64)
        dtype = str(values.dtype)
        for g in np.unique(groups):
            self.dtypes[g] = (
                dtype if self.dtypes[g] is None else _merged_dtype(self.dtypes[g], dtype)
            )
        if values.dtype.kind not in "fiu" or not values.size:
            return
        row = np.repeat(np.arange(n_rows), lengths)

        def count(flags: np.ndarray) -> np.ndarray:
            per_row = np.bincount(row[flags], minlength=n_rows)
            return np.bincount(groups, weights=per_row, minlength=size).astype(np.int64)

        if values.dtype.kind == "f":
            nan = np.isnan(values)
            inf = np.isinf(values)
            if nan.any() or inf.any():
                self.n_nan += count(nan)
                self.n_inf += count(inf)
                keep = ~(nan | inf)
                values, row = values[keep], row[keep]
                lengths = np.bincount(row, minlength=n_rows)
            self.n_fraction += count(values != np.round(values))
        self.n_negative += count(values < 0)
        filled = lengths > 0
        if not filled.any():
            return
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[filled]
        row_min = np.minimum.reduceat(values, starts).astype(np.float64)
        row_max = np.maximum.reduceat(np.abs(values), starts).astype(np.float64)
        np.minimum.at(self.minimum, groups[filled], row_min)
        np.maximum.at(self.abs_max, groups[filled], row_max)

    def summary(self, g: int) -> ValueSummary:
        return ValueSummary(
            n_values=int(self.n_values[g]),
            dtype=self.dtypes[g] or "float32",
            n_nan=int(self.n_nan[g]),
            n_inf=int(self.n_inf[g]),
            n_negative=int(self.n_negative[g]),
            minimum=float(self.minimum[g]),
            abs_max=float(self.abs_max[g]),
            integer=not self.n_fraction[g],
        )

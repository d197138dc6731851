"""Checks of the obs columns.

Labels without gaps, names without duplicates, dose and time axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.errors import DataValidationError

__all__ = ["axis_values"]


def _check_labels(adata: AnnData, key: str) -> np.ndarray:
    column = adata.obs[key]
    missing = column.isna().to_numpy()
    if missing.any():
        first = adata.obs_names[np.flatnonzero(missing)[0]]
        raise DataValidationError(
            f"obs key {key!r} has {int(missing.sum())} missing labels (first at obs {first!r})"
        )
    labels = column.astype(str).to_numpy()
    blank = np.char.strip(labels.astype(str)) == ""
    if blank.any():
        raise DataValidationError(f"obs key {key!r} has {int(blank.sum())} empty labels")
    return labels


def axis_values(adata: AnnData, key: str, *, what: str = "dose") -> tuple[np.ndarray, tuple]:
    """Numeric positions of a dose or time column, and the level names of an ordered one.

    Numbers are returned as floats (NaN where missing). An ordered categorical gives each
    observation the 1-based rank of its level (NaN where missing) and returns the levels in
    order; the caller treats equally spaced ranks as equally spaced on the log scale.

    Raises
    ------
    DataValidationError
        The column holds text or an unordered categorical.
    """
    column = adata.obs[key]
    if isinstance(column.dtype, pd.CategoricalDtype):
        if not column.cat.ordered:
            if pd.api.types.is_numeric_dtype(column.cat.categories.dtype):
                return column.astype(float).to_numpy(), ()
            raise DataValidationError(
                f"obs[{key!r}] ({what}) is an unordered categorical with levels "
                f"{list(map(str, column.cat.categories))[:10]}; give numbers or order the "
                "levels (obs[key] = obs[key].cat.reorder_categories([...], ordered=True))"
            )
        codes = column.cat.codes.to_numpy().astype(float)
        codes[codes < 0] = np.nan
        return codes + 1.0, tuple(map(str, column.cat.categories))
    if pd.api.types.is_bool_dtype(column.dtype) or not pd.api.types.is_numeric_dtype(column.dtype):
        shown = list(dict.fromkeys(map(str, column.head(50))))[:5]
        raise DataValidationError(
            f"obs[{key!r}] ({what}) must hold numbers or an ordered categorical of levels, "
            f"found {column.dtype} values such as {shown}"
        )
    return column.to_numpy(dtype=float), ()


def _check_axis(
    adata: AnnData, key: str | None, is_control: np.ndarray, name: str
) -> tuple[Any, ...]:
    if key is None:
        return ()
    what = name.removesuffix("_key")
    positions, levels = axis_values(adata, key, what=what)
    treated = positions[~is_control]
    if np.isinf(treated).any():
        raise DataValidationError(
            f"obs[{key!r}] ({what}) has {int(np.isinf(treated).sum())} infinite values on "
            "perturbed observations"
        )
    known = treated[np.isfinite(treated)]
    if (known < 0).any():
        first = adata.obs_names[~is_control][np.flatnonzero(treated < 0)[0]]
        raise DataValidationError(
            f"obs[{key!r}] ({what}) has {int((known < 0).sum())} negative values on "
            f"perturbed observations (first at obs {first!r}); a {what} is >= 0"
        )
    distinct = np.unique(known)
    if levels:
        return tuple(levels[int(v) - 1] for v in distinct)
    return tuple(float(v) for v in distinct)


def _check_names(adata: AnnData) -> None:
    for axis, names in (("obs", adata.obs_names), ("var", adata.var_names)):
        duplicated = names[names.duplicated()]
        if len(duplicated):
            shown = list(dict.fromkeys(map(str, duplicated)))[:5]
            raise DataValidationError(
                f"{len(duplicated)} duplicated {axis} names, e.g. {shown}; make them unique "
                f"(AnnData.{axis}_names_make_unique())"
            )

"""The data schema: which obs keys mean what, and validation of an AnnData against them.

Validation happens once, at the boundary: :func:`validate` checks an AnnData against the keys
the caller names and returns a frozen :class:`DatasetDescription`. Every model and task takes
that description (or the :class:`Schema` inside it) instead of re-checking the data. The
user's AnnData is never modified.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

import transferome.data._stream as _stream
from transferome.data._stream import ValueSummary, on_disk, row_stats, stored_source
from transferome.errors import DataValidationError

__all__ = [
    "DatasetDescription",
    "Schema",
    "ValueType",
    "axis_values",
    "check_matrix",
    "detect_value_type",
    "iter_value_chunks",
    "obs_labels",
    "split_combination",
    "validate",
]

ValueType = Literal["counts", "log", "linear", "signed"]
"""What ``X`` (or the chosen layer) holds.

``counts``: non-negative integers; ``log``: non-negative, non-integer values in a log range
(``normalize_total`` + ``log1p``, log2 RMA arrays); ``linear``: non-negative, non-integer
values too large to be logged (normalised but not logged); ``signed``: values that may be
negative (changes against control, z-scores), only accepted with ``allow_negative=True``.
"""

_LOG_MAX = 50.0  # log1p of any realistic count, or a log2 array intensity, stays below this
_OPTIONAL_KEYS = ("species_key", "dose_key", "sample_key", "time_key")


def check_matrix(adata: AnnData, layer: str | None) -> None:
    """Refuse what no model can read: not an AnnData, no rows or genes, an unknown layer."""
    if not isinstance(adata, AnnData):
        raise DataValidationError(f"expected an AnnData, got {type(adata).__name__}")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise DataValidationError(f"the data are empty ({adata.n_obs} x {adata.n_vars})")
    if layer is not None and layer not in adata.layers:
        raise DataValidationError(f"layer {layer!r} not found; layers: {list(adata.layers)}")


@dataclass(frozen=True)
class Schema:
    """Names of the obs columns that carry each covariate.

    Parameters
    ----------
    species_key
        Species of each observation (``None`` when the data hold one species).
    context_key
        Context: organ, cell type, cell line, or any covariate combination.
    perturbation_key
        Perturbation; combinations are joined by ``combination_sep``.
    control
        Label of unperturbed observations in ``perturbation_key``.
    dose_key
        Dose of the perturbation (``None`` when absent): numbers (any unit) or an ordered
        categorical of levels (``Low < Middle < High``); the value of control observations
        is not read.
    sample_key
        Biological sample: animal, donor, well (``None`` when absent).
    combination_sep
        Separator of the perturbations in a combination label.
    time_key
        Time since the perturbation (hours, days; ``None`` when absent): numbers or an
        ordered categorical, like the dose.
    """

    species_key: str | None = "species"
    context_key: str = "context"
    perturbation_key: str = "perturbation"
    control: str = "control"
    dose_key: str | None = "dose"
    sample_key: str | None = "sample"
    combination_sep: str = "+"
    time_key: str | None = "time"

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for JSON model files and configs)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Inverse of :meth:`to_dict`; unknown fields are an error."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise DataValidationError(
                f"unknown schema field(s) {sorted(unknown)}; "
                f"expected a subset of {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**dict(data))


@dataclass(frozen=True)
class DatasetDescription:
    """Frozen summary of a validated dataset (what :func:`validate` returns).

    Attributes
    ----------
    schema
        The keys in use; optional keys absent from ``obs`` are ``None`` here.
    n_obs, n_vars
        Shape of the data.
    layer
        The layer that was checked (``None`` for ``X``).
    value_type
        What the values are, see :data:`ValueType`.
    species, contexts, perturbations
        Sorted labels; ``perturbations`` excludes the control label.
    combinations
        Perturbation labels that join two or more perturbations.
    components
        Each perturbation label mapped to its single perturbations.
    control_counts
        Number of control observations in each context.
    group_counts
        Number of observations in each observed (context, perturbation) group,
        controls included.
    doses, times
        Sorted distinct dose / time values of the perturbed observations (numbers, or the
        level names of an ordered categorical); empty without the key.
    """

    schema: Schema
    n_obs: int
    n_vars: int
    layer: str | None
    value_type: ValueType
    species: tuple[str, ...]
    contexts: tuple[str, ...]
    perturbations: tuple[str, ...]
    combinations: tuple[str, ...]
    components: Mapping[str, tuple[str, ...]] = field(repr=False)
    control_counts: Mapping[str, int] = field(repr=False)
    group_counts: Mapping[tuple[str, str], int] = field(repr=False)
    doses: tuple[Any, ...] = ()
    times: tuple[Any, ...] = ()

    @property
    def singles(self) -> tuple[str, ...]:
        """Single (non-combination) perturbations, including those only seen in combinations."""
        return tuple(sorted({c for parts in self.components.values() for c in parts}))

    def table(self) -> pd.DataFrame:
        """Contexts x perturbations table of observation counts (control first)."""
        columns = [self.schema.control, *self.perturbations]
        frame = pd.DataFrame(0, index=list(self.contexts), columns=columns, dtype=int)
        for (context, perturbation), n in self.group_counts.items():
            frame.loc[context, perturbation] = n
        frame.index.name = self.schema.context_key
        frame.columns.name = self.schema.perturbation_key
        return frame

    def contexts_with(self, perturbation: str) -> tuple[str, ...]:
        """Contexts in which ``perturbation`` was observed."""
        return tuple(c for c in self.contexts if (c, perturbation) in self.group_counts)


def split_combination(label: str, sep: str = "+") -> tuple[str, ...]:
    """Split a perturbation label into its single perturbations (sorted, unique)."""
    parts = [part.strip() for part in str(label).split(sep)]
    return tuple(sorted({part for part in parts if part}))


def obs_labels(adata: AnnData, key: str) -> np.ndarray:
    """Labels of ``adata.obs[key]`` as an array of ``str`` (a copy; obs is untouched)."""
    return adata.obs[key].astype(str).to_numpy()


def iter_value_chunks(matrix: Any, chunk_rows: int | None = None) -> Iterator[np.ndarray]:
    """Yield the stored values of a dense, sparse or backed matrix in row chunks.

    For sparse matrices only the explicitly stored values are yielded (implicit zeros are
    valid values for every check made on them).
    """
    if sp.issparse(matrix):
        yield np.asarray(matrix.data)
        return
    if isinstance(matrix, np.ndarray) and matrix.ndim != 2:
        yield matrix.reshape(-1)
        return
    # dense arrays too: the checks make temporary copies of what they are given
    n_rows = matrix.shape[0]
    chunk_rows = int(chunk_rows or _stream.CHUNK_ROWS)
    for start in range(0, n_rows, chunk_rows):
        block = matrix[start : start + chunk_rows]
        if sp.issparse(block):
            yield np.asarray(block.data)
        else:
            yield np.asarray(block).reshape(-1)


def detect_value_type(
    matrix: Any, *, allow_negative: bool = False, allow_nan: bool = False
) -> ValueType:
    """Classify the values of ``matrix`` (see :data:`ValueType`); checks finiteness too.

    Parameters
    ----------
    matrix
        Dense, sparse or backed matrix.
    allow_negative
        Accept negative values (changes against control, z-scores).
    allow_nan
        Accept NaN as "not measured" (signature data with unmeasured genes); NaN entries are
        left out of the classification. Infinite values are always an error.

    Raises
    ------
    DataValidationError
        NaN (unless ``allow_nan``) or infinite values, or negative values when
        ``allow_negative`` is false.
    """
    summary = ValueSummary.empty()
    for values in iter_value_chunks(matrix):
        summary = summary.merge(ValueSummary.of(values))
    return value_type_of(summary, allow_negative=allow_negative, allow_nan=allow_nan)


def value_type_of(
    summary: ValueSummary, *, allow_negative: bool = False, allow_nan: bool = False
) -> ValueType:
    """Classify values from their :class:`ValueSummary`; the checks of :func:`detect_value_type`."""
    kind = summary.kind
    if kind not in "fiuc":
        raise DataValidationError(f"expression values must be numbers, found dtype {summary.dtype}")
    if kind == "c":
        raise DataValidationError("expression values must be real numbers, found complex")
    n_nan, n_inf = summary.n_nan, summary.n_inf
    if n_inf or (n_nan and not allow_nan):
        raise DataValidationError(
            f"expression values contain {n_nan} NaN and {n_inf} infinite entries; "
            "remove or impute them before use"
            + (
                " (pass allow_nan=True / values='delta' for signature data with unmeasured genes)"
                if n_nan and not n_inf
                else ""
            )
        )
    if summary.n_negative:
        if not allow_negative:
            raise DataValidationError(
                f"expression values contain {summary.n_negative} negative entries "
                f"(minimum {summary.minimum:.4g}); counts and log-normalised values "
                "are non-negative (pass allow_negative=True for changes or z-scores)"
            )
        return "signed"
    if summary.integer:
        return "counts"
    return "log" if summary.abs_max <= _LOG_MAX else "linear"


def _resolve_schema(adata: AnnData, schema: Schema) -> Schema:
    """Check the keys exist; drop optional keys left at their default name but absent."""
    defaults = Schema()
    columns = list(map(str, adata.obs.columns))
    updates: dict[str, Any] = {}
    for name in ("context_key", "perturbation_key", *_OPTIONAL_KEYS):
        key = getattr(schema, name)
        if key is None or key in adata.obs.columns:
            continue
        if name in _OPTIONAL_KEYS and key == getattr(defaults, name):
            updates[name] = None
            continue
        raise DataValidationError(
            f"obs key {key!r} (given as {name}) is missing; obs has columns {columns}"
        )
    return replace(schema, **updates) if updates else schema


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


def validate(
    adata: AnnData,
    *,
    species_key: str | None = "species",
    context_key: str = "context",
    perturbation_key: str = "perturbation",
    control: str = "control",
    dose_key: str | None = "dose",
    sample_key: str | None = "sample",
    combination_sep: str = "+",
    time_key: str | None = "time",
    layer: str | None = None,
    require_counts: bool = False,
    require_controls: bool = True,
    allow_negative: bool = False,
    allow_nan: bool = False,
) -> DatasetDescription:
    """Check ``adata`` against the named keys and describe it.

    ``context_key`` and ``perturbation_key`` must exist. The optional keys (``species_key``,
    ``dose_key``, ``sample_key``, ``time_key``) may be absent when left at their default
    names (they are then ``None`` in the returned schema) but must exist when the caller
    names them.

    Parameters
    ----------
    adata
        The data; never modified. A backed AnnData (``read_h5ad(path, backed="r")``) is
        checked a block of rows at a time, without loading ``X`` into memory.
    species_key, context_key, perturbation_key, control, dose_key, sample_key, combination_sep,
    time_key
        See :class:`Schema`. A dose or time column must hold numbers or an ordered
        categorical; on perturbed observations its values must be finite and non-negative
        (NaN marks an unknown dose or time and is allowed here; the dose tasks refuse it).
    layer
        Check ``adata.layers[layer]`` instead of ``X``.
    require_counts
        Values must be non-negative integers (raw counts).
    require_controls
        Every context must have at least one control observation.
    allow_negative
        Accept negative values (changes against control, z-scores).
    allow_nan
        Accept NaN values, meaning "not measured" (signature data, ``values="delta"``);
        infinite values stay an error.

    Returns
    -------
    DatasetDescription
        Frozen description of the dataset.

    Raises
    ------
    DataValidationError
        With a message that names the key, value or problem.
    """
    if not isinstance(adata, AnnData):
        raise DataValidationError(f"expected an AnnData, got {type(adata).__name__}")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise DataValidationError(
            f"the data are empty ({adata.n_obs} observations x {adata.n_vars} genes)"
        )
    _check_names(adata)
    schema = _resolve_schema(
        adata,
        Schema(
            species_key=species_key,
            context_key=context_key,
            perturbation_key=perturbation_key,
            control=str(control),
            dose_key=dose_key,
            sample_key=sample_key,
            combination_sep=combination_sep,
            time_key=time_key,
        ),
    )
    contexts = _check_labels(adata, schema.context_key)
    perturbations = _check_labels(adata, schema.perturbation_key)
    species = _check_labels(adata, schema.species_key) if schema.species_key else None

    is_control = perturbations == schema.control
    if not is_control.any():
        existing = sorted(set(perturbations))
        shown = existing[:20] + (["..."] if len(existing) > 20 else [])
        raise DataValidationError(
            f"control label {schema.control!r} not found in obs[{schema.perturbation_key!r}]; "
            f"labels present: {shown}"
        )
    context_order = sorted(set(contexts))
    control_counts = {
        c: int(n) for c, n in zip(*np.unique(contexts[is_control], return_counts=True), strict=True)
    }
    if require_controls:
        without = [c for c in context_order if c not in control_counts]
        if without:
            raise DataValidationError(
                f"context(s) {without} in obs[{schema.context_key!r}] have no "
                f"{schema.control!r} observations; every context needs controls "
                "(pass require_controls=False to allow it)"
            )

    if layer is not None and layer not in adata.layers:
        raise DataValidationError(f"layer {layer!r} not found; layers: {list(adata.layers)}")
    # the stored matrix: for a view of on-disk data its root's (adata.X would read the rows)
    matrix = stored_source(adata, layer)[0]
    if matrix is None:
        raise DataValidationError("adata.X is empty (None); pass layer= to use a layer")
    if on_disk(matrix):
        # one streamed pass, per (context, perturbation) group so that the fits on unions of
        # the same groups (the splits of a benchmark) reuse the statistics instead of rereading
        codes = pd.MultiIndex.from_arrays([contexts, perturbations]).factorize()[0]
        n_groups = int(codes.max()) + 1
        summary = ValueSummary.empty()
        for stats in row_stats(adata, codes, n_groups, layer=layer):
            summary = summary.merge(stats.values)
        value_type = value_type_of(summary, allow_negative=allow_negative, allow_nan=allow_nan)
    else:
        value_type = detect_value_type(matrix, allow_negative=allow_negative, allow_nan=allow_nan)
    if require_counts and value_type != "counts":
        raise DataValidationError(
            f"raw counts are required but {'X' if layer is None else f'layer {layer!r}'} holds "
            f"non-integer values ({value_type}); pass the raw counts (e.g. layer='counts')"
        )

    group_frame = pd.DataFrame({"c": contexts, "p": perturbations})
    sizes = group_frame.groupby(["c", "p"], sort=True).size()
    group_counts = {(str(c), str(p)): int(n) for (c, p), n in sizes.items()}
    labels = sorted(set(perturbations) - {schema.control})
    components = {p: split_combination(p, schema.combination_sep) for p in labels}
    empty = [p for p, parts in components.items() if not parts]
    if empty:
        raise DataValidationError(
            f"perturbation label(s) {empty} in obs[{schema.perturbation_key!r}] name no "
            f"perturbation once split on {schema.combination_sep!r}"
        )
    doses = _check_axis(adata, schema.dose_key, is_control, "dose_key")
    times = _check_axis(adata, schema.time_key, is_control, "time_key")
    return DatasetDescription(
        schema=schema,
        n_obs=int(adata.n_obs),
        n_vars=int(adata.n_vars),
        layer=layer,
        value_type=value_type,
        species=tuple(sorted(set(species))) if species is not None else (),
        contexts=tuple(context_order),
        perturbations=tuple(labels),
        combinations=tuple(p for p in labels if len(components[p]) > 1),
        components=MappingProxyType(components),
        control_counts=MappingProxyType(control_counts),
        group_counts=MappingProxyType(group_counts),
        doses=doses,
        times=times,
    )

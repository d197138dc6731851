"""The data schema: which obs keys mean what, and validation of an AnnData against them.

Validation happens once, at the boundary: :func:`validate` checks an AnnData against the keys
the caller names and returns a frozen :class:`DatasetDescription`. Every model and task takes
that description (or the :class:`Schema` inside it) instead of re-checking the data. The
user's AnnData is never modified.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data._obs_checks import _check_axis, _check_labels, _check_names, axis_values
from transferome.data._stream import ValueSummary, on_disk, row_stats, stored_source
from transferome.data._value_type import (
    ValueType,
    check_matrix,
    detect_value_type,
    iter_value_chunks,
    value_type_of,
)
from transferome.errors import DataValidationError

__all__ = [
    "DatasetDescription",
    "Schema",
    "ValueType",
    "as_schema",
    "axis_values",
    "check_matrix",
    "checked_schema",
    "detect_value_type",
    "iter_value_chunks",
    "obs_labels",
    "split_combination",
    "validate",
]


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

    # ``help``: the command-line help; ``optional``: the key may be absent from obs (None)
    species_key: str | None = field(
        default="species", metadata={"help": "species column", "optional": True}
    )
    context_key: str = field(
        default="context", metadata={"help": "organ / cell type / cell line column"}
    )
    perturbation_key: str = field(default="perturbation", metadata={"help": "perturbation column"})
    control: str = field(default="control", metadata={"help": "control label"})
    dose_key: str | None = field(
        default="dose",
        metadata={"help": "dose column (numbers or ordered levels)", "optional": True},
    )
    sample_key: str | None = field(
        default="sample", metadata={"help": "animal / donor column", "optional": True}
    )
    combination_sep: str = field(default="+", metadata={"help": "separator of combinations"})
    time_key: str | None = field(
        default="time",
        metadata={"help": "time column (numbers or ordered levels)", "optional": True},
    )

    @classmethod
    def optional_keys(cls) -> tuple[str, ...]:
        """Return the fields naming obs keys that may be absent (``None``)."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("optional"))

    def without_optional_keys(self) -> Schema:
        """Return a copy with every optional key set to ``None``.

        For data with context and perturbation only, such as signatures.
        """
        absent: dict[str, Any] = dict.fromkeys(self.optional_keys())
        return replace(self, **absent)

    @classmethod
    def add_arguments(
        cls, parser: argparse._ActionsContainer, *, hidden: Sequence[str] = ()
    ) -> None:
        """Add one ``--field-name`` option per field, with its default and help.

        The optional keys named in ``hidden`` are left out of the help and default to
        ``None`` (so a caller can tell whether one was given).
        """
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            if f.name in hidden:
                parser.add_argument(flag, dest=f.name, default=None, help=argparse.SUPPRESS)
            else:
                parser.add_argument(flag, dest=f.name, default=f.default, help=f.metadata["help"])

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Schema:
        """Build the schema of parsed options added by :meth:`add_arguments`.

        A hidden optional key that was not given takes its default.
        """
        values = {f.name: getattr(args, f.name) for f in fields(cls)}
        for name in cls.optional_keys():
            if values[name] is None:
                values[name] = getattr(cls, name)
        return cls(**values)

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
    allow_nan
        Whether NaN values were accepted (then the values may hold some).
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
    allow_nan: bool = field(default=False, repr=False)

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


def _resolve_schema(adata: AnnData, schema: Schema) -> Schema:
    """Check the keys exist; drop optional keys left at their default name but absent."""
    defaults = Schema()
    columns = list(map(str, adata.obs.columns))
    updates: dict[str, Any] = {}
    optional = Schema.optional_keys()
    for name in ("context_key", "perturbation_key", *optional):
        key = getattr(schema, name)
        if key is None or key in adata.obs.columns:
            continue
        if name in optional and key == getattr(defaults, name):
            updates[name] = None
            continue
        raise DataValidationError(
            f"obs key {key!r} (given as {name}) is missing; obs has columns {columns}"
        )
    return replace(schema, **updates) if updates else schema


def validate(
    adata: AnnData,
    schema: Schema | None = None,
    *,
    layer: str | None = None,
    require_counts: bool = False,
    require_controls: bool = True,
    allow_negative: bool = False,
    allow_nan: bool = False,
) -> DatasetDescription:
    """Check ``adata`` against the keys of ``schema`` and describe it.

    ``context_key`` and ``perturbation_key`` must exist. The optional keys (``species_key``,
    ``dose_key``, ``sample_key``, ``time_key``) may be absent when left at their default
    names (they are then ``None`` in the returned schema) but must exist when the schema
    names others.

    Parameters
    ----------
    adata
        The data; never modified. A backed AnnData (``read_h5ad(path, backed="r")``) is
        checked a block of rows at a time, without loading ``X`` into memory.
    schema
        The obs keys (:class:`Schema`; its defaults when ``None``). A dose or time column
        must hold numbers or an ordered categorical; on perturbed observations its values
        must be finite and non-negative (NaN marks an unknown dose or time and is allowed
        here; the dose tasks refuse it).
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
    if schema is None:
        schema = Schema()
    elif not isinstance(schema, Schema):
        raise DataValidationError(f"schema must be a Schema, got {type(schema).__name__}")
    schema = _resolve_schema(adata, replace(schema, control=str(schema.control)))
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
        allow_nan=allow_nan,
    )


def checked_schema(
    adata: AnnData,
    schema: Schema | DatasetDescription | None = None,
    *,
    layer: str | None = None,
    require_counts: bool = False,
    require_controls: bool = True,
    allow_negative: bool = False,
    allow_nan: bool = False,
) -> Schema:
    """Return the schema a model fits ``adata`` with: validated once, at the boundary.

    Given the :class:`DatasetDescription` that :func:`validate` returned for the data
    ``adata`` was taken from (a benchmark's training split, say), only the keys and the genes
    are checked: the values were checked when the description was made, and a part of the
    rows holds a part of those values. The description is trusted only for checks no
    stricter than the ones it passed (no NaN asked where NaN was allowed, no counts asked of
    other values, the same layer; controls in every context are never assumed of a part);
    otherwise, and given a :class:`Schema` or ``None``, ``adata`` is validated in full with
    the options (see :func:`validate`).

    Raises
    ------
    DataValidationError
        A key the description names is missing from ``adata.obs``, the genes differ in
        number, or a check of :func:`validate` fails.
    """
    if not isinstance(schema, DatasetDescription):
        return validate(
            adata,
            schema,
            layer=layer,
            require_counts=require_counts,
            require_controls=require_controls,
            allow_negative=allow_negative,
            allow_nan=allow_nan,
        ).schema
    description = schema
    trusted = (
        layer == description.layer
        and not require_controls
        and (not require_counts or description.value_type == "counts")
        and (allow_negative or description.value_type != "signed")
        and (allow_nan or not description.allow_nan)
    )
    if not trusted:
        return checked_schema(
            adata,
            description.schema,
            layer=layer,
            require_counts=require_counts,
            require_controls=require_controls,
            allow_negative=allow_negative,
            allow_nan=allow_nan,
        )
    if not isinstance(adata, AnnData):
        raise DataValidationError(f"expected an AnnData, got {type(adata).__name__}")
    if adata.n_vars != description.n_vars:
        raise DataValidationError(
            f"the data have {adata.n_vars} genes but were described with {description.n_vars}; "
            "pass the description of these data, or their Schema"
        )
    keys = {f.name: getattr(description.schema, f.name) for f in fields(Schema)}
    for name, key in keys.items():
        if name.endswith("_key") and key is not None and key not in adata.obs.columns:
            raise DataValidationError(
                f"obs key {key!r} (given as {name}) is missing; obs has columns "
                f"{list(map(str, adata.obs.columns))}"
            )
    return description.schema


def as_schema(schema: Schema | DatasetDescription | None) -> Schema:
    """Return the :class:`Schema` of ``schema`` (a description's keys; ``None``: the defaults)."""
    if schema is None:
        return Schema()
    return schema.schema if isinstance(schema, DatasetDescription) else schema

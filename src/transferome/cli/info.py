"""``transferome info FILE``: shape, value type and the contexts x perturbations table.

A file without the context or perturbation column (a 10x folder, a table without metadata,
data with other column names) is still described: shape, value type, layers and every obs
column with its levels, so the right ``--context-key`` / ``--perturbation-key`` can be read
off it.
"""

from __future__ import annotations

import argparse

from transferome.cli._common import (
    add_backed_argument,
    add_data_arguments,
    add_key_arguments,
    add_reader_arguments,
    read_input,
    schema_from_args,
    validate_kwargs,
)

NAME = "info"
HELP = "describe a dataset: shape, value type, obs columns, contexts x perturbations cell counts"
_MAX_LEVELS = 8
"""Levels shown per obs column when the file has no context / perturbation column."""

_MAX_COLUMNS = 12
"""More perturbations than this are summarised with counts (``--full`` prints them all)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome info`` to ``parser``."""
    parser.add_argument(
        "file", help="dataset: .h5ad, .csv/.tsv table, .gct, or a 10x matrix.mtx folder"
    )
    add_backed_argument(parser)
    add_reader_arguments(parser)
    add_key_arguments(parser)
    add_data_arguments(parser)
    parser.add_argument(
        "--full",
        action="store_true",
        help=f"print every column of the contexts x perturbations table (by default more "
        f"than {_MAX_COLUMNS} perturbations are summarised with counts)",
    )


def _full_table(frame, title: str):
    from rich.table import Table

    table = Table(title=title)
    table.add_column(str(frame.index.name))
    for column in frame.columns:
        table.add_column(str(column), justify="right")
    for context, row in frame.iterrows():
        table.add_row(str(context), *[str(int(v)) for v in row])
    return table


def _summary_tables(frame, control: str):
    """Per context and per perturbation counts, for tables too wide to print."""
    import numpy as np
    from rich.table import Table

    perturbed = frame.drop(columns=[control])
    context_name, perturbation_name = str(frame.index.name), str(frame.columns.name)
    by_context = Table(
        title=f"{context_name}: observations ({perturbed.shape[1]} {perturbation_name} values, "
        "summarised; --full prints every column)"
    )
    for name in (context_name, control, f"{perturbation_name} measured", "perturbed", "per group"):
        by_context.add_column(name, justify="left" if name == context_name else "right")
    for context, row in perturbed.iterrows():
        counts = row[row > 0].to_numpy()
        spread = (
            f"{int(counts.min())} / {int(np.median(counts))} / {int(counts.max())}"
            if counts.size
            else "-"
        )
        by_context.add_row(
            str(context),
            str(int(frame.loc[context, control])),
            f"{counts.size} of {perturbed.shape[1]}",
            str(int(counts.sum())),
            spread,
        )
    by_perturbation = Table(title=f"{perturbation_name}: where measured")
    for name in (perturbation_name, f"{context_name} measured", "observations"):
        by_perturbation.add_column(name, justify="left" if name == perturbation_name else "right")
    for perturbation, column in perturbed.items():
        by_perturbation.add_row(
            str(perturbation),
            f"{int((column > 0).sum())} of {len(column)}",
            str(int(column.sum())),
        )
    return by_context, by_perturbation


def _obs_columns(adata):
    """One rich table of the obs columns: type, number of levels and the first levels."""
    import pandas as pd
    from rich.table import Table

    table = Table(title="obs columns")
    for name in ("column", "type", "levels", "values"):
        table.add_column(name, justify="right" if name == "levels" else "left")
    for column in adata.obs.columns:
        values = adata.obs[column]
        missing = int(values.isna().sum())
        present = values.dropna()
        levels = present.nunique()
        if pd.api.types.is_numeric_dtype(values) and levels > _MAX_LEVELS:
            shown = f"{present.min():g} .. {present.max():g}"
        else:
            counts = present.astype(str).value_counts()
            shown = ", ".join(f"{k} ({v})" for k, v in counts.head(_MAX_LEVELS).items())
            shown += f", ... ({levels} in all)" if levels > _MAX_LEVELS else ""
        if missing:
            shown += f"; {missing} missing"
        table.add_row(str(column), str(values.dtype), str(levels), shown)
    return table


def _describe_without_keys(console, adata, args: argparse.Namespace, missing: list[str]) -> int:
    from transferome.data.schema import detect_value_type

    matrix = adata.X if args.layer is None else adata.layers[args.layer]
    value_type = detect_value_type(matrix, allow_negative=True, allow_nan=True)
    where = "X" if args.layer is None else f"layer {args.layer!r}"
    console.print(f"values ({where}): {value_type}")
    console.print(f"layers: {list(adata.layers) or 'none'}")
    if len(adata.obs.columns):
        console.print(_obs_columns(adata), markup=False)
    else:
        console.print("obs columns: none")
    console.print(
        f"no obs column {' or '.join(map(repr, missing))}: name the columns with --context-key "
        "and --perturbation-key (and --control) for the contexts x perturbations table",
        markup=False,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``transferome info`` on the parsed ``args``; return the exit status."""
    from rich.console import Console

    from transferome.data import validate
    from transferome.errors import DataValidationError

    adata = read_input(args)
    console = Console(soft_wrap=True)
    console.print(f"[bold]{args.file}[/bold]: {adata.n_obs} observations x {adata.n_vars} genes")
    kwargs = validate_kwargs(args)
    schema = schema_from_args(args)
    if args.layer is not None and args.layer not in adata.layers:
        raise DataValidationError(f"layer {args.layer!r} not found; layers: {list(adata.layers)}")
    keys = (schema.context_key, schema.perturbation_key)
    missing = [key for key in keys if key not in adata.obs.columns]
    if missing:
        return _describe_without_keys(console, adata, args, missing)
    try:
        description = validate(adata, schema, require_controls=False, **kwargs)
    except DataValidationError as exc:
        console.print(f"obs columns: {list(map(str, adata.obs.columns))}")
        console.print(f"layers: {list(adata.layers)}")
        raise DataValidationError(f"cannot describe {args.file}: {exc}") from exc
    where = "X" if description.layer is None else f"layer {description.layer!r}"
    console.print(f"values ({where}): {description.value_type}")
    if description.value_type in ("counts", "linear"):
        console.print(
            "  benchmark, fit, predict and evaluate normalise these (normalize_total + log1p) "
            "unless given --values log",
            markup=False,
        )
    if description.species:
        console.print(f"species: {', '.join(description.species)}")
    for what, key, values in (
        ("doses", description.schema.dose_key, description.doses),
        ("times", description.schema.time_key, description.times),
    ):
        if key is not None:
            shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:12])
            more = f" ... ({len(values)} in all)" if len(values) > 12 else ""
            console.print(f"{what} (obs {key!r}): {shown or 'none known'}{more}", markup=False)
    console.print(f"layers: {list(adata.layers) or 'none'}")
    frame = description.table()
    if args.full or frame.shape[1] <= _MAX_COLUMNS + 1:
        title = f"{frame.index.name} x {frame.columns.name} (observations)"
        console.print(_full_table(frame, title), markup=False)
    else:
        for table in _summary_tables(frame, description.schema.control):
            console.print(table, markup=False)
    missing = [c for c in description.contexts if c not in description.control_counts]
    if missing:
        console.print(f"contexts without controls: {missing}", markup=False)
    return 0

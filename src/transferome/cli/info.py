"""``transferome info FILE``: shape, value type and the contexts x perturbations table."""

from __future__ import annotations

import argparse

from transferome.cli._common import (
    add_data_arguments,
    add_key_arguments,
    add_reader_arguments,
    read_input,
    validate_kwargs,
)

NAME = "info"
HELP = "describe a dataset: shape, value type, contexts x perturbations cell counts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", help="dataset: .h5ad, .csv/.tsv table, .gct, or a 10x matrix.mtx folder"
    )
    add_reader_arguments(parser)
    add_key_arguments(parser)
    add_data_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from transferome.data import validate
    from transferome.errors import DataValidationError

    adata = read_input(args)
    console = Console(soft_wrap=True)
    console.print(f"[bold]{args.file}[/bold]: {adata.n_obs} observations x {adata.n_vars} genes")
    kwargs = validate_kwargs(args)
    try:
        description = validate(adata, require_controls=False, **kwargs)
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
    console.print(f"layers: {list(adata.layers) or 'none'}")
    frame = description.table()
    table = Table(title=f"{frame.index.name} x {frame.columns.name} (observations)")
    table.add_column(str(frame.index.name))
    for column in frame.columns:
        table.add_column(str(column), justify="right")
    for context, row in frame.iterrows():
        table.add_row(str(context), *[str(int(v)) for v in row])
    console.print(table, markup=False)
    missing = [c for c in description.contexts if c not in description.control_counts]
    if missing:
        console.print(f"contexts without controls: {missing}", markup=False)
    return 0

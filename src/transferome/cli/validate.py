"""``transferome validate FILE``: exit non-zero, with the reason, when the data break the schema."""

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

NAME = "validate"
HELP = "check a dataset against the schema; exit status 2 with the reason if it fails"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome validate`` to ``parser``."""
    parser.add_argument(
        "file", help="dataset: .h5ad, .csv/.tsv table, .gct, or a 10x matrix.mtx folder"
    )
    add_backed_argument(parser)
    add_reader_arguments(parser)
    add_key_arguments(parser)
    add_data_arguments(parser)
    parser.add_argument(
        "--require-counts", action="store_true", help="values must be raw integer counts"
    )
    parser.add_argument(
        "--allow-missing-controls",
        action="store_true",
        help="accept contexts without control observations",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``transferome validate`` on the parsed ``args``; return the exit status."""
    from transferome.data import validate

    adata = read_input(args)
    description = validate(
        adata,
        schema_from_args(args),
        require_counts=args.require_counts,
        require_controls=not args.allow_missing_controls,
        **validate_kwargs(args),
    )
    print(
        f"{args.file}: valid ({description.n_obs} observations x {description.n_vars} genes, "
        f"{description.value_type}, {len(description.contexts)} contexts, "
        f"{len(description.perturbations)} perturbations"
        + "".join(
            f", {len(values)} {what if len(values) > 1 else what.removesuffix('s')}"
            for what, values in (("doses", description.doses), ("time points", description.times))
            if values
        )
        + ")"
    )
    return 0

"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from transferome.data.schema import Schema

__all__ = ["add_data_arguments", "add_key_arguments", "validate_kwargs"]

_DEFAULT = Schema()


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    """The obs keys of the schema, with the defaults of :class:`~transferome.data.Schema`."""
    group = parser.add_argument_group("obs keys")
    group.add_argument("--species-key", default=_DEFAULT.species_key, help="species column")
    group.add_argument(
        "--context-key", default=_DEFAULT.context_key, help="organ / cell type / cell line column"
    )
    group.add_argument(
        "--perturbation-key", default=_DEFAULT.perturbation_key, help="perturbation column"
    )
    group.add_argument("--control", default=_DEFAULT.control, help="control label")
    group.add_argument("--dose-key", default=_DEFAULT.dose_key, help="dose column")
    group.add_argument("--sample-key", default=_DEFAULT.sample_key, help="animal / donor column")
    group.add_argument(
        "--combination-sep", default=_DEFAULT.combination_sep, help="separator of combinations"
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Options about which values to read."""
    parser.add_argument("--layer", default=None, help="use this layer instead of X")
    parser.add_argument(
        "--allow-negative",
        action="store_true",
        help="accept negative values (changes against control, z-scores)",
    )


def validate_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`transferome.data.validate` from parsed options."""
    return {
        "species_key": args.species_key,
        "context_key": args.context_key,
        "perturbation_key": args.perturbation_key,
        "control": args.control,
        "dose_key": args.dose_key,
        "sample_key": args.sample_key,
        "combination_sep": args.combination_sep,
        "layer": getattr(args, "layer", None),
        "allow_negative": getattr(args, "allow_negative", False),
    }

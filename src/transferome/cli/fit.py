"""``transferome fit DATA --model NAME --out FOLDER``: fit one model and save it."""

from __future__ import annotations

import argparse
from dataclasses import replace

from transferome.cli._common import (
    add_backed_argument,
    add_key_arguments,
    add_preset_argument,
    add_reader_arguments,
    add_values_argument,
    new_output,
    parse_params,
    prepare_input,
    preset_params,
    schema_from_args,
)

NAME = "fit"
HELP = "fit one model on a data file and save it (safetensors + JSON folder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome fit`` to ``parser``."""
    parser.add_argument("file", help="training data (h5ad, CSV/TSV, GCT or 10x folder)")
    parser.add_argument(
        "--model",
        default="stacked",
        help="registered model name (default: stacked, the transfer predictor; e.g. xtransfer)",
    )
    parser.add_argument("--out", required=True, help="model folder to write")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an estimator argument (repeatable), e.g. --param max_epochs=30 (applied over "
        "the --preset)",
    )
    add_preset_argument(parser)
    parser.add_argument("--seed", type=int, default=None, help="random_state of the model")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    parser.add_argument("--layer", default=None, help="use this layer instead of X")
    add_values_argument(parser)
    add_key_arguments(parser, unused=("dose_key", "time_key", "sample_key"))
    add_backed_argument(parser)
    add_reader_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``transferome fit`` on the parsed ``args``; return the exit status."""
    import inspect

    from transferome.cli._common import read_input
    from transferome.data import validate
    from transferome.models import get_model

    out = new_output(
        args.out, overwrite=args.overwrite, inputs=(args.file, args.metadata), folder=True
    )
    cls = get_model(args.model)
    params = preset_params(args.model, args.preset, parse_params(args.param, args.model))
    if args.seed is not None and "random_state" in inspect.signature(cls.__init__).parameters:
        params["random_state"] = args.seed
    adata, values = prepare_input(
        read_input(args), args, args.file, layer=args.layer, schema=schema_from_args(args)
    )
    keys = schema_from_args(args)
    if values == "delta":
        keys = replace(keys, species_key=None, dose_key=None, sample_key=None)
    schema = validate(adata, keys, allow_negative=values == "delta", require_controls=False).schema
    model = cls(**params).fit(adata, schema=schema)
    model.save(out)
    print(f"fitted {model!r} on {adata.n_obs} observations x {adata.n_vars} genes; wrote {out}")
    return 0

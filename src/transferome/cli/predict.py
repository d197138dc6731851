"""``transferome predict MODEL DATA --target C:P --out pred.h5ad``: predicted profiles.

The output is what perturbation evaluators read: the predicted profiles of every target plus
the observed controls of the target contexts, with ``obs`` columns for the perturbation and
the context. The values are the model's predictions as ``benchmark`` scores them;
``--clip-negative`` sets negative values to 0 for a consumer that needs non-negative input.
"""

from __future__ import annotations

import argparse

from transferome.cli._common import (
    add_backed_argument,
    add_reader_arguments,
    add_values_argument,
    check_finite,
    new_output,
    prepare_input,
)

NAME = "predict"
HELP = "predict the profiles of (context, perturbation) targets with a saved model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome predict`` to ``parser``."""
    parser.add_argument("model", help="model folder written by `transferome fit`")
    parser.add_argument("file", help="data holding the controls of every target context")
    parser.add_argument("--out", required=True, help="h5ad file to write")
    parser.add_argument(
        "--targets", default=None, help="CSV with the context and perturbation columns"
    )
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="CONTEXT:PERTURBATION",
        help="one target (repeatable)",
    )
    parser.add_argument(
        "--replicates",
        type=int,
        default=1,
        help="copies of each predicted profile (for evaluators that need several rows)",
    )
    parser.add_argument(
        "--clip-negative",
        action="store_true",
        help="set negative values to 0 (for consumers that need non-negative input; "
        "off by default, so that `evaluate` scores what `benchmark` scores)",
    )
    parser.add_argument("--layer", default=None, help="use this layer instead of X")
    add_values_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    add_backed_argument(parser)
    add_reader_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``transferome predict`` on the parsed ``args``; return the exit status."""
    from transferome.cli._common import read_input
    from transferome.data import write_h5ad
    from transferome.pipeline.steps import evaluator_layout, load_model, read_targets

    inputs = (args.model, args.file, args.targets, args.metadata)
    out = new_output(args.out, overwrite=args.overwrite, inputs=inputs)
    model = load_model(args.model)
    schema = model.schema_
    adata, values = prepare_input(
        read_input(args), args, args.file, layer=args.layer, schema=schema
    )
    check_finite(adata, args.file, allow_nan=values == "delta")
    targets = read_targets(args.targets, args.target, schema=schema)
    prediction = model.predict(adata, targets)
    layout = evaluator_layout(
        prediction,
        adata,
        schema=schema,
        replicates=args.replicates,
        clip_negative=args.clip_negative,
    )
    check_finite(
        layout,
        f"{args.model}: the prediction",
        allow_nan=values == "delta",
        group_keys=(schema.context_key, schema.perturbation_key),
        what="predicted values",
    )
    write_h5ad(layout, out)
    print(
        f"wrote {len(targets)} predicted profiles and their controls ({layout.n_obs} rows) to {out}"
    )
    return 0

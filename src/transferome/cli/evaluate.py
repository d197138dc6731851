"""``transferome evaluate PRED TRUTH --out metrics.csv``: score predicted profiles."""

from __future__ import annotations

import argparse

from transferome.cli._common import (
    add_key_arguments,
    add_values_argument,
    check_finite,
    new_output,
    prepare_input,
    schema_from_args,
)

NAME = "evaluate"
HELP = "score predicted profiles (h5ad from `predict`) against observed data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome evaluate`` to ``parser``."""
    parser.add_argument("prediction", help="h5ad written by `transferome predict`")
    parser.add_argument("truth", help="observed data (h5ad) holding the predicted groups")
    parser.add_argument("--out", required=True, help="CSV of per-group metrics to write")
    parser.add_argument("--n-degs", type=int, default=50, help="DEGs per group (default 50)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    add_values_argument(parser)
    add_key_arguments(parser, unused=("dose_key", "time_key", "sample_key"))


def run(args: argparse.Namespace) -> int:
    """Run ``transferome evaluate`` on the parsed ``args``; return the exit status."""
    from dataclasses import replace

    from transferome.data import atomic_path, obs_labels, read_h5ad, spreadsheet_safe, validate
    from transferome.errors import DataValidationError
    from transferome.metrics import evaluate_groups, summarize

    out = new_output(args.out, overwrite=args.overwrite, inputs=(args.truth, args.prediction))
    keys = schema_from_args(args)
    truth, values = prepare_input(read_h5ad(args.truth), args, args.truth, schema=keys)
    if values == "delta":
        keys = replace(keys, species_key=None, dose_key=None, sample_key=None)
    schema = validate(truth, keys, allow_negative=values == "delta").schema
    prediction = read_h5ad(args.prediction)
    for key in (schema.context_key, schema.perturbation_key):
        if key not in prediction.obs.columns:
            raise DataValidationError(f"{args.prediction}: obs column {key!r} is missing")
    if "predicted" in prediction.obs.columns:
        prediction = prediction[prediction.obs["predicted"].astype(bool).to_numpy()]
    else:
        labels = obs_labels(prediction, schema.perturbation_key)
        prediction = prediction[labels != schema.control]
    check_finite(
        prediction,
        args.prediction,
        allow_nan=values == "delta",
        group_keys=(schema.context_key, schema.perturbation_key),
        what="predicted values",
    )
    results = evaluate_groups(prediction, truth, schema=schema, n_degs=args.n_degs)
    with atomic_path(out) as tmp:
        spreadsheet_safe(results).to_csv(tmp, index=False)
    summary = summarize(results.assign(model="prediction"))
    for row in summary.itertuples():
        print(f"{row.metric}: mean {row.mean:.3f}, median {row.median:.3f}")
    print(f"wrote {len(results)} rows to {out}")
    return 0

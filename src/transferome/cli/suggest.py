"""``transferome suggest DATA [DATA ...] --out suggestions.csv``: the next experiments to run."""

from __future__ import annotations

import argparse

from transferome.cli._common import (
    add_key_arguments,
    add_values_argument,
    new_output,
    prepare_input,
    read_ortholog_csv,
    schema_from_args,
)

NAME = "suggest"
HELP = "rank unmeasured (species, context, perturbation) experiments by expected benefit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome suggest`` to ``parser``."""
    parser.add_argument(
        "files",
        nargs="+",
        help="h5ad files (see --values), one per species (SPECIES=FILE names the species; "
        "default: the file name without suffix)",
    )
    parser.add_argument("--out", required=True, help="CSV of ranked suggestions to write")
    parser.add_argument(
        "--budget", type=int, default=5, help="experiments to suggest, picked as a batch (5)"
    )
    parser.add_argument(
        "--method",
        choices=("gain", "ensemble"),
        default="gain",
        help="gain: by the expected reduction of the prediction error of everything still "
        "unmeasured (default, seconds); ensemble: where a completion ensemble disagrees most",
    )
    parser.add_argument(
        "--predictor",
        default="stacked",
        help="--method gain: the transfer model whose intervals say how hard each open cell "
        "is to predict (default stacked; 'none': the error model's counts alone)",
    )
    parser.add_argument("--orthologs", default=None, help="ortholog table tying the species")
    parser.add_argument("--n-models", type=int, default=4, help="ensemble members (4)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=300,
        help="training steps of each completion model (300; --method ensemble)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    add_values_argument(parser)
    add_key_arguments(parser, unused=("dose_key", "time_key"))


def run(args: argparse.Namespace) -> int:
    """Run ``transferome suggest`` on the parsed ``args``; return the exit status."""
    from pathlib import Path

    from transferome.crossspecies import CompletionConfig, suggest_experiments
    from transferome.data import atomic_path, read_h5ad, spreadsheet_safe
    from transferome.errors import DataValidationError

    inputs = [item.partition("=")[2] or item for item in args.files]
    out = new_output(args.out, overwrite=args.overwrite, inputs=[*inputs, args.orthologs])
    schema = schema_from_args(args)
    data = {}
    for item in args.files:
        species, sep, path = item.partition("=")
        if not sep:
            species, path = Path(item).stem, item
        if species in data:
            raise DataValidationError(f"species {species!r} is given twice")
        data[species] = prepare_input(read_h5ad(path), args, path, zero_controls=False)[0]
    orthologs = read_ortholog_csv(args.orthologs)
    table = suggest_experiments(
        data,
        args.budget,
        orthologs=orthologs,
        n_models=args.n_models,
        config=CompletionConfig(epochs=args.epochs),
        schema=schema,
        random_state=args.seed,
        method=args.method,
        predictor=None if args.predictor.lower() == "none" else args.predictor,
    )
    with atomic_path(out) as tmp:
        spreadsheet_safe(table).to_csv(tmp, index=False)
    for row in table.itertuples():
        print(f"{row.rank}. {row.species} {row.context} {row.perturbation}: {row.reason}")
    if table.empty:
        print("every (species, context, perturbation) cell is measured; nothing to suggest")
    print(f"wrote {out}")
    return 0

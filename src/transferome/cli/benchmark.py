"""``transferome benchmark TASK --data FILE ...``: fit models and baselines, score them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from transferome.cli._common import add_key_arguments, add_values_argument, schema_from_args

NAME = "benchmark"
HELP = "run a benchmark task (transfer, combination) and write results.csv, summary.csv/.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task name: transfer (leave one context out), combination")
    parser.add_argument("--data", required=True, help="dataset (.h5ad, .gct, ...)")
    parser.add_argument(
        "--models",
        default="control,additive,linear",
        help="comma-separated model names (default: control,additive,linear)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    add_values_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits")
    parser.add_argument("--n-degs", type=int, default=50, help="DEGs per group")
    parser.add_argument(
        "--model-params",
        default=None,
        help='JSON of hyperparameters per model, e.g. \'{"linear": {"ranks": [0, 1]}}\'',
    )
    add_key_arguments(parser, unused=("dose_key", "sample_key"))


def run(args: argparse.Namespace) -> int:
    from transferome.benchmark import run_task
    from transferome.data import atomic_path, atomic_write_text, prepare_values, read
    from transferome.errors import TransferomeError

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        params = json.loads(args.model_params) if args.model_params else {}
    except json.JSONDecodeError as exc:
        raise TransferomeError(f"--model-params is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise TransferomeError("--model-params must be a JSON object of model name -> params")
    schema = schema_from_args(args)
    prepared = prepare_values(read(args.data), args.values, where=args.data)
    result = run_task(
        args.task,
        prepared.adata,
        schema=schema,
        models=models,
        model_params=params,
        seed=args.seed,
        values=prepared.values,
        n_degs=args.n_degs,
    )
    out = Path(args.out)
    for name, frame in (("results.csv", result.results), ("summary.csv", result.summary)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    markdown = result.to_markdown()
    atomic_write_text(out / "summary.md", markdown + "\n")
    print(markdown)
    print(f"\nwrote {out / 'results.csv'}, {out / 'summary.csv'}, {out / 'summary.md'}")
    return 0

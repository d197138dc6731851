"""``transferome benchmark TASK --data FILE ...``: fit models and baselines, score them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from transferome.cli._common import (
    add_key_arguments,
    add_preset_argument,
    add_values_argument,
    check_output,
    preset_params,
    schema_from_args,
)

NAME = "benchmark"
HELP = (
    "run a benchmark task (transfer, combination) and write results.csv, summary.csv/.md, "
    "timings.csv"
)

# Options of the transfer task's split builder (dest -> how it is parsed).
_TRANSFER_OPTIONS = ("holdout", "contexts", "perturbations", "max_splits")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task name: transfer (leave one context out), combination")
    parser.add_argument("--data", required=True, help="dataset (.h5ad, .gct, ...)")
    parser.add_argument(
        "--models",
        default="control,additive,linear,similar,collaborative,stacked",
        help="comma-separated model names (default: the baselines control, additive, linear, "
        "similar, collaborative and the default predictor stacked)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results (results.csv, summary.csv, timings.csv, summary.md) in an "
        "existing folder; other files there are left alone",
    )
    add_values_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits")
    parser.add_argument("--n-degs", type=int, default=50, help="DEGs per group")
    parser.add_argument(
        "--model-params",
        default=None,
        help='JSON of hyperparameters per model, e.g. \'{"linear": {"ranks": [0, 1]}}\' '
        "(applied over the --preset)",
    )
    add_preset_argument(parser)
    group = parser.add_argument_group("transfer task: what is held out")
    group.add_argument(
        "--holdout",
        choices=("group", "context"),
        default=None,
        help="group (default): each split holds out one (context, perturbation) group, the "
        "context's other perturbations stay in training; context: each split holds out every "
        "perturbed group of one context at once (a new donor / cell line), keeping its controls",
    )
    group.add_argument(
        "--contexts", default=None, help="comma-separated contexts to hold out (default: all)"
    )
    group.add_argument(
        "--perturbations",
        default=None,
        help="comma-separated perturbations to hold out and score (default: all)",
    )
    group.add_argument(
        "--max-splits",
        type=int,
        default=None,
        help="at most this many splits, a sample drawn with --seed (default: all)",
    )
    add_key_arguments(parser, unused=("dose_key", "sample_key"))


def _task_options(args: argparse.Namespace) -> dict[str, object]:
    from transferome.errors import TransferomeError

    given = {
        name: getattr(args, name) for name in _TRANSFER_OPTIONS if getattr(args, name) is not None
    }
    if args.task != "transfer":
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise TransferomeError(f"{flags}: only the transfer task takes these options")
        return {}
    for name in ("contexts", "perturbations"):
        if name in given:
            given[name] = [v.strip() for v in str(given[name]).split(",") if v.strip()]
    given.setdefault("holdout", "group")
    return given


def _check_out(out: Path, *, overwrite: bool) -> None:
    """Refuse an existing output (a file, or a folder with files) unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists; pass --overwrite to replace its results")


def run(args: argparse.Namespace) -> int:
    from transferome.benchmark import run_task
    from transferome.data import atomic_path, atomic_write_text, prepare_values, read
    from transferome.data._spreadsheet import spreadsheet_safe
    from transferome.errors import TransferomeError

    check_output(args.out, overwrite=args.overwrite, inputs=(args.data,), folder=True)
    _check_out(Path(args.out), overwrite=args.overwrite)  # before any work
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        params = json.loads(args.model_params) if args.model_params else {}
    except json.JSONDecodeError as exc:
        raise TransferomeError(f"--model-params is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise TransferomeError("--model-params must be a JSON object of model name -> params")
    params = {name: preset_params(name, args.preset, params.get(name)) for name in models}
    options = _task_options(args)
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
        task_options=options,
    )
    out = Path(args.out)
    _check_out(out, overwrite=args.overwrite)  # again: it may have appeared meanwhile
    tables = (
        ("results.csv", result.results),
        ("summary.csv", result.summary),
        ("timings.csv", result.timings),
    )
    for name, frame in tables:
        with atomic_path(out / name) as tmp:
            spreadsheet_safe(frame).to_csv(tmp, index=False)
    markdown = result.report_markdown()
    atomic_write_text(out / "summary.md", markdown)
    print(markdown)
    written = ", ".join(str(out / name) for name in (*(n for n, _ in tables), "summary.md"))
    print(f"wrote {written}")
    return 0

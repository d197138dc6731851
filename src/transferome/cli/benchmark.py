"""``transferome benchmark TASK --data FILE ...``: fit models and baselines, score them."""

from __future__ import annotations

import argparse
from pathlib import Path

from transferome.cli._common import (
    add_backed_argument,
    add_key_arguments,
    add_match_controls_argument,
    add_preset_argument,
    add_values_argument,
    check_output,
    parse_params,
    preset_params,
    read_data,
    schema_from_args,
)

NAME = "benchmark"
HELP = (
    "run a benchmark task (transfer, combination, unseen_dose, unseen_time, dose_transfer) "
    "and write results.csv, summary.csv/.md, timings.csv"
)
_DEFAULT_MODELS = "control,additive,linear,similar,collaborative,stacked"

# Options of the transfer task's split builder (dest -> how it is parsed).
_TRANSFER_OPTIONS = ("holdout", "contexts", "perturbations", "max_splits")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome benchmark`` to ``parser``."""
    parser.add_argument(
        "task",
        help="task name: transfer (leave one context out), combination; dose tasks: "
        "unseen_dose (one dose of a perturbation in a context held out), unseen_time (one "
        "time point), dose_transfer (every dose of a perturbation in one context)",
    )
    parser.add_argument("--data", required=True, help="dataset (.h5ad, .gct, ...)")
    add_backed_argument(parser)
    parser.add_argument(
        "--models",
        default=None,
        help="comma-separated model names (default: the baselines control, additive, linear, "
        "similar, collaborative and the default predictor stacked; for the dose tasks the "
        "baselines nearest_dose, log_linear, dose_mean and the model dose_response)",
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
        "--param",
        action="append",
        default=[],
        metavar="MODEL.NAME=VALUE",
        help="a hyperparameter of one model (repeatable; the value is read as YAML), e.g. "
        "--param linear.ranks=[0,1] --param xtransfer.max_epochs=30, applied over the "
        "--preset; with a single model the MODEL. prefix may be left out",
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
    dose = parser.add_argument_group("dose tasks")
    add_match_controls_argument(dose)
    add_key_arguments(parser, unused=("sample_key",))
    # read by the dose tasks only: None tells an explicit option from the default
    parser.set_defaults(dose_key=None, time_key=None)


def _task_options(args: argparse.Namespace) -> dict[str, object]:
    from transferome.errors import TransferomeError

    given = {
        name: getattr(args, name) for name in _TRANSFER_OPTIONS if getattr(args, name) is not None
    }
    if args.task != "transfer":
        if args.task in _dose_tasks():
            given.pop("max_splits", None)  # the dose tasks sample their splits too
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise TransferomeError(f"{flags}: only the transfer task takes these options")
        return {}
    for name in ("contexts", "perturbations"):
        if name in given:
            given[name] = [v.strip() for v in str(given[name]).split(",") if v.strip()]
    given.setdefault("holdout", "group")
    return given


def _model_params(pairs: list[str], models: list[str]) -> dict[str, dict]:
    """``--param MODEL.NAME=VALUE`` options, per model (see :func:`parse_params`)."""
    from transferome.errors import TransferomeError

    given: dict[str, list[str]] = {m: [] for m in models}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        model, dot, param = name.strip().partition(".")
        if not dot:
            if len(models) != 1:
                raise TransferomeError(
                    f"--param {pair}: name the model, e.g. --param {models[0]}.{pair} "
                    f"(the models are {', '.join(models)})"
                )
            model, param = models[0], name.strip()
        if model not in given:
            raise TransferomeError(
                f"--param {pair}: {model!r} is not among --models ({', '.join(models)})"
            )
        given[model].append(f"{param}{sep}{value}")
    return {m: parse_params(p, m) for m, p in given.items() if p}


def _dose_tasks() -> tuple[str, ...]:
    from transferome.benchmark.dose import DOSE_TASKS

    return tuple(DOSE_TASKS)


def _run_dose(args: argparse.Namespace, models: list[str], params: dict) -> object:
    from transferome.benchmark.dose import run_dose_task
    from transferome.data import prepare_values
    from transferome.errors import TransferomeError

    schema = schema_from_args(args)
    prepared = prepare_values(
        read_data(args.data, backed=args.backed), args.values, where=args.data
    )
    if prepared.values == "delta":
        raise TransferomeError(
            f"{args.task} needs expression values with control observations, not changes "
            "(--values delta)"
        )
    return run_dose_task(
        prepared.adata,
        args.task,
        models={m: params.get(m) or {} for m in models},
        schema=schema,
        match_key=args.match_controls,
        n_degs=args.n_degs,
        max_splits=args.max_splits,
        seed=args.seed,
    )


def _check_out(out: Path, *, overwrite: bool) -> None:
    """Refuse an existing output (a file, or a folder with files) unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists; pass --overwrite to replace its results")


def run(args: argparse.Namespace) -> int:
    """Run ``transferome benchmark`` on the parsed ``args``; return the exit status."""
    from transferome.benchmark import run_task
    from transferome.data import prepare_values
    from transferome.errors import TransferomeError

    check_output(args.out, overwrite=args.overwrite, inputs=(args.data,), folder=True)
    _check_out(Path(args.out), overwrite=args.overwrite)  # before any work
    dose_task = args.task in _dose_tasks()
    if not dose_task:
        if args.match_controls is not None:
            raise TransferomeError("--match-controls: only the dose tasks take this option")
        args._unused_keys = (*args._unused_keys, "dose_key", "time_key")
    if args.models is None:
        from transferome.benchmark.dose import DEFAULT_DOSE_MODELS

        args.models = ",".join(DEFAULT_DOSE_MODELS) if dose_task else _DEFAULT_MODELS
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    params = _model_params(args.param, models)
    if dose_task:
        _task_options(args)  # refuses the transfer task's options
        result = _run_dose(args, models, params)
        return _write(Path(args.out), result, overwrite=args.overwrite)
    params = {name: preset_params(name, args.preset, params.get(name)) for name in models}
    options = _task_options(args)
    schema = schema_from_args(args)
    prepared = prepare_values(
        read_data(args.data, backed=args.backed), args.values, where=args.data
    )
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
    return _write(Path(args.out), result, overwrite=args.overwrite)


def _write(out: Path, result: object, *, overwrite: bool) -> int:
    from transferome.data import atomic_path, atomic_write_text, spreadsheet_safe

    _check_out(out, overwrite=overwrite)  # again: it may have appeared meanwhile
    tables = (
        ("results.csv", result.results),  # type: ignore[attr-defined]
        ("summary.csv", result.summary),  # type: ignore[attr-defined]
        ("timings.csv", result.timings),  # type: ignore[attr-defined]
    )
    for name, frame in tables:
        with atomic_path(out / name) as tmp:
            spreadsheet_safe(frame).to_csv(tmp, index=False)
    markdown = result.report_markdown()  # type: ignore[attr-defined]
    atomic_write_text(out / "summary.md", markdown)
    print(markdown)
    written = ", ".join(str(out / name) for name in (*(n for n, _ in tables), "summary.md"))
    print(f"wrote {written}")
    return 0

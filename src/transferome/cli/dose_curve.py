"""``transferome dose-curve FILE --perturbation P --context C --at 3,10 --out pred.csv``.

Predict the change of every gene at doses (or time points) that were not measured.
"""

from __future__ import annotations

import argparse

from transferome.cli._common import (
    add_key_arguments,
    add_match_controls_argument,
    add_values_argument,
    new_output,
    read_input,
    schema_from_args,
)

NAME = "dose-curve"
HELP = (
    "predict every gene's change at unmeasured doses or time points of a perturbation in a "
    "context (dose_response model); writes a CSV with 80%% intervals and the fitted EC50s"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome dose-curve`` to ``parser``."""
    parser.add_argument("file", help="observations with a dose (or time) column (h5ad, ...)")
    parser.add_argument("--perturbation", required=True, help="the perturbation to predict")
    parser.add_argument(
        "--context",
        default=None,
        help="its context (organ, cell line); may be one where it was never measured, which "
        "is then predicted from its other contexts. Required unless the contexts are the time "
        "points (--axis time with one time per context)",
    )
    parser.add_argument(
        "--at",
        required=True,
        help="comma-separated doses (or times) to predict, in the units of the column; for "
        "an ordered column, level names",
    )
    parser.add_argument(
        "--axis", choices=("dose", "time"), default="dose", help="dose (default) or time"
    )
    parser.add_argument(
        "--dose",
        type=float,
        default=None,
        help="with --axis time: the dose whose time course to predict",
    )
    add_match_controls_argument(parser)
    parser.add_argument("--out", required=True, help="CSV to write: gene, value, change, bounds")
    parser.add_argument("--ec50-out", default=None, help="also write the fitted EC50s (CSV)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_values_argument(parser)
    add_key_arguments(parser, unused=("sample_key",))


def _series(table, args) -> str:
    from transferome.errors import TransferomeError

    conditions = table.conditions
    if args.perturbation not in set(conditions["perturbation"]):
        known = sorted(set(conditions["perturbation"]))
        raise TransferomeError(
            f"--perturbation {args.perturbation!r} has no measured condition; perturbations: "
            f"{known[:10]}{' ...' if len(known) > 10 else ''}"
        )
    mine = conditions[conditions["perturbation"] == args.perturbation]
    if args.axis == "time":
        if args.dose is not None:
            mine = mine[mine["dose"] == args.dose]
            if mine.empty:
                raise TransferomeError(
                    f"--dose {args.dose:g} is not measured for that perturbation"
                )
        if args.context is not None:
            mine = mine[mine["context"] == args.context]
    elif args.context is not None:
        if args.context not in set(conditions["context"]) and args.context not in set(
            table.controls.index
        ):
            raise TransferomeError(
                f"--context {args.context!r} is unknown; contexts: "
                f"{sorted(set(conditions['context']))[:10]}"
            )
        inside = mine[mine["context"] == args.context]
        if inside.empty:  # a context where the perturbation was never measured: from peers
            return f"{args.context} | {args.perturbation}"
        mine = inside
    names = sorted(set(mine["series"]))
    if len(names) != 1:
        raise TransferomeError(
            f"{len(names)} series match; narrow them with --context or --dose: {names[:6]}"
        )
    return names[0]


def _positions(table, text: str) -> tuple[list[str], list[float]]:
    import numpy as np

    from transferome.errors import TransferomeError

    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise TransferomeError("--at: give at least one dose or time")
    positions = []
    for v in values:
        if table.levels:
            if v not in table.levels:
                raise TransferomeError(f"--at {v!r} is not a level; levels: {list(table.levels)}")
            positions.append(float(table.levels.index(v) + 1))
            continue
        try:
            number = float(v)
        except ValueError:
            raise TransferomeError(f"--at {v!r} is not a number") from None
        if not np.isfinite(number) or number <= 0:
            raise TransferomeError(f"--at {v!r}: doses and times must be positive")
        positions.append(float(np.log(number)))
    return values, positions


def run(args: argparse.Namespace) -> int:
    """Run ``transferome dose-curve`` on the parsed ``args``; return the exit status."""
    import pandas as pd

    from transferome.data import atomic_path, prepare_values, spreadsheet_safe
    from transferome.data.dose import condition_table
    from transferome.models.dose import DoseResponse

    out = new_output(args.out, overwrite=args.overwrite, inputs=(args.file,))
    ec50_out = (
        new_output(
            args.ec50_out, overwrite=args.overwrite, inputs=(args.file,), option="--ec50-out"
        )
        if args.ec50_out
        else None
    )
    schema = schema_from_args(args)
    prepared = prepare_values(read_input(args), args.values, where=args.file)
    table = condition_table(
        prepared.adata, schema=schema, axis=args.axis, match_key=args.match_controls
    )
    series = _series(table, args)
    labels, positions = _positions(table, args.at)
    model = DoseResponse().fit(table)
    queries = pd.DataFrame(
        {"series": series, "perturbation": args.perturbation, "position": positions}
    )
    pred = model.predict(queries)
    frames = []
    for i, label in enumerate(labels):
        frames.append(
            pd.DataFrame(
                {
                    "gene": list(table.genes),
                    args.axis: label,
                    "change": pred.delta[i],
                    "lower": pred.lower[i] if pred.lower is not None else float("nan"),
                    "upper": pred.upper[i] if pred.upper is not None else float("nan"),
                    "kind": pred.source[i],
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "series", series)
    with atomic_path(out) as tmp:
        spreadsheet_safe(frame).to_csv(tmp, index=False)
    if ec50_out is not None:
        with atomic_path(ec50_out) as tmp:
            spreadsheet_safe(model.ec50()).to_csv(tmp, index=False)
    kinds = ", ".join(f"{lab}: {k}" for lab, k in zip(labels, pred.source, strict=True))
    print(f"{series}: predicted {len(labels)} {args.axis}(s) x {len(table.genes)} genes ({kinds})")
    print(f"wrote {out}" + (f" and {ec50_out}" if ec50_out else ""))
    return 0

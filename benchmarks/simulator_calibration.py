"""How much of a held-out response the built-in atlas lets a model learn, seed by seed.

Run ``python benchmarks/simulator_calibration.py [--seeds 0 1 2] [--no-stacked]``. For the
default bulk atlas (mouse, every (organ, drug) group held out in turn) on each seed, the
unstructured atlas of transferome 0.1 (``GenerativeParams.unstructured()``, seed 0) and the
default single-cell screen (every (cell line, drug) group held out, seed 0), prints the mean
``pearson_delta`` and ``r2_delta`` of

- ``control`` (no change: ``pearson_delta`` undefined, ``r2_delta`` about 0),
- the baselines ``additive``, ``similar``, ``collaborative`` and the default ``stacked``,
- ``truth``: the noise-free profiles scored as a prediction (the simulator's ceiling),
- ``ceiling``: the split-half estimate of that ceiling from the data alone.

The calibration targets of the default bulk atlas (checked by
``tests/test_simulate_structure.py``): ``additive`` in 0.75-0.88, ``similar`` at least 0.02
above it, ``truth`` at least 0.06 above it.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from transferome.benchmark import run_task
from transferome.datasets import GenerativeParams, simulate

MODELS = ["control", "additive", "similar", "collaborative", "stacked"]


def _row(label: str, mode: str, seed: int, params, models: list[str]) -> dict:
    start = time.process_time()
    atlas = simulate(mode, seed=seed, params=params)
    species = atlas.species[0]
    result = run_task(
        "transfer",
        atlas.adatas[species],
        models=models,
        seed=seed,
        truth=atlas.truth.profiles(species),
    )
    summary = result.summary.set_index(["model", "metric"])["mean"]
    groups = result.results[["context", "perturbation"]].drop_duplicates()
    row = {"atlas": label, "seed": seed, "groups": len(groups)}
    for model in [*models, "truth", "ceiling"]:
        row[model] = summary.get((model, "pearson_delta"), float("nan"))
    for model in ("control", "additive", "truth"):
        row[f"{model} r2_delta"] = summary.get((model, "r2_delta"), float("nan"))
    row["cpu_s"] = time.process_time() - start
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-stacked", action="store_true", help="leave out the slow stacked")
    args = parser.parse_args()
    models = [m for m in MODELS if not (args.no_stacked and m == "stacked")]
    rows = [_row("bulk", "bulk", seed, None, models) for seed in args.seeds]
    rows.append(_row("bulk, unstructured", "bulk", 0, GenerativeParams.unstructured(), models))
    rows.append(_row("single_cell", "single_cell", 0, None, models))
    frame = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(frame.round(3).to_string(index=False))
    print(
        "\npearson_delta means over the held-out groups (control: undefined, it predicts no "
        "change); truth: noise-free profiles as a prediction; ceiling: split-half estimate."
    )


if __name__ == "__main__":
    main()

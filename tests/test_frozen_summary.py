"""The summary of one quick benchmark, every registered model, equals its stored copy.

Reorganising the code must not move a number: this test runs a small transfer benchmark on
the simulator with every registered model (``fast`` hyperparameters, torch on one thread) and
compares its summary with ``tests/data/frozen_summary.csv``. A change that is meant to move the
numbers regenerates the file, in the same commit, with::

    python -m tests.test_frozen_summary
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from transferome.benchmark import get_task, run_task
from transferome.data.schema import Schema
from transferome.datasets import simulate
from transferome.models import available_models, get_model

FROZEN = Path(__file__).parent / "data" / "frozen_summary.csv"
SPLITS = 4


def _summary() -> pd.DataFrame:
    atlas = simulate(
        "bulk",
        seed=3,
        species=("mouse",),
        contexts=("liver", "kidney", "heart", "lung"),
        drugs=("drug_a", "drug_b"),
        n_genes=120,
        animals_per_group=3,
    )
    adata = atlas.adatas["mouse"]
    schema = Schema()
    splits = get_task("transfer").make_splits(adata, schema=schema, seed=0)[:SPLITS]
    models = {name: get_model(name)(**get_model(name).fast_params) for name in available_models()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_task("transfer", adata, schema=schema, models=models, splits=splits)
    finally:
        torch.set_num_threads(threads)
    summary = result.summary[["model", "metric", "mean", "n_nan"]]
    return summary.sort_values(["model", "metric"]).reset_index(drop=True)


def test_quick_benchmark_summary_is_unchanged() -> None:
    summary = _summary()
    frozen = pd.read_csv(FROZEN)
    assert list(summary["model"]) == list(frozen["model"])
    assert list(summary["metric"]) == list(frozen["metric"])
    assert list(summary["n_nan"]) == list(frozen["n_nan"])
    np.testing.assert_allclose(
        summary["mean"].to_numpy(float), frozen["mean"].to_numpy(float), rtol=1e-5, atol=1e-7
    )


if __name__ == "__main__":
    _summary().to_csv(FROZEN, index=False, float_format="%.9g")
    print(f"wrote {FROZEN}")

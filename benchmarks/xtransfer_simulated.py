"""XTransfer on the simulator, single-cell mode: held-out (line, drug) cells and combinations.

Run from the repository root:

    python benchmarks/xtransfer_simulated.py [--epochs 20] [--seed 0] [--paper-size]

Data: ``simulate(mode="single_cell", doses=(10.0,))``: 3 cell lines x (control + 12 drugs +
3 drug pairs), 60 cells per group (180 controls per line), 2,000 genes, log-normalised.

- ``held-out cells``: each drug is held out in one cell line (drug i in line i mod 3), 12
  groups in one split; the drug stays measured in the two other lines.
- ``combinations``: every drug pair is held out in every line and predicted from its singles
  (XTransfer: ``D(S + P_a + P_b)``; additive: sum of the singles' changes).

Every model is fitted once per task (one XTransfer fit predicts the four ways described in
``xtransfer_kang.py``); tables are mean (median) over the held-out groups.
"""

from __future__ import annotations

import argparse
import time

from transferome.data.schema import Schema
from transferome.data.splits import holdout_combinations, holdout_groups
from transferome.datasets import simulate
from xtransfer_common import (
    CPU_NETWORK,
    PAPER_NETWORK,
    PREDICTIONS,
    baseline_factories,
    run_splits,
    summary_table,
    use_cpu_threads,
    xtransfer_factory,
)

SCHEMA = Schema(dose_key=None)


def simulated_cells(seed: int = 0, params=None):
    """The single-cell simulation used by the XTransfer benchmarks (one dose, 10 x EC50)."""
    return simulate(mode="single_cell", seed=seed, doses=(10.0,), params=params).adatas["human"]


def held_out_cells_split(adata, seed: int = 0):
    contexts = sorted(adata.obs["context"].astype(str).unique())
    drugs = sorted(p for p in adata.obs["perturbation"].astype(str).unique() if p != "control")
    singles = [d for d in drugs if "+" not in d]
    groups = [(contexts[i % len(contexts)], d) for i, d in enumerate(singles)]
    return holdout_groups(adata, groups, schema=SCHEMA, seed=seed, name="held-out cells")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--paper-size", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--unstructured",
        action="store_true",
        help="the atlas without structured context dependence (GenerativeParams.unstructured())",
    )
    args = parser.parse_args()
    use_cpu_threads(args.threads)

    start = time.perf_counter()
    adata = simulated_cells(args.seed, "unstructured" if args.unstructured else None)
    network = PAPER_NETWORK if args.paper_size else CPU_NETWORK
    models = {
        **baseline_factories(),
        "xtransfer": xtransfer_factory(**network, max_epochs=args.epochs),
    }
    tasks = {
        "held-out (cell line, drug) cells": held_out_cells_split(adata, args.seed),
        "held-out combinations": holdout_combinations(adata, schema=SCHEMA, seed=args.seed),
    }
    print(f"## Simulator, single-cell mode: {adata.n_obs} cells x {adata.n_vars} genes")
    print(f"XTransfer: {network}, {args.epochs} epochs, paper defaults otherwise")
    for title, split in tasks.items():
        results, _ = run_splits(
            adata,
            [split],
            models,
            schema=SCHEMA,
            seed=args.seed,
            variants={"xtransfer": PREDICTIONS},
        )
        print(f"\n### {title} ({len(split.held_out)} groups)\n")
        print(summary_table(results))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

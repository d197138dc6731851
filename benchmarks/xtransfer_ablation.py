"""The paper's ablation (drop L_cross, L_orth, L_sim one at a time), 3 seeds, on the simulator
and on Kang PBMC.

Run from the repository root:

    python benchmarks/xtransfer_ablation.py [--epochs 20] [--seeds 0 1 2] [--kang-epochs 20]
        [--kang-splits 3]

Simulator: the held-out (cell line, drug) split of ``xtransfer_simulated.py`` (12 groups).
Kang: leave a cell type out (``stimulated``; the first ``--kang-splits`` of the 7 in
alphabetical order, 3 by default to keep the run to minutes), 2,000 control HVGs. Each variant is
the paper's model (random matching, decoded profile) with one loss weight set to 0; the seed
changes the pairs, the initial weights, the batch order and the matching. Table cells: mean
over held-out groups, then mean ± standard deviation over the seeds.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from transferome.data import read
from transferome.data.splits import leave_one_context_out
from xtransfer_common import (
    CPU_NETWORK,
    DATA,
    KANG_SCHEMA,
    run_splits,
    seed_table,
    top_hvgs,
    use_cpu_threads,
    xtransfer_factory,
)
from xtransfer_simulated import SCHEMA, held_out_cells_split, simulated_cells

METRICS = ["r2", "r2_deg", "explained_variance", "explained_variance_deg", "pearson", "pearson_deg"]
EXTRA = ["pearson_delta", "r2_delta"]
VARIANTS = {
    "full": {},
    "no L_cross": {"w_cross": 0.0},
    "no L_orth": {"w_orth": 0.0},
    "no L_sim": {"w_sim": 0.0},
}


def ablation(adata, splits, schema, epochs: int, seeds: list[int]) -> pd.DataFrame:
    tables = []
    for seed in seeds:
        models = {
            name: xtransfer_factory(**CPU_NETWORK, max_epochs=epochs, **weights)
            for name, weights in VARIANTS.items()
        }
        results, _ = run_splits(adata, splits, models, schema=schema, seed=seed)
        results["seed"] = seed
        tables.append(results)
    return pd.concat(tables, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--kang-epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kang-splits", type=int, default=3)
    parser.add_argument(
        "--parts", nargs="+", choices=["simulator", "kang"], default=["simulator", "kang"]
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--unstructured",
        action="store_true",
        help="the atlas without structured context dependence (GenerativeParams.unstructured())",
    )
    args = parser.parse_args()
    use_cpu_threads(args.threads)

    start = time.perf_counter()
    if "simulator" in args.parts:
        sim = simulated_cells(0, "unstructured" if args.unstructured else None)
        results = ablation(sim, [held_out_cells_split(sim)], SCHEMA, args.epochs, args.seeds)
        print(f"## Ablation, simulator held-out cells ({args.epochs} epochs, seeds {args.seeds})\n")
        print(seed_table(results, METRICS + EXTRA))
    if "kang" not in args.parts:
        return

    kang = top_hvgs(read(f"{args.data}/kang_pbmc_scgen_valid.h5ad"), KANG_SCHEMA)
    splits = list(leave_one_context_out(kang, schema=KANG_SCHEMA))[: args.kang_splits]
    results = ablation(kang, splits, KANG_SCHEMA, args.kang_epochs, args.seeds)
    held_out = ", ".join(split.name.split("|")[0] for split in splits)
    print(f"\n## Ablation, Kang PBMC, held out {held_out}")
    print(f"({args.kang_epochs} epochs, seeds {args.seeds})\n")
    print(seed_table(results, METRICS + EXTRA))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

"""XTransfer on Kang PBMC (IFN-beta): leave each of the 7 cell types out for ``stimulated``.

Run from the repository root:

    python benchmarks/xtransfer_kang.py [--data ../shared/data] [--epochs 30] [--paper-size]

The 2,000 most variable genes of the control cells are kept (as in the paper; no stimulated
cell is used to choose them). Every model is fitted once per held-out cell type on all other
cells (the held-out type's controls included) and predicts the mean stimulated profile of the
held-out type. Prints the summary (mean (median) over the 7 cell types) and per-cell-type
tables of ``pearson_delta`` and ``r2_deg``.

One XTransfer is fitted per split and predicts four ways: ``xtransfer`` is the paper's
prediction (random pairing of source cells with target controls, profile decoded by D);
``xtransfer_mean`` matches with the mean latent of the source cells; ``xtransfer_delta`` and
``xtransfer_anchored`` are the transferome extensions (``prediction="control_plus_delta"`` and
``"anchored"``, see :mod:`transferome.models.xtransfer.estimator`). The network is the CPU-sized
``CPU_NETWORK`` of ``xtransfer_common.py`` unless ``--paper-size`` is given.
"""

from __future__ import annotations

import argparse
import time

from transferome.data import read
from transferome.data.splits import leave_one_context_out
from xtransfer_common import (
    CPU_NETWORK,
    DATA,
    KANG_SCHEMA,
    PAPER_NETWORK,
    PREDICTIONS,
    baseline_factories,
    per_group_table,
    run_splits,
    summary_table,
    top_hvgs,
    use_cpu_threads,
    xtransfer_factory,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--paper-size", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    use_cpu_threads(args.threads)

    start = time.perf_counter()
    kang = top_hvgs(read(f"{args.data}/kang_pbmc_scgen_valid.h5ad"), KANG_SCHEMA)
    splits = list(leave_one_context_out(kang, schema=KANG_SCHEMA))
    network = PAPER_NETWORK if args.paper_size else CPU_NETWORK
    models = {
        **baseline_factories(),
        "xtransfer": xtransfer_factory(**network, max_epochs=args.epochs),
    }
    results, timings = run_splits(
        kang, splits, models, schema=KANG_SCHEMA, variants={"xtransfer": PREDICTIONS}
    )
    print(
        f"## Kang PBMC, {kang.n_obs} cells x {kang.n_vars} HVGs, {len(splits)} held-out cell types"
    )
    print(f"XTransfer: {network}, {args.epochs} epochs, paper defaults otherwise\n")
    print(summary_table(results))
    for metric in ("pearson_delta", "r2_deg"):
        print(f"\n### {metric} per held-out cell type\n")
        print(per_group_table(results, metric))
    fit = timings.groupby("model")["fit_seconds"].mean()
    print("\nmean fit seconds per split: " + ", ".join(f"{m} {s:.1f}" for m, s in fit.items()))
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

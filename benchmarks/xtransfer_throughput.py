"""XTransfer training throughput and peak memory on 100,000 cells x 2,000 genes.

Run from the repository root:

    python benchmarks/xtransfer_throughput.py [--cells 100000] [--genes 2000] [--pairs 4096]

The data: a sparse CSR log-normalised matrix (about 10% non-zero, like single-cell data),
20 contexts x (control + 9 perturbations). Pairs are drawn over all 100,000 cells
(:func:`transferome.data.pairing.make_pairs`); training runs the paper's network (1024-512-256
to 128, batch 128) on the shared engine for one epoch over ``--pairs`` of those pairs (a full
epoch would take long on a laptop CPU; throughput does not depend on the epoch length). A pair
encodes two perturbed cells and reconstructs two controls. Reports perturbed cells per second
(2 per pair), the estimated time of a full epoch, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData

from transferome.data.pairing import make_pairs
from transferome.models.xtransfer import PairRows
from transferome.models.xtransfer.network import XTransferConfig, XTransferModule
from transferome.training import AnnDataRows, TrainingConfig, fit_module
from xtransfer_common import use_cpu_threads


def synthetic(n_cells: int, n_genes: int, seed: int = 0) -> AnnData:
    rng = np.random.default_rng(seed)
    density = 0.1
    nnz = int(n_cells * n_genes * density)
    rows = np.sort(rng.integers(0, n_cells, nnz))
    cols = rng.integers(0, n_genes, nnz)
    values = np.log1p(rng.gamma(2.0, 1.0, nnz)).astype(np.float32)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(n_cells, n_genes))
    matrix.sum_duplicates()
    contexts = rng.integers(0, 20, n_cells)
    perturbations = rng.integers(0, 10, n_cells)
    obs = pd.DataFrame(
        {
            "context": [f"ctx{c}" for c in contexts],
            "perturbation": ["control" if p == 0 else f"drug{p}" for p in perturbations],
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    return AnnData(X=matrix, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    use_cpu_threads(args.threads)

    start = time.perf_counter()
    adata = synthetic(args.cells, args.genes)
    made = time.perf_counter() - start
    rss_data = peak_rss_mib()
    start = time.perf_counter()
    pairs = make_pairs(adata.obs["context"].to_numpy(), adata.obs["perturbation"].to_numpy())
    paired = time.perf_counter() - start
    take = np.random.default_rng(0).choice(len(pairs), size=min(args.pairs, len(pairs)))
    subset = pairs.take(take)
    module = XTransferModule(XTransferConfig(n_genes=args.genes))
    config = TrainingConfig(
        max_epochs=1, batch_size=args.batch_size, lr=2e-4, weight_decay=5e-4, accelerator="cpu"
    )
    dataset = PairRows(AnnDataRows(adata), subset)
    start = time.perf_counter()
    fit_module(module, dataset, config=config)
    seconds = time.perf_counter() - start
    pairs_per_s = len(subset) / seconds
    print(f"## XTransfer training throughput, {args.cells:,} cells x {args.genes:,} genes\n")
    print("| quantity | value |")
    print("|---|---:|")
    print(f"| torch threads | {torch.get_num_threads()} |")
    print(f"| data generation (s) | {made:.1f} |")
    print(f"| pairs over all cells | {len(pairs):,} (drawn in {paired:.2f} s) |")
    print(f"| pairs trained (1 epoch, batch {args.batch_size}) | {len(subset):,} |")
    print(f"| training seconds | {seconds:.1f} |")
    print(f"| pairs / second | {pairs_per_s:.0f} |")
    print(f"| perturbed cells / second | {2 * pairs_per_s:.0f} |")
    minutes = len(pairs) / pairs_per_s / 60
    print(f"| estimated full epoch ({len(pairs):,} pairs, minutes) | {minutes:.1f} |")
    print(f"| peak RSS after building the data (MiB) | {rss_data:.0f} |")
    print(f"| peak RSS after training (MiB) | {peak_rss_mib():.0f} |")


if __name__ == "__main__":
    main()

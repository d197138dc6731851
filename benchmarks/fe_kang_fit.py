"""Cost of one full Factorized Embeddings fit on Kang PBMC (1,975 cells x 6,998 genes).

FE with the settings of ``benchmarks/fe_embeddings.py`` (50-d embeddings, PCA start, hidden
(64, 32), blocks of 32 samples x 256 genes, lr 5e-3) on every gene of the scGen validation
split of Kang, ``--epochs`` epochs (default 10) with ``--threads`` torch threads (default 2).
Prints wall and CPU seconds, the training loss per epoch, and kNN accuracy (k=5, 20 random
80/20 splits) of cell type and condition from the FE sample embeddings beside a 50-component
PCA of the same matrix, so the time is that of a fit worth having.

Run: ``python benchmarks/fe_kang_fit.py [--epochs 10 --threads 2]``; ``--batch-size`` and
``--gene-block`` set the block (default 32 x 256).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from anndata import AnnData

from fe_embeddings import FE
from transferome.analysis import baseline_embeddings, embedding_benchmark
from transferome.data import read
from transferome.models.fe.estimator import FactorizedEmbedding

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=FE["batch_size"], help="samples a block")
    parser.add_argument("--gene-block", type=int, default=FE["gene_block"], help="genes a block")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kang = read(args.data / "kang_pbmc_scgen_valid.h5ad")
    x = kang.X.toarray() if hasattr(kang.X, "toarray") else np.asarray(kang.X)
    data = AnnData(X=x.astype(np.float32), obs=kang.obs[["cell_type", "condition"]].astype(str))
    print(
        f"Kang: {data.n_obs} x {data.n_vars}, {args.threads} torch threads, blocks of "
        f"{args.batch_size} x {args.gene_block}",
        flush=True,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    settings = {**FE, "batch_size": args.batch_size, "gene_block": args.gene_block}
    model = FactorizedEmbedding(**settings, embedding_dim=50, max_epochs=args.epochs)
    model.fit(data, factors=())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    values = data.X.size * args.epochs
    print(
        f"fit: {wall:.0f} s wall, {cpu:.0f} CPU-s, {values / wall:,.0f} values/s "
        f"(PCA start included)"
    )
    history = model.history_[["epoch", "train_loss", "seconds"]]
    print(history.round(4).to_string(index=False))
    embeddings = {
        "fe": model.sample_embeddings_.to_numpy(),
        "pca": baseline_embeddings(x, 50, methods=("pca",))["pca"],
    }
    labels = {key: data.obs[key].to_numpy() for key in ("cell_type", "condition")}
    table = embedding_benchmark(embeddings, labels, n_splits=20)
    print("\nkNN accuracy (k=5, 20 random 80/20 splits):")
    print(table.groupby(["label", "embedding"]).score.mean().unstack().round(3).to_string())


if __name__ == "__main__":
    main()

"""Throughput of the training engine against a minimal hand-written PyTorch loop.

A toy MLP autoencoder is trained on synthetic sparse cells (default 100,000 x 2,000, 5% of
entries non-zero) for one epoch, once through :func:`transferome.training.fit_module` and once
through a bare loop over the same model, data, batch order and optimiser. Runs alternate and
the best of ``--repeats`` is kept, so a busy machine penalises both sides alike. Also printed:
the cells per second of the data loading alone, in memory and from a backed h5ad.

Run: ``python benchmarks/engine_throughput.py`` (``--n-cells 20000`` for a quick look).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData, read_h5ad

from transferome.training import AnnDataRows, IndexBatchSampler, TrainingConfig, fit_module


class ToyMLP(torch.nn.Module):
    """Autoencoder n_genes -> 256 -> 64 -> 256 -> n_genes with a mean squared error."""

    def __init__(self, n_genes: int, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        sizes = [n_genes, 256, 64, 256, n_genes]
        layers: list[torch.nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            linear = torch.nn.Linear(a, b)
            with torch.no_grad():
                linear.weight.copy_(torch.randn(b, a, generator=generator) / a**0.5)
                linear.bias.zero_()
            layers.append(linear)
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.net = torch.nn.Sequential(*layers)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        return {"loss": torch.nn.functional.mse_loss(self.net(x), x)}


def synthetic_cells(n_cells: int, n_genes: int, density: float, seed: int) -> AnnData:
    """Log-normalised-looking sparse cells: CSR float32 with about ``density`` non-zeros."""
    rng = np.random.default_rng(seed)
    nnz_per_row = rng.binomial(n_genes, density, size=n_cells)
    indptr = np.concatenate([[0], np.cumsum(nnz_per_row)])
    indices = np.concatenate([np.sort(rng.choice(n_genes, k, replace=False)) for k in nnz_per_row])
    data = np.log1p(rng.gamma(1.5, 2.0, size=indptr[-1])).astype(np.float32)
    matrix = sp.csr_matrix((data, indices.astype(np.int32), indptr), shape=(n_cells, n_genes))
    return AnnData(matrix)


def hand_loop(module: ToyMLP, rows: AnnDataRows, config: TrainingConfig) -> tuple[float, float]:
    """The reference: a bare loop over the same batches; wall and CPU seconds of the epochs."""
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
    sampler = IndexBatchSampler(
        len(rows), config.batch_size, shuffle=True, seed=config.random_state
    )
    start, cpu = time.perf_counter(), time.process_time()
    for epoch in range(config.max_epochs):
        sampler.set_epoch(epoch)
        for index in sampler:
            loss = module.loss(rows[index])["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start, time.process_time() - cpu


def engine(module: ToyMLP, rows: AnnDataRows, config: TrainingConfig) -> tuple[float, float]:
    """Wall and CPU seconds of the whole ``fit_module`` call (set-up included)."""
    start, cpu = time.perf_counter(), time.process_time()
    fit_module(module, rows, config=config)
    return time.perf_counter() - start, time.process_time() - cpu


def loader_only(rows: AnnDataRows, batch_size: int, chunk_size: int | None = None) -> float:
    """Cells per second of slicing every batch of one epoch, no model."""
    sampler = IndexBatchSampler(len(rows), batch_size, shuffle=True, chunk_size=chunk_size)
    start = time.perf_counter()
    total = 0
    for index in sampler:
        total += rows[index]["x"].shape[0]
    return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=100_000)
    parser.add_argument("--n-genes", type=int, default=2_000)
    parser.add_argument("--density", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    adata = synthetic_cells(args.n_cells, args.n_genes, args.density, seed=0)
    rows = AnnDataRows(adata)
    config = TrainingConfig(
        max_epochs=args.epochs, batch_size=args.batch_size, accelerator="cpu", lr=1e-3
    )
    print(
        f"{args.n_cells:,} cells x {args.n_genes:,} genes, {adata.X.nnz / adata.X.shape[0]:.0f} "
        f"non-zeros a cell, batch {args.batch_size}, {args.epochs} epoch(s), "
        f"{args.threads} threads, best of {args.repeats}"
    )
    timings: dict[str, list[tuple[float, float]]] = {"hand-written loop": [], "engine": []}
    for _ in range(args.repeats):
        timings["hand-written loop"].append(hand_loop(ToyMLP(args.n_genes), rows, config))
        timings["engine"].append(engine(ToyMLP(args.n_genes), rows, config))
    cells = args.n_cells * args.epochs
    table = pd.DataFrame(
        {
            "wall_s": {k: min(w for w, _ in v) for k, v in timings.items()},
            "cpu_s": {k: min(c for _, c in v) for k, v in timings.items()},
        }
    )
    table["cells_per_s"] = cells / table["wall_s"]
    print(table.to_string(float_format=lambda v: f"{v:,.2f}"))
    wall_ratio = table.loc["engine", "wall_s"] / table.loc["hand-written loop", "wall_s"]
    cpu_ratio = table.loc["engine", "cpu_s"] / table.loc["hand-written loop", "cpu_s"]
    print(f"ratio engine/loop: wall {wall_ratio:.3f}, CPU time {cpu_ratio:.3f}")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cells.h5ad"
        adata.write_h5ad(path)
        backed = read_h5ad(path, backed="r")
        try:
            backed_rows = AnnDataRows(backed)
            loaders = pd.Series(
                {
                    "in-memory CSR": loader_only(rows, args.batch_size),
                    "backed h5ad, chunked order": loader_only(
                        backed_rows, args.batch_size, chunk_size=backed_rows.chunk_size
                    ),
                },
                name="loader cells/s",
            )
        finally:
            backed.file.close()
    print(loaders.to_string(float_format=lambda v: f"{v:,.0f}"))


if __name__ == "__main__":
    main()

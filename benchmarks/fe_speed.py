"""Training speed of Factorized Embeddings: block design against the reference design.

The reference design (the authors' code) materialises one row per (sample, gene) pair,
serves them through a per-item ``Dataset`` and a ``DataLoader`` (batch 10,000, shuffled, one
worker) and evaluates the MLP on the concatenated embeddings of every row. Ours trains on
blocks of samples x genes through the shared engine and computes the first layer once per
sample and once per gene of a block. Both use the paper's network (50-d embeddings, hidden
250-150-100-50-10, tanh, Adam lr 1e-3, L2 1e-5) on the same 1,000 x 20,000 matrix.

The reference is timed twice: with its data pipeline (the table of pair rows indexed one
item at a time and collated by the default collate function, as the authors' code does) and
compute only (the pair rows pre-built as tensors and sliced by a shuffled index, no
``DataLoader``), so the speed-up over the network alone is not confused with the speed-up over
the authors' whole design.

Epoch times are extrapolated from timed batches (a full reference epoch takes tens of minutes
on two cores); achieved GFLOP/s count the multiply-adds of the MLP (x2 FLOP, x3 for forward
plus backward) and are compared with this machine's own 4096^3 matmul.

Run: ``python benchmarks/fe_speed.py [--samples 1000 --genes 20000 --blocks 200 --threads 1]``
(about 2-4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from transferome.models.fe.network import FEBlocks, FEConfig, FEModule
from transferome.training import TrainingConfig, fit_module

HIDDEN = (250, 150, 100, 50, 10)
EMB = 50


class ReferenceFE(nn.Module):
    """The reference network: embeddings concatenated per row, then the MLP."""

    def __init__(self, n_genes: int, n_samples: int) -> None:
        super().__init__()
        self.emb_1 = nn.Embedding(n_genes, EMB)
        self.emb_2 = nn.Embedding(n_samples, EMB)
        dims = [2 * EMB, *HIDDEN]
        self.mlp_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.last_layer = nn.Linear(dims[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.emb_1(x[:, 0].long()), self.emb_2(x[:, 1].long())], 1)
        for layer in self.mlp_layers:
            h = torch.tanh(layer(h))
        return self.last_layer(h)


class PairRows(torch.utils.data.Dataset):
    """One item per (gene, sample) pair, as in the reference code."""

    def __init__(self, values: np.ndarray) -> None:
        n_samples, n_genes = values.shape
        self.x = np.transpose(
            [np.tile(np.arange(n_genes), n_samples), np.repeat(np.arange(n_samples), n_genes)]
        )
        self.y = values[self.x[:, 1], self.x[:, 0]]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: int) -> list:
        return [self.x[idx], self.y[idx]]


def matmul_gflops(dtype: torch.dtype, n: int = 4096, repeats: int = 5) -> float:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(0)).to(dtype)
    b = torch.randn(n, n, generator=torch.Generator().manual_seed(1)).to(dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_reference(
    values: np.ndarray, n_batches: int, batch_size: int = 10_000, device: str = "cpu"
) -> float:
    """Seconds per value of the reference design (after one warm-up batch) on ``device``."""
    built = time.perf_counter()
    data = PairRows(values)
    print(f"reference index table: {len(data):,} rows built in {time.perf_counter() - built:.1f} s")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ReferenceFE(values.shape[1], values.shape[0]).to(device)
        loader = torch.utils.data.DataLoader(
            data, batch_size=batch_size, shuffle=True, num_workers=1
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
        criterion = nn.MSELoss()
        seen, start = 0, 0.0
        for step, (inputs, targets) in enumerate(loader):
            if step == 1:
                _synchronize(device)
                seen, start = 0, time.perf_counter()
            pred = model(inputs.float().to(device))
            loss = criterion(pred, targets.float().reshape(-1, 1).to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(targets)
            if step == n_batches:
                break
    _synchronize(device)
    return (time.perf_counter() - start) / seen


def time_reference_compute(values: np.ndarray, n_batches: int, batch_size: int = 10_000) -> float:
    """Seconds per value of the reference network alone: pair rows pre-built as tensors."""
    n_samples, n_genes = values.shape
    pairs = torch.as_tensor(PairRows(values).x, dtype=torch.long)
    targets = torch.as_tensor(values, dtype=torch.float32)[pairs[:, 1], pairs[:, 0]]
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ReferenceFE(n_genes, n_samples)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    criterion = nn.MSELoss()
    seen, start = 0, 0.0
    for step in range(n_batches + 1):
        if step == 1:
            seen, start = 0, time.perf_counter()
        rows = order[step * batch_size : (step + 1) * batch_size]
        pred = model(pairs[rows].float())
        loss = criterion(pred, targets[rows].reshape(-1, 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(rows)
    return (time.perf_counter() - start) / seen


def time_ours(
    values: np.ndarray,
    n_blocks: int,
    precision: str,
    blocks: tuple[int, int],
    accelerator: str = "cpu",
) -> float:
    """Seconds per value of the block design through the training engine."""
    n_samples = values.shape[0]
    train = FEBlocks(
        values, None, np.zeros((n_samples, 0)), sample_block=blocks[0], gene_block=blocks[1], seed=0
    )
    picked = range(min(n_blocks, len(train)))
    return time_blocks(train, values.shape, picked, precision, accelerator)


def time_blocks(
    train: torch.utils.data.Dataset,
    shape: tuple[int, int],
    picked: Sequence[int],
    precision: str,
    accelerator: str = "cpu",
) -> float:
    """Seconds per value of training the blocks ``picked`` of ``train`` (a dataset of FE
    blocks over a ``shape`` matrix) through the training engine, after 3 warm-up blocks."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = FEModule(FEConfig(n_samples=shape[0], n_genes=shape[1]))
    config = TrainingConfig(
        max_epochs=1,
        batch_size=1,
        lr=1e-3,
        weight_decay=1e-5,
        accelerator=accelerator,
        devices=1,
        precision=precision,
    )
    picked = list(picked)
    warm = torch.utils.data.Subset(train, picked[:3])
    fit_module(module, warm, config=config, collate_fn=FEBlocks.collate)
    subset = torch.utils.data.Subset(train, picked)
    result = fit_module(module, subset, config=config, collate_fn=FEBlocks.collate)
    elapsed = float(result.history["seconds"].iloc[0])  # the epoch itself, not Trainer setup
    return elapsed / sum(int(train[i]["x"].numel()) for i in picked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--blocks", type=int, default=200, help="blocks timed for our design")
    parser.add_argument("--batches", type=int, default=15, help="batches timed for the reference")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for every design (on a shared 2-core machine 2 threads wait on "
        "each other and a 32x256 block trains ~10x slower than with 1)",
    )
    args = parser.parse_args()
    torch.set_num_threads(max(1, args.threads))
    rng = np.random.default_rng(0)
    values = np.log1p(rng.gamma(0.5, 20.0, size=(args.samples, args.genes))).astype(np.float32)
    n_values = values.size
    config = FEConfig(n_samples=args.samples, n_genes=args.genes)
    rest = config.flops_per_value()
    ours_flop = 6 * rest  # first layer once per sample/gene: negligible per value
    ref_flop = 6 * (rest + 2 * EMB * HIDDEN[0])

    peak32, peak16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(
        f"matmul 4096^3: float32 {peak32:.0f} GFLOP/s, bfloat16 {peak16:.0f} GFLOP/s "
        f"({torch.get_num_threads()} threads)"
    )
    rows = []
    ref = time_reference(values, args.batches)
    rows.append(("reference, DataLoader of pair rows", "32-true", ref, ref_flop, peak32))
    ref_compute = time_reference_compute(values, args.batches)
    rows.append(("reference, pre-built tensors", "32-true", ref_compute, ref_flop, peak32))
    runs = [
        ((32, 256), "32-true", peak32),
        ((64, 1024), "32-true", peak32),
        ((64, 1024), "bf16-mixed", peak16),
    ]
    for blocks, precision, peak in runs:
        n_blocks = max(3, args.blocks * 32 * 256 // (blocks[0] * blocks[1]))
        ours = time_ours(values, n_blocks, precision, blocks)
        name = f"transferome FE (blocks {blocks[0]}x{blocks[1]})"
        rows.append((name, precision, ours, ours_flop, peak))
    table = pd.DataFrame(rows, columns=["design", "precision", "s_per_value", "flop", "peak"])
    table["values_per_s"] = (1 / table.s_per_value).round(0).astype(int)
    table["epoch_s"] = (table.s_per_value * n_values).round(1)
    table["GFLOP/s"] = (table.flop / table.s_per_value / 1e9).round(1)
    table["% of matmul"] = (100 * table["GFLOP/s"] / table.peak).round(1)
    table["x vs DataLoader"] = (table.s_per_value.iloc[0] / table.s_per_value).round(1)
    table["x vs compute"] = (table.s_per_value.iloc[1] / table.s_per_value).round(1)
    print(f"\n{args.samples} x {args.genes} = {n_values:,} values per epoch")
    print(table.drop(columns=["s_per_value", "flop", "peak"]).to_string(index=False))


if __name__ == "__main__":
    main()

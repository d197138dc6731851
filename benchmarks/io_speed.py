"""Time the readers, writers and preprocessing on data of realistic size.

Run ``python benchmarks/io_speed.py [--genes 20000] [--samples 500] [--repeats 3]``. Writes a
counts matrix in every format to a temporary folder, then prints one table: write and read time
(best of N), file size, and whether the read-back values equal the written ones; then the time
of ``preprocess`` (normalise, log1p, 2,000 highly variable genes) on the same data.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome.data import preprocess, read, write


def _data(n_genes: int, n_samples: int, seed: int) -> AnnData:
    rng = np.random.default_rng(seed)
    means = rng.gamma(0.3, 4.0, size=n_genes)
    counts = rng.poisson(means, size=(n_samples, n_genes)).astype(np.float32)
    obs = pd.DataFrame(
        {"context": rng.choice(["liver", "kidney"], n_samples), "perturbation": "control"},
        index=[f"s{i}" for i in range(n_samples)],
    )
    return AnnData(X=counts, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))


def _best(call, repeats: int) -> tuple[float, object]:
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return best, result


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    adata = _data(args.genes, args.samples, seed=0)
    cases = [
        ("h5ad", "x.h5ad", {}, {}),
        ("csv, genes in rows", "x.csv", {"genes_in": "rows"}, {"genes_in": "rows"}),
        ("tsv.gz, genes in columns", "x.tsv.gz", {"genes_in": "columns"}, {"genes_in": "columns"}),
        ("gct 1.3", "x.gct", {}, {}),
        ("10x mtx folder", "tenx", {}, {}),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, name, write_kwargs, read_kwargs in cases:
            path = Path(folder) / name
            t_write, _ = _best(lambda p=path, k=write_kwargs: write(adata, p, **k), args.repeats)
            t_read, back = _best(lambda p=path, k=read_kwargs: read(p, **k), args.repeats)
            values = back.X.toarray() if sp.issparse(back.X) else np.asarray(back.X)
            rows.append(
                {
                    "format": label,
                    "write s": round(t_write, 2),
                    "read s": round(t_read, 2),
                    "MB": round(_size(path) / 1e6, 1),
                    "exact": bool(np.array_equal(values, adata.X)),
                }
            )
    print(f"{args.samples} samples x {args.genes} genes, counts (best of {args.repeats})")
    print(pd.DataFrame(rows).to_string(index=False))
    t_pre, out = _best(lambda: preprocess(adata, n_top_genes=2000), args.repeats)
    print(f"\npreprocess (normalise, log1p, 2000 HVG): {t_pre:.2f} s -> {out.shape}")


if __name__ == "__main__":
    main()

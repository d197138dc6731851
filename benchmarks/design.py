"""Which experiment next: acquisition curves of suggested, random and largest-interval-first.

Run ``python benchmarks/design.py [--datasets tahoe drugmatrix atlas] [--seeds 10]
[--model stacked] [--genes 1000] [--strategies ...]``. For each dataset a random 30% of the
(species, context, perturbation) cells starts measured; in 6 steps 5% more of the cells are
acquired by each strategy of :mod:`transferome.benchmark.design`: ``suggested`` (expected
reduction of the prediction error of everything still unmeasured, each cell's error scaled
to the predictor's interval; greedy batch), ``counts only`` (the same from the error model's
counts alone), ``random``, ``largest interval`` (the widest 80% intervals of the predictor
first) and ``oracle`` (the cells with the largest *true* current error first: a reference
that reads the held-back values).

After each step the predictor (``stacked`` by default, fitted per species on the measured
changes) predicts every unmeasured cell. The error is that of the completed matrix: the mean
over all cells of the mean squared error over genes (0 for a measured cell; an unpredictable
cell is predicted as no change). Printed per dataset: the area under the error curve (mean over
the 7 points) of each strategy, mean and sd over seeds, its ratio to random and the paired
t-test and Wilcoxon p-values across seeds; curves go to
``benchmarks/results/design/<dataset>_curves.csv``, the figure (mean and a band of one sd over
seeds) to ``docs/figures/design_<dataset>.png``.

Data: Tahoe signatures (10 cell lines x 101 drugs; the ``--genes`` most variable genes),
DrugMatrix signatures (39 compounds x liver / kidney), the built-in atlas (mouse + rat, 11
contexts x 3 drugs, per-species predictor; so the error model gives the other species no
weight).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from transferome.benchmark.design import DESIGN_STRATEGIES, design_benchmark
from transferome.crossspecies import reactome, signature_reactome
from transferome.crossspecies.reactome import Reactome
from transferome.data.schema import Schema
from transferome.datasets import load_drugmatrix_signatures, load_tahoe_signatures, simulate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "design"
FIGURES = ROOT / "docs" / "figures"
SCHEMA = Schema(species_key=None, dose_key=None, sample_key=None)


def _top_genes(r: Reactome, n: int) -> Reactome:
    var = r.values.var(axis=1, skipna=True).fillna(0.0)
    keep = var.sort_values(ascending=False).index[:n]
    return r.replace(values=r.values.loc[keep], se=r.se.loc[keep])


def load(name: str, genes: int) -> dict[str, Reactome]:
    if name == "tahoe":
        adata = load_tahoe_signatures(DATA / "sigrecon_tahoe_rank_signatures.h5ad")
        return {"human": _top_genes(signature_reactome(adata, schema=SCHEMA), genes)}
    if name == "drugmatrix":
        adata = load_drugmatrix_signatures(DATA / "sigrecon_drugmatrix_rank_signatures.h5ad")
        return {"rat": _top_genes(signature_reactome(adata, schema=SCHEMA), genes)}
    if name == "atlas":
        atlas = simulate(seed=0)
        return {s: reactome(a, schema=Schema()) for s, a in atlas.adatas.items()}
    raise SystemExit(f"unknown dataset {name!r}")


def main() -> None:
    from matplotlib.figure import Figure

    from transferome.plotting import acquisition_frame, plot_acquisition

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["tahoe", "drugmatrix", "atlas"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--model", default="stacked")
    parser.add_argument("--genes", type=int, default=1000)
    parser.add_argument("--strategies", nargs="+", default=list(DESIGN_STRATEGIES))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    FIGURES.mkdir(parents=True, exist_ok=True)
    summary = []
    for name in args.datasets:
        start = time.process_time()
        full = load(name, args.genes)
        result = design_benchmark(
            full,
            strategies=args.strategies,
            seeds=range(args.seeds),
            model=args.model,
            on_step=lambda step, name=name, start=start: print(
                f"{name}: {step} ({time.process_time() - start:.0f} CPU-s)", flush=True
            ),
        )
        result.curves.to_csv(OUT / f"{name}_curves.csv", index=False)
        summary.append(result.summary.assign(dataset=name, cpu_s=time.process_time() - start))
        fig = Figure(figsize=(5, 3.5))
        ax = fig.subplots()
        plot_acquisition(acquisition_frame(result.curves), ax)
        ax.set_title(name)
        fig.tight_layout()
        fig.savefig(FIGURES / f"design_{name}.png", dpi=120)
    table = pd.concat(summary, ignore_index=True)
    table.to_csv(OUT / "summary.csv", index=False)
    with pd.option_context("display.width", 200):
        print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()

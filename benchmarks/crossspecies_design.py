"""Experimental design on the simulator: acquire cells by `suggest_experiments` vs at random.

Start from a partial design (a random fraction of the species x organ x drug cells measured),
acquire one cell at a time, refit the completion ensemble and measure the error of the
completed reactomes against the simulator's noise-free reactomes, over 5 seeds.

Run from the repository root:

    python benchmarks/crossspecies_design.py [--seeds 5] [--steps 10]

Prints the acquisition curves (markdown) and saves the plot to
benchmarks/results/crossspecies_design.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from crossspecies_common import markdown
from transferome.crossspecies import reactome
from transferome.crossspecies.completion import CompletionConfig
from transferome.crossspecies.design import (
    only_measured,
    reactome_ensemble,
    suggest_experiments,
)
from transferome.data import atomic_path
from transferome.datasets import simulate
from transferome.metrics import true_reactome

ROOT = Path(__file__).resolve().parents[1]
CONFIG = CompletionConfig(epochs=200)


def _errors(ensemble, full, truth, measured, initial_unmeasured) -> tuple[float, float]:
    """MSE over the initially unmeasured cells (measured ones read as measured) and over the
    cells still unmeasured."""
    all_err, open_err = [], []
    for s, c, p in initial_unmeasured:
        source = full[s].values if (s, c, p) in measured else ensemble.mean[s]
        value = source[(c, p)]
        err = float(np.mean((value.to_numpy() - truth[s][(c, p)].reindex(value.index)) ** 2))
        all_err.append(err)
        if (s, c, p) not in measured:
            open_err.append(err)
    return float(np.mean(all_err)), float(np.mean(open_err)) if open_err else float("nan")


def run_seed(
    seed: int, steps: int, fraction: float, n_genes: int, n_models: int, *, params=None
) -> pd.DataFrame:
    atlas = simulate(seed=seed, n_genes=n_genes, animals_per_group=4, params=params)
    full = {s: reactome(atlas.adatas[s]) for s in atlas.species}
    truth = {s: true_reactome(atlas, s) for s in atlas.species}
    cells = sorted((s, c, p) for s, r in full.items() for c, p in r.pairs)
    rng = np.random.default_rng(seed)
    start = {cells[i] for i in rng.choice(len(cells), int(fraction * len(cells)), replace=False)}
    initial_unmeasured = [cell for cell in cells if cell not in start]
    rows = []
    for strategy in ("suggested", "random"):
        measured = set(start)
        pick_rng = np.random.default_rng(seed + 1000)
        for step in range(steps + 1):
            data = only_measured(full, measured)
            ensemble = reactome_ensemble(
                data,
                orthologs=atlas.orthologs,
                n_models=n_models,
                config=CONFIG,
                random_state=seed + step,
            )
            err_all, err_open = _errors(ensemble, full, truth, measured, initial_unmeasured)
            rows.append(
                {
                    "seed": seed,
                    "strategy": strategy,
                    "acquired": step,
                    "mse_initially_unmeasured": err_all,
                    "mse_still_unmeasured": err_open,
                }
            )
            if step == steps:
                break
            if strategy == "suggested":
                top = suggest_experiments(data, 1, ensemble=ensemble)
                measured.add(tuple(top.loc[0, ["species", "context", "perturbation"]]))
            else:
                remaining = [cell for cell in cells if cell not in measured]
                measured.add(remaining[int(pick_rng.integers(len(remaining)))])
    return pd.DataFrame(rows)


def plot(curves: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, column in zip(axes, ["mse_initially_unmeasured", "mse_still_unmeasured"], strict=True):
        for strategy, part in curves.groupby("strategy"):
            stats = part.groupby("acquired")[column].agg(["mean", "std"])
            ax.plot(stats.index, stats["mean"], marker="o", label=strategy)
            ax.fill_between(
                stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.2
            )
        ax.set_xlabel("experiments acquired")
        ax.set_ylabel("MSE vs noise-free reactome")
        ax.set_title(column.replace("_", " "))
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--n-genes", type=int, default=200)
    parser.add_argument("--n-models", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument(
        "--unstructured",
        action="store_true",
        help="the atlas without structured context dependence (GenerativeParams.unstructured())",
    )
    args = parser.parse_args()
    params = "unstructured" if args.unstructured else None
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    curves = pd.concat(
        [
            run_seed(seed, args.steps, args.fraction, args.n_genes, args.n_models, params=params)
            for seed in range(args.seeds)
        ],
        ignore_index=True,
    )
    for column in ("mse_initially_unmeasured", "mse_still_unmeasured"):
        table = curves.pivot_table(
            index="acquired", columns="strategy", values=column, aggfunc=["mean", "std"]
        )
        table.columns = [f"{strategy} {stat}" for stat, strategy in table.columns]
        print(f"## {column} ({args.seeds} seeds)\n")
        print(markdown(table, 4))
        print()
    final = curves[curves["acquired"] == args.steps].pivot(
        index="seed", columns="strategy", values="mse_initially_unmeasured"
    )
    wins = int((final["suggested"] < final["random"]).sum())
    print(f"suggested beats random after {args.steps} acquisitions in {wins} of {len(final)} seeds")
    out = Path(args.out)
    plot(curves, out / "crossspecies_design.png")
    with atomic_path(out / "crossspecies_design.csv") as tmp:
        curves.to_csv(tmp, index=False)
    print(f"\nplot: {out / 'crossspecies_design.png'} ({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()

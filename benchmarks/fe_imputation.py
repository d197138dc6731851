"""Imputation of hidden entries on real data: Factorized Embeddings against three baselines.

On each dataset a share of the observed entries is hidden (:func:`transferome.analysis.
hide_entries`: 10%, 30% and 50% of random entries, and a "genes" panel design at 30%, where
half of the samples lose one shared random set of 60% of the genes), filled back by the gene
mean, kNN over samples (k = 10), soft-impute and FE (a mask-aware fit on the remaining
entries, then ``impute``), and scored on the hidden entries only: NRMSE (RMSE divided by
the standard deviation of the hidden true values; 1 = guessing their mean) and Pearson
correlation. Entries missing in the data (Tahoe) are never hidden nor scored.

Datasets (``--data``, default ``../shared/data``): Kang PBMC (1,000 most variable genes,
scanpy "seurat" flavour), Baron human pancreas (counts normalised to 1e4, log1p, 1,000 HVGs),
TG-GATEs hepatocytes (196 genes), CMap (51 genes), L1000 MODZ signatures (978 genes), Tahoe
rank signatures (1,000 genes of largest variance) and DrugMatrix (2,000).

FE settings (:data:`FE`, :func:`fe_params`) were chosen on CMap, TG-GATEs, L1000 and
DrugMatrix with the 30% condition, scoring a further 10% of the *remaining observed* entries
held out as validation (never the hidden ones): a sample/gene-table rate ``embedding_lr``
several times the network's, small blocks (more updates of every embedding per epoch) and
early stopping mattered most. Blocks are 32 samples x 64 genes, and the epochs shrink with
the size of the matrix so that one fit costs about one to two CPU-minutes (``max_epochs =
clip(1.2e7 / n_values, 6, 40)``, early stopping with patience 10 on 10% of the observed
entries, best epoch kept). One setting serves every dataset.

Run: ``python benchmarks/fe_imputation.py [--quick] [--repeats 1] [--out results.csv]``
(about 60 CPU-minutes for one repeat, most of it FE; ``--quick``: the four small datasets,
30% only).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from crossspecies_common import markdown
from fe_embeddings import LOADERS
from transferome.analysis import (
    hide_entries,
    imputation_scores,
    impute_fe,
    impute_gene_mean,
    impute_knn,
    impute_soft,
)

ROOT = Path(__file__).resolve().parents[1]
N_GENES = 2000
# Kang, Baron and Tahoe keep 1,000 genes, which bounds FE to about a CPU-minute per fit.
N_GENES_LARGE = 1000
FE = {
    "embedding_dim": 32,
    "hidden": (128, 64),
    "lr": 5e-3,
    "embedding_lr": 3e-2,
    "batch_size": 32,
    "gene_block": 64,
    "early_stopping": 10,
    "validation_fraction": 0.1,
}
FRACTIONS = (0.1, 0.3, 0.5)
GENES_MODE = 0.3
METHODS = ("gene mean", "knn", "soft-impute", "fe")


def _loader(key: str, n_genes: int) -> Callable[[Path], np.ndarray]:
    """The matrix of ``benchmarks/fe_embeddings.py``'s loader (float64, NaN = not measured)."""

    def load(data: Path) -> np.ndarray:
        return np.asarray(LOADERS[key](data, n_genes).adata.X, dtype=np.float64)

    return load


DATASETS: dict[str, Callable[[Path], np.ndarray]] = {
    "kang": _loader("kang", N_GENES_LARGE),
    "baron": _loader("baron_human", N_GENES_LARGE),
    "tggates": _loader("tggates", N_GENES),
    "cmap": _loader("cmap", N_GENES),
    "l1000": _loader("l1000", N_GENES),
    "tahoe": _loader("tahoe", N_GENES_LARGE),
    "drugmatrix": _loader("drugmatrix", N_GENES),
}
SMALL = ("tggates", "cmap", "l1000", "drugmatrix")


def fe_params(n_values: int, *, epoch_scale: float = 1.0) -> dict[str, object]:
    """FE settings for a matrix of ``n_values`` observed entries (epochs from the budget)."""
    epochs = int(np.clip(round(1.2e7 / max(n_values, 1) * epoch_scale), 6, 40))
    return {**FE, "max_epochs": epochs}


def methods_for(n_values: int, epoch_scale: float) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    return {
        "gene mean": impute_gene_mean,
        "knn": lambda v: impute_knn(v, k=10),
        "soft-impute": impute_soft,
        "fe": lambda v: impute_fe(v, **fe_params(n_values, epoch_scale=epoch_scale)),
    }


def run_dataset(
    name: str, x: np.ndarray, conditions: list[tuple[str, float]], repeats: int, epoch_scale: float
) -> list[dict[str, object]]:
    rows = []
    observed = np.isfinite(x)
    for mode, fraction in conditions:
        for repeat in range(repeats):
            hidden = hide_entries(observed, fraction, mode=mode, random_state=repeat)
            values = np.where(hidden, np.nan, x)
            n_fit = int((observed & ~hidden).sum())
            for method, impute in methods_for(n_fit, epoch_scale).items():
                start = time.process_time()
                filled = impute(values)
                seconds = time.process_time() - start
                scores = imputation_scores(x, filled, hidden)
                rows.append(
                    {
                        "dataset": name,
                        "mode": mode,
                        "fraction": fraction,
                        "repeat": repeat,
                        "method": method,
                        **scores,
                        "cpu_s": seconds,
                    }
                )
                print(
                    f"  {name} {mode} {fraction:.0%} r{repeat} {method}: "
                    f"NRMSE {scores['nrmse']:.3f} r {scores['pearson']:.3f} ({seconds:.0f} s)",
                    flush=True,
                )
    return rows


def condition_label(mode: str, fraction: float) -> str:
    return f"{fraction:.0%}" if mode == "entries" else f"genes {fraction:.0%}"


def tables(frame: pd.DataFrame) -> str:
    """Markdown tables: NRMSE and Pearson (mean ± sd over repeats), CPU seconds."""
    frame = frame.assign(
        condition=[
            condition_label(m, f) for m, f in zip(frame["mode"], frame["fraction"], strict=True)
        ]
    )
    grouped = frame.groupby(["dataset", "condition", "method"], sort=False)
    out = []
    for metric, title in (("nrmse", "NRMSE (lower is better)"), ("pearson", "Pearson r")):
        mean, sd = grouped[metric].mean(), grouped[metric].std().fillna(0.0)
        cell = mean.map("{:.3f}".format)
        if frame["repeat"].nunique() > 1:
            cell = cell + " ± " + sd.map("{:.3f}".format)
        table = cell.unstack("method")[[m for m in METHODS if m in set(frame["method"])]]
        out.append(f"### {title}\n\n{markdown(table.reset_index())}\n")
    seconds = frame.groupby(["dataset", "method"], sort=False)["cpu_s"].mean().unstack("method")
    seconds = seconds[[m for m in METHODS if m in seconds.columns]].round(1)
    out.append(
        "### CPU seconds per fit (mean over conditions and repeats)\n\n"
        f"{markdown(seconds.reset_index())}\n"
    )
    return "\n".join(out)


def figure(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(frame["dataset"]))
    cols = min(4, len(datasets))
    rows = int(np.ceil(len(datasets) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, datasets, strict=False):
        part = frame[(frame["dataset"] == name) & (frame["mode"] == "entries")]
        genes = frame[(frame["dataset"] == name) & (frame["mode"] == "genes")]
        for k, method in enumerate(m for m in METHODS if m in set(part["method"])):
            line = part[part["method"] == method].groupby("fraction")["nrmse"].agg(["mean", "std"])
            ax.errorbar(
                line.index * 100,
                line["mean"],
                yerr=line["std"].fillna(0.0),
                marker="o",
                label=method,
                color=f"C{k}",
                capsize=2,
            )
            g = genes[genes["method"] == method]
            if len(g):
                ax.scatter(
                    [g["fraction"].iloc[0] * 100 + 3],
                    [g["nrmse"].mean()],
                    marker="x",
                    color=f"C{k}",
                )
        ax.set_title(name)
        ax.set_xlabel("hidden entries (%)")
        ax.set_ylabel("NRMSE")
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, title="x: genes mode", title_fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--only", nargs="+", choices=list(DATASETS), default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="small datasets, 30%% only, fewer epochs"
    )
    parser.add_argument("--out", default=None, help="CSV of every score (one row per fit)")
    parser.add_argument("--figure", default=str(ROOT / "docs" / "figures" / "fe_imputation.png"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    names = args.only or (list(SMALL) if args.quick else list(DATASETS))
    conditions = [("entries", 0.3)] if args.quick else [("entries", f) for f in FRACTIONS]
    if not args.quick:
        conditions.append(("genes", GENES_MODE))
    rows = []
    for name in names:
        start = time.perf_counter()
        x = DATASETS[name](Path(args.data))
        print(f"{name}: {x.shape[0]} x {x.shape[1]}, {np.isnan(x).mean():.1%} missing", flush=True)
        rows += run_dataset(name, x, conditions, args.repeats, 0.25 if args.quick else 1.0)
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    frame = pd.DataFrame(rows)
    if args.out:
        frame.to_csv(args.out, index=False)
    print("\n" + tables(frame))
    if not args.quick:
        figure(frame, Path(args.figure))
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()

"""Which experiment next: acquisition curves of suggested, random and largest-interval-first.

Run ``python benchmarks/design.py [--datasets tahoe drugmatrix atlas] [--seeds 10]
[--model stacked] [--genes 1000]``. For each dataset a random 30% of the (species, context,
perturbation) cells starts measured; in 6 steps 5% more of the cells are acquired by

- ``suggested``: :func:`transferome.crossspecies.gain.pick_batch` (expected reduction of the
  prediction error of everything still unmeasured, greedy batch),
- ``random``: a random batch,
- ``largest interval``: the cells whose 80% interval of the predictor is widest (a cell whose
  perturbation is measured nowhere has no prediction and comes first, in random order).

After each step the predictor (``stacked`` by default, fitted per species on the measured
changes) predicts every unmeasured cell. The error is that of the completed matrix: the mean
over all cells of the mean squared error over genes (0 for a measured cell; an unpredictable
cell is predicted as no change). Printed per dataset: the area under the error curve (mean over
the 7 points) of each strategy, mean and sd over seeds, its ratio to random and the paired
t-test and Wilcoxon p-values across seeds; curves go to
``benchmarks/results/design/<dataset>_curves.csv`` and ``design_curves.png`` (mean and a band of
one sd over seeds).

Data: Tahoe signatures (10 cell lines x 101 drugs; the ``--genes`` most variable genes),
DrugMatrix signatures (39 compounds x liver / kidney), the built-in atlas (mouse + rat, 11
contexts x 3 drugs, per-species predictor; so the error model gives the other species no
weight).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats

from transferome.crossspecies import only_measured, reactome, signature_reactome
from transferome.crossspecies.gain import DesignGrid, fit_error_model, pick_batch
from transferome.crossspecies.reactome import Reactome
from transferome.data.schema import Schema
from transferome.datasets import load_drugmatrix_signatures, load_tahoe_signatures, simulate
from transferome.models import get_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "design"
STRATEGIES = ("suggested", "random", "largest interval")
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


def _delta(r: Reactome, measured: list[tuple[str, str]]) -> ad.AnnData:
    """Measured changes as signature data with one zero control per context."""
    values = r.values[measured].to_numpy(dtype=np.float32).T
    contexts = sorted({c for c, _ in r.pairs})
    obs = pd.DataFrame(
        {
            "context": [c for c, _ in measured] + contexts,
            "perturbation": [p for _, p in measured] + ["control"] * len(contexts),
        }
    )
    obs.index = obs.index.astype(str)
    zeros = np.zeros((len(contexts), values.shape[1]), dtype=np.float32)
    return ad.AnnData(
        np.vstack([values, zeros]), obs=obs, var=pd.DataFrame(index=r.values.index.astype(str))
    )


def predict(full, grid, measured: np.ndarray, model: str):
    """Predicted changes and squared half-widths of every open cell, per species."""
    out = {}
    for s, species in enumerate(grid.species):
        r = full[species]
        have = [
            (grid.contexts[c], grid.perturbations[p])
            for c, p in zip(*np.nonzero(measured[s]), strict=True)
        ]
        seen = {p for _, p in have}
        targets = [
            (grid.contexts[c], grid.perturbations[p])
            for c, p in zip(*np.nonzero(grid.possible[s] & ~measured[s]), strict=True)
        ]
        known = [t for t in targets if t[1] in seen]
        preds = {t: (np.zeros(len(r.values)), np.inf) for t in targets if t[1] not in seen}
        if known:
            train = _delta(r, have)
            fitted = get_model(model)().fit(train, schema=SCHEMA)
            result = fitted.predict(train, known)
            labels = list(
                zip(
                    result.obs["context"].astype(str),
                    result.obs["perturbation"].astype(str),
                    strict=True,
                )
            )
            x = np.asarray(result.X, dtype=float)
            width = np.full(len(labels), np.nan)
            if "lower" in result.layers:
                half = (np.asarray(result.layers["upper"]) - np.asarray(result.layers["lower"])) / 2
                width = np.nanmean(half**2, axis=1)
            for i, label in enumerate(labels):
                preds[label] = (x[i], width[i])
        out[species] = preds
    return out


def completed_error(full, grid, measured, preds) -> float:
    errors = []
    for s, species in enumerate(grid.species):
        r = full[species]
        for c, p in zip(*np.nonzero(grid.possible[s]), strict=True):
            if measured[s, c, p]:
                errors.append(0.0)
                continue
            pair = (grid.contexts[c], grid.perturbations[p])
            y = r.values[pair].to_numpy(dtype=float)
            errors.append(float(np.nanmean((y - preds[species][pair][0]) ** 2)))
    return float(np.mean(errors))


def curve(full, strategy: str, seed: int, model: str, start=0.3, step=0.05, steps=6):
    grid0 = DesignGrid.from_reactomes(full)
    possible = grid0.measured.copy()  # the experiments that exist: what the data measured
    cells = np.argwhere(possible)
    rng = np.random.default_rng(seed)
    n_start = max(1, round(start * len(cells)))
    k = max(1, round(step * len(cells)))
    measured = np.zeros_like(possible)
    for i in rng.choice(len(cells), n_start, replace=False):
        measured[tuple(cells[i])] = True
    points = []
    for number in range(steps + 1):
        preds = predict(full, _grid(grid0, measured, possible), measured, model)
        points.append((number, int(measured.sum()), completed_error(full, grid0, measured, preds)))
        if number == steps:
            break
        open_cells = np.argwhere(possible & ~measured)
        if strategy == "random":
            chosen = [tuple(open_cells[i]) for i in rng.choice(len(open_cells), k, replace=False)]
        elif strategy == "largest interval":
            width = np.array(
                [
                    preds[grid0.species[s]][(grid0.contexts[c], grid0.perturbations[p])][1]
                    for s, c, p in open_cells
                ]
            )
            width = np.where(np.isfinite(width), width, np.inf)
            order = np.lexsort((rng.random(len(width)), -width))
            chosen = [tuple(open_cells[i]) for i in order[:k]]
        else:
            masked = only_measured(
                full, {grid0.cell(tuple(index)) for index in np.argwhere(measured)}
            )
            grid = _grid(grid0, measured, possible)
            # the predictor is fitted per species: other species inform nothing here
            model_ = fit_error_model(masked, grid, other_species_weight=0.0)
            table = pick_batch(model_, grid, k)
            chosen = [
                grid0.index(tuple(row))
                for row in table[["species", "context", "perturbation"]].itertuples(index=False)
            ]
        for index in chosen:
            measured[index] = True
    return pd.DataFrame(points, columns=["step", "measured", "error"])


def _grid(grid0: DesignGrid, measured, possible) -> DesignGrid:
    return DesignGrid(grid0.species, grid0.contexts, grid0.perturbations, measured.copy(), possible)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["tahoe", "drugmatrix", "atlas"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--model", default="stacked")
    parser.add_argument("--genes", type=int, default=1000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    summary = []
    for name in args.datasets:
        start = time.process_time()
        full = load(name, args.genes)
        frames = []
        for seed in range(args.seeds):
            for strategy in STRATEGIES:
                frames.append(
                    curve(full, strategy, seed, args.model).assign(strategy=strategy, seed=seed)
                )
            print(f"{name}: seed {seed} done ({time.process_time() - start:.0f} CPU-s)", flush=True)
        curves = pd.concat(frames, ignore_index=True)
        curves.to_csv(OUT / f"{name}_curves.csv", index=False)
        auc = curves.groupby(["strategy", "seed"])["error"].mean().unstack("strategy")
        for strategy in STRATEGIES:
            diff = auc[strategy] - auc["random"]
            row = {
                "dataset": name,
                "strategy": strategy,
                "auc_mean": auc[strategy].mean(),
                "auc_sd": auc[strategy].std(),
                "vs_random": auc[strategy].mean() / auc["random"].mean() - 1,
                "p_ttest": stats.ttest_rel(auc[strategy], auc["random"]).pvalue
                if strategy != "random"
                else np.nan,
                "p_wilcoxon": stats.wilcoxon(diff).pvalue
                if strategy != "random" and (diff != 0).any()
                else np.nan,
                "vs_interval_p": stats.ttest_rel(auc[strategy], auc["largest interval"]).pvalue
                if strategy == "suggested"
                else np.nan,
                "cpu_s": time.process_time() - start,
            }
            summary.append(row)
        _figure(curves, name)
    table = pd.DataFrame(summary)
    table.to_csv(OUT / "summary.csv", index=False)
    with pd.option_context("display.width", 200):
        print(table.round(4).to_string(index=False))


def _figure(curves: pd.DataFrame, name: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for strategy, group in curves.groupby("strategy", sort=False):
        stats_ = group.groupby("measured")["error"].agg(["mean", "std"])
        ax.plot(stats_.index, stats_["mean"], label=strategy)
        ax.fill_between(
            stats_.index, stats_["mean"] - stats_["std"], stats_["mean"] + stats_["std"], alpha=0.2
        )
    ax.set_xlabel("cells measured")
    ax.set_ylabel("error of the completed matrix")
    ax.set_title(name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / f"{name}_curves.png", dpi=120)


if __name__ == "__main__":
    main()

"""What Factorized Embeddings' gene embeddings encode: cell-type specificity and co-expression.

Trofimov et al. (2020), Figs. 6 and 7, on single-cell data with cell types in the role of
tissues: Kang PBMC and Baron pancreas (human), 2,000 most variable genes, FE trained as in
``benchmarks/fe_embeddings.py`` (PCA start, 50-d). The gene embeddings are compared with the
PCA loadings they start from (``V sqrt(S)`` of the same data) and with FE from a random start.

- **Specificity** (Fig. 6): for every gene the tau index over cell types and the per-cell-type
  earth mover's distance (:func:`transferome.analysis.tau_index`, :func:`tissue_emd`). Scored
  by kNN (k=5, 20 random 80/20 splits of the genes): Pearson of tau predicted from a gene's
  neighbours, and accuracy of the cell type a gene is most specific to (argmax EMD), among the
  genes whose maximal EMD is above the 65th percentile (the paper's cut). Drawn as a 2-d UMAP
  of each gene space coloured by tau, by maximal EMD and by that cell type.
- **Co-expression** (Fig. 7): up to 500 random gene pairs from each bin of the Pearson
  correlation of their expression over cells; the Euclidean distance of the pair in each gene
  space per bin, and the Spearman correlation of distance and correlation over those pairs.

Run: ``python benchmarks/fe_genes.py [--only kang baron_human] [--figures docs/figures]``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from crossspecies_common import markdown
from fe_embeddings import FE, LOADERS, fe_epochs
from transferome.analysis import knn_scores, tau_index, tissue_emd
from transferome.models.fe.estimator import FactorizedEmbedding
from transferome.models.fe.network import pca_embeddings

ROOT = Path(__file__).resolve().parents[1]
CELL_TYPE = {
    "kang": "cell_type",
    "baron_human": "cell_ontology_class",
    "baron_mouse": "cell_ontology_class",
}
BINS = np.array([-1.0, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 1.0])  # co-expression bins


def gene_spaces(adata, dims: int, seed: int) -> dict[str, np.ndarray]:
    epochs = fe_epochs(adata)
    spaces = {"pca loadings": pca_embeddings(adata.X, None, dims, seed=seed)[1]}
    for name, init in [("fe", "pca"), ("fe (random start)", "random")]:
        start = time.process_time()
        model = FactorizedEmbedding(
            **FE, init=init, embedding_dim=dims, max_epochs=epochs, random_state=seed
        ).fit(adata, factors=())
        spaces[name] = model.gene_embeddings_.to_numpy()
        print(f"  {name}: {epochs} epochs, {time.process_time() - start:.0f} CPU-s", flush=True)
    return spaces


def specificity_scores(spaces: dict, tau: pd.Series, emd: pd.DataFrame, seed: int) -> pd.DataFrame:
    peak = emd.max(axis=1)
    specific = np.flatnonzero(peak.to_numpy() > np.quantile(peak, 0.65))
    target = emd.idxmax(axis=1).to_numpy()
    finite = np.flatnonzero(np.isfinite(tau.to_numpy()))
    rows = []
    for name, z in spaces.items():
        t = knn_scores(z[finite], tau.to_numpy()[finite], task="regression", random_state=seed)
        c = knn_scores(z[specific], target[specific], task="classification", random_state=seed)
        rows.append(
            {
                "space": name,
                "tau pearson": t.score.mean(),
                "cell type accuracy": c.score.mean(),
                "chance": c.chance.mean(),
            }
        )
    return pd.DataFrame(rows).set_index("space")


def coexpression(spaces: dict, x: np.ndarray, seed: int, per_bin: int = 500) -> pd.DataFrame:
    """Up to ``per_bin`` random gene pairs from each correlation bin, with their distances."""
    corr = np.corrcoef(np.asarray(x, dtype=np.float64), rowvar=False)
    i, j = np.triu_indices(corr.shape[0], k=1)
    values = corr[i, j]
    keep = np.isfinite(values)
    i, j, values = i[keep], j[keep], values[keep]
    rng = np.random.default_rng(seed)
    picked = []
    for low, high in itertools.pairwise(BINS):
        inside = np.flatnonzero((values > low) & (values <= high))
        picked.append(rng.choice(inside, size=min(per_bin, len(inside)), replace=False))
    pick = np.concatenate(picked)
    frames = []
    for name, z in spaces.items():
        dist = np.linalg.norm(z[i[pick]] - z[j[pick]], axis=1)
        dist = dist / np.median(dist)  # comparable across spaces
        frames.append(pd.DataFrame({"space": name, "correlation": values[pick], "distance": dist}))
    return pd.concat(frames, ignore_index=True)


def draw(
    name: str, spaces: dict, tau, emd, pairs: pd.DataFrame, *, figures: Path, seed: int
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import umap

    peak = emd.max(axis=1).to_numpy()
    top = emd.idxmax(axis=1).to_numpy()
    types = sorted(set(top))
    cmap = plt.get_cmap("tab20", len(types))
    codes = np.array([types.index(t) for t in top])
    fig, axes = plt.subplots(len(spaces), 3, figsize=(11, 3.4 * len(spaces)), squeeze=False)
    for r, (space, z) in enumerate(spaces.items()):
        xy = umap.UMAP(n_components=2, random_state=seed).fit_transform(z)
        for c, (values, title, kw) in enumerate(
            [
                (tau.to_numpy(), "tau index", {"cmap": "viridis"}),
                (stats.rankdata(peak) / len(peak), "maximal EMD (percentile)", {"cmap": "magma"}),
                (
                    codes,
                    "most specific cell type",
                    {"cmap": cmap, "vmin": -0.5, "vmax": len(types) - 0.5},
                ),
            ]
        ):
            ax = axes[r, c]
            art = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=3, **kw)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{space}: {title}", fontsize=9)
            if c < 2:
                fig.colorbar(art, ax=ax, fraction=0.04)
            elif r == 0:
                handles = [
                    plt.Line2D([], [], marker="o", ls="", color=cmap(k), label=t[:22])
                    for k, t in enumerate(types)
                ]
                ax.legend(handles=handles, fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.suptitle(f"{name}: gene embeddings (UMAP), coloured by cell-type specificity", fontsize=10)
    fig.tight_layout()
    fig.savefig(figures / f"fe_genes_specificity_{name}.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    pairs = pairs.assign(bin=pd.cut(pairs.correlation, BINS))
    names = list(spaces)
    width = 0.8 / len(names)
    for k, space in enumerate(names):
        part = pairs[pairs.space == space]
        groups = [g.distance.to_numpy() for _, g in part.groupby("bin", observed=False)]
        pos = np.arange(len(groups)) + (k - (len(names) - 1) / 2) * width
        box = ax.boxplot(
            groups, positions=pos, widths=width * 0.9, showfliers=False, patch_artist=True
        )
        for patch in box["boxes"]:
            patch.set_facecolor(plt.get_cmap("tab10")(k))
        ax.plot([], [], color=plt.get_cmap("tab10")(k), lw=6, label=space)
    labels = [f"{a:.1f}..{b:.1f}" for a, b in itertools.pairwise(BINS)]
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=8)
    ax.set_xlabel("Pearson correlation of the two genes' expression over cells")
    ax.set_yscale("log")  # heavy tails: genes with large embeddings
    ax.set_ylabel("distance / median distance")
    ax.set_title(
        f"{name}: gene-pair distance in embedding space against co-expression", fontsize=10
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figures / f"fe_genes_coexpression_{name}.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(CELL_TYPE), default=["kang", "baron_human"]
    )
    parser.add_argument("--dims", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figures", type=Path, default=ROOT / "benchmarks/results/fe_genes")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.figures.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        ds = LOADERS[name](args.data)
        adata, key = ds.adata, CELL_TYPE[name]
        print(f"\n## {name}: {adata.n_obs} cells x {adata.n_vars} genes", flush=True)
        spaces = gene_spaces(adata, args.dims, args.seed)
        tau, emd = tau_index(adata, key), tissue_emd(adata, key)
        print("\nkNN on gene embeddings (20 random 80/20 splits of the genes):\n")
        print(markdown(specificity_scores(spaces, tau, emd, args.seed)))
        pairs = coexpression(spaces, adata.X, args.seed)
        table = pairs.assign(bin=pd.cut(pairs.correlation, BINS)).pivot_table(
            index="bin", columns="space", values="distance", aggfunc="median", observed=False
        )
        table["pairs"] = (
            pairs[pairs.space == "fe"]
            .groupby(pd.cut(pairs.correlation, BINS), observed=False)
            .size()
            .to_numpy()
        )
        print("\nMedian distance (/ median of all pairs) by co-expression bin:\n")
        print(markdown(table))
        rho = {s: stats.spearmanr(p.correlation, p.distance)[0] for s, p in pairs.groupby("space")}
        print("\nSpearman of distance and correlation:", {k: round(v, 3) for k, v in rho.items()})
        draw(name, spaces, tau, emd, pairs, figures=args.figures, seed=args.seed)


if __name__ == "__main__":
    main()

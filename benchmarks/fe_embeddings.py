"""Factorized Embeddings' sample embeddings as kNN features, on every labelled real dataset.

The protocol of Trofimov et al. (2020), Section 3.4 and Fig. 9: each sample embedding is used
as the features of a k-nearest-neighbour model (k=5) trained on a random 80% of the samples and
tested on the other 20%, repeated over ``--repeats`` random splits (the same splits for every
embedding); class labels are scored by accuracy, numeric targets (dose, time, concentration) by
the Pearson correlation of predicted and true values. Per task the embeddings are ranked by
their mean score, and a one-way ANOVA over the split scores followed by Tukey's HSD says
whether FE differs from each other embedding (corrected p < 0.05).

Embeddings (``--dims``, default 50, fewer when the data have fewer genes):

- ``fe``: FE sample embeddings, PCA start (the default ``init="pca"``);
- ``fe (random start)``: the paper's N(0, 1) start, same training;
- ``fe + descriptors``: the dataset's nuisance descriptors (batch, donor, scanner) as extra
  embedding tables, so that the sample embedding need not encode them; only on data that have
  them, and never a task's own label;
- ``pca``, ``umap`` (``--dims`` dimensions) and ``tsne`` (2-d, Barnes-Hut), of the same matrix.

Data (``--data``, default ``../shared/data``): log-normalised, 2,000 most variable genes where
there are more (seurat flavour for expression, largest variance for signatures). Single cells:
Kang PBMC (cell type, condition), Baron pancreas human and mouse (cell type, donor). Bulk:
TG-GATEs hepatocytes (compound, dose level, time), CMap (cell line, drug and log concentration
of the treated arrays), L1000 MODZ signatures (cell line, drug),
Tahoe-100M rank signatures (cell line, drug; entries not ranked are missing: FE fits only the
ranked ones, the others get 0, the neutral rank, before PCA / UMAP / t-SNE), DrugMatrix (organ).

Run: ``python benchmarks/fe_embeddings.py [--repeats 100] [--only kang tggates] [--out DIR]``;
``--quick`` trains FE 4x shorter and uses 20 repeats. Writes ``scores.csv`` (one row per split),
``summary.csv`` (mean, sd, rank, Tukey p against FE) and ``ranks.png`` into ``--out``
(default ``benchmarks/results/fe_embeddings``); ``--summary PATH`` reprints and redraws a saved
summary.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from transferome.analysis import baseline_embeddings, compare_embeddings, embedding_benchmark
from transferome.data import read
from transferome.models.fe.estimator import FactorizedEmbedding

ROOT = Path(__file__).resolve().parents[1]
N_GENES = 2000
BASELINES = ("pca", "umap", "tsne")
# 32x256 blocks keep the activations in cache; (64, 32) hidden units cost a quarter of the
# paper's network per value and reach the same training loss on these data.
FE = {"hidden": (64, 32), "lr": 5e-3, "batch_size": 32, "gene_block": 256}
VALUES_PER_FIT = 4e7  # training budget: epochs = VALUES_PER_FIT / values, within [10, 150]


@dataclass
class Dataset:
    name: str
    adata: AnnData  # X dense float32, NaN where not measured
    tasks: dict[str, str]  # obs key -> "classification" or "regression"; NaN / None: no label
    descriptors: list[str] = field(default_factory=list)


# -- data ------------------------------------------------------------------------------------
def _dense(adata: AnnData, obs: list[str]) -> AnnData:
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    frame = adata.obs[obs].copy()
    for key in obs:
        if not pd.api.types.is_numeric_dtype(frame[key]):
            frame[key] = frame[key].astype(str)
    return AnnData(X=x.astype(np.float32), obs=frame, var=pd.DataFrame(index=adata.var_names))


def _most_variable(adata: AnnData, n_genes: int, *, counts: bool = False) -> AnnData:
    """Log-normalise counts, then keep the ``n_genes`` most variable genes.

    Expression (non-negative log values): scanpy's seurat flavour. Signatures (signed changes
    or ranks, NaN where not ranked), which that flavour does not fit: the largest variances.
    """
    import scanpy as sc

    adata = adata.copy()
    if counts:
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
    if adata.n_vars <= n_genes:
        return adata
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    if np.isnan(x).any() or (x < 0).any():
        keep = np.argsort(-np.nanvar(x.astype(np.float64), axis=0), kind="stable")[:n_genes]
        return adata[:, np.sort(keep)].copy()
    hvg = sc.pp.highly_variable_genes(adata, n_top_genes=n_genes, flavor="seurat", inplace=False)
    return adata[:, hvg["highly_variable"].to_numpy()].copy()


def load_kang(data: Path, n_genes: int = N_GENES) -> Dataset:
    kang = _most_variable(read(data / "kang_pbmc_scgen_valid.h5ad"), n_genes)
    tasks = {"cell_type": "classification", "condition": "classification"}
    return Dataset("kang", _dense(kang, list(tasks)), tasks)


def _baron(data: Path, species: str, n_genes: int = N_GENES) -> Dataset:
    baron = read(data / f"baron_pancreas_{species}.h5ad")
    baron = _most_variable(baron, n_genes, counts=True)
    tasks = {"cell_ontology_class": "classification", "donor": "classification"}
    return Dataset(f"baron_{species}", _dense(baron, list(tasks)), tasks)


def load_tggates(data: Path, n_genes: int = N_GENES) -> Dataset:
    tg = read(data / "tggates_hepatocyte_small.h5ad")
    adata = _dense(tg, ["treatmentid", "dose_level", "duration", "batchid", "individual_id"])
    levels = {"Control": 0.0, "Low": 1.0, "Middle": 2.0, "High": 3.0}
    adata.obs["dose"] = adata.obs.dose_level.map(levels).astype(float)
    adata.obs["time_h"] = adata.obs.duration.astype(float)
    adata.obs["individual_id"] = adata.obs.individual_id.astype(str)
    tasks = {"treatmentid": "classification", "dose": "regression", "time_h": "regression"}
    return Dataset("tggates", adata, tasks, descriptors=["batchid", "individual_id"])


def load_cmap(data: Path, n_genes: int = N_GENES) -> Dataset:
    cmap = read(data / "cmap_small.h5ad")
    adata = _dense(cmap, ["sampleid", "treatmentid", "concentration_M", "batchid", "scanner"])
    treated = adata.obs.treatmentid.to_numpy() != "nan"  # drug and dose: treated arrays only
    adata.obs["drug"] = np.where(treated, adata.obs.treatmentid, None)
    concentration = adata.obs.concentration_M.astype(float).to_numpy()
    adata.obs["log10_concentration"] = np.where(
        treated, np.log10(concentration.clip(1e-12)), np.nan
    )
    tasks = {"sampleid": "classification", "drug": "classification"}
    tasks["log10_concentration"] = "regression"
    return Dataset("cmap", adata, tasks, descriptors=["batchid", "scanner"])


def load_l1000(data: Path, n_genes: int = N_GENES) -> Dataset:
    l1000 = read(data / "l1000_modz_3drugs_65lines.gct")
    adata = _dense(l1000, ["cell_id", "pert_iname"])
    lines = adata.obs.cell_id.value_counts()
    repeated = adata.obs.cell_id.map(lines).to_numpy() >= 3  # lines with all 3 drugs
    adata.obs["cell_id"] = np.where(repeated, adata.obs.cell_id, None)
    tasks = {"cell_id": "classification", "pert_iname": "classification"}
    return Dataset("l1000", adata, tasks)


def load_tahoe(data: Path, n_genes: int = N_GENES) -> Dataset:
    tahoe = _most_variable(read(data / "sigrecon_tahoe_rank_signatures.h5ad"), n_genes)
    tasks = {"context": "classification", "perturbation": "classification"}
    return Dataset("tahoe", _dense(tahoe, list(tasks)), tasks)


def load_drugmatrix(data: Path, n_genes: int = N_GENES) -> Dataset:
    dm = _most_variable(read(data / "sigrecon_drugmatrix_rank_signatures.h5ad"), n_genes)
    return Dataset("drugmatrix", _dense(dm, ["organ"]), {"organ": "classification"})


# Dataset loaders: (data folder, genes kept where there are more) -> Dataset.
LOADERS: dict[str, Callable[..., Dataset]] = {
    "kang": load_kang,
    "baron_human": lambda d, n_genes=N_GENES: _baron(d, "human", n_genes),
    "baron_mouse": lambda d, n_genes=N_GENES: _baron(d, "mouse", n_genes),
    "tggates": load_tggates,
    "cmap": load_cmap,
    "l1000": load_l1000,
    "tahoe": load_tahoe,
    "drugmatrix": load_drugmatrix,
}


# -- embeddings ------------------------------------------------------------------------------
def fe_epochs(adata: AnnData, scale: float = 1.0) -> int:
    return int(np.clip(VALUES_PER_FIT / adata.X.size, 10, 150) * scale)


def embeddings(ds: Dataset, dims: int, *, scale: float, seed: int) -> tuple[dict, dict]:
    """All embeddings of one dataset and the CPU seconds each took."""
    x = ds.adata.X
    filled = np.where(np.isfinite(x), x, 0.0)
    dims = min(dims, x.shape[1] - 1, x.shape[0] - 1)
    out: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for method in BASELINES:
        start = time.process_time()
        n = 2 if method == "tsne" else dims
        out[method] = baseline_embeddings(filled, n, methods=(method,), random_state=seed)[method]
        seconds[method] = time.process_time() - start
    variants: dict[str, dict] = {"fe": {}, "fe (random start)": {"init": "random"}}
    if ds.descriptors:
        variants["fe + descriptors"] = {"factors": ds.descriptors}
    epochs = fe_epochs(ds.adata, scale)
    for name, extra in variants.items():
        start = time.process_time()
        factors = extra.pop("factors", ())
        model = FactorizedEmbedding(
            **FE, **extra, embedding_dim=dims, max_epochs=epochs, random_state=seed
        )
        model.fit(ds.adata, factors=factors)
        out[name] = model.sample_embeddings_.to_numpy()
        seconds[name] = time.process_time() - start
        loss = float(model.history_.train_loss.iloc[-1])
        print(f"  {name}: {epochs} epochs, final loss {loss:.4f}, {seconds[name]:.0f} CPU-s")
    return out, seconds


# -- scores and statistics -----------------------------------------------------------------
def score_dataset(ds: Dataset, embedded: dict, repeats: int, seed: int) -> pd.DataFrame:
    labels = {key: ds.adata.obs[key].to_numpy() for key in ds.tasks}
    table = embedding_benchmark(
        embedded, labels, tasks=ds.tasks, n_splits=repeats, random_state=seed
    )
    table.insert(0, "dataset", ds.name)
    return table


def ranks(summary: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The rows of ``names``, ranked among themselves per task (1 = best mean; equal means tie)."""
    part = summary[summary.embedding.isin(names)].copy()
    part["rank"] = (
        part.assign(m=part["mean"].round(12))
        .groupby(["dataset", "label"])
        .m.rank(ascending=False, method="min")
    )
    return part


def report(summary: pd.DataFrame) -> None:
    table = summary.pivot_table(
        index=["dataset", "label", "metric"], columns="embedding", values="mean", sort=False
    )
    order = [c for c in ["fe", "fe (random start)", "fe + descriptors", *BASELINES] if c in table]
    table = table[order]
    best = ranks(summary, ["fe", *BASELINES]).pivot_table(
        index=["dataset", "label"], columns="embedding", values="rank", sort=False
    )
    lines = ["| dataset | task | metric | " + " | ".join(order) + " | FE rank | FE vs pca p |"]
    lines.append("|---|---|---|" + "---:|" * (len(order) + 2))
    for (dataset, task, metric), values in table.iterrows():
        top = max(values[c] for c in ["fe", *BASELINES])
        cells = [
            f"**{values[c]:.3f}**"
            if c in ["fe", *BASELINES] and values[c] == top
            else f"{values[c]:.3f}"
            if np.isfinite(values[c])
            else ""
            for c in order
        ]
        p = summary[
            (summary.dataset == dataset) & (summary.label == task) & (summary.embedding == "pca")
        ].tukey_p.iloc[0]
        rank = int(best.loc[(dataset, task), "fe"])
        lines.append(
            f"| {dataset} | {task} | {metric} | " + " | ".join(cells) + f" | {rank} | {p:.2g} |"
        )
    print("\n".join(lines))
    print()
    for variant in ["fe", "fe (random start)", "fe + descriptors"]:
        if variant not in summary.embedding.values:
            continue
        part = ranks(summary, [variant, *BASELINES])
        mine = part[part.embedding == variant]
        n = len(mine)
        first, second = int((mine["rank"] == 1).sum()), int((mine["rank"] == 2).sum())
        print(
            f"{variant}: first on {first}/{n} tasks, second on {second}/{n} "
            f"(first or second: {(first + second) / n:.0%})"
        )
    fe = summary[summary.embedding == "fe"].set_index(["dataset", "label"])["mean"]
    for name in BASELINES:
        other = summary[summary.embedding == name].set_index(["dataset", "label"])
        better = (fe > other["mean"]) & (other.tukey_p < 0.05)
        worse = (fe < other["mean"]) & (other.tukey_p < 0.05)
        print(
            f"fe vs {name}: significantly better on {int(better.sum())} tasks "
            f"({', '.join(f'{d}/{t}' for d, t in better[better].index) or '-'}), "
            f"significantly worse on {int(worse.sum())}"
        )


def plot_ranks(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ["fe", "fe (random start)", *BASELINES] if n in summary.embedding.values]
    part = ranks(summary, names)
    counts = part.groupby("embedding")["rank"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(names).fillna(0)
    share = counts.div(counts.sum(axis=1), axis=0)
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    left = np.zeros(len(names))
    for r in share.columns:
        ax.barh(names, share[r], left=left, label=f"rank {int(r)}")
        left += share[r].to_numpy()
    ax.invert_yaxis()
    ax.set_xlabel(f"share of the {part.groupby(['dataset', 'label']).ngroups} tasks")
    ax.set_title("kNN on sample embeddings: rank per task (1 = best mean score)", fontsize=10)
    ax.legend(ncol=len(share.columns), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", nargs="+", choices=sorted(LOADERS), default=list(LOADERS))
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--dims", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="FE 4x shorter, 20 repeats")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fe_embeddings")
    parser.add_argument("--figure", type=Path, help="also write the rank figure here")
    parser.add_argument(
        "--summary", type=Path, help="print the tables and draw the figure of a saved summary.csv"
    )
    args = parser.parse_args()
    if args.summary is not None:
        summary = pd.read_csv(args.summary)
        report(summary)
        for path in [args.summary.with_name("ranks.png"), args.figure]:
            if path is not None:
                plot_ranks(summary, path)
        return
    torch.set_num_threads(1)
    repeats = 20 if args.quick else args.repeats
    args.out.mkdir(parents=True, exist_ok=True)
    frames, cpu = [], {}
    for name in args.only:
        start = time.perf_counter()
        ds = LOADERS[name](args.data)
        print(f"\n{name}: {ds.adata.n_obs} x {ds.adata.n_vars}", flush=True)
        embedded, seconds = embeddings(
            ds, args.dims, scale=0.25 if args.quick else 1.0, seed=args.seed
        )
        frames.append(score_dataset(ds, embedded, repeats, args.seed))
        cpu[name] = seconds
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    scores = pd.concat(frames, ignore_index=True)
    summary = compare_embeddings(scores, reference="fe")
    scores.to_csv(args.out / "scores.csv", index=False)
    summary.to_csv(args.out / "summary.csv", index=False)
    pd.DataFrame(cpu).T.round(1).to_csv(args.out / "cpu_seconds.csv")
    print(f"\n## kNN on sample embeddings ({repeats} random 80/20 splits)\n")
    report(summary)
    print("\nCPU seconds per embedding:\n")
    print(pd.DataFrame(cpu).T.round(0).to_string())
    for path in [args.out / "ranks.png", args.figure]:
        if path is not None:
            plot_ranks(summary, path)


if __name__ == "__main__":
    main()

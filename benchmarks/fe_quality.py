"""Quality of Factorized Embeddings on real and simulated data, beside the baselines.

Three experiments, each scored with :func:`transferome.metrics.evaluate_groups` on mean
profiles of held-out (context, perturbation) groups, every model fitted on the same
training part of every fold:

1. **L1000 MODZ** signatures as a (cell line x drug x gene) tensor: the 195 (line, drug)
   groups (272 signatures) are held out in 5 folds; each is predicted from the line's and the drug's
   embeddings (``transfer="factors"``) and by the additive and linear baselines. Values are
   changes against control, so each line gets one all-zero control.
2. **Kang PBMC** (200 most variable genes): every cell type's IFN-beta group held out in turn
   (7 folds), predicted by vector arithmetic in sample-embedding space
   (``transfer="arithmetic"``); plus the reconstruction of the
   full data and the kNN / distance-preservation analyses of the sample embedding against
   PCA, UMAP and 2-D t-SNE.
3. **Simulator** (bulk, mouse, about 300 genes): the 33 (organ, drug) groups held out in 5 folds
   (imputation of unmeasured tensor cells).

FE here uses 32-d embeddings and hidden layers (128, 64) (not the paper's 50-d and
250-150-100-50-10), blocks of 64 samples x 256 genes, 8-25 epochs and the PCA start of the
sample and gene embeddings (the default ``init="pca"``; at these epoch counts a random start
barely moves), to keep the script to minutes on two CPU cores (several times longer on a
loaded machine).

Run: ``python benchmarks/fe_quality.py [--data ../shared/data] [--only l1000 kang sim]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.analysis import baseline_embeddings, distance_preservation, embedding_benchmark
from transferome.benchmark import run_task, with_zero_controls
from transferome.data import read
from transferome.data.schema import Schema, obs_labels
from transferome.data.splits import holdout_groups
from transferome.models import Estimator, FactorizedEmbedding, get_model

ROOT = Path(__file__).resolve().parents[1]
FE = {"embedding_dim": 32, "hidden": (128, 64), "lr": 5e-3, "batch_size": 64, "gene_block": 256}
METRICS = ["r2", "r2_delta", "pearson_delta", "pearson_delta_deg", "mse", "discrimination"]
Factory = Callable[[], Estimator]


def baselines(**linear: object) -> dict[str, Factory]:
    return {
        "control": lambda: get_model("control")(),
        "additive": lambda: get_model("additive")(),
        "linear": lambda: get_model("linear")(**linear),
    }


def perturbed_groups(adata: AnnData, schema: Schema) -> list[tuple[str, str]]:
    """(context, perturbation) groups whose perturbation is measured in >= 2 contexts."""
    frame = pd.DataFrame(
        {
            "c": obs_labels(adata, schema.context_key),
            "p": obs_labels(adata, schema.perturbation_key),
        }
    ).drop_duplicates()
    frame = frame[frame.p != schema.control]
    counts = frame.p.value_counts()
    frame = frame[frame.p.map(counts) >= 2]
    return sorted(zip(frame.c, frame.p, strict=True))


def folds_of(groups: Sequence[tuple[str, str]], n_folds: int, seed: int) -> list[list]:
    """Random folds of groups, no fold holding every context of one perturbation."""
    order = np.random.default_rng(seed).permutation(len(groups))
    return [[groups[i] for i in order[k::n_folds]] for k in range(n_folds)]


def evaluate(
    data: AnnData,
    schema: Schema,
    folds: Sequence[Sequence[tuple[str, str]]],
    models: dict[str, Factory],
    *,
    values: Literal["log", "delta"] = "log",
) -> tuple[pd.DataFrame, pd.Series]:
    """:func:`~transferome.benchmark.run_task` with the folds as splits (``values="delta"``:
    ``data`` are signatures, scored against zero controls); returns (summary, fit+predict s)."""
    rows = with_zero_controls(data, schema=schema) if values == "delta" else data
    splits = [
        holdout_groups(rows, fold, schema=schema, name=f"fold{k}") for k, fold in enumerate(folds)
    ]
    result = run_task(
        "transfer",
        data,
        schema=schema,
        models={name: factory() for name, factory in models.items()},
        splits=splits,
        values=values,
        ceiling=False,
    )
    timings = result.timings
    seconds = (timings["fit_s"] + timings["predict_s"]).groupby(timings["model"]).sum()
    return result.summary, seconds.reindex(list(models)).rename("fit+predict s")


def show(title: str, summary: pd.DataFrame, seconds: pd.Series) -> None:
    table = summary[summary.metric.isin(METRICS)].pivot(
        index="metric", columns="model", values="mean"
    )
    table = table.loc[[m for m in METRICS if m in table.index], list(seconds.index)]
    print(f"\n## {title} (mean over held-out groups)\n")
    print(table.round(3).to_string())
    print("fit+predict seconds:", seconds.round(0).astype(int).to_dict())


def run_l1000(data_dir: Path) -> None:
    raw = read(data_dir / "l1000_modz_3drugs_65lines.gct")
    schema = Schema(
        context_key="cell_id",
        perturbation_key="pert_iname",
        species_key=None,
        dose_key=None,
        sample_key=None,
    )
    data = with_zero_controls(raw, schema=schema)
    folds = folds_of(perturbed_groups(data, schema), 5, seed=0)
    models = baselines(ranks=[0, 1, 2], penalties=[1.0, 10.0], n_iter=15)
    models["fe (factors)"] = lambda: FactorizedEmbedding(**FE, max_epochs=25)
    summary, seconds = evaluate(raw, schema, folds, models, values="delta")
    show("L1000 MODZ: (line, drug) signatures held out in 5 folds", summary, seconds)


def _kang(data_dir: Path, n_genes: int = 200) -> AnnData:
    import scanpy as sc

    kang = read(data_dir / "kang_pbmc_scgen_valid.h5ad")
    hvg = sc.pp.highly_variable_genes(kang, n_top_genes=n_genes, flavor="seurat", inplace=False)
    keep = hvg["highly_variable"].to_numpy()
    x = kang.X[:, keep]
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    return AnnData(
        X=x.astype(np.float32),
        obs=kang.obs[["cell_type", "condition"]].astype(str).copy(),
        var=pd.DataFrame(index=kang.var_names[keep]),
    )


def run_kang(data_dir: Path) -> None:
    kang = _kang(data_dir)
    schema = Schema(
        context_key="cell_type",
        perturbation_key="condition",
        species_key=None,
        dose_key=None,
        sample_key=None,
    )
    folds = [[g] for g in perturbed_groups(kang, schema)]
    models = baselines()
    models["fe (arithmetic)"] = lambda: FactorizedEmbedding(
        **FE, max_epochs=8, transfer="arithmetic"
    )
    summary, seconds = evaluate(kang, schema, folds, models)
    show("Kang PBMC: each cell type's stimulated group held out", summary, seconds)

    start = time.perf_counter()
    model = FactorizedEmbedding(**FE, max_epochs=8).fit(kang, factors=())
    recon = model.predict(kang).X
    total = float(((kang.X - kang.X.mean(axis=0)) ** 2).sum())
    r2 = 1 - float(((recon - kang.X) ** 2).sum()) / total
    z = model.sample_embeddings_.to_numpy()
    print(
        f"\n## Kang reconstruction (FE without descriptors, {time.perf_counter() - start:.0f} s)\n"
    )
    print(f"R2 of all values: {r2:.3f}")
    dist = pd.DataFrame(
        {
            "expression vs reconstruction": distance_preservation(kang.X, recon),
            "expression vs FE embedding": distance_preservation(kang.X, z),
        }
    ).T
    print(dist.round(3).to_string())
    others = baseline_embeddings(kang.X, z.shape[1], methods=("pca", "umap"))
    others["tsne (2-d)"] = baseline_embeddings(kang.X, 2, methods=("tsne",))["tsne"]
    labels = {
        "cell_type": kang.obs.cell_type.to_numpy(),
        "condition": kang.obs.condition.to_numpy(),
    }
    bench = embedding_benchmark({"fe": z, **others}, labels, n_splits=20)
    table = bench.groupby(["label", "embedding"]).score.mean().unstack().round(3)
    chance = bench.groupby("label").chance.mean().round(3)
    table["chance"] = chance
    print("\nkNN (k=5) accuracy of sample labels, 20 random 80/20 splits:\n")
    print(table.to_string())


def run_simulator(params=None) -> None:
    from transferome.datasets import simulate

    atlas = simulate("bulk", seed=0, n_genes=300, params=params)
    data = atlas.adatas["mouse"]
    schema = Schema(species_key=None)
    folds = folds_of(perturbed_groups(data, schema), 5, seed=0)
    models = baselines()
    models["fe (factors)"] = lambda: FactorizedEmbedding(**FE, max_epochs=15)
    summary, seconds = evaluate(data, schema, folds, models)
    show("Simulator (bulk, mouse): (organ, drug) groups held out in 5 folds", summary, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--only", nargs="+", default=["l1000", "kang", "sim"])
    parser.add_argument(
        "--unstructured",
        action="store_true",
        help="the atlas without structured context dependence (GenerativeParams.unstructured())",
    )
    args = parser.parse_args()
    runs = {
        "l1000": lambda: run_l1000(Path(args.data)),
        "kang": lambda: run_kang(Path(args.data)),
        "sim": lambda: run_simulator("unstructured" if args.unstructured else None),
    }
    for name in args.only:
        start = time.perf_counter()
        runs[name]()
        print(f"({name}: {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

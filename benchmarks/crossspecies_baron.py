"""Profile mapping on real data: Baron 2016 pancreas, human and mouse, over matched cell types.

Each mouse gene is mapped to human genes by the similarity of its mean expression profile over
the cell types annotated in both species (`map_genes(method="profile")`); the one-to-one
ortholog table is the answer. Baselines: random candidates, and the human genes closest in
overall mean expression (mean-expression only).

Run from the repository root:

    python benchmarks/crossspecies_baron.py [--data ../shared/data] [--min-cells 20]

Prints the table (markdown).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scanpy as sc

from crossspecies_common import markdown
from transferome.crossspecies import map_genes
from transferome.data import Schema, read
from transferome.metrics import evaluate_mapping

ROOT = Path(__file__).resolve().parents[1]
KEY = "cell_ontology_class"


def _prepare(path: Path, min_cells: int, min_cell_type: int) -> sc.AnnData:
    adata = read(path)
    counts = adata.obs[KEY].value_counts()
    adata = adata[adata.obs[KEY].isin(counts.index[counts >= min_cell_type])].copy()
    sc.pp.filter_genes(adata, min_cells=min_cells)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


def _tidy(ranked: np.ndarray, targets: pd.Index, sources: pd.Index) -> pd.DataFrame:
    k = ranked.shape[1]
    return pd.DataFrame(
        {
            "target_gene": np.repeat(targets.to_numpy(), k),
            "source_gene": sources.to_numpy()[ranked.ravel()],
            "rank": np.tile(np.arange(1, k + 1), len(targets)),
        }
    )


def mean_expression_baseline(source, target, k: int = 5) -> pd.DataFrame:
    """The ``k`` source genes closest to each target gene in overall mean log expression."""
    s_mean = np.asarray(source.X.mean(axis=0)).ravel()
    t_mean = np.asarray(target.X.mean(axis=0)).ravel()
    order = np.argsort(s_mean)
    sorted_means = s_mean[order]
    pos = np.searchsorted(sorted_means, t_mean)
    ranked = np.empty((len(t_mean), k), dtype=int)
    for i, (p, m) in enumerate(zip(pos, t_mean, strict=True)):
        window = np.arange(max(p - k, 0), min(p + k, len(order)))
        best = window[np.argsort(np.abs(sorted_means[window] - m), kind="stable")[:k]]
        ranked[i] = order[best]
    return _tidy(ranked, target.var_names, source.var_names)


def random_baseline(source, target, k: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ranked = np.stack([rng.choice(source.n_vars, k, replace=False) for _ in range(target.n_vars)])
    return _tidy(ranked, target.var_names, source.var_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--min-cells", type=int, default=20, help="keep genes seen in this many")
    parser.add_argument("--min-cell-type", type=int, default=10, help="smallest cell type kept")
    args = parser.parse_args()
    data = Path(args.data)
    began = time.perf_counter()
    human = _prepare(data / "baron_pancreas_human.h5ad", args.min_cells, args.min_cell_type)
    mouse = _prepare(data / "baron_pancreas_mouse.h5ad", args.min_cells, args.min_cell_type)
    shared = sorted(set(human.obs[KEY]) & set(mouse.obs[KEY]))
    human = human[human.obs[KEY].isin(shared)].copy()
    mouse = mouse[mouse.obs[KEY].isin(shared)].copy()
    table = pd.read_csv(data / "baron_orthologs_1to1_human_mouse.csv")
    truth = pd.DataFrame(
        {"target_gene": table["gene.name"].astype(str), "source_gene": table["human.gene.name"]}
    )
    truth = truth[truth.target_gene.isin(mouse.var_names) & truth.source_gene.isin(human.var_names)]
    print(
        f"{human.n_vars} human x {mouse.n_vars} mouse genes (seen in >= {args.min_cells} cells), "
        f"{len(shared)} matched cell types: {', '.join(shared)}; "
        f"{len(truth)} mouse genes with a one-to-one human ortholog among the candidates\n"
    )
    schema = Schema(context_key=KEY)
    results = {
        "random": random_baseline(human, mouse),
        "mean expression": mean_expression_baseline(human, mouse),
    }
    for similarity in ("pearson", "spearman", "cosine", "euclidean"):
        results[f"profile ({similarity})"] = map_genes(
            human, mouse, method="profile", similarity=similarity, schema=schema
        )
    rows = []
    for name, mapping in results.items():
        scores = evaluate_mapping(mapping, truth, group_column=None).iloc[0]
        rows.append({"method": name, **scores.drop("group").to_dict()})
    frame = pd.DataFrame(rows).set_index("method")
    frame["n_genes"] = frame["n_genes"].astype(int)
    print(markdown(frame))
    print(f"\n({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()

"""Functional gene mapping and reactome completion on the simulator (mouse -> rat).

1. Mapping: `ortholog`, `reactome` and `combined` scored against the simulator's functional
   answer, split by ortholog class (one-to-one, many-to-many, functionally diverged), with
   clean reactomes (10 animals per group) and noisy ones (2 animals per group); calibration of
   the confidences (expected calibration error on genes not used as anchors).
2. Completion: hide rat (organ, drug) cells, predict them with `predict_reactome`, compare with
   copying the mouse ortholog's measured change and with predicting no change.

Run from the repository root:

    python benchmarks/crossspecies_mapping.py [--n-genes 1000] [--seeds 0 1 2]

Prints the tables (markdown).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from crossspecies_common import markdown
from transferome.crossspecies import map_genes, predict_reactome, reactome
from transferome.datasets import simulate
from transferome.metrics import (
    evaluate_mapping,
    expected_calibration_error,
    reliability_table,
    simulation_truth,
    true_reactome,
)

METHODS = {
    "ortholog": {"method": "ortholog"},
    "reactome (pearson)": {"method": "reactome", "similarity": "pearson"},
    "reactome (spearman)": {"method": "reactome", "similarity": "spearman"},
    "combined": {"method": "combined"},
}
HIDDEN = [
    ("rat", "brain", "tetracycline"),
    ("rat", "liver", "drug_a"),
    ("rat", "heart", "drug_b"),
    ("rat", "pancreas", "tetracycline"),
    ("rat", "kidney", "drug_b"),
    ("rat", "PBMC", "drug_a"),
]


def mapping_rows(seed: int, n_genes: int, animals: int, params=None) -> list[dict]:
    atlas = simulate(seed=seed, n_genes=n_genes, animals_per_group=animals, params=params)
    mouse, rat = (reactome(atlas.adatas[s]) for s in ("mouse", "rat"))
    truth = simulation_truth(atlas, "mouse", "rat")
    one_to_one = atlas.orthologs[atlas.orthologs["homology_type"] == "one2one"]
    anchors = one_to_one.sample(frac=0.5, random_state=seed)[["source_gene", "target_gene"]]
    held_out = truth[~truth["target_gene"].isin(anchors["target_gene"])]
    rows = []
    for name, kwargs in METHODS.items():
        mapping = map_genes(mouse, rat, orthologs=atlas.orthologs, anchors=anchors, **kwargs)
        scores = evaluate_mapping(mapping, truth)
        ece = expected_calibration_error(reliability_table(mapping, held_out))
        for record in scores.to_dict("records"):
            rows.append({"animals": animals, "seed": seed, "method": name, "ece": ece, **record})
    return rows


def completion_rows(seed: int, n_genes: int, params=None) -> list[dict]:
    atlas = simulate(seed=seed, n_genes=n_genes, params=params)
    data = {s: reactome(atlas.adatas[s]) for s in ("mouse", "rat")}
    out = predict_reactome(data, orthologs=atlas.orthologs, hide=HIDDEN, random_state=seed)
    table = atlas.orthologs
    one = table[table["homology_type"] == "one2one"]
    rat_to_mouse = dict(zip(one["target_gene"], one["source_gene"], strict=True))
    truth = true_reactome(atlas, "rat")
    rows = []
    for _, context, drug in HIDDEN:
        true = truth[(context, drug)]
        genes = [g for g in true.index if g in rat_to_mouse]
        copy = data["mouse"].values[(context, drug)].reindex([rat_to_mouse[g] for g in genes])
        candidates = {
            "predict_reactome": out["rat"].values[(context, drug)].reindex(genes).to_numpy(),
            "mouse ortholog copy": copy.to_numpy(),
            "no change": np.zeros(len(genes)),
        }
        measured = data["rat"].values[(context, drug)].reindex(genes).to_numpy()
        candidates["rat measured (noise floor)"] = measured
        target = true.reindex(genes).to_numpy()
        for name, pred in candidates.items():
            r = np.corrcoef(pred, target)[0, 1] if np.std(pred) > 0 else np.nan
            rows.append(
                {
                    "seed": seed,
                    "cell": f"{context} + {drug}",
                    "predictor": name,
                    "mse": float(np.mean((pred - target) ** 2)),
                    "pearson": r,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-genes", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--unstructured",
        action="store_true",
        help="the atlas without structured context dependence (GenerativeParams.unstructured())",
    )
    args = parser.parse_args()
    params = "unstructured" if args.unstructured else None
    began = time.perf_counter()
    rows = [
        row
        for animals in (10, 2)
        for seed in args.seeds
        for row in mapping_rows(seed, args.n_genes, animals, params)
    ]
    frame = pd.DataFrame(rows)
    for animals, part in frame.groupby("animals", sort=False):
        print(
            f"## Mapping mouse -> rat, {animals} animals per group (mean of seeds {args.seeds})\n"
        )
        mean = part.groupby(["method", "group"], sort=False)[
            ["n_genes", "precision_at_1", "precision_at_5", "mrr", "ece"]
        ].mean()
        mean["n_genes"] = mean["n_genes"].round().astype(int)
        print(markdown(mean))
        print()
    completion = pd.DataFrame(
        [r for seed in args.seeds for r in completion_rows(seed, 500, params)]
    )
    print("## Reactome completion: hidden rat cells (mean over cells and seeds)\n")
    summary = completion.groupby("predictor", sort=False)[["mse", "pearson"]].mean()
    print(markdown(summary, 4))
    print(f"\n({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()

"""UGE on the simulated atlas: organ annotation mouse -> rat and tetracycline prediction in rat.

One fit per gene-description setting:

* ``own``: rat genes described by rat's own reactome (as in the paper; it uses rat's organ and
  drug labels to build the descriptions, not to train the organ head);
* ``orthologs``: rat genes described by their mouse orthologs' reactomes (no rat label used at
  all: the zero-shot setting);
* ``tied``: the ortholog table ties the gene tokens (one shared vector per ortholog group and a
  per-species residual pulled to zero), rat genes borrow their descriptions through it (no rat
  label used), and training aligns the species' ``<cls>`` distributions (CORAL), with
  per-species standardised values, ``<cls>`` started from the expression-weighted tokens and a
  class-balanced head.

Rat tetracycline groups of the paper's organs are held out of training and predicted by latent
arithmetic, and by the additive baseline and the default predictor (``stacked``) through three
gene maps: the ortholog table, UGE's top-1 gene mapping and the functional mapping of
``map_genes(method="combined")`` (reactome evidence with the table as a prior). Each is scored
on all genes and on the functionally diverged orthologs (sequence kept, function changed).
Prints per-organ tables (the paper's Figures 2 and 3 counterparts) and the gene-mapping
precision by ortholog class, in markdown.

    python benchmarks/uge_simulated.py            # compact network, about 10-20 min on 2 cores
    python benchmarks/uge_simulated.py --threads 2 --epochs 40 --d-model 128 --n-layers 4
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from transferome.benchmark.annotation import annotation_transfer
from transferome.benchmark.species import species_perturbation
from transferome.crossspecies import map_genes
from transferome.datasets import simulate
from transferome.metrics import evaluate_mapping, simulation_truth
from transferome.models.uge.estimator import UniversalGeneEmbedding
from transferome.models.uge.genes import describe_genes, descriptions_through_map

HELD_ORGANS = ("brain", "PBMC", "lung", "heart", "pancreas")
DRUG = "tetracycline"
PERTURBATION_METRICS = ("pearson_delta", "r2_delta", "pearson_delta_deg")


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a markdown table (index as the first column)."""
    header = [str(frame.index.name or ""), *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(frame.columns)]
    for label, row in frame.iterrows():
        cells = [str(int(v)) if name == "n" else f"{v:.{digits}f}" for name, v in row.items()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--n-tokens", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default="own,orthologs,tied")
    parser.add_argument(
        "--unstructured",
        action="store_true",
        help="the atlas without structured context dependence (GenerativeParams.unstructured())",
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    torch.set_num_threads(args.threads)
    atlas = simulate(seed=args.seed, params="unstructured" if args.unstructured else None)
    mouse, rat = atlas.adatas["mouse"], atlas.adatas["rat"]
    held_out = [(organ, DRUG) for organ in HELD_ORGANS]
    keep = ~(rat.obs["context"].isin(HELD_ORGANS) & (rat.obs["perturbation"] == DRUG)).to_numpy()
    params = {
        "n_tokens": args.n_tokens,
        "d_model": args.d_model,
        "n_layers": args.n_layers,
        "n_heads": 4 if args.d_model < 128 else 8,
        "d_ff": 2 * args.d_model,
        "max_epochs": args.epochs,
        "lr": args.lr,
        "label_key": "context",
        "random_state": args.seed,
    }
    orthologs = atlas.orthologs
    correspondence = atlas.truth.correspondence
    diverged = correspondence.loc[correspondence["diverged"].astype(bool), "target_gene"]
    functional = map_genes(mouse, rat[keep], method="combined", orthologs=orthologs, top_k=5)
    truth = simulation_truth(atlas, "mouse", "rat")
    mapping_tables = [
        evaluate_mapping(mapping, truth).assign(method=name)
        for name, mapping in (
            ("ortholog", map_genes(mouse, rat, method="ortholog", orthologs=orthologs)),
            ("combined", functional),
        )
    ]
    functional_map = functional[functional["rank"] == 1][["source_gene", "target_gene"]]
    organ_tables, perturbation_tables = [], []
    for setting in args.settings.split(","):
        descriptions, extra, fit_extra = None, {}, {}
        if setting == "tied":
            extra = {
                "alignment": "coral",
                "values": "standardised",
                "pooled_cls": True,
                "balance_classes": True,
            }
            fit_extra = {"orthologs": orthologs}
        elif setting == "orthologs":
            mouse_descriptions = describe_genes(mouse)
            descriptions = {
                "rat": descriptions_through_map(
                    mouse_descriptions,
                    orthologs,
                    list(rat.var_names),
                    source_column="source_gene",
                    target_column="target_gene",
                    weight_column="sequence_identity",
                )
            }
        start, cpu = time.perf_counter(), time.process_time()
        model = UniversalGeneEmbedding(**params, **extra).fit(
            {"mouse": mouse, "rat": rat[keep]},
            gene_descriptions=descriptions,
            labelled_species=["mouse"],
            **fit_extra,
        )
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(
            f"[{setting}] fit: {seconds:.0f} s ({cpu:.0f} CPU-s), {len(model.history_)} epochs",
            flush=True,
        )
        organs = annotation_transfer(
            model,
            mouse,
            rat,
            source_species="mouse",
            target_species="rat",
            label_key="context",
            gene_map=orthologs,
            source_column="source_gene",
            target_column="target_gene",
        )
        organs["model"] = organs["model"].replace({"uge": f"uge_{setting}"})
        organ_tables.append(
            organs if not organ_tables else organs[organs["model"] == f"uge_{setting}"]
        )
        mapping_tables.append(
            evaluate_mapping(model.map_genes("mouse", "rat", top_k=5), truth).assign(
                method=f"uge_{setting} embedding"
            )
        )
        scores = species_perturbation(
            model,
            {"mouse": mouse, "rat": rat},
            held_out,
            source_species="mouse",
            target_species="rat",
            gene_map=orthologs,
            source_column="source_gene",
            target_column="target_gene",
            gene_maps={"functional": functional_map},
            gene_sets={"diverged": list(diverged)},
        )
        scores["model"] = scores["model"].replace(
            {
                "uge_drug": f"uge_{setting}_drug",
                "uge_species": f"uge_{setting}_species",
                "additive_uge_map": f"additive_uge_{setting}_map",
                "stacked_uge_map": f"stacked_uge_{setting}_map",
            }
        )
        own = scores["model"].str.contains(f"uge_{setting}")
        perturbation_tables.append(scores if not perturbation_tables else scores[own])
    organs = pd.concat(organ_tables)
    table = organs.pivot(index="class", columns="model", values="accuracy")
    table.insert(0, "n", organs.groupby("class")["n"].first())
    print("\n## Organ annotation mouse -> rat (accuracy per organ)\n")
    print(markdown(table))
    scores = pd.concat(perturbation_tables)
    for genes in ("all", "diverged"):
        for metric in PERTURBATION_METRICS:
            part = scores[(scores["metric"] == metric) & (scores["genes"] == genes)]
            pivot = part.pivot(index="model", columns="context", values="value")
            pivot["mean"] = pivot.mean(axis=1)
            pivot = pivot.sort_values("mean", ascending=False)
            n = len(diverged) if genes == "diverged" else rat.n_vars
            print(f"\n## Rat {DRUG}, held out, {metric}, {genes} genes ({n})\n")
            print(markdown(pivot))
    mapping = pd.concat(mapping_tables, ignore_index=True)
    print("\n## Gene mapping mouse -> rat by ortholog class (precision@1 / precision@5 / MRR)\n")
    for metric in ("precision_at_1", "precision_at_5", "mrr"):
        pivot = mapping.pivot(index="method", columns="group", values=metric)
        print(f"\n### {metric}\n")
        print(markdown(pivot))


if __name__ == "__main__":
    main()

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
arithmetic. Prints per-organ tables (the paper's Figures 2 and 3 counterparts) in markdown.

    python benchmarks/uge_simulated.py            # compact network, about 10-20 min on 2 cores
    python benchmarks/uge_simulated.py --threads 2 --epochs 40 --d-model 128 --n-layers 4
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from transferome.benchmark.species import annotation_transfer, species_perturbation
from transferome.datasets import simulate
from transferome.models.uge import UniversalGeneEmbedding
from transferome.models.uge_genes import describe_genes, descriptions_through_map

HELD_ORGANS = ("brain", "PBMC", "lung", "heart", "pancreas")
DRUG = "tetracycline"
PERTURBATION_METRICS = ("pearson_squared", "pearson_delta", "r2_delta", "pearson_squared_deg")


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
        scores = species_perturbation(
            model,
            {"mouse": mouse, "rat": rat},
            held_out,
            source_species="mouse",
            target_species="rat",
            gene_map=orthologs,
            source_column="source_gene",
            target_column="target_gene",
        )
        scores["model"] = scores["model"].replace(
            {"uge_drug": f"uge_{setting}_drug", "uge_species": f"uge_{setting}_species"}
        )
        perturbation_tables.append(
            scores if not perturbation_tables else scores[scores["model"].str.startswith("uge")]
        )
    organs = pd.concat(organ_tables)
    table = organs.pivot(index="class", columns="model", values="accuracy")
    table.insert(0, "n", organs.groupby("class")["n"].first())
    print("\n## Organ annotation mouse -> rat (accuracy per organ)\n")
    print(markdown(table))
    scores = pd.concat(perturbation_tables)
    for metric in PERTURBATION_METRICS:
        part = scores[scores["metric"] == metric]
        pivot = part.pivot(index="context", columns="model", values="value")
        pivot.loc["mean"] = pivot.mean()
        print(f"\n## Rat {DRUG}, held out, {metric}\n")
        print(markdown(pivot))


if __name__ == "__main__":
    main()

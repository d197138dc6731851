"""UGE cell-type annotation transfer on the Baron pancreas data, mouse -> human and human -> mouse.

The target species' genes are described through the 1:1 ortholog table from the source
species' cell-type expression profiles, so no target label is used anywhere (zero-shot); the
annotation head is trained on the source species only. Training uses a random subset of cells
per species (``--max-cells``), scoring every cell of the target species. Baselines:
class-frequency random model, logistic regression and kNN on the 2,000 most variable one-to-one
orthologs (trained on the same source cells).

    python benchmarks/uge_baron.py     # reads ../shared/data (or TRANSFEROME_SHARED_DATA)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from transferome.benchmark.species import annotation_transfer
from transferome.data.preprocess import preprocess
from transferome.datasets import load_baron, load_orthologs
from transferome.models.uge import UniversalGeneEmbedding
from transferome.models.uge_genes import describe_genes, descriptions_through_map

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TRANSFEROME_SHARED_DATA", ROOT.parent / "shared" / "data"))
LABEL = "context"  # the loader copies cell_ontology_class (matched across species) here


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
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--n-tokens", type=int, default=128)
    parser.add_argument("--n-decode", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--directions", default="mouse-human,human-mouse")
    parser.add_argument(
        "--max-cells", type=int, default=800, help="cells per species used for training"
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    torch.set_num_threads(args.threads)
    data = {
        species: preprocess(
            load_baron(species, DATA / f"baron_pancreas_{species}.h5ad"),
            layer="counts",
            n_top_genes=2000,
        )
        for species in ("human", "mouse")
    }
    rng = np.random.default_rng(args.seed)
    training = {
        s: a[np.sort(rng.choice(a.n_obs, size=min(args.max_cells, a.n_obs), replace=False))]
        for s, a in data.items()
    }
    orthologs = load_orthologs("baron_1to1", DATA / "baron_orthologs_1to1_human_mouse.csv")
    params = {
        "n_tokens": args.n_tokens,
        "n_decode": args.n_decode,
        "d_model": args.d_model,
        "n_layers": args.n_layers,
        "n_heads": 4,
        "d_ff": 2 * args.d_model,
        "max_epochs": args.epochs,
        "lr": args.lr,
        "label_key": LABEL,
        "perturbation_token": False,
        "random_state": args.seed,
    }
    for direction in args.directions.split(","):
        source, target = direction.split("-")
        borrowed = descriptions_through_map(
            describe_genes(training[source], kind="profile"),
            orthologs,
            list(data[target].var_names),
            source_column=f"{source}_gene",
            target_column=f"{target}_gene",
        )
        start = time.perf_counter()
        model = UniversalGeneEmbedding(**params).fit(
            training, gene_descriptions={target: borrowed}, labelled_species=[source]
        )
        print(f"{source} -> {target}: fit {time.perf_counter() - start:.0f} s", flush=True)
        scores = annotation_transfer(
            model,
            training[source],
            data[target],
            source_species=source,
            target_species=target,
            label_key=LABEL,
            gene_map=orthologs,
            source_column=f"{source}_gene",
            target_column=f"{target}_gene",
            seed=args.seed,
        )
        table = scores.pivot(index="class", columns="model", values="accuracy")
        table.insert(0, "n", scores.groupby("class")["n"].first())
        table = table.sort_values("n", ascending=False)
        print(f"\n## Baron pancreas {source} -> {target} (accuracy per cell type)\n")
        print(markdown(table), flush=True)


if __name__ == "__main__":
    main()

"""``transferome map-genes SOURCE TARGET --out mapping.csv``: map genes across species."""

from __future__ import annotations

import argparse

from transferome.cli._common import (
    add_key_arguments,
    add_values_argument,
    new_output,
    prepare_input,
    read_ortholog_csv,
    schema_from_args,
)

NAME = "map-genes"
HELP = "map each gene of a target species to source-species genes by function"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome map-genes`` to ``parser``."""
    parser.add_argument("source", help="source species data (h5ad; see --values)")
    parser.add_argument("target", help="target species data (h5ad; see --values)")
    parser.add_argument("--out", required=True, help="CSV of ranked candidates to write")
    parser.add_argument(
        "--method",
        choices=("ortholog", "reactome", "profile", "combined"),
        default="reactome",
        help="reactome similarity (default), expression profile, ortholog table, or combined",
    )
    parser.add_argument("--orthologs", default=None, help="ortholog table (CSV, one pair a row)")
    parser.add_argument(
        "--similarity", choices=("pearson", "spearman", "cosine"), default="pearson"
    )
    parser.add_argument("--top-k", type=int, default=5, help="candidates per gene (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    add_values_argument(parser)
    add_key_arguments(parser, unused=("dose_key", "time_key"))


def run(args: argparse.Namespace) -> int:
    """Run ``transferome map-genes`` on the parsed ``args``; return the exit status."""
    from transferome.crossspecies import map_genes
    from transferome.data import atomic_path, read_h5ad, spreadsheet_safe

    inputs = (args.source, args.target, args.orthologs)
    out = new_output(args.out, overwrite=args.overwrite, inputs=inputs)
    schema = schema_from_args(args)
    orthologs = read_ortholog_csv(args.orthologs)
    mapping = map_genes(
        prepare_input(read_h5ad(args.source), args, args.source, zero_controls=False)[0],
        prepare_input(read_h5ad(args.target), args, args.target, zero_controls=False)[0],
        method=args.method,
        similarity=args.similarity,
        orthologs=orthologs,
        top_k=args.top_k,
        schema=schema,
        random_state=args.seed,
    )
    with atomic_path(out) as tmp:
        spreadsheet_safe(mapping).to_csv(tmp, index=False)
    n = mapping.loc[mapping["source_gene"].notna(), "target_gene"].nunique()
    print(f"mapped {n} of {mapping['target_gene'].nunique()} target genes; wrote {out}")
    return 0

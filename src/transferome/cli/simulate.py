"""``transferome simulate --out DIR``: write the built-in simulated atlas and its truth.

Layout of ``DIR``: one ``<species>.h5ad`` per species (what a model sees), ``orthologs.csv``
(the ortholog table a user would download), and ``truth/``: ``<species>_means.h5ad``
(noise-free group means, layer ``change``), ``<species>_loadings.csv``,
``correspondence.csv``, ``program_effects.csv``, ``drugs.csv``, ``exposure.csv``. Every file
is written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "simulate"
HELP = "write the simulated atlas (one h5ad per species, ortholog table, truth/) to a folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome simulate`` to ``parser``."""
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument(
        "--mode",
        choices=("bulk", "single_cell"),
        default="bulk",
        help="bulk: mouse + rat, 10 organs + PBMC x control + 3 drugs; "
        "single_cell: cell lines x 12 drugs x 3 doses + combinations",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--quick", action="store_true", help="a small atlas (300 genes, few samples) in a second"
    )
    parser.add_argument(
        "--unstructured",
        action="store_true",
        help="the atlas without structured context dependence (that of transferome 0.1: "
        "nothing beyond the additive baseline can be learned)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a folder that is not empty"
    )


def _check_folder(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty; pass --overwrite to write into it")


def run(args: argparse.Namespace) -> int:
    """Run ``transferome simulate`` on the parsed ``args``; return the exit status."""
    from transferome._logging import get_logger
    from transferome.cli._common import check_output
    from transferome.data import atomic_path, spreadsheet_safe, write_h5ad
    from transferome.datasets import QUICK, simulate

    log = get_logger(__name__)
    out = Path(args.out)
    check_output(out, overwrite=args.overwrite, folder=True)
    _check_folder(out, overwrite=args.overwrite)
    kwargs = dict(QUICK[args.mode]) if args.quick else {}
    if args.unstructured:
        kwargs["params"] = "unstructured"
    atlas = simulate(args.mode, seed=args.seed, **kwargs)

    def write_csv(frame, path: Path, *, index: bool = False) -> None:
        with atomic_path(path) as tmp:
            spreadsheet_safe(frame).to_csv(tmp, index=index)

    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    for species, adata in atlas.adatas.items():
        write_h5ad(adata, out / f"{species}.h5ad")
        write_h5ad(atlas.truth.means[species], truth / f"{species}_means.h5ad")
        write_csv(atlas.truth.loadings[species], truth / f"{species}_loadings.csv", index=True)
        log.info("%s: %d observations x %d genes", species, adata.n_obs, adata.n_vars)
    write_csv(atlas.orthologs, out / "orthologs.csv")
    write_csv(atlas.truth.correspondence, truth / "correspondence.csv")
    write_csv(atlas.truth.program_effects, truth / "program_effects.csv")
    write_csv(atlas.truth.drugs, truth / "drugs.csv", index=True)
    write_csv(atlas.truth.exposure, truth / "exposure.csv", index=True)
    print(f"wrote {atlas!r} to {out}")
    return 0

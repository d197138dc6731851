"""Baselines on real data: Kang PBMC (leave each cell type out, IFN-beta stimulation) and
LINCS L1000 MODZ signatures (leave each cell line out per drug; values are changes).

Run from the repository root:

    python benchmarks/real_baselines.py [--data ../shared/data]

Prints both summary tables (mean (median) over held-out groups) in markdown.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from transferome.benchmark import run_task
from transferome.data import read
from transferome.data.schema import Schema

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["control", "additive", "linear"]
# L1000: 131 splits; a smaller inner-validation grid keeps the linear baseline to minutes.
L1000_LINEAR = {"linear": {"ranks": [0, 1], "penalties": [1.0, 10.0], "n_iter": 15}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    args = parser.parse_args()
    data = Path(args.data)

    start = time.perf_counter()
    kang = read(data / "kang_pbmc_scgen_valid.h5ad")
    schema = Schema(context_key="cell_type", perturbation_key="condition", control="control")
    result = run_task("transfer", kang, schema=schema, models=MODELS)
    print("## Kang PBMC, IFN-beta (leave each of 7 cell types out)\n")
    print(result.to_markdown())
    print(f"\n({time.perf_counter() - start:.0f} s)\n")

    start = time.perf_counter()
    l1000 = read(data / "l1000_modz_3drugs_65lines.gct")
    schema = Schema(context_key="cell_id", perturbation_key="pert_iname")
    result = run_task(
        "transfer", l1000, schema=schema, models=MODELS, model_params=L1000_LINEAR, values="delta"
    )
    print("## L1000 MODZ, 3 drugs x 65 cell lines (leave each cell line out per drug)\n")
    print(result.to_markdown())
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

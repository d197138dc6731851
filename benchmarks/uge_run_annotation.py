"""The default run's organ annotation (mouse -> rat, label-free target) on its own.

Runs ``transferome run``'s ``annotation`` stage with the default configuration's data (the
built-in simulated atlas) and UGE settings, nothing else: UGE is fitted on both species with
the mouse organ labels only and the ortholog table tying the gene tokens; rat genes borrow
their descriptions through the table, so no rat label is read. Prints the accuracy per organ
next to chance and the fit time (the paper's Figure 2 counterpart; target >= 0.95 overall).

    python benchmarks/uge_run_annotation.py            # about a minute on one core
    python benchmarks/uge_run_annotation.py --seed 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from transferome.pipeline.config import default_config, validate_config
from transferome.pipeline.run import run_pipeline


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    torch.set_num_threads(args.threads)
    config = default_config()
    config["seed"] = args.seed
    config["models"] = {"uge": config["models"]["uge"]}
    config["tasks"] = {"annotation": {}}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        cpu, wall = time.process_time(), time.perf_counter()
        run_pipeline(validate_config(config), out)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        table = pd.read_csv(out / "tables" / "annotation_accuracy.csv")
    print(f"annotation stage: {cpu:.0f} CPU-s ({wall:.0f} s wall), UGE {config['models']['uge']}")
    print("\n| organ | n | uge (tied, label-free) | chance |\n|---|---:|---:|---:|")
    for row in table.itertuples():
        print(f"| {row.context} | {row.n} | {row.accuracy:.3f} | {row.chance:.3f} |")


if __name__ == "__main__":
    main()

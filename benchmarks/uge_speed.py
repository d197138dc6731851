"""Training cost of the default UGE on the default simulated atlas, float32 vs bf16 autocast.

Fits the default network for one epoch on a subsample of each species and scales the measured
cost per sample to the whole atlas and the default number of epochs. Reports wall-clock and
CPU seconds: on a shared machine the CPU time of a one-thread run is the better estimate of
what the run costs when it has its cores to itself.

    python benchmarks/uge_speed.py --samples 96 --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from transferome.datasets import simulate
from transferome.models.uge.estimator import UniversalGeneEmbedding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=96, help="samples per species")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precisions", default="32-true,bf16-mixed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    atlas = simulate()
    rng = np.random.default_rng(0)
    subset = {
        s: a[np.sort(rng.choice(a.n_obs, size=min(args.samples, a.n_obs), replace=False))]
        for s, a in atlas.adatas.items()
    }
    total = sum(a.n_obs for a in atlas.adatas.values())
    used = sum(a.n_obs for a in subset.values())
    defaults = UniversalGeneEmbedding()
    print(
        f"default network: d_model={defaults.d_model}, n_layers={defaults.n_layers}, "
        f"n_heads={defaults.n_heads}, n_tokens={defaults.n_tokens}, batch={defaults.batch_size}, "
        f"epochs={defaults.max_epochs}; atlas {total} samples; threads {args.threads}"
    )
    print("| precision | wall s / epoch (atlas) | CPU s / epoch (atlas) | CPU min, full fit |")
    print("|---|---:|---:|---:|")
    for precision in args.precisions.split(","):
        model = UniversalGeneEmbedding(max_epochs=1, precision=precision)
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(subset)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        scale = total / used
        full = cpu * scale * defaults.max_epochs / 60
        print(f"| {precision} | {wall * scale:.0f} | {cpu * scale:.0f} | {full:.1f} |", flush=True)


if __name__ == "__main__":
    main()

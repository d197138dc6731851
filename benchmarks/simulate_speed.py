"""Time the built-in simulator and measure how hard its transfer task is.

Run ``python benchmarks/simulate_speed.py [--repeats N]``. Prints two tables:

1. build time (best of N), shape and memory of the counts for the default bulk atlas, the
   default single-cell screen and the ``--quick`` presets;
2. for the default bulk atlas, per species, the error of the ``control`` and ``additive``
   predictions of every held-out (organ, drug) group mean against the observed group mean,
   next to the noise floor (the noise-free truth against the same observed mean).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from transferome.datasets import ORGANS, QUICK, simulate


def _timings(repeats: int) -> pd.DataFrame:
    cases = [
        ("bulk (default)", "bulk", {}),
        ("single_cell (default)", "single_cell", {}),
        ("bulk --quick", "bulk", dict(QUICK["bulk"])),
        ("single_cell --quick", "single_cell", dict(QUICK["single_cell"])),
    ]
    rows = []
    for name, mode, kwargs in cases:
        times = []
        for seed in range(repeats):
            start = time.perf_counter()
            atlas = simulate(mode, seed=seed, **kwargs)
            times.append(time.perf_counter() - start)
        shapes = ", ".join(f"{s} {a.n_obs}x{a.n_vars}" for s, a in atlas.adatas.items())
        counts_mb = (
            sum(
                a.layers["counts"].data.nbytes + a.layers["counts"].indices.nbytes
                for a in atlas.adatas.values()
            )
            / 2**20
        )
        rows.append(
            {
                "atlas": name,
                "best_s": round(min(times), 2),
                "median_s": round(float(np.median(times)), 2),
                "shapes": shapes,
                "counts_MiB": round(counts_mb, 1),
            }
        )
    return pd.DataFrame(rows)


def _difficulty(seed: int) -> pd.DataFrame:
    atlas = simulate(seed=seed)
    drugs = [p for p in atlas.adatas["mouse"].obs["perturbation"].unique() if p != "control"]
    rows = []
    for species, adata in atlas.adatas.items():
        key = adata.obs["context"].astype(str) + "|" + adata.obs["perturbation"].astype(str)
        means = pd.DataFrame(np.asarray(adata.X)).groupby(key.to_numpy()).mean()
        truth = atlas.truth.means[species]
        for organ in ORGANS:
            for drug in drugs:
                observed = means.loc[f"{organ}|{drug}"].to_numpy()
                control = means.loc[f"{organ}|control"].to_numpy()
                shift = np.mean(
                    [
                        means.loc[f"{o}|{drug}"].to_numpy() - means.loc[f"{o}|control"].to_numpy()
                        for o in ORGANS
                        if o != organ
                    ],
                    axis=0,
                )
                row = np.flatnonzero(
                    (truth.obs["context"] == organ) & (truth.obs["perturbation"] == drug)
                )[0]
                true_delta = observed - control
                rows.append(
                    {
                        "species": species,
                        "organ": organ,
                        "mse_control": np.mean(true_delta**2),
                        "mse_additive": np.mean((control + shift - observed) ** 2),
                        "mse_noise_floor": np.mean((truth.X[row] - observed) ** 2),
                        "pearson_delta_additive": np.corrcoef(shift, true_delta)[0, 1],
                    }
                )
    frame = pd.DataFrame(rows)
    return frame.groupby("species").median(numeric_only=True).round(4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pd.set_option("display.width", 160)
    print("Build time (seconds), shapes and counts memory")
    print(_timings(args.repeats).to_string(index=False))
    print()
    print("Held-out (organ, drug) group means, default bulk atlas: median over 30 groups")
    print(_difficulty(args.seed).to_string())


if __name__ == "__main__":
    main()

"""One GPU check of the neural models: training throughput and peak memory, as JSON.

On a CUDA machine, in a few minutes, measures and prints:

- the device (name, compute capability, memory);
- **Factorized Embeddings**, the paper's network on 1,000 x 20,000 values: our block design
  through the training engine in float32 and bf16 autocast, against the authors' design (one
  row per (sample, gene) value served by a per-item ``Dataset`` and a ``DataLoader``, batch
  10,000), in values per second (the design is the one of ``benchmarks/fe_speed.py``);
- **XTransfer**, the paper's network on 100,000 synthetic sparse cells x 2,000 genes, bf16
  autocast, in perturbed cells per second (2 per pair, as ``benchmarks/xtransfer_throughput.py``);
- **UGE**, the default network on the default simulated atlas, bf16 autocast, in samples per
  second;
- the peak GPU memory of each step (``torch.cuda.max_memory_allocated``).

``torch.compile`` is not used: the engine trains the eager module.

Run: ``python benchmarks/gpu_check.py [--out gpu_check.json]``; ``--device cpu --quick`` runs
the same steps on small sizes on the CPU (the test suite does, as a test of the script).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    "full": {
        "fe_samples": 1000,
        "fe_genes": 20_000,
        "fe_blocks": 400,  # blocks of our design timed
        "reference_batches": 30,  # batches of the authors' design timed
        "xtransfer_cells": 100_000,
        "xtransfer_pairs": 65_536,
        "uge_samples": 512,  # per species
    },
    "quick": {
        "fe_samples": 40,
        "fe_genes": 300,
        "fe_blocks": 6,
        "reference_batches": 3,
        "xtransfer_cells": 4000,
        "xtransfer_pairs": 64,
        "uge_samples": 8,
    },
}


def device_info(device: str) -> dict[str, object]:
    info: dict[str, object] = {"torch": torch.__version__, "python": platform.python_version()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info |= {
            "device": torch.cuda.get_device_name(0),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
            "memory_gib": round(props.total_memory / 2**30, 1),
            "bf16_supported": bool(torch.cuda.is_bf16_supported()),
            "gpus": torch.cuda.device_count(),
        }
    else:
        info |= {"device": f"cpu ({platform.processor() or platform.machine()})"}
        info |= {"threads": torch.get_num_threads()}
    return info


def _reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: str) -> float | None:
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def check_fe(device: str, sizes: dict[str, int]) -> dict[str, object]:
    from fe_speed import time_ours, time_reference

    n_samples, n_genes = sizes["fe_samples"], sizes["fe_genes"]
    n_blocks, n_batches = sizes["fe_blocks"], sizes["reference_batches"]
    rng = np.random.default_rng(0)
    values = np.log1p(rng.gamma(0.5, 20.0, size=(n_samples, n_genes))).astype(np.float32)
    accelerator = "gpu" if device == "cuda" else "cpu"
    blocks = (256, 2048) if device == "cuda" else (16, 64)
    out: dict[str, object] = {"values": int(values.size), "blocks": list(blocks)}
    _reset_peak(device)
    batch = 10_000 if device == "cuda" else 500
    reference = time_reference(values, n_batches, batch_size=batch, device=device)
    out["reference_dataloader"] = {
        "values_per_s": round(1 / reference),
        "peak_mib": _peak_mib(device),
    }
    for precision in ("32-true", "bf16-mixed"):
        _reset_peak(device)
        seconds = time_ours(values, n_blocks, precision, blocks, accelerator=accelerator)
        out[f"ours_{precision}"] = {
            "values_per_s": round(1 / seconds),
            "x_vs_reference": round(reference / seconds, 1),
            "peak_mib": _peak_mib(device),
        }
    return out


def check_xtransfer(device: str, sizes: dict[str, int]) -> dict[str, object]:
    from transferome.data.pairing import make_pairs
    from transferome.models.xtransfer import PairRows
    from transferome.models.xtransfer.network import XTransferConfig, XTransferModule
    from transferome.training import AnnDataRows, TrainingConfig, fit_module
    from xtransfer_throughput import synthetic

    n_cells, n_pairs = sizes["xtransfer_cells"], sizes["xtransfer_pairs"]
    adata = synthetic(n_cells, 2000)
    pairs = make_pairs(adata.obs["context"].to_numpy(), adata.obs["perturbation"].to_numpy())
    take = np.random.default_rng(0).choice(len(pairs), size=min(n_pairs, len(pairs)))
    dataset = PairRows(AnnDataRows(adata), pairs.take(take))
    config = TrainingConfig(
        max_epochs=1,
        batch_size=256 if device == "cuda" else 32,
        lr=2e-4,
        weight_decay=5e-4,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed",
    )
    module = XTransferModule(XTransferConfig(n_genes=2000))
    _reset_peak(device)
    result = fit_module(module, dataset, config=config)
    seconds = float(result.history["seconds"].iloc[0])
    return {
        "cells": n_cells,
        "pairs": len(take),
        "precision": "bf16-mixed",
        "cells_per_s": round(2 * len(take) / seconds),
        "peak_mib": _peak_mib(device),
    }


def check_uge(device: str, sizes: dict[str, int]) -> dict[str, object]:
    from transferome.datasets import simulate
    from transferome.models.uge.estimator import UniversalGeneEmbedding

    atlas = simulate()
    rng = np.random.default_rng(0)
    per_species = sizes["uge_samples"]
    subset = {
        s: a[np.sort(rng.choice(a.n_obs, size=min(per_species, a.n_obs), replace=False))]
        for s, a in atlas.adatas.items()
    }
    n = sum(a.n_obs for a in subset.values())
    model = UniversalGeneEmbedding(
        max_epochs=1,
        precision="bf16-mixed",
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
    )
    _reset_peak(device)
    start = time.perf_counter()
    model.fit(subset)
    seconds = time.perf_counter() - start
    return {
        "samples": n,
        "precision": "bf16-mixed",
        "samples_per_s": round(n / seconds, 1),
        "seconds_with_setup": round(seconds, 1),
        "peak_mib": _peak_mib(device),
    }


def write_json(report: dict, path: Path) -> None:
    """Write ``report`` to ``path`` atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        json.dump(report, stream, indent=2)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes (a test of the script)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/gpu_check.json")
    parser.add_argument(
        "--only", nargs="+", choices=("fe", "xtransfer", "uge"), default=["fe", "xtransfer", "uge"]
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device is visible to torch; run with --device cpu --quick to test")
    sizes = SIZES["quick" if args.quick else "full"]
    report: dict[str, object] = {"settings": {"device": args.device, "quick": args.quick}}
    report["device"] = device_info(args.device)
    print(json.dumps(report["device"]), flush=True)
    checks = {"fe": check_fe, "xtransfer": check_xtransfer, "uge": check_uge}
    started = time.perf_counter()
    for name in args.only:
        start = time.perf_counter()
        report[name] = checks[name](args.device, sizes)
        report[name]["wall_s"] = round(time.perf_counter() - start, 1)
        print(f"{name}: {json.dumps(report[name])}", flush=True)
        write_json(report, args.out)  # what was measured survives a later failure
    report["wall_s"] = round(time.perf_counter() - started, 1)
    write_json(report, args.out)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

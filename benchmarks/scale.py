"""How the cost of each step grows with the number of cells, from a backed file and in memory.

Run from the repository root:

    python benchmarks/scale.py [--sizes 100000 500000 2000000] [--genes 2000]
                               [--memory-up-to 500000] [--folder DIR] [--keep]

Data: single-cell data from the simulator (8 cell lines x control + 12 drugs at 3 doses + 3
combinations, 128 (cell line, perturbation) groups, 2,000 genes, about a third of the values
non-zero), written to ``DIR/cells_<n>.h5ad`` as sparse CSR. A base atlas of 38,400 cells is
drawn once; larger files repeat its cells with their counts redrawn (Poisson around the base
counts, then normalised to 10,000 and log1p, as the simulator does), so every size has the same
groups with proportionally more cells each. The files are written a block at a time.

Every step runs in a fresh process (so its peak resident memory is its own) on the file opened
with ``read_h5ad(path, backed=True)`` (``backed``: X stays on disk) and, for sizes up to
``--memory-up-to``, read into memory (``memory``):

- ``open``: open the file (and, in memory, read it);
- ``validate``: :func:`transferome.data.validate`;
- ``group_means``: the mean of every (cell line, perturbation) group;
- ``additive`` / ``similar`` / ``stacked``: fit on every group but one held-out group per cell
  line and predict those (stacked is the default predictor);
- ``benchmark``: ``run_task("transfer")`` with those three models, 4 splits, the noise ceiling;
- ``xtransfer`` / ``fe`` / ``uge``: training throughput (cells per second) of the paper
  networks for a fixed amount of work (``--pairs`` XTransfer pairs; ``--fe-blocks`` blocks of
  32 cells x 256 genes for FE, in the order an epoch visits them; one epoch on
  ``--uge-cells`` cells drawn over the file for UGE), with their rows read from the file or
  from memory. FE's set-up is timed apart: from the file, the streamed PCA start and the
  chunked blocks; in memory, the dense array and its blocks (the in-memory PCA start, an SVD
  of the whole matrix, is left out).

Prints one table per mode and the fitted exponent of time against cells (1.0 is linear; the
ratio of the time per cell at the largest size to that at the size before), and writes all of it
to ``--out`` (JSON, atomically). Time is wall and CPU seconds of the step alone (not of starting
the process or importing); torch runs on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STEPS = ("open", "validate", "group_means", "additive", "similar", "stacked", "benchmark")
NEURAL = ("xtransfer", "fe", "uge")
CELL_LINES = tuple(f"line_{i}" for i in range(8))
BASE_CELLS_PER_GROUP = 100
ROOT = Path(__file__).resolve().parent


# --- writing the data -------------------------------------------------------------------


def _base(n_genes: int, seed: int):
    from transferome.datasets import simulate

    adata = simulate(
        "single_cell",
        seed=seed,
        n_genes=n_genes,
        contexts=CELL_LINES,
        cells_per_group=BASE_CELLS_PER_GROUP,
    ).adatas["human"]
    # cells in random order, so that a partial repeat holds every group
    return adata[np.random.default_rng(seed).permutation(adata.n_obs)].copy()


def _log_normalised(counts, target: float = 1e4):
    import scipy.sparse as sp

    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(target, totals, out=np.zeros_like(totals), where=totals > 0)
    logged = sp.csr_matrix(sp.diags(scale) @ counts, dtype=np.float32)
    logged.data = np.log1p(logged.data).astype(np.float32)
    return logged


def write_cells(path: Path, n_cells: int, base, seed: int) -> None:
    """Write ``n_cells`` cells repeating ``base`` with redrawn counts, a block at a time."""
    import h5py
    import pandas as pd
    import scipy.sparse as sp
    from anndata.io import sparse_dataset, write_elem

    counts = sp.csr_matrix(base.layers["counts"])
    n_base = base.n_obs
    repeats = -(-n_cells // n_base)
    rng = np.random.default_rng(seed)
    parts = []
    for r in range(repeats):
        take = min(n_base, n_cells - r * n_base)
        obs = base.obs.iloc[:take].copy()
        obs.index = [f"{name}-{r}" for name in obs.index]
        parts.append(obs)
    obs = pd.concat(parts)
    for column in obs.columns:
        if isinstance(base.obs[column].dtype, pd.CategoricalDtype):
            obs[column] = obs[column].astype(base.obs[column].dtype)
    tmp = path.with_name(path.name + ".part")
    with h5py.File(tmp, "w") as handle:
        handle.attrs["encoding-type"] = "anndata"
        handle.attrs["encoding-version"] = "0.1.0"
        write_elem(handle, "obs", obs)
        write_elem(handle, "var", base.var)
        for r in range(repeats):
            take = min(n_base, n_cells - r * n_base)
            block = counts[:take].copy()
            block.data = rng.poisson(block.data).astype(np.float32)
            block.eliminate_zeros()
            logged = _log_normalised(block)
            if r == 0:
                write_elem(handle, "X", logged)
                matrix = sparse_dataset(handle["X"])
            else:
                matrix.append(logged)
        for name in ("uns", "obsm", "varm", "layers", "obsp", "varp"):
            write_elem(handle, name, {})
    os.replace(tmp, path)


# --- one step, in its own process -------------------------------------------------------


def _held_out() -> list[tuple[str, str]]:
    """One perturbed group per cell line, different drugs (the same for every size)."""
    drugs = [f"drug_{i:02d}" for i in range(1, 13)]
    return [(line, drugs[i]) for i, line in enumerate(CELL_LINES)]


def _open(path: Path, mode: str):
    from transferome.data import read_h5ad

    return read_h5ad(path, backed=mode == "backed")


def _step(name: str, path: Path, mode: str, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(1)
    from transferome.data import validate
    from transferome.data.aggregate import group_means
    from transferome.data.schema import Schema

    extra: dict = {}
    if name == "open":
        start, cpu = time.perf_counter(), time.process_time()
        adata = _open(path, mode)
        return _timed(start, cpu, {"n_obs": adata.n_obs})
    adata = _open(path, mode)
    schema = Schema()
    start, cpu = time.perf_counter(), time.process_time()
    if name == "validate":
        validate(adata)
    elif name == "group_means":
        extra["groups"] = len(group_means(adata, schema=schema))
    elif name in ("additive", "similar", "stacked"):
        from transferome.models import get_model

        targets = _held_out()
        import pandas as pd

        labels = pd.MultiIndex.from_arrays(
            [adata.obs["context"].astype(str), adata.obs["perturbation"].astype(str)]
        )
        train = adata[~labels.isin(targets)]
        model = get_model(name)()
        model.fit(train, schema=schema)
        extra["predicted"] = model.predict(train, targets).n_obs
    elif name == "benchmark":
        from transferome.benchmark import run_task

        result = run_task(
            "transfer",
            adata,
            models=["additive", "similar", "stacked"],
            task_options={"max_splits": 4},
        )
        summary = result.summary
        rows = summary[summary["metric"] == "pearson_delta"]
        extra["pearson_delta"] = {
            m: round(float(v), 4) for m, v in zip(rows["model"], rows["mean"], strict=True)
        }
    elif name == "xtransfer":
        extra.update(_xtransfer_throughput(adata, args.pairs))
        start, cpu = extra.pop("start"), extra.pop("cpu")
    elif name == "fe":
        extra.update(_fe_throughput(adata, args.fe_blocks, streamed=mode == "backed"))
        start, cpu = extra.pop("start"), extra.pop("cpu")
    elif name == "uge":
        extra.update(_uge_throughput(adata, args.uge_cells))
        start, cpu = extra.pop("start"), extra.pop("cpu")
    else:
        raise SystemExit(f"unknown step {name!r}")
    return _timed(start, cpu, extra)


def _peak_rss_mib() -> float:
    """High-water resident memory of this process (VmHWM: unlike ru_maxrss it starts again
    at exec, so it is not the size of the process that started this one)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(start: float, cpu: float, extra: dict) -> dict:
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
        "peak_rss_mib": _peak_rss_mib(),
        **extra,
    }


def _xtransfer_throughput(adata, n_pairs: int) -> dict:
    from transferome.data.pairing import make_pairs
    from transferome.models.xtransfer import PairRows
    from transferome.models.xtransfer.network import XTransferConfig, XTransferModule
    from transferome.training import AnnDataRows, TrainingConfig, fit_module

    pairs = make_pairs(
        adata.obs["context"].astype(str).to_numpy(),
        adata.obs["perturbation"].astype(str).to_numpy(),
    )
    take = np.random.default_rng(0).choice(len(pairs), size=min(n_pairs, len(pairs)), replace=False)
    subset = pairs.take(np.sort(take))
    module = XTransferModule(XTransferConfig(n_genes=adata.n_vars))
    config = TrainingConfig(
        max_epochs=1, batch_size=128, lr=2e-4, weight_decay=5e-4, accelerator="cpu"
    )
    dataset = PairRows(AnnDataRows(adata), subset)
    start, cpu = time.perf_counter(), time.process_time()
    result = fit_module(module, dataset, config=config)
    seconds = float(result.history["seconds"].iloc[0])  # the epoch itself, not Trainer setup
    return {"start": start, "cpu": cpu, "cells_per_s": 2 * len(subset) / seconds}


def _fe_throughput(adata, n_blocks: int, *, streamed: bool) -> dict:
    """FE's training data as ``fit`` builds them (from the file: the streamed PCA start and
    blocks read a chunk of rows at a time; in memory: one dense array and its blocks), then
    ``n_blocks`` blocks trained in the order of an epoch's sampler."""
    from fe_speed import time_blocks
    from transferome.models.fe.data import training_data
    from transferome.training.data import IndexBatchSampler

    start, cpu = time.perf_counter(), time.process_time()
    data = training_data(
        adata,
        layer=None,
        mask=None,
        obs_factors=np.zeros((adata.n_obs, 0), dtype=np.int64),
        dim=50,
        # the in-memory start is an SVD of the whole matrix (hours at this size): not timed
        pca=streamed,
        sample_block=32,
        gene_block=256,
        validation_fraction=None,
        seed=0,
    )
    prepared = time.perf_counter() - start
    order = IndexBatchSampler(
        len(data.train),
        1,
        shuffle=True,
        seed=0,
        chunk_size=getattr(data.train, "chunk_size", None),
    )
    picked = [int(batch[0]) for batch, _ in zip(order, range(n_blocks), strict=False)]
    seconds_per_value = time_blocks(data.train, adata.shape, picked, "32-true")
    return {
        "start": start,
        "cpu": cpu,
        "cells_per_s": 1.0 / seconds_per_value / adata.n_vars,
        "prepare_s": prepared,
    }


def _uge_throughput(adata, n_cells: int) -> dict:
    """One epoch of UGE (the default network) on ``n_cells`` cells drawn over the whole file
    (a view: from the file its batches are read from disk)."""
    from transferome.models import get_model

    rows = np.sort(np.random.default_rng(0).choice(adata.n_obs, n_cells, replace=False))
    subset = adata[rows]
    start, cpu = time.perf_counter(), time.process_time()
    model = get_model("uge")(max_epochs=1, early_stopping=None).fit(subset)
    seconds = float(model.history_["seconds"].iloc[0])  # the epoch itself
    return {"start": start, "cpu": cpu, "cells_per_s": n_cells / seconds}


# --- the driver -------------------------------------------------------------------------


def _run_step(name: str, path: Path, mode: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--step",
        name,
        "--file",
        str(path),
        "--mode",
        mode,
        "--pairs",
        str(args.pairs),
        "--fe-blocks",
        str(args.fe_blocks),
        "--uge-cells",
        str(args.uge_cells),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"error": " | ".join(tail)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _slope(sizes: list[int], seconds: list[float]) -> float:
    """Exponent of a power law fitted to time against cells (1.0: linear)."""
    keep = [(n, s) for n, s in zip(sizes, seconds, strict=True) if s and s > 0]
    if len(keep) < 2:
        return float("nan")
    x, y = np.log([n for n, _ in keep]), np.log([s for _, s in keep])
    return float(np.polyfit(x, y, 1)[0])


def _table(results: dict, mode: str, sizes: list[int], steps: tuple[str, ...]) -> str:
    lines = [
        f"### {mode}\n",
        "| step | "
        + " | ".join(f"{n:,} cells" for n in sizes)
        + " | exponent | last / previous per cell |",
        "|---|" + "---:|" * (len(sizes) + 2),
    ]
    for step in steps:
        cells, walls = [], []
        for n in sizes:
            got = results.get(mode, {}).get(str(n), {}).get(step)
            if got is None:
                cells.append("")
                walls.append(None)
            elif "error" in got:
                cells.append("error")
                walls.append(None)
            else:
                rate = f", {got['cells_per_s']:,.0f} cells/s" if "cells_per_s" in got else ""
                if "prepare_s" in got:
                    rate += f" after {got['prepare_s']:.1f} s of set-up"
                cells.append(
                    f"{got['wall_s']:.1f} s wall, {got['cpu_s']:.1f} s CPU, "
                    f"{got['peak_rss_mib'] / 1024:.2f} GiB{rate}"
                )
                walls.append(got["wall_s"])
        measured = [(n, w) for n, w in zip(sizes, walls, strict=True) if w]
        if step in NEURAL or len(measured) < 2:
            exponent = ratio = ""
        else:
            exponent = f"{_slope([n for n, _ in measured], [w for _, w in measured]):.2f}"
            (n0, w0), (n1, w1) = measured[-2], measured[-1]
            ratio = f"{(w1 / n1) / (w0 / n0):.2f}"
        lines.append(f"| {step} | " + " | ".join(cells) + f" | {exponent} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 500_000, 2_000_000])
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--memory-up-to", type=int, default=500_000)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the data files")
    parser.add_argument("--pairs", type=int, default=2048, help="XTransfer pairs trained")
    parser.add_argument(
        "--fe-blocks",
        type=int,
        default=1024,
        help="FE blocks trained (1,024 of 32 x 256: 4 chunks of 1,024 rows, each read once)",
    )
    parser.add_argument("--uge-cells", type=int, default=1024, help="cells of the UGE epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps",
        nargs="+",
        choices=STEPS + NEURAL,
        default=list(STEPS + NEURAL),
        help="steps to run (default all); with an existing --out the others are kept",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "scale.json")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("backed", "memory"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(_step(args.step, args.file, args.mode, args)))
        return

    folder = args.folder or Path(tempfile.mkdtemp(prefix="transferome-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    sizes = sorted(args.sizes)
    results: dict = {"backed": {}, "memory": {}, "genes": args.genes, "sizes": sizes}
    if args.out.exists() and set(args.steps) != set(STEPS + NEURAL):
        earlier = json.loads(args.out.read_text())  # rerun some steps, keep the rest
        if earlier.get("genes") == args.genes:
            results.update(
                {k: earlier[k] for k in ("backed", "memory", "file_gib") if k in earlier}
            )
            sizes = sorted(set(sizes) | set(earlier.get("sizes", [])))
            results["sizes"] = sizes
    base = None
    steps = tuple(s for s in STEPS + NEURAL if s in args.steps)
    all_steps = tuple(
        s
        for s in STEPS + NEURAL
        if any(s in results[m].get(str(n), {}) for m in ("backed", "memory") for n in sizes)
        or s in steps
    )
    try:
        for n in sorted(args.sizes):
            path = folder / f"cells_{n}.h5ad"
            if not path.exists():
                if base is None:
                    base = _base(args.genes, args.seed)
                start = time.perf_counter()
                write_cells(path, n, base, args.seed)
                print(
                    f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in "
                    f"{time.perf_counter() - start:.0f} s",
                    flush=True,
                )
            results.setdefault("file_gib", {})[str(n)] = path.stat().st_size / 2**30
            modes = ["backed"] + (["memory"] if n <= args.memory_up_to else [])
            for mode in modes:
                for step in steps:
                    got = _run_step(step, path, mode, args)
                    results[mode].setdefault(str(n), {})[step] = got
                    shown = got.get("error") or (
                        f"{got['wall_s']:.1f} s, {got['peak_rss_mib'] / 1024:.2f} GiB"
                    )
                    print(f"{n:>9,} {mode:>6} {step:<12} {shown}", flush=True)
            if not args.keep:
                path.unlink()
    finally:
        if not args.keep and args.folder is None:
            for leftover in folder.glob("*"):
                leftover.unlink()
            folder.rmdir()
    text = "".join(_table(results, mode, sizes, all_steps) + "\n" for mode in ("backed", "memory"))
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, args.out)
    args.out.with_suffix(".md").write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Shared pieces of the XTransfer benchmarks: the models, the runs (through ``run_task``) and
the tables."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scanpy as sc
import torch
from anndata import AnnData

from transferome.benchmark import run_task
from transferome.data.schema import Schema
from transferome.data.splits import Split
from transferome.metrics import summarize
from transferome.models import Estimator, XTransfer, get_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KANG_SCHEMA = Schema(context_key="cell_type", perturbation_key="condition", control="control")
HEADLINE = [
    "pearson_delta",
    "r2_deg",
    "pearson_delta_deg",
    "r2_delta",
    "r2",
    "explained_variance",
    "explained_variance_deg",
    "pearson",
    "pearson_deg",
    "mse",
    "deg_direction",
    "discrimination",
]

ModelFactory = Callable[[int], Estimator]


def use_cpu_threads(n: int = 1) -> None:
    """Threads for torch in a benchmark script (on a busy 2-core machine one thread is
    much faster than two, which wait on each other)."""
    torch.set_num_threads(n)


def top_hvgs(adata: AnnData, schema: Schema, n_top: int = 2000) -> AnnData:
    """Keep the ``n_top`` most variable genes of the control cells (no held-out cell is used)."""
    controls = adata[adata.obs[schema.perturbation_key].astype(str) == schema.control]
    table = sc.pp.highly_variable_genes(controls, n_top_genes=n_top, flavor="seurat", inplace=False)
    return adata[:, np.asarray(table["highly_variable"])].copy()


def baseline_factories() -> dict[str, ModelFactory]:
    return {
        name: (lambda seed, name=name: get_model(name)())
        for name in ("control", "additive", "linear")
    }


# Prediction variants of one fitted XTransfer: the paper's, and the transferome extensions.
PREDICTIONS = {
    "xtransfer": {"matching": "random", "prediction": "decoded"},
    "xtransfer_mean": {"matching": "mean", "prediction": "decoded"},
    "xtransfer_delta": {"matching": "mean", "prediction": "control_plus_delta"},
    "xtransfer_anchored": {"matching": "mean", "prediction": "anchored"},
}
# The network the benchmarks train on a 2-core CPU (the paper's 1024-512-256 network costs
# about 5x more per epoch); pass --paper-size to the scripts for the paper's widths.
CPU_NETWORK = {"hidden": (256,), "latent_dim": 64, "lr": 1e-3}
PAPER_NETWORK = {"hidden": (1024, 512, 256), "latent_dim": 128, "lr": 2e-4}


def xtransfer_factory(**params: object) -> ModelFactory:
    return lambda seed: XTransfer(**{**params, "random_state": seed})


def run_splits(
    adata: AnnData,
    splits: Sequence[Split],
    models: Mapping[str, ModelFactory],
    *,
    schema: Schema,
    seed: int = 0,
    variants: Mapping[str, Mapping[str, Mapping[str, object]]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`~transferome.benchmark.run_task` on ``splits`` with each factory's model for
    ``seed``, without the ceiling.

    ``variants`` maps a model name to ``{label: parameter changes}``: the fitted model then
    predicts once per label with those (prediction-time) parameters changed, without
    refitting. Returns the per-group metric table (columns ``model, context, perturbation,
    metric, value``) and the fit seconds per model and split (a variant repeats its fit's).
    """
    result = run_task(
        "transfer",
        adata,
        schema=schema,
        models={name: factory(seed) for name, factory in models.items()},
        splits=splits,
        ceiling=False,
        variants=variants,
        on_step=lambda step: print(f"  {step} done", file=sys.stderr, flush=True),
    )
    timings = result.timings.rename(columns={"fit_s": "fit_seconds"})
    return (
        result.results.drop(columns=["task", "split"]),
        timings[["model", "split", "fit_seconds"]],
    )


def summary_table(results: pd.DataFrame, metrics: Sequence[str] = HEADLINE) -> str:
    """Markdown: one row per metric, one column per model, ``mean (median)`` over groups."""
    frame = summarize(results, by=("model", "metric")).set_index(["metric", "model"])
    models = list(dict.fromkeys(results["model"]))
    lines = ["| metric | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for metric in metrics:
        cells = []
        for model in models:
            mean, median = frame.loc[(metric, model), ["mean", "median"]]
            cells.append(f"{mean:.3f} ({median:.3f})" if np.isfinite(mean) else "n/a")
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_group_table(results: pd.DataFrame, metric: str) -> str:
    """Markdown: one row per held-out group, one column per model, for ``metric``."""
    frame = results[results["metric"] == metric].pivot_table(
        index=["context", "perturbation"], columns="model", values="value", sort=False, dropna=False
    )
    models = list(dict.fromkeys(results["model"]))
    lines = [
        "| context | perturbation | " + " | ".join(models) + " |",
        "|---|---|" + "---:|" * len(models),
    ]
    for (context, perturbation), row in frame.iterrows():
        values = [float(row.get(m, np.nan)) for m in models]
        cells = [f"{v:.3f}" if np.isfinite(v) else "n/a" for v in values]
        lines.append(f"| {context} | {perturbation} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_table(results: pd.DataFrame, metrics: Sequence[str]) -> str:
    """Markdown: mean over groups per seed, then mean ± sd over seeds (column ``seed``)."""
    per_seed = (
        results[results["metric"].isin(metrics)]
        .groupby(["model", "metric", "seed"])["value"]
        .mean()
    )
    stats = per_seed.groupby(["model", "metric"]).agg(["mean", "std"])
    models = list(dict.fromkeys(results["model"]))
    lines = ["| variant | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for model in models:
        cells = [
            f"{stats.loc[(model, m), 'mean']:.3f} ± {stats.loc[(model, m), 'std']:.3f}"
            for m in metrics
        ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

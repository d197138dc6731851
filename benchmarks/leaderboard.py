"""Leaderboard: the transfer task on every real dataset with contexts x perturbations.

Run from the repository root:

    python benchmarks/leaderboard.py [--quick] [--datasets a,b] [--models m1,m2]
        [--max-groups N] [--seed S] [--data ../shared/data] [--out benchmarks/results/leaderboard]

For each dataset (:data:`DATASETS`, read with the ``transferome.datasets`` loaders) it runs
``transferome.benchmark.run_task("transfer", ...)``: every (context, perturbation) group whose
perturbation is measured in two or more contexts is held out alone and predicted from its
context's controls and the other contexts; signature data (L1000, Tahoe, Perturb-seq,
DrugMatrix) run with ``values="delta"``.

Sampling of held-out groups: where a dataset has more groups than ``--max-groups`` (default
200, 20 with ``--quick``), a seeded sample of the groups is held out (the transfer task's
``max_splits=`` option, seeded with ``--seed``), one split each; every other observation stays
in the training data of each split.

Models: by default every name of ``transferome.models.available_models()`` except the neural
``xtransfer``, ``fe`` and ``uge`` (name them in ``--models`` to include them). With ``--quick``
each model gets its class's ``fast_params``; otherwise its defaults.

Writes, under ``--out``: ``leaderboard.csv`` (dataset, model, metric, mean, median, n, n_nan:
mean and median over held-out groups), ``timings.csv`` (fit and predict seconds per dataset x
model, summed over splits), ``leaderboard.md`` (the table printed at the end) and
``skipped.csv`` (what could not run, and why). A dataset (or a model on it) that fails is
reported as skipped with the error, and the run goes on. Rows of model ``ceiling`` (the noise
ceiling of the held-out groups) and the metric ``scaled_pearson_delta`` are shown where the
results hold them, n/a otherwise.
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from transferome import datasets
from transferome.benchmark import run_task
from transferome.data.schema import Schema
from transferome.metrics import summarize
from transferome.models import available_models, get_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "leaderboard"
NEURAL = ("xtransfer", "fe", "uge")
CEILING = "ceiling"
SCHEMA = Schema()
# metric shown in each table column (label -> metric name of the result tables)
COLUMNS = {
    "pearson_delta": "pearson_delta",
    "r2 top-50 DEGs": "r2_deg",
    "scaled": "scaled_pearson_delta",
}
SUMMARY_COLUMNS = ["dataset", "model", "metric", "mean", "median", "n", "n_nan"]
TIMING_COLUMNS = ["dataset", "model", "n_splits", "fit_s", "predict_s", "fit_predict_s"]


@dataclass(frozen=True)
class Dataset:
    """A real dataset of the leaderboard.

    Attributes
    ----------
    name
        Short name (``--datasets``).
    file
        File name in the data folder.
    load
        Loader: path -> AnnData with the schema's obs keys.
    values
        ``log`` (levels; log, log2 or log-normalised) or ``delta`` (changes vs control).
    description
        What the contexts and perturbations are.
    """

    name: str
    file: str
    load: Callable[[Path], AnnData]
    values: str
    description: str


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            "kang_scgen",
            "kang_pbmc_scgen_valid.h5ad",
            datasets.load_kang_scgen,
            "log",
            "PBMC cell types x IFN-beta, 6,998 genes",
        ),
        Dataset(
            "kang_muscat",
            "kang_pbmc_muscat.h5ad",
            datasets.load_kang_muscat,
            "log",
            "PBMC clusters x IFN-beta, log-normalised counts",
        ),
        Dataset(
            "l1000",
            "l1000_modz_3drugs_65lines.gct",
            datasets.load_l1000_modz,
            "delta",
            "65 cell lines x 3 drugs, MODZ signatures",
        ),
        Dataset("cmap", "cmap_small.h5ad", datasets.load_cmap, "log", "cell lines x 5 drugs"),
        Dataset(
            "tggates_hepatocyte",
            "tggates_hepatocyte_small.h5ad",
            datasets.load_tggates,
            "log",
            "human hepatocytes, durations x 146 compounds",
        ),
        Dataset(
            "tggates_rat_liver",
            "tggates_rat_liver_wy14643_dose_time.h5ad",
            datasets.load_tggates_rat_liver,
            "log",
            "rat liver, 4 time points x WY-14643 at 3 doses",
        ),
        Dataset(
            "sciplex3",
            "sciplex3_pseudobulk_9drugs_3lines.h5ad",
            datasets.load_sciplex3_pseudobulk,
            "log",
            "3 cell lines x 9 drugs, pseudobulk",
        ),
        Dataset(
            "tahoe",
            "sigrecon_tahoe_rank_signatures.h5ad",
            datasets.load_tahoe_signatures,
            "delta",
            "10 cell lines x 101 drugs, rank signatures",
        ),
        Dataset(
            "perturbseq",
            "sigrecon_perturbseq_rank_signatures.h5ad",
            datasets.load_perturbseq_signatures,
            "delta",
            "K562 / RPE1 x 585 knock-downs, top-1000 rank scores",
        ),
        Dataset(
            "drugmatrix",
            "sigrecon_drugmatrix_rank_signatures.h5ad",
            datasets.load_drugmatrix_signatures,
            "delta",
            "rat liver / kidney x 39 compounds, rank signatures",
        ),
    ]
}


def default_models() -> list[str]:
    """Every registered model name but the neural ones."""
    return [name for name in available_models() if name not in NEURAL]


def model_params(models: Sequence[str], *, quick: bool) -> dict[str, dict[str, Any]]:
    """Each model's ``fast_params`` with ``quick``, else nothing (its defaults)."""
    if not quick:
        return {}
    return {name: dict(getattr(get_model(name), "fast_params", {}) or {}) for name in models}


def transfer_groups(adata: AnnData, schema: Schema, *, delta: bool) -> dict[str, list[str]]:
    """Perturbation -> the contexts where the transfer task holds it out.

    As :func:`transferome.data.splits.leave_one_context_out`: perturbations measured in two or
    more contexts, held out in each of their contexts that has controls (with ``delta``, every
    context has its zero control).
    """
    obs = adata.obs
    contexts = obs[schema.context_key].astype(str).to_numpy()
    labels = obs[schema.perturbation_key].astype(str).to_numpy()
    treated = labels != schema.control
    with_controls = set(contexts[treated]) if delta else set(contexts[~treated])
    pairs = pd.DataFrame({"c": contexts[treated], "p": labels[treated]}).drop_duplicates()
    groups: dict[str, list[str]] = {}
    for perturbation, frame in pairs.groupby("p", sort=True):
        where = sorted(frame["c"])
        if len(where) >= 2:
            kept = [c for c in where if c in with_controls]
            if kept:
                groups[str(perturbation)] = kept
    return groups


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _run(
    adata: AnnData,
    dataset: Dataset,
    models: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    *,
    max_groups: int,
    seed: int,
    ceiling: bool,
) -> Any:
    kwargs: dict[str, Any] = {
        "schema": SCHEMA,
        "models": list(models),
        "model_params": params,
        "seed": seed,
        "values": dataset.values,
        "task_options": {"max_splits": max_groups},
        "on_error": "skip",
    }
    if not ceiling and "ceiling" in inspect.signature(run_task).parameters:
        kwargs["ceiling"] = False
    return run_task("transfer", adata, **kwargs)


def run_dataset(
    dataset: Dataset,
    adata: AnnData,
    models: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    *,
    max_groups: int,
    seed: int,
    ceiling: bool,
) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, str, str]]]:
    """Results and timings of every model on one dataset, and what was skipped.

    All models run in one ``run_task`` call, which leaves out (and reports) a model that
    fails; if the call itself fails, each model runs alone.
    """
    try:
        result = _run(
            adata, dataset, models, params, max_groups=max_groups, seed=seed, ceiling=ceiling
        )
        failed = [
            (dataset.name, model, " ".join(str(reason).split())[:300])
            for model, reason in result.skipped.items()
        ]
        return result.results, result.timings, failed
    except Exception as exc:  # reported as skipped, the run goes on
        if len(models) == 1:
            return pd.DataFrame(), pd.DataFrame(), [(dataset.name, models[0], _short(exc))]
        first = exc
    tables, timings, skipped = [], [], []
    for model in models:
        try:
            result = _run(
                adata, dataset, [model], params, max_groups=max_groups, seed=seed, ceiling=ceiling
            )
        except Exception as exc:
            skipped.append((dataset.name, model, _short(exc)))
            continue
        frame = result.results
        if any((t["model"] == CEILING).any() for t in tables):
            frame = frame[frame["model"] != CEILING]
        tables.append(frame)
        timings.append(result.timings)
    if not tables:
        return pd.DataFrame(), pd.DataFrame(), [(dataset.name, "all", _short(first))]
    return pd.concat(tables, ignore_index=True), pd.concat(timings, ignore_index=True), skipped


def summarise_timings(name: str, timings: pd.DataFrame) -> pd.DataFrame:
    """Fit and predict seconds per model, summed over splits."""
    grouped = timings.groupby("model", sort=False)
    frame = pd.DataFrame(
        {
            "n_splits": grouped["split"].nunique(),
            "fit_s": grouped["fit_s"].sum(),
            "predict_s": grouped["predict_s"].sum(),
        }
    ).reset_index()
    frame["fit_predict_s"] = frame["fit_s"] + frame["predict_s"]
    frame.insert(0, "dataset", name)
    return frame[TIMING_COLUMNS]


def _cell(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def markdown_table(
    summary: pd.DataFrame, groups: pd.DataFrame, timings: pd.DataFrame, models: Sequence[str]
) -> str:
    """One row per dataset x model (and the ``ceiling`` row where present).

    ``summary`` has :data:`SUMMARY_COLUMNS`; ``groups`` has dataset, model, n_groups;
    ``timings`` has :data:`TIMING_COLUMNS`.
    """
    header = ["dataset", "model", *COLUMNS, "n groups", "fit+predict s"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    means = summary.set_index(["dataset", "model", "metric"])["mean"] if len(summary) else None
    counts = summary.set_index(["dataset", "model", "metric"])["n"] if len(summary) else None
    n_groups = groups.set_index(["dataset", "model"])["n_groups"] if len(groups) else None
    seconds = timings.set_index(["dataset", "model"])["fit_predict_s"] if len(timings) else None
    for name in dict.fromkeys(summary["dataset"]) if len(summary) else []:
        present = set(summary.loc[summary["dataset"] == name, "model"])
        order = [m for m in models if m in present]
        order += sorted(present - set(order) - {CEILING})
        if CEILING in present:
            order.append(CEILING)
        for model in order:
            row = [name, model]
            for metric in COLUMNS.values():
                key = (name, model, metric)
                row.append(_cell(means.get(key) if means is not None else None))
            total = n_groups.get((name, model)) if n_groups is not None else None
            if model == CEILING and counts is not None:
                defined = counts.get((name, model, "pearson_delta"))
                row.append(f"{int(defined or 0)}/{int(total or 0)} defined")
            else:
                row.append("" if total is None else str(int(total)))
            spent = seconds.get((name, model)) if seconds is not None else None
            row.append("" if spent is None else _cell(spent, 1))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer groups, fast_params")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated names")
    parser.add_argument("--models", default=None, help="comma-separated model names")
    parser.add_argument("--max-groups", type=int, default=None, help="cap on held-out groups")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ceiling", action="store_true", help="skip the noise ceiling")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; available: {list(DATASETS)}")
    models = (
        [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    ) or default_models()
    missing = sorted(set(models) - set(available_models()))
    if missing:
        parser.error(f"unknown model(s) {missing}; available: {list(available_models())}")
    params = model_params(models, quick=args.quick)
    max_groups = args.max_groups or (20 if args.quick else 200)
    data, out = Path(args.data), Path(args.out)

    start_all, cpu_all = time.perf_counter(), time.process_time()
    print(f"models: {', '.join(models)}; at most {max_groups} held-out groups a dataset")
    summaries, group_counts, timing_rows = [], [], []
    skipped: list[tuple[str, str, str]] = []
    for name in names:
        dataset = DATASETS[name]
        start = time.perf_counter()
        path = data / dataset.file
        try:
            adata = dataset.load(path)
        except Exception as exc:
            skipped.append((name, "all", _short(exc)))
            print(f"[{name}] skipped: {_short(exc)}", flush=True)
            continue
        groups = transfer_groups(adata, SCHEMA, delta=dataset.values == "delta")
        n_all = sum(len(c) for c in groups.values())
        n_held = min(n_all, max_groups)
        note = "" if n_held == n_all else " (a seeded sample of the groups)"
        print(
            f"[{name}] {dataset.description}: {adata.n_obs} obs x {adata.n_vars} genes, "
            f"values={dataset.values}, {n_held} of {n_all} groups held out{note}",
            flush=True,
        )
        results, timings, failed = run_dataset(
            dataset,
            adata,
            models,
            params,
            max_groups=max_groups,
            seed=args.seed,
            ceiling=not args.no_ceiling,
        )
        for entry in failed:
            print(f"[{name}] skipped {entry[1]}: {entry[2]}", flush=True)
        skipped.extend(failed)
        if len(results):
            summary = summarize(results)
            summary.insert(0, "dataset", name)
            summaries.append(summary[SUMMARY_COLUMNS])
            counts = (
                results.drop_duplicates(["model", "context", "perturbation"])
                .groupby("model", sort=False)
                .size()
                .rename("n_groups")
                .reset_index()
            )
            counts.insert(0, "dataset", name)
            group_counts.append(counts)
        if len(timings):
            timing_rows.append(summarise_timings(name, timings))
        print(f"[{name}] done in {time.perf_counter() - start:.1f} s", flush=True)

    summary = (
        pd.concat(summaries, ignore_index=True)
        if summaries
        else pd.DataFrame(columns=SUMMARY_COLUMNS)
    )
    groups_frame = (
        pd.concat(group_counts, ignore_index=True)
        if group_counts
        else pd.DataFrame(columns=["dataset", "model", "n_groups"])
    )
    timing_frame = (
        pd.concat(timing_rows, ignore_index=True)
        if timing_rows
        else pd.DataFrame(columns=TIMING_COLUMNS)
    )
    skipped_frame = pd.DataFrame(skipped, columns=["dataset", "model", "reason"])
    table = markdown_table(summary, groups_frame, timing_frame, models)
    wall, cpu = time.perf_counter() - start_all, time.process_time() - cpu_all
    footer = [
        "",
        f"Transfer task (leave one (context, perturbation) group out); mean over held-out "
        f"groups; scaled = (score - additive) / (ceiling - additive); n/a: not in the results "
        f"or undefined in every group. {'--quick, ' if args.quick else ''}seed {args.seed}; "
        f"wall {wall:.0f} s, CPU {cpu:.0f} s.",
    ]
    if len(skipped_frame):
        footer += ["", "Skipped:", ""]
        footer += [f"- {d} / {m}: {r}" for d, m, r in skipped_frame.itertuples(index=False)]
    markdown = table + "\n" + "\n".join(footer) + "\n"

    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "leaderboard.csv", index=False)
    timing_frame.to_csv(out / "timings.csv", index=False)
    skipped_frame.to_csv(out / "skipped.csv", index=False)
    (out / "leaderboard.md").write_text(markdown)
    print()
    print(markdown)
    print(f"written to {out}")


if __name__ == "__main__":
    main()

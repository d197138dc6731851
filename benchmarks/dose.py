"""Unmeasured doses and time points: dose_response beside nearest dose, log-linear, mean.

Run ``python benchmarks/dose.py [--datasets hepatocytes rat_liver simulator]
[--max-per-kind 120] [--seed 0]``. For each dataset and each dose task (``unseen_dose``,
``unseen_time``, ``dose_transfer``; see :mod:`transferome.benchmark.dose`) every model is
fitted without the held-out conditions and scored on their change against control:
``pearson_delta``, ``pearson_delta_deg`` and ``r2_delta_deg`` (top-50 DEGs of the held-out
condition), with the split-half noise ceiling of each held-out change. At most
``--max-per-kind`` splits of each kind (interpolation, extrapolation_high / _low, transfer)
are drawn with ``--seed``. Printed per dataset: one table per metric and the CPU seconds;
written to ``benchmarks/results/dose/<dataset>_<task>.csv`` and ``summary.md``.

Data:

- ``hepatocytes``: TG-GATEs human primary hepatocytes (146 compounds x Low / Middle / High x
  2 / 8 / 24 h, 196 genes); each change is taken against the controls of the compound's own
  experiment (``exp_id``); contexts are the time points.
- ``rat_liver``: TG-GATEs rat liver in vivo, WY-14643 at 10 / 30 / 100 mg/kg x 4 / 8 / 15 / 29
  days, 3 rats each, 11,886 genes.
- ``simulator``: the built-in single-cell atlas with 6 doses (0.1 to 30, in units of the
  EC50 scale; 3 cell lines x 12 drugs, 60 cells a condition).
- ``simulator_bulk``: the built-in bulk atlas with 5 doses (0.3 to 30), its mouse part (11
  organs x 3 drugs, 10 animals a condition; blood is one context, PBMC).

For both simulators the fitted EC50 of every drug (one curve shape over all its series) is
compared with the simulator's truth.

Figure: ``docs/figures/dose_response.png``, the fitted curves of the most changed genes of one
hepatocyte compound with their interval over the measured changes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from transferome.benchmark.dose import DOSE_TASKS, run_dose_task
from transferome.data.dose import condition_table
from transferome.data.schema import Schema
from transferome.datasets import load_tggates, load_tggates_rat_liver, simulate
from transferome.models.dose import DoseResponse

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "dose"
KINDS = {
    "unseen_dose": ("interpolation", "extrapolation_high", "extrapolation_low"),
    "unseen_time": ("interpolation", "extrapolation_high", "extrapolation_low"),
    "dose_transfer": ("transfer",),
}
METRICS = ("pearson_delta", "pearson_delta_deg", "r2_delta_deg", "interval_coverage")


def load(name: str):
    """(AnnData, match_key) of a dataset."""
    if name == "hepatocytes":
        return load_tggates(DATA / "tggates_hepatocyte_small.h5ad"), "exp_id"
    if name == "rat_liver":
        path = DATA / "tggates_rat_liver_wy14643_dose_time.h5ad"
        return load_tggates_rat_liver(path, perturbation="compound"), None
    if name == "simulator":
        atlas = simulate("single_cell", doses=(0.1, 0.3, 1.0, 3.0, 10.0, 30.0), combinations=0)
        return atlas, None
    if name == "simulator_bulk":
        return simulate("bulk", doses=(0.3, 1.0, 3.0, 10.0, 30.0)), None
    raise SystemExit(f"unknown dataset {name!r}")


def run_dataset(name: str, max_per_kind: int, seed: int) -> tuple[list[str], dict]:
    data, match_key = load(name)
    atlas = None
    if name.startswith("simulator"):
        # one species: the species' genes differ, so their changes are not comparable here
        atlas = data
        data = atlas.adatas["human" if "human" in atlas.adatas else "mouse"]
    schema = Schema()
    lines = [f"## {name}", ""]
    tables = {}
    for task, spec in DOSE_TASKS.items():
        try:
            table = condition_table(data, schema=schema, axis=spec["axis"], match_key=match_key)
        except Exception as exc:  # a dataset without a time axis
            lines += [f"`{task}`: not run ({exc})", ""]
            continue
        parts = []
        cpu = 0.0
        for kind in KINDS[task]:
            started = time.process_time()
            try:
                result = run_dose_task(
                    data, task, table=table, kinds=[kind], max_splits=max_per_kind, seed=seed
                )
            except Exception as exc:
                lines += [f"`{task}` / {kind}: not run ({exc})", ""]
                continue
            cpu += time.process_time() - started
            parts.append(result)
        if not parts:
            continue
        results = pd.concat([p.results for p in parts], ignore_index=True)
        merged = parts[0]
        merged.results = results
        merged.timings = pd.concat([p.timings for p in parts], ignore_index=True)
        OUT.mkdir(parents=True, exist_ok=True)
        results.to_csv(OUT / f"{name}_{task}.csv", index=False)
        per_model = merged.timings.groupby("model")["cpu_s"].sum()
        lines.append(merged.to_markdown(METRICS))
        lines.append(
            "CPU seconds (fit + predict, all splits): "
            + ", ".join(f"{m} {v:.1f}" for m, v in per_model.items())
            + f"; task total {cpu:.0f} s."
        )
        lines.append("")
        tables[task] = (table, merged)
    if atlas is not None:
        lines += ec50_check(atlas, data)
    return lines, tables


def ec50_check(atlas, adata) -> list[str]:
    """Fitted EC50 of every drug (all its series) against the simulator's truth."""
    table = condition_table(adata, schema=Schema(), axis="dose")
    model = DoseResponse().fit(table)
    fitted = model.ec50().set_index("perturbation")
    truth = atlas.truth.drugs["ec50"]
    rows = []
    for drug, row in fitted.iterrows():
        if drug not in truth.index:
            continue
        true = float(truth[drug])
        rows.append(
            {
                "drug": drug,
                "true_ec50": true,
                "fitted_ec50": row["ec50"],
                "ratio": row["ec50"] / true,
                "doses_on_both_sides": row["lowest"] < true < row["highest"],
            }
        )
    frame = pd.DataFrame(rows)
    both = frame[frame["doses_on_both_sides"]]
    within = int((np.abs(np.log(both["ratio"])) <= np.log(2)).sum())
    lines = [
        f"EC50 (slope {model.slope_:g}): fitted within a factor 2 of the truth for {within} "
        f"of {len(both)} drugs with doses on both sides; median |log2 ratio| "
        f"{np.median(np.abs(np.log2(both['ratio']))):.2f}.",
        "",
        "| drug | true EC50 | fitted | ratio |",
        "|---|---:|---:|---:|",
    ]
    for r in frame.itertuples():
        lines.append(f"| {r.drug} | {r.true_ec50:.2f} | {r.fitted_ec50:.2f} | {r.ratio:.2f} |")
    frame.to_csv(OUT / "simulator_ec50.csv", index=False)
    return [*lines, ""]


def figure(data, match_key) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from transferome.plotting.figures import dose_response_frame, plot_dose_response

    table = condition_table(data, schema=Schema(), axis="dose", match_key=match_key)
    model = DoseResponse().fit(table)
    # the series with three doses whose highest dose changes most
    series = table.series()
    full = {s: rows for s, rows in series.items() if len(rows) >= 3}
    best = max(full, key=lambda s: float(np.nanmean(np.abs(table.deltas[full[s][-1]]))))
    top = np.argsort(-np.abs(table.deltas[full[best][-1]]))[:6]
    genes = [table.genes[i] for i in top]
    frame = dose_response_frame(model, best, genes)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    plot_dose_response(frame, ax, title=f"{best}: fitted curve, 80% interval, measured")
    ax.set_xlabel("concentration (uM)", fontsize=8)
    fig.tight_layout()
    path = ROOT / "docs" / "figures" / "dose_response.png"  # kept in the repository
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["hepatocytes", "rat_liver", "simulator"])
    parser.add_argument("--max-per-kind", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-figure", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.process_time()
    lines = [
        f"# Dose tasks (`python benchmarks/dose.py --max-per-kind {args.max_per_kind} "
        f"--seed {args.seed}`)",
        "",
    ]
    for name in args.datasets:
        block, _ = run_dataset(name, args.max_per_kind, args.seed)
        print("\n".join(block), flush=True)
        lines += block
    if not args.no_figure and "hepatocytes" in args.datasets:
        data, match_key = load("hepatocytes")
        print(f"figure: {figure(data, match_key)}")
    lines.append(f"Total CPU seconds: {time.process_time() - started:.0f}.")
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT / 'summary.md'}")


if __name__ == "__main__":
    main()

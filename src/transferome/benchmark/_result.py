"""The tables a benchmark run returns, and the model names of its reference rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.benchmark._tasks import HOLDOUT_TEXT
from transferome.metrics import (
    METRICS,
)
from transferome.models import Estimator

__all__ = ["CEILING", "REFERENCE_ROWS", "RESULT_COLUMNS", "TRUTH", "BenchmarkResult"]

RESULT_COLUMNS = ["task", "split", "model", "context", "perturbation", "metric", "value"]
CEILING = "ceiling"
"""Model name of the noise-ceiling rows of a result table."""
TRUTH = "truth"
"""Model name of the rows scoring the noise-free truth (simulated data only)."""
REFERENCE_ROWS = (CEILING, TRUTH)
"""Model names of a result table that are bounds, not models."""
_REFERENCE = "additive"  # the baseline of the scaled score
_SCALED = "scaled_pearson_delta"


@dataclass(frozen=True)
class BenchmarkResult:
    """Tables of a benchmark run.

    Attributes
    ----------
    task
        Name of the task.
    results
        One row per split x group x model x metric (columns :data:`RESULT_COLUMNS`). Unless
        switched off, rows of model ``"ceiling"`` hold each group's noise ceiling under the
        metric names ``pearson_delta`` and ``pearson_delta_deg``, and every model has the
        metric ``scaled_pearson_delta``. With a ``truth``, rows of model ``"truth"`` score
        the noise-free profiles as if they were a prediction (the Bayes ceiling).
    summary
        Mean and median over groups per model x metric (NaN values left out, counted in
        ``n_nan``; see :func:`transferome.metrics.summarize`).
    timings
        Seconds spent in ``fit`` and ``predict`` per split and model.
    holdout
        What each split held out: ``"group"`` (one (context, perturbation) group, the
        context's other perturbations in training), ``"context"`` (every perturbed group of
        one context at once) or ``"combination"``; see :data:`HOLDOUT_TEXT`.
    predictions
        Model label -> its predicted mean profiles, one row per held-out group (all splits).
    fitted
        Model label -> the estimator fitted on the last split (only with ``keep_models``).
    skipped
        Model label -> why it could not run (with ``on_error="skip"``); such a model has no
        results.
    """

    task: str
    results: pd.DataFrame
    summary: pd.DataFrame
    timings: pd.DataFrame = field(repr=False)
    holdout: str = ""
    predictions: dict[str, AnnData] = field(default_factory=dict, repr=False)
    fitted: dict[str, Estimator] = field(default_factory=dict, repr=False)
    skipped: dict[str, str] = field(default_factory=dict)

    def holdout_text(self) -> str:
        """One sentence saying what the splits held out."""
        return HOLDOUT_TEXT.get(self.holdout, self.holdout)

    def per_perturbation(self, metric: str = "pearson_delta") -> pd.DataFrame:
        """Mean of ``metric`` over the held-out groups of each perturbation, per model.

        One row per perturbation (with ``n_groups``, the number of held-out groups), one
        column per model; NaN where the metric is undefined in every group.
        """
        rows = self.results[self.results["metric"] == metric]
        table = rows.pivot_table(
            index="perturbation", columns="model", values="value", aggfunc="mean", sort=True
        )
        models = [m for m in dict.fromkeys(self.results["model"]) if m in table.columns]
        table = table.reindex(columns=models)
        table.columns.name = None
        n_groups = rows.drop_duplicates(["context", "perturbation"]).groupby("perturbation")
        table.insert(0, "n_groups", n_groups.size().reindex(table.index).astype(int))
        return table

    def report_markdown(self, metric: str = "pearson_delta") -> str:
        """:meth:`to_markdown`, what the splits held out, and the per-perturbation table."""
        lines = [self.to_markdown(), ""]
        if self.holdout:
            lines += [f"Held out ({self.holdout}): {self.holdout_text()}.", ""]
        table = self.per_perturbation(metric)
        if not table.empty:
            models = [c for c in table.columns if c != "n_groups"]
            lines += [
                f"Mean `{metric}` per perturbation (over its held-out groups):",
                "",
                "| perturbation | groups | " + " | ".join(models) + " |",
                "|---|---:|" + "---:|" * len(models),
            ]
            for perturbation, row in table.iterrows():
                cells = [f"{row[m]:.3f}" if np.isfinite(row[m]) else "n/a" for m in models]
                lines.append(
                    f"| {perturbation} | {int(row['n_groups'])} | " + " | ".join(cells) + " |"
                )
        return "\n".join(lines).rstrip() + "\n"

    def to_markdown(self, metrics: Sequence[str] | None = None) -> str:
        """Markdown table: one row per metric, one column per model, ``mean (median)``."""
        frame = self.summary
        names = list(metrics) if metrics is not None else list(dict.fromkeys(frame["metric"]))
        models = list(dict.fromkeys(frame["model"]))
        cells = frame.set_index(["metric", "model"])
        lines = [
            "| metric | " + " | ".join(models) + " |",
            "|---|" + "---:|" * len(models),
        ]
        for name in names:
            arrow = (
                "" if name not in METRICS else (" ↑" if METRICS[name].higher_is_better else " ↓")
            )
            row = []
            for model in models:
                if (name, model) not in cells.index:
                    row.append("")
                    continue
                mean, median = cells.loc[(name, model), ["mean", "median"]]
                row.append(f"{mean:.3f} ({median:.3f})" if np.isfinite(mean) else "n/a")
            lines.append(f"| {name}{arrow} | " + " | ".join(row) + " |")
        n_models = len(set(self.results["model"]) - set(REFERENCE_ROWS))
        n = int(self.results[["context", "perturbation"]].drop_duplicates().shape[0])
        lines.append("")
        lines.append(
            f"Task `{self.task}`: mean (median) over {n} held-out groups; n/a: undefined in "
            f"every group. {n_models} models."
        )
        ceilings = self.results[
            (self.results["model"] == CEILING) & (self.results["metric"] == "pearson_delta")
        ]
        if len(ceilings):
            n_groups_with_ceiling = int(ceilings["value"].notna().sum())
            lines[-1] += (
                f" `{CEILING}`: split-half noise ceiling of the measured change "
                f"(Spearman-Brown), defined in {n_groups_with_ceiling} of {n} groups; "
                f"`{_SCALED}` = (score - {_REFERENCE}) / ({CEILING} - {_REFERENCE})."
            )
        if (self.results["model"] == TRUTH).any():
            lines[-1] += (
                f" `{TRUTH}`: the noise-free profiles scored as a prediction, the best any "
                "model can do (simulated data)."
            )
        return "\n".join(lines)

"""The rows of the summary table and its HTML: winners, baselines, margins, ceilings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from transferome.benchmark import CEILING, TRUTH
from transferome.report._labels import _BOUNDS, BASELINES
from transferome.report._markup import _e, _fmt

_SUMMARY_COLUMNS = [
    "task",
    "metric",
    "winner",
    "model",
    "score",
    "scaled",
    "baseline",
    "baseline_score",
    "baseline_scaled",
    "ceiling",
    "ceiling_undefined",
    "truth",
    "n_groups",
]
"""Columns of :func:`summary_table` before ``margin``."""


def _mean(summary: pd.DataFrame, model: str, metric: str) -> float:
    row = summary[(summary["model"] == model) & (summary["metric"] == metric)]
    return float(row["mean"].iloc[0]) if len(row) else float("nan")


def _ceiling_counts(summary: pd.DataFrame) -> tuple[float, int, int]:
    """Mean noise ceiling of ``pearson_delta``, groups where it is undefined, groups."""
    row = summary[(summary["model"] == CEILING) & (summary["metric"] == "pearson_delta")]
    if row.empty:
        return float("nan"), 0, 0
    n, n_nan = int(row["n"].iloc[0]), int(row["n_nan"].iloc[0])
    return float(row["mean"].iloc[0]), n_nan, n + n_nan


def _row(**values: Any) -> dict[str, Any]:
    """Return a summary row: ``values`` over the defaults (no baseline, ceiling or scaled score)."""
    row: dict[str, Any] = dict.fromkeys(_SUMMARY_COLUMNS, np.nan)
    row.update(baseline=None, ceiling_undefined=0, n_groups=0)
    row.update(values)
    return row


def _perturbation_row(title: str, summary: pd.DataFrame) -> dict[str, Any] | None:
    scores = summary[(summary["metric"] == "pearson_delta") & ~summary["model"].isin(_BOUNDS)]
    scores = scores[scores["mean"].notna()].sort_values("mean", ascending=False, kind="stable")
    if scores.empty:
        return None
    models = scores[~scores["model"].isin(BASELINES)]
    baselines = scores[scores["model"].isin(BASELINES)]
    best = (models if not models.empty else scores).iloc[0]
    ceiling, undefined, n_groups = _ceiling_counts(summary)
    row = _row(
        task=title,
        metric="pearson_delta (mean)",
        winner=scores.iloc[0].model,
        model=best.model,
        score=best["mean"],
        scaled=_mean(summary, best.model, "scaled_pearson_delta"),
        ceiling=ceiling,
        ceiling_undefined=undefined,
        truth=_mean(summary, TRUTH, "pearson_delta"),
        n_groups=n_groups,
    )
    if not baselines.empty:
        base = baselines.iloc[0]
        row.update(
            baseline=base.model,
            baseline_score=base["mean"],
            baseline_scaled=_mean(summary, base.model, "scaled_pearson_delta"),
        )
    return row


def _ceiling_text(ceiling: float, undefined: int, n_groups: int) -> str:
    if n_groups == 0:
        return ""
    if undefined == n_groups:
        return f"n/a (undefined in all {n_groups} groups)"
    text = _fmt(ceiling)
    if undefined:
        text += f" (n/a in {undefined} of {n_groups} groups)"
    return text


def _scored(score: Any, scaled: Any) -> str:
    if isinstance(scaled, float | np.floating) and not math.isfinite(float(scaled)):
        return _fmt(score)
    return f"{_fmt(score)}, scaled {_fmt(scaled)}"


def _summary_html(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p>No task produced scores.</p>"
    lines = [
        '<table class="summary"><tr><th>task</th><th>winner</th><th>best model</th>'
        "<th>strongest baseline</th><th>margin</th><th>noise ceiling</th></tr>"
    ]
    truth_note = False
    for row in frame.itertuples():
        margin = row.margin
        css = "win" if margin > 0 else "lose"
        base = (
            "n/a"
            if row.baseline is None
            else f"{_e(row.baseline)} ({_scored(row.baseline_score, row.baseline_scaled)})"
        )
        sign = "n/a" if not np.isfinite(margin) else f"{margin:+.3f}"
        ceiling = _ceiling_text(row.ceiling, int(row.ceiling_undefined), int(row.n_groups))
        if isinstance(row.truth, float | np.floating) and math.isfinite(float(row.truth)):
            ceiling = (
                f"{ceiling}; truth {_fmt(row.truth)}*" if ceiling else f"truth {_fmt(row.truth)}*"
            )
            truth_note = True
        lines.append(
            f"<tr><td>{_e(row.task)}</td><td>{_e(row.winner)}</td>"
            f"<td>{_e(row.model)}: {_scored(row.score, row.scaled)} {_e(row.metric)}</td>"
            f'<td>{base}</td><td class="{css}">{sign}</td><td>{_e(ceiling)}</td></tr>'
        )
    lines.append("</table>")
    if truth_note:
        lines.append(
            '<p class="note">* truth: the simulator\'s noise-free profiles scored as a '
            "prediction, the best any model can do on these held-out observations; the "
            "split-half noise ceiling estimates it from the data alone.</p>"
        )
    return "\n".join(lines)

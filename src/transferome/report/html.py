"""The HTML report of a run: one self-contained file (figures embedded, no script, no network).

Every label that comes from the data or the configuration is escaped with :func:`html.escape`
(tables through ``DataFrame.to_html(escape=True)``); figures are embedded as base64 PNG and
also written beside the report as PNG and SVG.

The report takes the results as data: a run result whose ``stages`` map each task name, in
the order of the report, to an object with ``tables`` (tidy frames, as written to
``tables/``) and optionally ``title`` and ``description``. It never imports the pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferome.benchmark import CEILING, TRUTH
from transferome.data import atomic_path, atomic_write_text, spreadsheet_safe
from transferome.report._figures import _Figures
from transferome.report._labels import BASELINES, KEY_METRICS
from transferome.report._markup import _STYLE, _e, _heading, _table
from transferome.report._sections import _section
from transferome.report._summary import _SUMMARY_COLUMNS, _perturbation_row, _row, _summary_html

__all__ = [
    "BASELINES",
    "CEILING",
    "KEY_METRICS",
    "TRUTH",
    "render_report",
    "summary_table",
    "write_report",
]


def summary_table(stages: Mapping[str, Any]) -> pd.DataFrame:
    """Return one row per task: the winner, the best model, the strongest baseline, the margin.

    And, for the perturbation tasks, the noise ceiling and the scaled scores.

    ``stages`` maps task names to results with ``tables`` (and a ``title``, the task column;
    the name when missing). ``model`` is the best model that is not a baseline, ``baseline``
    the strongest baseline (the best of :data:`BASELINES` present), ``margin`` the model's
    score minus the baseline's (negative: the baseline wins). The noise ceiling is a bound,
    never the winner: ``ceiling`` is its mean over the groups where it is defined,
    ``ceiling_undefined`` the number of the ``n_groups`` held-out groups where it is not;
    ``truth`` the mean score of the noise-free profiles (simulated data, else NaN);
    ``scaled`` and ``baseline_scaled`` are the mean ``scaled_pearson_delta``,
    ``(score - additive) / (ceiling - additive)`` per group.

    Perturbation tasks are ranked by the mean ``pearson_delta`` over held-out groups;
    annotation by accuracy against the best of chance and the ortholog-mapped classifiers;
    gene mapping by precision@1 against the ortholog
    table; experimental design by the share of random's error-curve area a strategy saves,
    ``suggested`` against the best other strategy.
    """
    rows = []
    for name, result in stages.items():
        tables = result.tables
        title = _heading(name, result)[0]
        if "summary" in tables and name != "ablation":
            row = _perturbation_row(title, tables["summary"])
            if row is not None:
                rows.append(row)
        elif name == "annotation" and "accuracy" in tables:
            overall = tables["accuracy"].set_index("context").loc["all"]
            # the strongest of chance and the ortholog-mapped classifiers
            named = [c for c in overall.index if c not in ("n", "accuracy")]
            best = max(named, key=lambda c: float(overall[c]))
            winner = "uge" if overall["accuracy"] > overall[best] else best
            rows.append(
                _row(
                    task=title,
                    metric="accuracy",
                    winner=winner,
                    model="uge",
                    score=overall["accuracy"],
                    baseline=best,
                    baseline_score=overall[best],
                )
            )
        elif name == "design" and "auc" in tables:
            auc = tables["auc"].set_index("strategy")
            # share of random's error-curve area that each strategy saves (higher is better)
            saved = 0.0 - auc["vs_random"].astype(float)
            if "suggested" in saved.index and saved.notna().all():
                bases = saved.drop("suggested")
                base = bases.idxmax() if len(bases) else None
                rows.append(
                    _row(
                        task=title,
                        metric="error-curve area saved against random",
                        winner=saved.idxmax(),
                        model="suggested",
                        score=saved["suggested"],
                        baseline=base,
                        baseline_score=bases.max() if len(bases) else np.nan,
                    )
                )
        elif name == "gene_mapping" and "precision" in tables:
            overall = tables["precision"]
            overall = overall[overall["group"] == "all"].sort_values(
                "precision_at_1", ascending=False
            )
            best = overall.iloc[0]
            others = overall[overall["method"] != "ortholog"]
            model = others.iloc[0] if not others.empty else best
            base = overall[overall["method"] == "ortholog"]
            rows.append(
                _row(
                    task=title,
                    metric="precision@1",
                    winner=best.method,
                    model=model.method,
                    score=model.precision_at_1,
                    baseline="ortholog" if not base.empty else None,
                    baseline_score=base.precision_at_1.iloc[0] if not base.empty else np.nan,
                )
            )
    frame = pd.DataFrame(rows, columns=_SUMMARY_COLUMNS)
    frame.insert(
        frame.columns.get_loc("baseline_scaled") + 1,
        "margin",
        frame["score"] - frame["baseline_score"],
    )
    return frame


def render_report(
    folder: Path,
    result: Any,
    *,
    config: Any,
    data: Any,
    versions: Mapping[str, str],
    seconds: float,
    combination: Any = None,
) -> str:
    """Render the report as an HTML string; figures are written under ``folder/figures``.

    ``result.stages`` are the sections, in their order; ``result.skipped`` (name -> reason)
    and ``result.timings`` are listed; ``config`` gives ``seed`` and ``raw``, ``data`` the
    ``origin`` of the data.
    """
    import yaml

    figs = _Figures(folder)
    summary = summary_table(result.stages)
    sections = [_section(n, stage, figs) for n, stage in result.stages.items()]
    skipped = "".join(
        f"<li><b>{_e(name)}</b>: {_e(reason)}</li>" for name, reason in result.skipped.items()
    )
    origin = _e(data.origin)
    if combination is not None:
        origin += f"; combinations: {_e(combination.origin)}"
    timings = result.timings if not result.timings.empty else pd.DataFrame()
    config_text = yaml.safe_dump(dict(config.raw), sort_keys=False)
    version_rows = pd.DataFrame(list(versions.items()), columns=["package", "version"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>transferome report</title><style>{_STYLE}</style></head>
<body>
<h1>transferome report</h1>
<p class="note">Data: {origin}. Seed {config.seed}. Run time {seconds:.0f} s.</p>
<section id="summary"><h2>Summary</h2>
{_summary_html(summary)}
<p class="note">Winner: the best of all (models and baselines; the noise ceiling is a bound,
not a model) by the mean score over held-out groups; margin: the best model's score minus
the strongest baseline's, the best of control (no change), additive (control plus the mean
change measured elsewhere), linear (low-rank effects), similar and collaborative (the
additive change weighted by how alike the contexts' controls / other responses are) where
they ran, and additive (orthologs) (the additive change across species through the ortholog
table). Noise ceiling: the mean over held-out groups of what a noise-free prediction scores
(split-half reliability of the measured change); n/a where a group has too few replicates.
Scaled: (score - additive) / (ceiling - additive), per group, mean over the groups where
it is defined.</p>
{f"<p>Tasks not run:</p><ul>{skipped}</ul>" if skipped else ""}
</section>
{"".join(sections)}
<section id="reproducibility"><h2>Reproducibility</h2>
<p>Every table is in <code>tables/</code>, every figure in <code>figures/</code> (PNG and SVG),
fitted models in <code>models/</code> (safetensors + JSON), and the configuration below in
<code>config.yaml</code>; <code>transferome run --config config.yaml</code> repeats the run.</p>
<h3>Time per task</h3>{_table(timings) if not timings.empty else ""}
<h3>Versions</h3>{_table(version_rows)}
<h3>Configuration</h3><pre>{_e(config_text)}</pre>
</section>
</body></html>
"""


def write_report(
    folder: str | os.PathLike[str],
    result: Any,
    *,
    config: Any,
    data: Any,
    versions: Mapping[str, str],
    seconds: float,
    combination: Any = None,
) -> Path:
    """Write ``report.html`` (and the figures) into ``folder``; returns the report's path."""
    folder = Path(folder)
    text = render_report(
        folder,
        result,
        config=config,
        data=data,
        versions=versions,
        seconds=seconds,
        combination=combination,
    )
    summary = summary_table(result.stages)
    with atomic_path(folder / "tables" / "summary.csv") as tmp:
        spreadsheet_safe(summary).to_csv(tmp, index=False)
    return atomic_write_text(folder / "report.html", text)

"""The HTML report of a run: one self-contained file (figures embedded, no script, no network).

Every label that comes from the data or the configuration is escaped with :func:`html.escape`
(tables through ``DataFrame.to_html(escape=True)``); figures are embedded as base64 PNG and
also written beside the report as PNG and SVG.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferome.data._atomic import atomic_path, atomic_write_text
from transferome.pipeline.stages import RUN_ORDER, STAGES, data_nouns

__all__ = ["BASELINES", "KEY_METRICS", "render_report", "summary_table", "write_report"]

BASELINES = ("control", "additive", "linear", "additive (orthologs)")
"""Model labels that are baselines (the summary compares the best model against them)."""

KEY_METRICS = ("pearson_delta", "r2", "pearson_deg", "r2_deg", "deg_direction", "discrimination")
"""Metrics of the transfer tables in the report (``pearson_delta`` decides the winner)."""


_STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc;
     padding-bottom: 0.2em; margin-top: 2em; } h3 { margin-bottom: 0.3em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.summary td, .summary th { font-size: 1.05em; }
.note { color: #555; font-size: 0.9em; } .win { color: #1b7837; font-weight: bold; }
.lose { color: #b2182b; font-weight: bold; } figure { margin: 1em 0; }
figcaption { color: #555; font-size: 0.85em; } img { max-width: 100%; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
"""


def _ordered(names: Any) -> list[str]:
    return [n for n in RUN_ORDER if n in names] + [n for n in names if n not in RUN_ORDER]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "n/a" if not math.isfinite(float(value)) else f"{float(value):.3f}"
    return _e(value)


def _table(frame: pd.DataFrame, *, css: str = "") -> str:
    return frame.to_html(
        index=False, escape=True, classes=css or None, border=0, float_format=_fmt, na_rep="n/a"
    )


# -- figures ----------------------------------------------------------------------------------
class _Figures:
    """Saves figures as PNG + SVG under ``folder/figures`` and returns ``<figure>`` HTML."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "figures"

    def add(self, fig: Any, name: str, caption: str) -> str:
        import matplotlib.pyplot as plt

        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
        with atomic_path(self.folder / f"{name}.png") as tmp:
            tmp.write_bytes(png.getvalue())
        with atomic_path(self.folder / f"{name}.svg") as tmp:
            fig.savefig(tmp, format="svg", bbox_inches="tight")
        plt.close(fig)
        data = base64.b64encode(png.getvalue()).decode("ascii")
        return (
            f'<figure id="fig-{_e(name)}"><img alt="{_e(caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{_e(caption)}</figcaption></figure>'
        )


def _new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1) -> tuple:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


# -- summary ------------------------------------------------------------------------------------
def summary_table(
    stages: Mapping[str, Any], *, nouns: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """One row per task: the winner, the best model and the best baseline, and the margin.

    ``nouns`` name the data's contexts and perturbations in the task titles (see
    :func:`~transferome.pipeline.stages.data_nouns`; default: organs and drugs).

    ``model`` is the best model that is not a baseline, ``margin`` its score minus the best
    baseline's (negative: the baseline wins).

    Transfer tasks are ranked by the mean ``pearson_delta`` over held-out groups; annotation by
    accuracy against chance; gene mapping by precision@1 against the ortholog table.
    """
    rows = []
    for name in _ordered(stages):
        if name not in stages:
            continue
        tables = stages[name].tables
        title = STAGES[name].heading(nouns)[0]
        if "summary" in tables and name != "ablation":
            scores = tables["summary"]
            scores = scores[(scores["metric"] == "pearson_delta") & scores["mean"].notna()]
            scores = scores.sort_values("mean", ascending=False)
            models = scores[~scores["model"].isin(BASELINES)]
            baselines = scores[scores["model"].isin(BASELINES)]
            if scores.empty:
                continue
            best = (models if not models.empty else scores).iloc[0]
            base = baselines.iloc[0] if not baselines.empty else None
            rows.append(
                (
                    title,
                    "pearson_delta (mean)",
                    scores.iloc[0].model,
                    best.model,
                    best["mean"],
                    None if base is None else base.model,
                    np.nan if base is None else base["mean"],
                )
            )
        elif name == "annotation":
            overall = tables["accuracy"].set_index("context").loc["all"]
            winner = "uge" if overall["accuracy"] > overall["chance"] else "chance"
            rows.append(
                (
                    title,
                    "accuracy",
                    winner,
                    "uge",
                    overall["accuracy"],
                    "chance",
                    overall["chance"],
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
                (
                    title,
                    "precision@1",
                    best.method,
                    model.method,
                    model.precision_at_1,
                    "ortholog" if not base.empty else None,
                    base.precision_at_1.iloc[0] if not base.empty else np.nan,
                )
            )
    frame = pd.DataFrame(
        rows,
        columns=["task", "metric", "winner", "model", "score", "baseline", "baseline_score"],
    )
    frame["margin"] = frame["score"] - frame["baseline_score"]
    return frame


def _summary_html(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p>No task produced scores.</p>"
    lines = [
        '<table class="summary"><tr><th>task</th><th>winner</th><th>best model</th>'
        "<th>best baseline</th><th>margin</th></tr>"
    ]
    for row in frame.itertuples():
        margin = row.margin
        css = "win" if margin > 0 else "lose"
        base = "n/a" if row.baseline is None else f"{_e(row.baseline)} ({_fmt(row.baseline_score)})"
        sign = "n/a" if not np.isfinite(margin) else f"{margin:+.3f}"
        lines.append(
            f"<tr><td>{_e(row.task)}</td><td>{_e(row.winner)}</td>"
            f"<td>{_e(row.model)}: {_fmt(row.score)} {_e(row.metric)}</td><td>{base}</td>"
            f'<td class="{css}">{sign}</td></tr>'
        )
    lines.append("</table>")
    return "\n".join(lines)


# -- sections -----------------------------------------------------------------------------------
def _metric_table(summary: pd.DataFrame) -> pd.DataFrame:
    rows = summary[summary["metric"].isin(KEY_METRICS)]
    table = rows.pivot_table(index="model", columns="metric", values="mean", sort=False)
    table = table.reindex(columns=[m for m in KEY_METRICS if m in table.columns])
    if "pearson_delta" in table.columns:
        table = table.sort_values("pearson_delta", ascending=False, na_position="last")
    table.columns.name = None
    return table.reset_index()


def _metric_notes() -> str:
    from transferome.metrics import METRICS

    items = "".join(
        f"<li><b>{_e(name)}</b> ({'higher' if METRICS[name].higher_is_better else 'lower'} is "
        f"better): {_e(METRICS[name].description)}</li>"
        for name in KEY_METRICS
        if name in METRICS
    )
    return f'<ul class="note">{items}</ul>'


def _transfer_section(name: str, tables: Mapping[str, pd.DataFrame], figs: _Figures) -> str:
    from transferome.plotting import model_frame, plot_models, plot_profile_scatter, profile_frame

    parts = [_table(_metric_table(tables["summary"]))]
    parts.append(
        '<p class="note">Mean over held-out (context, perturbation) groups; n/a: undefined '
        "(the control prediction has no change to correlate).</p>" + _metric_notes()
    )
    fig, axes = _new_figure(5.5, 0.45 * tables["summary"]["model"].nunique() + 1.2)
    plot_models(model_frame(tables["summary"]), axes[0, 0])
    parts.append(figs.add(fig, f"{name}_models", "Mean (bars) and median (dots) pearson_delta"))
    profiles = tables.get("profiles")
    if profiles is not None and not profiles.empty:
        ranked = model_frame(tables["summary"])
        drawn = [m for m in ranked["model"] if m in set(profiles["model"])]
        model = drawn[0] if drawn else str(profiles["model"].iloc[0])
        contexts = sorted(profiles.loc[profiles["model"] == model, "context"].unique())
        ncols = min(4, len(contexts))
        nrows = math.ceil(len(contexts) / ncols)
        fig, axes = _new_figure(3.0 * ncols, 2.8 * nrows, ncols, nrows)
        for ax, c in zip(axes.ravel(), contexts, strict=False):
            plot_profile_scatter(profile_frame(profiles, model, c), ax, title=str(c))
        for ax in axes.ravel()[len(contexts) :]:
            ax.set_visible(False)
        fig.tight_layout()
        parts.append(
            figs.add(
                fig,
                f"{name}_scatter",
                f"Predicted vs observed change of every gene in each held-out context ({model})",
            )
        )
    if "skipped" in tables:
        parts.append("<p>Models that could not run on these data:</p>")
        parts.append(_table(tables["skipped"]))
    return "\n".join(parts)


def _species_extra(tables: Mapping[str, pd.DataFrame], figs: _Figures) -> str:
    from transferome.plotting import latent_frame, plot_latent

    if "latent" not in tables:
        return ""
    fig, axes = _new_figure(11, 4.2, ncols=2)
    plot_latent(latent_frame(tables["latent"], "species"), axes[0, 0], title="by species")
    plot_latent(latent_frame(tables["latent"], "context"), axes[0, 1], title="by organ")
    fig.tight_layout()
    return figs.add(fig, "latent_umap", "UMAP of the shared latent space (every sample)")


def _annotation_section(tables: Mapping[str, pd.DataFrame], figs: _Figures) -> str:
    from transferome.plotting import annotation_frame, plot_annotation

    frame = annotation_frame(tables["accuracy"])
    fig, axes = _new_figure(max(4.0, 0.5 * len(frame) + 1.5), 3.2)
    plot_annotation(frame, axes[0, 0])
    fig.tight_layout()
    return "\n".join(
        [
            figs.add(fig, "annotation_accuracy", "Accuracy per organ; ticks: chance level"),
            _table(tables["accuracy"]),
        ]
    )


def _mapping_section(tables: Mapping[str, pd.DataFrame], figs: _Figures) -> str:
    from transferome.plotting import mapping_frame, plot_mapping

    if "precision" not in tables:
        counts = tables["mappings"].groupby("method")["target_gene"].nunique().reset_index()
        return (
            "<p>No known answer for these data: mappings are written to "
            "<code>tables/gene_mapping_mappings.csv</code>.</p>" + _table(counts)
        )
    fig, axes = _new_figure(6.5, 3.2)
    plot_mapping(mapping_frame(tables["precision"]), axes[0, 0])
    return "\n".join(
        [
            figs.add(fig, "mapping_precision", "Precision@1 by ortholog class and method"),
            _table(tables["precision"]),
        ]
    )


def _design_section(tables: Mapping[str, pd.DataFrame], figs: _Figures) -> str:
    from transferome.plotting import acquisition_frame, plot_acquisition

    fig, axes = _new_figure(5.0, 3.2)
    frame = acquisition_frame(tables["curve"])
    plot_acquisition(frame, axes[0, 0])
    parts = [
        figs.add(fig, "acquisition_curve", "Acquisition curve: suggested vs random experiments"),
        _table(frame.reset_index()),
    ]
    if "suggestions" in tables:
        parts.append("<h3>First experiments suggested from the partial design</h3>")
        parts.append(_table(tables["suggestions"]))
    return "\n".join(parts)


def _ablation_section(tables: Mapping[str, pd.DataFrame]) -> str:
    return _table(_metric_table(tables["summary"])) + _table(tables["variants"])


def _section(name: str, result: Any, figs: _Figures, nouns: Mapping[str, str] | None = None) -> str:
    tables = result.tables
    title, description = STAGES[name].heading(nouns)
    body = ""
    if name in ("transfer", "combination"):
        body = _transfer_section(name, tables, figs)
    elif name == "species_transfer":
        body = _transfer_section(name, tables, figs) + _species_extra(tables, figs)
    elif name == "annotation":
        body = _annotation_section(tables, figs)
    elif name == "gene_mapping":
        body = _mapping_section(tables, figs)
    elif name == "design":
        body = _design_section(tables, figs)
    elif name == "ablation":
        body = _ablation_section(tables)
    return (
        f'<section id="{_e(name)}"><h2>{_e(title)}</h2>'
        f'<p class="note">{_e(description)}.</p>{body}</section>'
    )


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
    """The report as an HTML string; figures are written under ``folder/figures``."""
    import yaml

    figs = _Figures(folder)
    nouns = data_nouns(data)
    summary = summary_table(result.stages, nouns=nouns)
    sections = [_section(n, result.stages[n], figs, nouns) for n in _ordered(result.stages)]
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
<p class="note">Winner: the best of all (models and baselines) by the mean score over
held-out groups; margin: the best model's score minus the best baseline's (control: no
change; additive: control plus the mean change measured elsewhere; linear: low-rank
effects; additive (orthologs): the same across species
through the ortholog table).</p>
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
    summary = summary_table(result.stages, nouns=data_nouns(data))
    with atomic_path(folder / "tables" / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    return atomic_write_text(folder / "report.html", text)

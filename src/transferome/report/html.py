"""The HTML report of a run: one self-contained file (figures embedded, no script, no network).

Every label that comes from the data or the configuration is escaped with :func:`html.escape`
(tables through ``DataFrame.to_html(escape=True)``); figures are embedded as base64 PNG and
also written beside the report as PNG and SVG.

The report takes the results as data: a run result whose ``stages`` map each task name, in
the order of the report, to an object with ``tables`` (tidy frames, as written to
``tables/``) and optionally ``title`` and ``description``. It never imports the pipeline.
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

from transferome.benchmark._run import CEILING, REFERENCE_ROWS, TRUTH
from transferome.data._atomic import atomic_path, atomic_write_text
from transferome.data._spreadsheet import spreadsheet_safe

__all__ = [
    "BASELINES",
    "CEILING",
    "KEY_METRICS",
    "TRUTH",
    "render_report",
    "summary_table",
    "write_report",
]

BASELINES = ("control", "additive", "linear", "similar", "collaborative", "additive (orthologs)")
"""Model labels that are baselines; the strongest of those present (by mean ``pearson_delta``)
is the bar the summary compares the best model against. ``additive (orthologs)`` is the
additive baseline across species."""

# Labels of the rows of a result table that are bounds, not models (never a winner): the noise
# ceiling and the simulator's noise-free truth.
_BOUNDS = REFERENCE_ROWS

KEY_METRICS = (
    "pearson_delta",
    "scaled_pearson_delta",
    "pearson_delta_deg",
    "r2",
    "pearson_deg",
    "r2_deg",
    "deg_direction",
    "discrimination",
)
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


def _heading(name: str, result: Any) -> tuple[str, str]:
    """Title and description of a stage result (its name when it has no title)."""
    return (
        str(getattr(result, "title", "") or name),
        str(getattr(result, "description", "") or ""),
    )


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
    """A summary row: ``values`` over the defaults (no baseline, ceiling or scaled score)."""
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


def summary_table(stages: Mapping[str, Any]) -> pd.DataFrame:
    """One row per task: the winner, the best model, the strongest baseline, the margin and,
    for the perturbation tasks, the noise ceiling and the scaled scores.

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
    annotation by accuracy against chance; gene mapping by precision@1 against the ortholog
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
            winner = "uge" if overall["accuracy"] > overall["chance"] else "chance"
            rows.append(
                _row(
                    task=title,
                    metric="accuracy",
                    winner=winner,
                    model="uge",
                    score=overall["accuracy"],
                    baseline="chance",
                    baseline_score=overall["chance"],
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


# -- sections -----------------------------------------------------------------------------------
def _metric_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean of each key metric per model, best ``pearson_delta`` first, the ceiling last."""
    rows = summary[summary["metric"].isin(KEY_METRICS)]
    table = rows.pivot_table(
        index="model", columns="metric", values="mean", sort=False, dropna=False
    )
    table = table.reindex(columns=[m for m in KEY_METRICS if m in table.columns])
    if "pearson_delta" in table.columns:
        table = table.sort_values("pearson_delta", ascending=False, na_position="last")
    table = pd.concat(
        [table[~table.index.isin(_BOUNDS)]] + [table[table.index == b] for b in _BOUNDS]
    )
    table.columns.name = None
    return table.reset_index()


def _ceiling_note(summary: pd.DataFrame) -> str:
    ceiling, undefined, n_groups = _ceiling_counts(summary)
    if n_groups == 0:
        return ""
    defined = n_groups - undefined
    where = (
        f"undefined in all {n_groups} held-out groups (too few replicates to split in halves)"
        if not defined
        else f"defined in {defined} of {n_groups} held-out groups, mean {_fmt(ceiling)}"
    )
    return (
        f'<p class="note"><b>{CEILING}</b>: the noise ceiling of each group, the split-half '
        "reliability of its measured change (Spearman-Brown corrected), whose square root "
        f"is what a noise-free prediction scores; {_e(where)}. <b>scaled_pearson_delta</b> "
        "= (score - additive) / (ceiling - additive) per group: 0 is the additive baseline, "
        "1 the ceiling; n/a where the ceiling is undefined or not above the additive "
        "score." + _truth_note(summary) + "</p>"
    )


def _truth_note(summary: pd.DataFrame) -> str:
    truth = _mean(summary, TRUTH, "pearson_delta")
    if not math.isfinite(truth):
        return ""
    return (
        f" <b>{TRUTH}</b>: the simulator's noise-free profiles scored as a prediction "
        f"(mean {_fmt(truth)}), the best any model can do; the split-half ceiling estimates "
        "it from the data alone."
    )


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

    summary = tables["summary"]
    models = summary[~summary["model"].isin(_BOUNDS)]
    parts = [_table(_metric_table(summary))]
    parts.append(
        '<p class="note">Mean over held-out (context, perturbation) groups; n/a: undefined '
        "(the control prediction has no change to correlate).</p>"
        + _ceiling_note(summary)
        + _metric_notes()
    )
    fig, axes = _new_figure(5.5, 0.45 * models["model"].nunique() + 1.2)
    plot_models(model_frame(models), axes[0, 0])
    parts.append(figs.add(fig, f"{name}_models", "Mean (bars) and median (dots) pearson_delta"))
    profiles = tables.get("profiles")
    if profiles is not None and not profiles.empty:
        ranked = model_frame(models)
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
    provenance = tables.get("provenance")
    if provenance is not None and not provenance.empty:
        parts.append(_provenance_html(provenance))
    if "skipped" in tables:
        parts.append("<p>Models that could not run on these data:</p>")
        parts.append(_table(tables["skipped"]))
    return "\n".join(parts)


def provenance_summary(provenance: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """The ``top`` source contexts of every prediction, with their weights, one row each
    target (``model``, ``context``, ``perturbation``, ``sources``)."""
    sources = provenance[provenance["kind"] == "source_context"]
    rows = []
    keys = (
        ["model", "context", "perturbation"] if "model" in sources else ["context", "perturbation"]
    )
    for key, group in sources.groupby(keys, sort=True):
        ranked = group.sort_values("weight", ascending=False).head(top)
        text = ", ".join(
            f"{n} {w:.2f}" for n, w in zip(ranked["name"], ranked["weight"], strict=True)
        )
        rows.append((*key, text))
    return pd.DataFrame(rows, columns=[*keys, "sources"])


def _provenance_html(provenance: pd.DataFrame) -> str:
    summary = provenance_summary(provenance)
    stack = provenance[provenance["kind"] == "base_predictor"]
    parts = [
        "<p>What each prediction leaned on: the source contexts with the largest effective "
        "weights on their measured change (the full table, with the base predictors' "
        "coefficients and the neighbouring perturbations, is in "
        "<code>tables/</code>).</p>",
        _table(summary),
    ]
    if not stack.empty:
        keys = [k for k in ("model", "name") if k in stack]
        mean = stack.groupby(keys, sort=False)["weight"].mean().reset_index()
        mean = mean.rename(columns={"name": "base predictor", "weight": "mean coefficient"})
        parts.append("<p>Coefficients of the stack, mean over the splits:</p>")
        parts.append(_table(mean))
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
        figs.add(
            fig,
            "acquisition_curve",
            "Acquisition curves: error left on the unmeasured cells as experiments are "
            "acquired by each strategy (mean and a band of one standard deviation over seeds)",
        ),
    ]
    if "auc" in tables:
        parts.append(
            "<p>Area under the error curve (mean of its points) per strategy, its difference "
            "to random and the paired tests across seeds:</p>"
        )
        parts.append(_table(tables["auc"]))
    else:
        parts.append(_table(frame))
    if "suggestions" in tables:
        parts.append("<h3>First experiments suggested from the partial design</h3>")
        parts.append(_table(tables["suggestions"]))
    return "\n".join(parts)


def _ablation_section(tables: Mapping[str, pd.DataFrame]) -> str:
    summary = tables["summary"]
    return _table(_metric_table(summary)) + _ceiling_note(summary) + _table(tables["variants"])


def _section(name: str, result: Any, figs: _Figures) -> str:
    tables = result.tables
    title, description = _heading(name, result)
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
        + (f'<p class="note">{_e(description)}.</p>' if description else "")
        + f"{body}</section>"
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
    """The report as an HTML string; figures are written under ``folder/figures``.

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

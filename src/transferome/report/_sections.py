"""The sections of the report, one builder per task: tables, figures and notes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from transferome.benchmark import CEILING, TRUTH
from transferome.report._figures import _Figures, _new_figure
from transferome.report._labels import _BOUNDS, KEY_METRICS
from transferome.report._markup import _e, _fmt, _heading, _table
from transferome.report._provenance import _provenance_html
from transferome.report._summary import _ceiling_counts, _mean


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

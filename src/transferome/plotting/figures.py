"""Figures of a run: for each, a function preparing a tidy DataFrame and one drawing on an ``ax``.

The ``*_frame`` functions take the tables a run writes (``tables/*.csv``) and return exactly
what is drawn; the ``plot_*`` functions draw it on a matplotlib ``Axes`` and return the axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "acquisition_frame",
    "annotation_frame",
    "dose_response_frame",
    "latent_frame",
    "mapping_frame",
    "model_frame",
    "plain_text",
    "plot_acquisition",
    "plot_annotation",
    "plot_dose_response",
    "plot_latent",
    "plot_mapping",
    "plot_models",
    "plot_profile_scatter",
    "profile_frame",
]


def plain_text(label: Any) -> str:
    r"""Return ``label`` as text matplotlib draws verbatim: every ``$`` escaped.

    A data label such as ``PBMC$\foo$`` is never parsed as mathtext (which fails or renders
    something else).

    Every data label drawn by the ``plot_*`` functions (titles, tick labels, legend entries,
    axis labels) goes through this function.
    """
    return str(label).replace("$", r"\$")


_PALETTE = (
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
    "#1f78b4",
    "#b2df8a",
    "#fb9a99",
    "#cab2d6",
)


def _colours(labels: Sequence[str]) -> dict[str, str]:
    return {label: _PALETTE[i % len(_PALETTE)] for i, label in enumerate(labels)}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a**2).sum() * (b**2).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


# -- predicted vs observed ----------------------------------------------------------------------
def profile_frame(profiles: pd.DataFrame, model: str, context: str) -> pd.DataFrame:
    """Genes of one context's held-out groups: observed and predicted change against control.

    Parameters
    ----------
    profiles
        A ``profiles`` table (``model, context, perturbation, gene, control, observed,
        predicted``).
    model, context
        Which model and which context (organ).

    Returns
    -------
    pandas.DataFrame
        ``perturbation, gene, observed_change, predicted_change``.
    """
    rows = profiles[(profiles["model"] == model) & (profiles["context"] == context)]
    return pd.DataFrame(
        {
            "perturbation": rows["perturbation"].astype(str).to_numpy(),
            "gene": rows["gene"].astype(str).to_numpy(),
            "observed_change": (rows["observed"] - rows["control"]).to_numpy(float),
            "predicted_change": (rows["predicted"] - rows["control"]).to_numpy(float),
        }
    )


def plot_profile_scatter(frame: pd.DataFrame, ax: Any, *, title: str = "") -> Any:
    """Predicted vs observed change of every gene (one colour per perturbation), with r."""
    perturbations = sorted(frame["perturbation"].unique())
    colours = _colours(perturbations)
    for p in perturbations:
        part = frame[frame["perturbation"] == p]
        ax.scatter(
            part["observed_change"],
            part["predicted_change"],
            s=4,
            alpha=0.5,
            c=colours[p],
            label=plain_text(p),
            linewidths=0,
        )
    values = frame[["observed_change", "predicted_change"]].to_numpy(float)
    if len(values):
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        ax.plot([low, high], [low, high], color="#999999", lw=0.8, ls="--")
        r = _pearson(values[:, 0], values[:, 1])
        heading = f"{plain_text(title)}  r = {r:.2f}" if title else f"r = {r:.2f}"
        ax.set_title(heading, fontsize=9)
    ax.set_xlabel("observed log change", fontsize=8)
    ax.set_ylabel("predicted log change", fontsize=8)
    ax.tick_params(labelsize=7)
    return ax


# -- model comparison -------------------------------------------------------------------------
def model_frame(summary: pd.DataFrame, metric: str = "pearson_delta") -> pd.DataFrame:
    """Mean and median of ``metric`` per model, best first (``model, mean, median``)."""
    rows = summary[summary["metric"] == metric][["model", "mean", "median"]]
    return rows.sort_values("mean", ascending=False, na_position="last").reset_index(drop=True)


def plot_models(frame: pd.DataFrame, ax: Any, *, metric: str = "pearson_delta") -> Any:
    """Horizontal bars of the mean (dots: median) of a metric per model."""
    frame = frame.iloc[::-1]
    y = np.arange(len(frame))
    ax.barh(y, frame["mean"].fillna(0.0), color="#7570b3", alpha=0.8, label="mean")
    ax.scatter(frame["median"], y, color="black", s=12, zorder=3, label="median")
    ax.set_yticks(y, [plain_text(m) for m in frame["model"]], fontsize=8)
    ax.set_xlabel(plain_text(metric), fontsize=8)
    ax.axvline(0, color="#999999", lw=0.8)
    ax.legend(fontsize=7, loc="lower right")
    return ax


# -- annotation ---------------------------------------------------------------------------------
def annotation_frame(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Per-context accuracy and chance (the ``all`` row left out), sorted by context."""
    rows = accuracy[accuracy["context"].astype(str) != "all"]
    return (
        rows[["context", "n", "accuracy", "chance"]].sort_values("context").reset_index(drop=True)
    )


def plot_annotation(frame: pd.DataFrame, ax: Any) -> Any:
    """Bars of accuracy per context with the chance level of each as a black tick."""
    x = np.arange(len(frame))
    ax.bar(x, frame["accuracy"], color="#1b9e77", label="accuracy")
    ax.scatter(x, frame["chance"], marker="_", s=200, color="black", zorder=3, label="chance")
    ax.set_xticks(x, [plain_text(c) for c in frame["context"]], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy", fontsize=8)
    ax.legend(fontsize=7)
    return ax


# -- gene mapping ------------------------------------------------------------------------------
def mapping_frame(precision: pd.DataFrame, metric: str = "precision_at_1") -> pd.DataFrame:
    """``metric`` per method (rows) and ortholog class (columns, ``all`` first)."""
    table = precision.pivot_table(index="method", columns="group", values=metric, sort=False)
    groups = ["all", *sorted(c for c in table.columns if c != "all")]
    return table.reindex(columns=[g for g in groups if g in table.columns])


def plot_mapping(frame: pd.DataFrame, ax: Any, *, metric: str = "precision@1") -> Any:
    """Draw grouped bars: one group per ortholog class, one bar per method."""
    methods = list(frame.index)
    colours = _colours(methods)
    width = 0.8 / max(len(methods), 1)
    x = np.arange(frame.shape[1])
    for i, method in enumerate(methods):
        ax.bar(
            x + i * width - 0.4 + width / 2,
            frame.loc[method].to_numpy(float),
            width,
            label=plain_text(method),
            color=colours[method],
        )
    ax.set_xticks(x, [plain_text(c) for c in frame.columns], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(plain_text(metric), fontsize=8)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax


# -- latent space -------------------------------------------------------------------------------
def latent_frame(latent: pd.DataFrame, color_by: str) -> pd.DataFrame:
    """``umap_1, umap_2, label`` with ``label`` the column ``color_by`` as text."""
    return pd.DataFrame(
        {
            "umap_1": latent["umap_1"].to_numpy(float),
            "umap_2": latent["umap_2"].to_numpy(float),
            "label": latent[color_by].astype(str).to_numpy(),
        }
    )


def plot_latent(frame: pd.DataFrame, ax: Any, *, title: str = "") -> Any:
    """Scatter of the 2-D embedding coloured by label."""
    labels = sorted(frame["label"].unique())
    colours = _colours(labels)
    for label in labels:
        part = frame[frame["label"] == label]
        ax.scatter(part["umap_1"], part["umap_2"], s=5, c=colours[label], label=plain_text(label))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("UMAP 1", fontsize=8)
    ax.set_ylabel("UMAP 2", fontsize=8)
    ax.set_title(plain_text(title), fontsize=9)
    ax.legend(fontsize=6, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax


# -- experimental design ----------------------------------------------------------------------
def acquisition_frame(curves: pd.DataFrame, value: str = "error") -> pd.DataFrame:
    """Mean and standard deviation over seeds of the error after each round, per strategy.

    ``curves`` has the columns of :func:`~transferome.benchmark.design.acquisition_curve`
    (``strategy``, ``seed``, ``measured`` and ``value``). Returns columns ``strategy``,
    ``measured``, ``mean``, ``sd`` (0 with one seed) and ``seeds``.
    """
    missing = {"strategy", "measured", value} - set(curves.columns)
    if missing:
        raise ValueError(f"the curves lack the column(s) {sorted(missing)}")
    grouped = curves.groupby(["strategy", "measured"], sort=False)[value]
    frame = grouped.agg(["mean", "std", "count"]).reset_index()
    frame = frame.rename(columns={"std": "sd", "count": "seeds"})
    frame["sd"] = frame["sd"].fillna(0.0)
    return frame


def plot_acquisition(frame: pd.DataFrame, ax: Any) -> Any:
    """Draw acquisition curves: error against the cells measured.

    The mean over seeds with a band of one standard deviation (``frame`` from
    :func:`acquisition_frame`).
    """
    strategies = list(dict.fromkeys(frame["strategy"]))
    colours = _colours(strategies)
    for strategy in strategies:
        part = frame[frame["strategy"] == strategy].sort_values("measured")
        ax.plot(
            part["measured"],
            part["mean"],
            marker="o",
            markersize=3,
            label=plain_text(strategy),
            color=colours[strategy],
        )
        if (part["sd"] > 0).any():
            ax.fill_between(
                part["measured"],
                part["mean"] - part["sd"],
                part["mean"] + part["sd"],
                color=colours[strategy],
                alpha=0.15,
                linewidth=0,
            )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    seeds = int(frame["seeds"].max()) if len(frame) else 0
    band = f", band: 1 sd over {seeds} seeds" if seeds > 1 else ""
    ax.set_xlabel(f"cells measured{band}", fontsize=8)
    ax.set_ylabel("error left on the unmeasured cells", fontsize=8)
    ax.legend(fontsize=7)
    return ax


def dose_response_frame(model: Any, series: str, genes: Sequence[str], n_grid: int = 60) -> dict:
    """Return what :func:`plot_dose_response` draws for ``genes`` of one series of a model.

    ``curve``: the series' Hill curve on a grid spanning the measured doses (one column per
    gene, index the dose) and ``lower`` / ``upper``, its interpolation interval;
    ``measured``: the measured changes (index the dose).
    """
    x, y = model.series_[series]
    genes = list(genes)
    index = [model.table_.genes.index(g) for g in genes]
    pad = 0.25 * max(float(x.max() - x.min()), 1.0)
    grid = np.linspace(x.min() - pad, x.max() + pad, n_grid)
    curve = model.hill_curve(series, grid)[:, index]
    width = model.halfwidth_["interpolation"][index]
    levels = bool(model.table_.levels)
    dose = grid if levels else np.exp(grid)
    measured_dose = x if levels else np.exp(x)
    return {
        "curve": pd.DataFrame(curve, index=dose, columns=genes),
        "lower": pd.DataFrame(curve - width, index=dose, columns=genes),
        "upper": pd.DataFrame(curve + width, index=dose, columns=genes),
        "measured": pd.DataFrame(y[:, index], index=measured_dose, columns=genes),
        "log_axis": not levels,
    }


def plot_dose_response(frame: dict, ax: Any, *, title: str = "") -> Any:
    """Predicted dose-response curves with their interval over the measured changes."""
    genes = list(frame["curve"].columns)
    colours = _colours(genes)
    for gene in genes:
        c = colours[gene]
        ax.plot(frame["curve"].index, frame["curve"][gene], color=c, label=plain_text(gene))
        ax.fill_between(
            frame["curve"].index, frame["lower"][gene], frame["upper"][gene], color=c, alpha=0.15
        )
        ax.scatter(frame["measured"].index, frame["measured"][gene], color=c, s=16, zorder=3)
    if frame["log_axis"]:
        ax.set_xscale("log")
    ax.axhline(0.0, color="#999999", lw=0.6)
    ax.set_xlabel("dose", fontsize=8)
    ax.set_ylabel("change vs control", fontsize=8)
    ax.legend(fontsize=6, ncol=2)
    if title:
        ax.set_title(plain_text(title), fontsize=9)
    return ax

"""Metadata of every metric: best value, direction, kind and a one-line definition."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["METRICS", "MetricInfo"]

MetricKind = Literal["group", "set", "relative", "interval", "classification", "mapping"]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric means.

    Attributes
    ----------
    name
        Column value in result tables.
    best
        Value of a perfect prediction.
    higher_is_better
        Direction of improvement.
    kind
        ``group``: one value per held-out (context, perturbation) group from its mean profile;
        ``set``: one value per group that depends on the other held-out groups;
        ``relative``: one value per group relative to references of the same group (the
        additive baseline and the noise ceiling), computed by the benchmark run;
        ``interval``: per group, of a prediction that carries interval bounds;
        ``classification`` and ``mapping``: computed on labels and ranked gene lists.
    description
        Exact definition.
    """

    name: str
    best: float
    higher_is_better: bool
    kind: MetricKind
    description: str


_DEG = "on the DEGs of the group (the n_degs genes with the largest |true - control|)"
_INFOS = [
    MetricInfo(
        "r2",
        1.0,
        higher_is_better=True,
        kind="group",
        description="sklearn r2_score(true_mean, pred_mean) across genes",
    ),
    MetricInfo("r2_deg", 1.0, higher_is_better=True, kind="group", description=f"r2 {_DEG}"),
    MetricInfo(
        "explained_variance",
        1.0,
        higher_is_better=True,
        kind="group",
        description="sklearn explained_variance_score(true_mean, pred_mean) across genes",
    ),
    MetricInfo(
        "explained_variance_deg",
        1.0,
        higher_is_better=True,
        kind="group",
        description=f"explained_variance {_DEG}",
    ),
    MetricInfo(
        "pearson",
        1.0,
        higher_is_better=True,
        kind="group",
        description="Pearson r of pred_mean and true_mean",
    ),
    MetricInfo(
        "pearson_deg", 1.0, higher_is_better=True, kind="group", description=f"pearson {_DEG}"
    ),
    MetricInfo(
        "pearson_squared", 1.0, higher_is_better=True, kind="group", description="square of pearson"
    ),
    MetricInfo(
        "pearson_squared_deg",
        1.0,
        higher_is_better=True,
        kind="group",
        description=f"pearson_squared {_DEG}",
    ),
    MetricInfo(
        "pearson_delta",
        1.0,
        higher_is_better=True,
        kind="group",
        description=(
            "Pearson r of (pred_mean - control_mean) and (true_mean - control_mean); NaN when "
            "either is constant (e.g. the control prediction)"
        ),
    ),
    MetricInfo(
        "pearson_delta_deg",
        1.0,
        higher_is_better=True,
        kind="group",
        description=f"pearson_delta {_DEG}",
    ),
    MetricInfo(
        "interval_coverage",
        0.8,
        higher_is_better=True,
        kind="interval",
        description=(
            "fraction of genes whose observed group mean lies within the predicted interval "
            "(layers 'lower' and 'upper'); best when equal to the nominal level (0.8 by default)"
        ),
    ),
    MetricInfo(
        "interval_width",
        0.0,
        higher_is_better=False,
        kind="interval",
        description=(
            "mean width (upper - lower) of the predicted interval over the genes of the group"
        ),
    ),
    MetricInfo(
        "scaled_pearson_delta",
        1.0,
        higher_is_better=True,
        kind="relative",
        description=(
            "(pearson_delta - additive's pearson_delta) / (noise ceiling - additive's "
            "pearson_delta) in the same group: 0 = the additive baseline, 1 = a noise-free "
            "prediction; NaN where the ceiling is undefined or not above the additive score"
        ),
    ),
    MetricInfo(
        "r2_delta",
        1.0,
        higher_is_better=True,
        kind="group",
        description="r2_score(true_mean - control_mean, pred_mean - control_mean)",
    ),
    MetricInfo(
        "r2_delta_deg", 1.0, higher_is_better=True, kind="group", description=f"r2_delta {_DEG}"
    ),
    MetricInfo(
        "mse",
        0.0,
        higher_is_better=False,
        kind="group",
        description="mean squared error of pred_mean against true_mean",
    ),
    MetricInfo("mse_deg", 0.0, higher_is_better=False, kind="group", description=f"mse {_DEG}"),
    MetricInfo(
        "deg_direction",
        1.0,
        higher_is_better=True,
        kind="group",
        description=(
            "fraction of DEGs where sign(pred_mean - control_mean) == sign(true_mean - "
            "control_mean)"
        ),
    ),
    MetricInfo(
        "discrimination",
        1.0,
        higher_is_better=True,
        kind="set",
        description=(
            "1 - rank / n, rank = number of held-out groups whose true delta is closer (L1) to the "
            "predicted delta than the group's own (ties count half); NaN with fewer than 2 groups; "
            "with unmeasured (NaN) genes, the mean absolute difference over the genes both measured"
        ),
    ),
    MetricInfo(
        "accuracy",
        1.0,
        higher_is_better=True,
        kind="classification",
        description="fraction of correct labels",
    ),
    MetricInfo(
        "random_accuracy",
        1.0,
        higher_is_better=True,
        kind="classification",
        description="expected accuracy of predictions drawn from the training class frequencies",
    ),
    MetricInfo(
        "precision_at_1",
        1.0,
        higher_is_better=True,
        kind="mapping",
        description="fraction of genes whose top candidate is true",
    ),
    MetricInfo(
        "precision_at_5",
        1.0,
        higher_is_better=True,
        kind="mapping",
        description="fraction of genes with a true match among their top 5 candidates",
    ),
    MetricInfo(
        "mrr",
        1.0,
        higher_is_better=True,
        kind="mapping",
        description="mean over genes of 1 / rank of the first true match",
    ),
]

METRICS: MappingProxyType[str, MetricInfo] = MappingProxyType({m.name: m for m in _INFOS})
"""Every metric by name."""

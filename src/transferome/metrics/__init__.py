"""Metrics with exact definitions, and a registry of their metadata (:data:`METRICS`).

Per held-out (context, perturbation) group, on mean log profiles: ``r2``, explained variance,
Pearson r and r², each on all genes and on the top DEGs; the same on changes against the
context's control mean; DEG direction; discrimination among held-out groups. Also
classification accuracy against the class-frequency random model and gene-mapping
precision@k / MRR. The noise ceiling of a group (:func:`noise_ceiling`) is the split-half
reliability of its measured change, Spearman-Brown corrected; its square root is what a
noise-free prediction scores in ``pearson_delta``. Aggregates (:func:`summarize`) are the
mean and median over groups, leaving NaN (undefined) values out and counting them.
"""

from __future__ import annotations

from transferome.metrics._ceiling import CEILING_COLUMNS, noise_ceiling
from transferome.metrics._classification import accuracy, per_class_accuracy, random_accuracy
from transferome.metrics._groups import control_means, evaluate_groups, group_means, summarize
from transferome.metrics._interval import INTERVAL_LAYERS, interval_metrics
from transferome.metrics._mapping import mapping_metrics, mean_reciprocal_rank, precision_at_k
from transferome.metrics._mapping_scores import (
    evaluate_mapping,
    expected_calibration_error,
    ranked_candidates,
    reliability_table,
    simulation_truth,
    true_reactome,
)
from transferome.metrics._registry import METRICS, MetricInfo
from transferome.metrics._regression import (
    deg_direction,
    discrimination,
    explained_variance,
    group_metrics,
    mse,
    pearson,
    r2,
    top_degs,
)

__all__ = [
    "CEILING_COLUMNS",
    "INTERVAL_LAYERS",
    "METRICS",
    "MetricInfo",
    "accuracy",
    "control_means",
    "deg_direction",
    "discrimination",
    "evaluate_groups",
    "evaluate_mapping",
    "expected_calibration_error",
    "explained_variance",
    "group_means",
    "group_metrics",
    "interval_metrics",
    "mapping_metrics",
    "mean_reciprocal_rank",
    "mse",
    "noise_ceiling",
    "pearson",
    "per_class_accuracy",
    "precision_at_k",
    "r2",
    "random_accuracy",
    "ranked_candidates",
    "reliability_table",
    "simulation_truth",
    "summarize",
    "top_degs",
    "true_reactome",
]

"""Coverage and width of predictive intervals, per predicted group."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.schema import Schema
from transferome.metrics._groups import group_means

__all__ = ["INTERVAL_LAYERS", "interval_metrics"]

INTERVAL_LAYERS = ("lower", "upper")
"""Layers of a prediction holding the lower and upper bound of each predicted value."""


def interval_metrics(pred: AnnData, truth: AnnData, *, schema: Schema) -> pd.DataFrame:
    """``interval_coverage`` and ``interval_width`` of every predicted group.

    Parameters
    ----------
    pred
        A prediction with ``layers["lower"]`` and ``layers["upper"]`` (several rows of a
        group are averaged, bounds included).
    truth
        Observed data holding every predicted group.
    schema
        The obs keys.

    Returns
    -------
    pandas.DataFrame
        Columns ``context``, ``perturbation``, ``metric``, ``value``: the fraction of genes
        whose observed group mean lies within the bounds (genes measured in the truth), and
        the mean width of the interval. Empty when ``pred`` has no bounds.
    """
    if not all(name in pred.layers for name in INTERVAL_LAYERS):
        return pd.DataFrame(columns=["context", "perturbation", "metric", "value"])
    genes = list(map(str, truth.var_names))
    pred = pred[:, genes] if list(map(str, pred.var_names)) != genes else pred
    bounds = {}
    for name in INTERVAL_LAYERS:
        view = AnnData(np.asarray(pred.layers[name], dtype=np.float64), obs=pred.obs)
        view.var_names = genes
        bounds[name] = group_means(view, schema=schema)
    groups = list(bounds["lower"].index)
    observed = group_means(truth, schema=schema, groups=groups).to_numpy()
    lower, upper = bounds["lower"].to_numpy(), bounds["upper"].to_numpy()
    records = []
    for i, (context, perturbation) in enumerate(groups):
        ok = np.isfinite(observed[i]) & np.isfinite(lower[i]) & np.isfinite(upper[i])
        inside = (observed[i][ok] >= lower[i][ok]) & (observed[i][ok] <= upper[i][ok])
        coverage = float(inside.mean()) if ok.any() else float("nan")
        width = float(np.mean(upper[i][ok] - lower[i][ok])) if ok.any() else float("nan")
        records.append((context, perturbation, "interval_coverage", coverage))
        records.append((context, perturbation, "interval_width", width))
    return pd.DataFrame(records, columns=["context", "perturbation", "metric", "value"])

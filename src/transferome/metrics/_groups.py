"""Metrics of predicted (context, perturbation) groups against observed cells, as tidy tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.aggregate import control_means, group_means
from transferome.data.schema import Schema
from transferome.errors import DataValidationError
from transferome.metrics._regression import discrimination, group_metrics

__all__ = ["control_means", "evaluate_groups", "group_means", "summarize"]


_observed_control_means = control_means
_UNCHANGED_RTOL = 1e-6


def _control_matrix(
    control: pd.DataFrame | Mapping[str, np.ndarray],
    contexts: Sequence[str],
    var_names: list[str],
) -> np.ndarray:
    rows = []
    for context in contexts:
        if isinstance(control, pd.DataFrame):
            if context not in control.index:
                raise DataValidationError(f"no control mean for context {context!r}")
            if list(map(str, control.columns)) != var_names:
                control = control.reindex(columns=var_names)
                if control.isna().to_numpy().any():
                    raise DataValidationError("control means lack some genes of the truth")
            rows.append(control.loc[context].to_numpy(dtype=np.float64))
        else:
            if context not in control:
                raise DataValidationError(f"no control mean for context {context!r}")
            row = np.asarray(control[context], dtype=np.float64).ravel()
            if row.size != len(var_names):
                raise DataValidationError(
                    f"control mean of {context!r} has {row.size} values, expected "
                    f"{len(var_names)} genes"
                )
            rows.append(row)
    return np.vstack(rows)


def evaluate_groups(
    pred: AnnData,
    truth: AnnData,
    *,
    schema: Schema,
    control_means: pd.DataFrame | Mapping[str, np.ndarray] | None = None,
    n_degs: int = 50,
) -> pd.DataFrame:
    """Every per-group metric of every predicted group, from group means.

    Parameters
    ----------
    pred
        A model's prediction (``predict`` output): rows labelled by ``schema.context_key`` and
        ``schema.perturbation_key``; several rows of one group are averaged.
    truth
        Observed data holding the cells of every predicted group (other cells are ignored).
    schema
        The obs keys.
    control_means
        Control mean of each context (DataFrame rows = contexts, or a mapping of context to a
        vector). ``None`` computes them from the control observations of ``truth``. For
        change data (L1000 signatures) pass zeros.
    n_degs
        Number of DEGs per group.

    Notes
    -----
    A predicted value within a relative ``1e-6`` of the control mean (float32 rounding) is
    taken as equal to it, so the control prediction has exactly zero change and undefined
    (NaN) ``pearson_delta`` instead of a correlation of rounding noise.

    Returns
    -------
    pandas.DataFrame
        Columns ``context``, ``perturbation``, ``metric``, ``value``: one row per group and
        metric of kind ``group`` or ``set`` (``discrimination``, computed among the groups
        of ``pred``; NaN with a single group).
    """
    # the group means stream an on-disk X a block of rows at a time: nothing is loaded whole
    var_names = list(map(str, truth.var_names))
    pred_genes = list(map(str, pred.var_names))
    if pred_genes != var_names:
        if set(pred_genes) != set(var_names):
            missing = sorted(set(var_names) - set(pred_genes))[:5]
            extra = sorted(set(pred_genes) - set(var_names))[:5]
            raise DataValidationError(
                f"predicted genes differ from the observed genes (missing e.g. {missing}, "
                f"unknown e.g. {extra})"
            )
        pred = pred[:, var_names]
    pred_means = group_means(pred, schema=schema)
    groups = list(pred_means.index)
    if not groups:
        raise DataValidationError("the prediction holds no groups")
    true_means = group_means(truth, schema=schema, groups=groups)
    if control_means is None:
        control_means = _observed_control_means(truth, schema=schema)
    contexts = [c for c, _ in groups]
    control = _control_matrix(control_means, contexts, var_names)
    p, t = pred_means.to_numpy(), true_means.to_numpy()
    # predictions are float32: values within its rounding of the control mean are unchanged
    p = np.where(np.isclose(p, control, rtol=_UNCHANGED_RTOL, atol=0.0), control, p)
    records: list[tuple[str, str, str, float]] = []
    for i, (context, perturbation) in enumerate(groups):
        for metric, value in group_metrics(p[i], t[i], control[i], n_degs=n_degs).items():
            records.append((context, perturbation, metric, value))
    for (context, perturbation), value in zip(
        groups, discrimination(p - control, t - control), strict=True
    ):
        records.append((context, perturbation, "discrimination", float(value)))
    return pd.DataFrame(records, columns=["context", "perturbation", "metric", "value"])


def summarize(results: pd.DataFrame, by: Sequence[str] = ("model", "metric")) -> pd.DataFrame:
    """Mean and median of ``value`` over groups, per ``by``.

    NaN values (undefined metrics, e.g. ``pearson_delta`` of the control prediction) are left
    out of the mean and median; ``n`` counts the groups with a value and ``n_nan`` those
    without. A metric NaN in every group has NaN mean and median.
    """
    by = list(by)
    missing = [c for c in [*by, "value"] if c not in results.columns]
    if missing:
        raise DataValidationError(f"result table lacks column(s) {missing}")
    grouped = results.groupby(by, sort=False)["value"]
    frame = pd.DataFrame(
        {
            "mean": grouped.apply(lambda v: float(v.mean()) if v.notna().any() else np.nan),
            "median": grouped.apply(lambda v: float(v.median()) if v.notna().any() else np.nan),
            "n": grouped.apply(lambda v: int(v.notna().sum())),
            "n_nan": grouped.apply(lambda v: int(v.isna().sum())),
        }
    )
    return frame.reset_index()

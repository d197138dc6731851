"""Metrics of predicted (context, perturbation) groups against observed cells, as tidy tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome.data.schema import Schema, obs_labels
from transferome.errors import DataValidationError
from transferome.metrics._regression import discrimination, group_metrics

__all__ = ["control_means", "evaluate_groups", "group_means", "summarize"]


def group_means(
    adata: AnnData, *, schema: Schema, groups: Sequence[tuple[str, str]] | None = None
) -> pd.DataFrame:
    """Mean profile of each (context, perturbation) group (rows: a MultiIndex, columns: genes).

    ``groups`` restricts and orders the rows; every listed group must be observed. NaN values
    (genes not measured in an observation, as in signature data) are left out: a gene's mean
    is over the members that measured it, and NaN where none did.
    """
    for key in (schema.context_key, schema.perturbation_key):
        if key not in adata.obs.columns:
            raise DataValidationError(
                f"obs key {key!r} is missing; obs has columns {list(map(str, adata.obs.columns))}"
            )
    contexts = obs_labels(adata, schema.context_key)
    perturbations = obs_labels(adata, schema.perturbation_key)
    codes = pd.MultiIndex.from_arrays([contexts, perturbations])
    observed = codes.unique().sort_values()
    wanted = observed if groups is None else pd.MultiIndex.from_tuples(list(groups))
    observed_set = set(observed)
    missing = [g for g in wanted if g not in observed_set]
    if missing:
        raise DataValidationError(
            f"group(s) {missing[:5]} have no observations in obs[{schema.context_key!r}] x "
            f"obs[{schema.perturbation_key!r}]"
        )
    row_of = {g: i for i, g in enumerate(wanted)}
    rows = np.array([row_of.get(g, -1) for g in codes])
    keep = rows >= 0
    indicator = sp.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], np.flatnonzero(keep))),
        shape=(len(wanted), adata.n_obs),
    )
    sizes = np.asarray(indicator.sum(axis=1)).ravel()
    matrix = adata.X
    if not sp.issparse(matrix):
        matrix = np.asarray(matrix, dtype=np.float64)
    if _has_nan(matrix):
        means = _nan_means(indicator, matrix)
    else:
        sums = indicator @ matrix
        sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
        means = sums / sizes[:, None]
    index = pd.MultiIndex.from_tuples(
        list(wanted), names=[schema.context_key, schema.perturbation_key]
    )
    return pd.DataFrame(means, index=index, columns=list(map(str, adata.var_names)))


def _has_nan(matrix: Any, chunk_rows: int = 4096) -> bool:
    """Whether a dense or sparse matrix holds a NaN (dense ones checked in row chunks)."""
    if sp.issparse(matrix):
        return bool(np.isnan(matrix.data).any())
    return any(
        bool(np.isnan(matrix[start : start + chunk_rows]).any())
        for start in range(0, matrix.shape[0], chunk_rows)
    )


def _nan_means(indicator: sp.csr_matrix, matrix: Any) -> np.ndarray:
    """Group means over the measured (non-NaN) values; NaN where a group measured nothing.

    ``matrix`` is dense or sparse; implicit zeros of a sparse matrix are measured values.
    """
    if sp.issparse(matrix):
        matrix = matrix.tocsr()
        missing = np.isnan(matrix.data)
        layout = (matrix.indices, matrix.indptr)
        measured = sp.csr_matrix((np.where(missing, 0.0, matrix.data), *layout), matrix.shape)
        absent = sp.csr_matrix((missing.astype(np.float64), *layout), matrix.shape)
        sums = (indicator @ measured).toarray()
        counts = np.asarray(indicator.sum(axis=1)) - (indicator @ absent).toarray()
    else:
        missing = np.isnan(matrix)
        sums = np.asarray(indicator @ np.where(missing, 0.0, matrix))
        counts = np.asarray(indicator @ (~missing).astype(np.float64))
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def control_means(adata: AnnData, *, schema: Schema) -> pd.DataFrame:
    """Mean control profile of each context that has controls (rows: contexts)."""
    labels = obs_labels(adata, schema.perturbation_key)
    controls = adata[labels == schema.control]
    if controls.n_obs == 0:
        raise DataValidationError(
            f"no {schema.control!r} observations in obs[{schema.perturbation_key!r}]"
        )
    means = group_means(controls, schema=schema)
    means.index = means.index.get_level_values(0)
    return means


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
    from transferome.data._backed import in_memory

    pred = in_memory(pred, what="evaluate_groups")
    truth = in_memory(truth, what="evaluate_groups")
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

"""Noise ceiling of each (context, perturbation) group: split-half reliability of its change.

A group's measured change (mean of its treated observations minus the mean of its context's
controls) is the truth every prediction is scored against, and it is noisy: even the
noise-free change correlates with it only up to the *noise ceiling*. The ceiling is estimated
from the data alone. The treated observations (and the context's controls) are split at
random into two halves; the two halves' changes are correlated across genes; the
Spearman-Brown formula carries the half-length correlation to the full group,
``reliability = 2 r / (1 + r)``; and ``sqrt(reliability)`` is the expected Pearson correlation
of the noise-free change with the measured one (classical test theory: the correlation of a
measure with its true score is the square root of its reliability).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome.data.blocks import is_backed, read_rows
from transferome.data.schema import Schema, obs_labels
from transferome.errors import DataValidationError
from transferome.metrics._regression import top_degs

__all__ = ["CEILING_COLUMNS", "noise_ceiling"]

CEILING_COLUMNS = [
    "context",
    "perturbation",
    "ceiling_pearson_delta",
    "ceiling_pearson_delta_deg",
    "n_treated",
    "n_control",
    "reliability",
]
_CHUNK_ROWS = 1024


class _StoredRows:
    """Rows of an on-disk ``X`` (of an AnnData or a view of it) by position: ``matrix[rows]``."""

    def __init__(self, adata: AnnData) -> None:
        self.adata = adata
        self.shape = (adata.n_obs, adata.n_vars)

    def __getitem__(self, rows: np.ndarray) -> Any:
        return read_rows(self.adata, rows)


def _half_sums(
    matrix: Any, rows: np.ndarray, first: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sum and count the measured values of ``matrix[rows]`` in each split's first half, and all.

    ``first`` is ``(n_splits, len(rows))``, 1 where a row falls in the first half. NaN values
    (not measured) are left out of sums and counts. Rows are densified in chunks, so memory
    stays bounded for large groups of sparse data.
    """
    n_genes = matrix.shape[1]
    half_sum = np.zeros((first.shape[0], n_genes))
    half_count = np.zeros((first.shape[0], n_genes))
    total_sum = np.zeros(n_genes)
    total_count = np.zeros(n_genes)
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[start : start + _CHUNK_ROWS]
        block = matrix[chunk]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        block = block.astype(np.float64, copy=False)
        measured = ~np.isnan(block)
        values = np.where(measured, block, 0.0)
        weights = first[:, start : start + _CHUNK_ROWS]
        half_sum += weights @ values
        half_count += weights @ measured
        total_sum += values.sum(axis=0)
        total_count += measured.sum(axis=0)
    return half_sum, half_count, total_sum, total_count


def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    return np.divide(total, count, out=np.full(np.shape(total), np.nan), where=count > 0)


def _split_means(
    matrix: Any, rows: np.ndarray, n_splits: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means of the two halves of ``rows`` in each of ``n_splits`` random splits, and of all.

    Returns ``(first, second, full)``: ``(n_splits, n_genes)`` twice and ``(n_genes,)``. The
    first half has ``len(rows) // 2`` rows, the second the rest.
    """
    n = len(rows)
    first = np.zeros((n_splits, n))
    for k in range(n_splits):
        first[k, rng.permutation(n)[: n // 2]] = 1.0
    half_sum, half_count, total_sum, total_count = _half_sums(matrix, rows, first)
    return (
        _mean(half_sum, half_count),
        _mean(total_sum[None, :] - half_sum, total_count[None, :] - half_count),
        _mean(total_sum, total_count),
    )


def _row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair over the genes finite in both; NaN if constant or < 2 genes."""
    finite = np.isfinite(a) & np.isfinite(b)
    count = finite.sum(axis=1)
    a = np.where(finite, a, 0.0)
    b = np.where(finite, b, 0.0)
    safe = np.maximum(count, 1)[:, None]
    da = np.where(finite, a - a.sum(axis=1, keepdims=True) / safe, 0.0)
    db = np.where(finite, b - b.sum(axis=1, keepdims=True) / safe, 0.0)
    norm = np.sqrt((da**2).sum(axis=1) * (db**2).sum(axis=1))
    r = np.divide(
        (da * db).sum(axis=1), norm, out=np.full(len(norm), np.nan), where=(norm > 0) & (count > 1)
    )
    return np.clip(r, -1.0, 1.0)


def _reliability(half_r: np.ndarray) -> float:
    """Spearman-Brown reliability from the mean of the finite split-half correlations."""
    finite = half_r[np.isfinite(half_r)]
    if finite.size == 0:
        return float("nan")
    r = float(np.clip(finite.mean(), -1.0 + 1e-12, 1.0))
    return 2.0 * r / (1.0 + r)


def _ceiling(reliability: float) -> float:
    return float(np.sqrt(max(reliability, 0.0))) if np.isfinite(reliability) else float("nan")


def _rng(seed: int, *labels: str) -> np.random.Generator:
    """Return the generator of one context's (or group's) splits, whatever else is assessed."""
    return np.random.default_rng([int(seed), *(zlib.crc32(label.encode()) for label in labels)])


def _groups_of(
    contexts: np.ndarray, perturbations: np.ndarray, schema: Schema
) -> list[tuple[str, str]]:
    pairs = pd.MultiIndex.from_arrays([contexts, perturbations]).unique().sort_values()
    return [(str(c), str(p)) for c, p in pairs if p != schema.control]


def _fixed_controls(
    control_means: pd.DataFrame, contexts: Sequence[str], var_names: list[str]
) -> dict[str, np.ndarray]:
    if list(map(str, control_means.columns)) != var_names:
        if not set(var_names) <= set(map(str, control_means.columns)):
            raise DataValidationError("control means lack some genes of the truth")
        control_means = control_means.copy()
        control_means.columns = list(map(str, control_means.columns))
        control_means = control_means[var_names]
    index = set(map(str, control_means.index))
    missing = sorted({c for c in contexts if c not in index})
    if missing:
        raise DataValidationError(f"no control mean for context(s) {missing[:5]}")
    frame = control_means.copy()
    frame.index = list(map(str, frame.index))
    return {c: frame.loc[c].to_numpy(dtype=np.float64) for c in set(contexts)}


def noise_ceiling(
    truth: AnnData,
    groups: Sequence[tuple[str, str]] | None = None,
    *,
    schema: Schema,
    control_means: pd.DataFrame | None = None,
    n_splits: int = 20,
    seed: int = 0,
    min_per_half: int = 4,
    n_degs: int = 50,
) -> pd.DataFrame:
    """Split-half noise ceiling of ``pearson_delta`` (and its DEG version) per group.

    For each of ``n_splits`` random splits, the group's treated observations are split in two
    halves (``n // 2`` and the rest) and so are the control observations of its context;
    each half's change is ``mean(treated half) - mean(control half)``, and ``r_half`` is the
    Pearson correlation of the two halves' changes across genes. ``r_half`` is averaged over
    the splits (the plain mean of ``r``, not of Fisher's z: with thousands of genes the
    splits' correlations vary little and the two agree, while a noise-free group, ``r = 1``,
    stays finite). The Spearman-Brown correction gives the reliability of the full group's
    change, ``reliability = 2 r / (1 + r)``, and the ceiling is ``sqrt(max(reliability, 0))``:
    what a noise-free prediction of the change is expected to score in ``pearson_delta``.

    Parameters
    ----------
    truth
        Observed data: the treated observations of every group and, unless ``control_means``
        is given, the control observations of their contexts. ``X`` may be sparse; NaN means
        "not measured" and is left out of means and correlations.
    groups
        (context, perturbation) pairs to assess, in the order of the result; ``None``: every
        perturbed group of ``truth``.
    schema
        The obs keys.
    control_means
        Fixed control profile of each context (rows: contexts, columns: genes), as for change
        data (signatures, ``values="delta"``) whose control is a zero profile. Only the
        treated observations are split then, both halves use the fixed control, and
        ``min_per_half`` applies to the treated alone. ``None``: the control observations of
        ``truth`` are split too.
    n_splits
        Random split-half draws per group.
    seed
        Seed of :func:`numpy.random.default_rng`, the only source of randomness; each
        context's control splits and each group's treated splits are drawn from
        ``default_rng([seed, crc32(context)(, crc32(perturbation))])``, so a group's ceiling
        does not depend on which other groups are assessed.
    min_per_half
        Fewer treated (or, without ``control_means``, control) observations than this per
        half, i.e. fewer than ``2 * min_per_half``, give NaN ceilings.
    n_degs
        DEGs of the DEG ceiling: the ``n_degs`` genes with the largest
        ``|mean(treated) - mean(control)|`` of the full group (as
        :func:`~transferome.metrics.top_degs`; among the measured genes).

    Returns
    -------
    pandas.DataFrame
        One row per group, columns ``context``, ``perturbation``, ``ceiling_pearson_delta``,
        ``ceiling_pearson_delta_deg``, ``n_treated``, ``n_control`` (control observations
        split; 0 with fixed ``control_means``) and ``reliability`` (Spearman-Brown, all
        genes; may be negative).

    Notes
    -----
    The ceiling is what the *expected* measured change scores against the measured change.
    The DEG ceiling is optimistic for noisy groups: the DEGs are chosen on the full group,
    so genes whose noise happens to push both halves the same way are preferred, as they
    are in ``pearson_delta_deg`` itself, but more so. With NaN (not measured) values the
    halves' means are over the measured members, and each correlation uses the genes
    finite in both halves.
    """
    for key in (schema.context_key, schema.perturbation_key):
        if key not in truth.obs.columns:
            raise DataValidationError(
                f"obs key {key!r} is missing; obs has columns {list(map(str, truth.obs.columns))}"
            )
    if int(n_splits) < 1:
        raise DataValidationError(f"n_splits must be at least 1, got {n_splits}")
    if int(min_per_half) < 1:
        raise DataValidationError(f"min_per_half must be at least 1, got {min_per_half}")
    if int(n_degs) < 1:
        raise DataValidationError(f"n_degs must be positive, got {n_degs}")
    contexts = obs_labels(truth, schema.context_key)
    perturbations = obs_labels(truth, schema.perturbation_key)
    wanted = (
        _groups_of(contexts, perturbations, schema)
        if groups is None
        else [(str(c), str(p)) for c, p in groups]
    )
    var_names = list(map(str, truth.var_names))
    if is_backed(truth):
        matrix: Any = _StoredRows(truth)  # read from the file a group at a time
    else:
        matrix = truth.X
        if matrix is None:
            raise DataValidationError("truth.X is empty (None)")
        if sp.issparse(matrix):
            matrix = matrix.tocsr()
    rows_of = pd.DataFrame({"c": contexts, "p": perturbations}).groupby(["c", "p"]).indices
    fixed = (
        None
        if control_means is None
        else _fixed_controls(control_means, [c for c, _ in wanted], var_names)
    )
    split_controls: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    records = []
    for context, perturbation in wanted:
        if perturbation == schema.control:
            raise DataValidationError(
                f"group ({context!r}, {perturbation!r}) is the control; its change is zero"
            )
        treated = np.asarray(rows_of.get((context, perturbation), []), dtype=np.int64)
        if treated.size == 0:
            raise DataValidationError(
                f"group ({context!r}, {perturbation!r}) has no observations in "
                f"obs[{schema.context_key!r}] x obs[{schema.perturbation_key!r}]"
            )
        controls = np.asarray(rows_of.get((context, schema.control), []), dtype=np.int64)
        n_control = 0 if fixed is not None else int(controls.size)
        record = {
            "context": context,
            "perturbation": perturbation,
            "ceiling_pearson_delta": float("nan"),
            "ceiling_pearson_delta_deg": float("nan"),
            "n_treated": int(treated.size),
            "n_control": n_control,
            "reliability": float("nan"),
        }
        records.append(record)
        if treated.size < 2 * min_per_half:
            continue
        if fixed is not None:
            control_full = fixed[context]
            control_first = control_second = control_full[None, :]
        else:
            if controls.size < 2 * min_per_half:
                continue
            if context not in split_controls:
                split_controls[context] = _split_means(
                    matrix, controls, n_splits, _rng(seed, context)
                )
            control_first, control_second, control_full = split_controls[context]
        first, second, full = _split_means(
            matrix, treated, n_splits, _rng(seed, context, perturbation)
        )
        change_first, change_second = first - control_first, second - control_second
        change = full - control_full
        reliability = _reliability(_row_pearson(change_first, change_second))
        measured = np.flatnonzero(np.isfinite(change))
        if measured.size:
            degs = measured[top_degs(change[measured], np.zeros(measured.size), n_degs)]
            deg_reliability = _reliability(
                _row_pearson(change_first[:, degs], change_second[:, degs])
            )
        else:
            deg_reliability = float("nan")
        record["reliability"] = reliability
        record["ceiling_pearson_delta"] = _ceiling(reliability)
        record["ceiling_pearson_delta_deg"] = _ceiling(deg_reliability)
    return pd.DataFrame.from_records(records, columns=CEILING_COLUMNS)

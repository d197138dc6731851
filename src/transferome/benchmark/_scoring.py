"""Scoring the pooled predictions of a run: every metric, the truth rows and the noise ceiling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from anndata import AnnData

from transferome._logging import get_logger
from transferome.benchmark._result import _REFERENCE, _SCALED, CEILING, RESULT_COLUMNS, TRUTH
from transferome.data.schema import Schema
from transferome.errors import DataValidationError, TransferomeError
from transferome.metrics import (
    evaluate_groups,
    interval_metrics,
    noise_ceiling,
)
from transferome.models import get_model

_log = get_logger(__name__)


def _pool(parts: Sequence[AnnData]) -> AnnData:
    """One AnnData of every split's prediction, their provenance tables stacked in ``uns``."""
    pooled = ad.concat(parts, index_unique="-")
    tables = [
        p.uns["provenance"] for p in parts if isinstance(p.uns.get("provenance"), pd.DataFrame)
    ]
    if tables:
        pooled.uns["provenance"] = pd.concat(tables, ignore_index=True)
    return pooled


def _score_predictions(
    predictions: Mapping[str, AnnData],
    data: AnnData,
    *,
    schema: Schema,
    controls: pd.DataFrame,
    task: str,
    split_of: Mapping[tuple[str, str], str],
    n_degs: int,
) -> pd.DataFrame:
    """Every metric of every model's pooled predictions (columns :data:`RESULT_COLUMNS`)."""
    tables = []
    for label, pooled in predictions.items():
        scored = evaluate_groups(pooled, data, schema=schema, control_means=controls, n_degs=n_degs)
        intervals = interval_metrics(pooled, data, schema=schema)
        if len(intervals):
            scored = pd.concat([scored, intervals], ignore_index=True)
        scored.insert(0, "model", label)
        tables.append(scored)
    results = pd.concat(tables, ignore_index=True)
    pairs = zip(results["context"], results["perturbation"], strict=True)
    results.insert(0, "split", [split_of[g] for g in pairs])
    results.insert(0, "task", task)
    return results[RESULT_COLUMNS]


def _truth_prediction(
    truth: AnnData,
    groups: Sequence[tuple[str, str]],
    controls: pd.DataFrame,
    schema: Schema,
    data: AnnData,
) -> AnnData:
    """Predict the held-out groups as a perfect model would: observed control + true change.

    The score of this prediction then measures only the noise in the held-out observations.
    """
    genes = list(map(str, data.var_names))
    missing = sorted(set(genes) - set(map(str, truth.var_names)))
    if missing:
        raise DataValidationError(
            f"the truth lacks {len(missing)} genes of the data (e.g. {missing[:5]})"
        )
    for key in (schema.context_key, schema.perturbation_key):
        if key not in truth.obs.columns:
            raise DataValidationError(f"the truth has no obs column {key!r}")
    truth = truth[:, genes]
    labels = list(
        zip(
            truth.obs[schema.context_key].astype(str),
            truth.obs[schema.perturbation_key].astype(str),
            strict=True,
        )
    )
    row_of = {label: i for i, label in enumerate(labels)}
    absent = [g for g in groups if g not in row_of]
    if absent:
        raise DataValidationError(f"the truth has no profile of the held-out groups {absent[:5]}")
    values = np.asarray(truth.X, dtype=np.float64)
    if "change" in truth.layers:
        change = np.asarray(truth.layers["change"], dtype=np.float64)
    else:
        change = np.empty_like(values)
        for i, (context, _) in enumerate(labels):
            control = row_of.get((context, schema.control))
            if control is None:
                raise DataValidationError(
                    f"the truth has neither a layer 'change' nor a control of {context!r}"
                )
            change[i] = values[i] - values[control]
    rows = [row_of[g] for g in groups]
    base = controls.reindex([c for c, _ in groups]).to_numpy(dtype=np.float64)
    obs = pd.DataFrame(
        {
            schema.context_key: [c for c, _ in groups],
            schema.perturbation_key: [p for _, p in groups],
        },
        index=[f"{TRUTH}-{i}" for i in range(len(groups))],
    )
    return AnnData(
        X=(base + change[rows]).astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=pd.Index(genes)),
    )


def _reference_predictions(data: AnnData, splits: Sequence[Any], schema: Schema) -> AnnData | None:
    """Predictions of the additive baseline on every split (for the scaled score only)."""
    predicted = []
    try:
        for split in splits:
            train = data[split.train]
            model = get_model(_REFERENCE)().fit(train, schema=schema)
            predicted.append(model.predict(train, list(split.held_out)))
    except TransferomeError as exc:
        _log.warning("no %s reference for %s: %s", _REFERENCE, _SCALED, exc)
        return None
    return ad.concat(predicted, index_unique="-")


def _with_ceiling(
    results: pd.DataFrame,
    data: AnnData,
    *,
    schema: Schema,
    split_of: Mapping[tuple[str, str], str],
    controls: pd.DataFrame | None,
    reference: AnnData | None,
    seed: int,
    n_degs: int,
    reference_label: str = _REFERENCE,
) -> pd.DataFrame:
    """``results`` with the ceiling rows and every model's ``scaled_pearson_delta`` rows.

    The scaled score's bottom is ``reference`` (predictions) when given, else the model
    ``reference_label`` of ``results``.
    """
    key = ["context", "perturbation"]
    table = noise_ceiling(
        data, list(split_of), schema=schema, control_means=controls, seed=seed, n_degs=n_degs
    )
    ceiling_rows = [
        table[key].assign(metric=metric, value=table[column].to_numpy(dtype=np.float64))
        for metric, column in (
            ("pearson_delta", "ceiling_pearson_delta"),
            ("pearson_delta_deg", "ceiling_pearson_delta_deg"),
        )
    ]
    ceilings = pd.concat(ceiling_rows, ignore_index=True)
    ceilings.insert(0, "model", CEILING)
    pairs = zip(ceilings["context"], ceilings["perturbation"], strict=True)
    ceilings.insert(0, "split", [split_of[g] for g in pairs])
    ceilings.insert(0, "task", results["task"].iloc[0])

    scores = results[results["metric"] == "pearson_delta"]
    if reference is not None:
        scored = evaluate_groups(
            reference, data, schema=schema, control_means=controls, n_degs=n_degs
        )
        bottom = scored[scored["metric"] == "pearson_delta"].set_index(key)["value"]
    else:
        bottom = scores[scores["model"] == reference_label].set_index(key)["value"]
    groups = pd.MultiIndex.from_frame(scores[key])
    low = bottom.reindex(groups).to_numpy(dtype=np.float64)
    high = table.set_index(key)["ceiling_pearson_delta"].reindex(groups).to_numpy(np.float64)
    defined = np.isfinite(low) & np.isfinite(high) & (high > low)
    scaled = scores.assign(metric=_SCALED)
    scaled["value"] = np.divide(
        scores["value"].to_numpy(dtype=np.float64) - low,
        high - low,
        out=np.full(len(scores), np.nan),
        where=defined,
    )
    return pd.concat([results, ceilings[RESULT_COLUMNS], scaled], ignore_index=True)

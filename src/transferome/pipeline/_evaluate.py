"""Fit models on the training part of each split, predict the held-out groups, score them.

The same steps as :func:`transferome.benchmark.run_task`, keeping what the report draws:
the predicted and observed mean profiles of every held-out group, and one label per model
(so that variants of one estimator, as in the ablation, sit side by side).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from anndata import AnnData

from transferome._logging import get_logger
from transferome.data.schema import Schema
from transferome.data.splits import Split
from transferome.errors import TransferomeError
from transferome.metrics import control_means, evaluate_groups, group_means, summarize
from transferome.models import Estimator

__all__ = ["Evaluation", "ModelSpec", "evaluate_splits", "profile_table"]

_log = get_logger(__name__)

ModelSpec = tuple[str, Callable[[], Estimator]]
"""A label and a function returning a fresh, unfitted estimator."""


@dataclass(frozen=True)
class Evaluation:
    """Scores and predictions of several models on the same splits.

    Attributes
    ----------
    results
        ``split, model, context, perturbation, metric, value``.
    summary
        Mean and median per model x metric (:func:`transferome.metrics.summarize`).
    timings
        ``split, model, fit_s, predict_s``.
    predictions
        Model label -> AnnData of predicted mean profiles (one row per held-out group).
    fitted
        Model label -> the estimator fitted on the last split.
    skipped
        Model label -> why it could not run (a :class:`~transferome.TransferomeError` it
        raised on these data); such a model has no results.
    """

    results: pd.DataFrame
    summary: pd.DataFrame
    timings: pd.DataFrame
    predictions: dict[str, AnnData]
    fitted: dict[str, Estimator]
    skipped: dict[str, str]


def evaluate_splits(
    data: AnnData,
    splits: Sequence[Split],
    models: Sequence[ModelSpec],
    *,
    schema: Schema,
    n_degs: int = 50,
    on_step: Callable[[str], None] | None = None,
) -> Evaluation:
    """Fit every model on each split's training part and score its held-out groups.

    Parameters
    ----------
    data
        Log-normalised observations (never modified).
    splits
        Splits of ``data`` (see :mod:`transferome.data.splits`).
    models
        ``(label, factory)`` pairs.
    schema
        The obs keys.
    n_degs
        DEGs per group.
    on_step
        Called with a short message after each fit (progress display).
    """
    predictions: dict[str, list[AnnData]] = {label: [] for label, _ in models}
    split_of: dict[tuple[str, str], str] = {}
    timings = []
    last: dict[str, Estimator] = {}
    skipped: dict[str, str] = {}
    for split in splits:
        for group in split.held_out:
            split_of[group] = split.name
        train = data[split.train].copy()
        for label, factory in models:
            if label in skipped:
                continue
            model = factory()
            start = time.perf_counter()
            try:
                model.fit(train, schema=schema)
                fitted = time.perf_counter()
                predictions[label].append(model.predict(train, list(split.held_out)))
            except TransferomeError as exc:
                _log.warning("%s cannot run on %s: %s", label, split.name, exc)
                skipped[label] = str(exc)
                continue
            finally:
                if on_step is not None:
                    on_step(f"{split.name}: {label}")
            timings.append((split.name, label, fitted - start, time.perf_counter() - fitted))
            last[label] = model
    for label in skipped:
        predictions.pop(label, None)
        last.pop(label, None)
    if not predictions:
        raise TransferomeError(f"no model could run on these data: {skipped}")
    controls = control_means(data, schema=schema)
    tables, pooled = [], {}
    for label, parts in predictions.items():
        pooled[label] = ad.concat(parts, index_unique="-")
        scored = evaluate_groups(
            pooled[label], data, schema=schema, control_means=controls, n_degs=n_degs
        )
        scored.insert(0, "model", label)
        tables.append(scored)
    results = pd.concat(tables, ignore_index=True)
    pairs = zip(results["context"], results["perturbation"], strict=True)
    results.insert(0, "split", [split_of[g] for g in pairs])
    return Evaluation(
        results=results,
        summary=summarize(results),
        timings=pd.DataFrame(timings, columns=["split", "model", "fit_s", "predict_s"]),
        predictions=pooled,
        fitted=last,
        skipped=skipped,
    )


def profile_table(
    predicted: AnnData, observed: AnnData, *, schema: Schema, model: str
) -> pd.DataFrame:
    """Tidy predicted vs observed mean expression of every predicted group, gene by gene.

    Columns ``model, context, perturbation, gene, control, observed, predicted``: the mean
    log expression of the context's controls, of the held-out group, and the prediction.
    """
    genes = [str(g) for g in observed.var_names]
    pred = group_means(predicted[:, genes], schema=schema)
    groups = list(pred.index)
    true = group_means(observed, schema=schema, groups=groups)
    controls = control_means(observed, schema=schema)
    frames = []
    for i, (context, perturbation) in enumerate(groups):
        frames.append(
            pd.DataFrame(
                {
                    "model": model,
                    "context": context,
                    "perturbation": perturbation,
                    "gene": genes,
                    "control": np.asarray(controls.loc[context], dtype=float),
                    "observed": true.to_numpy()[i],
                    "predicted": pred.to_numpy()[i],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)

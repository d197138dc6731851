"""Single steps on user data, as the ``fit`` / ``predict`` / ``evaluate`` subcommands use them.

:func:`load_model` reads any registered model folder; :func:`evaluator_layout` turns a
prediction into the AnnData layout perturbation evaluators read (cell-eval and others): the
predicted profiles plus the observed controls of each target context, ``obs`` columns for the
perturbation and the context, the values as the model predicted them (the same values the
benchmark scores; ``clip_negative=True`` sets negative values to 0 for consumers that need it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.schema import Schema, obs_labels
from transferome.errors import DataValidationError, ModelFileError, ReaderError

__all__ = ["evaluator_layout", "load_model", "read_targets"]


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load a model folder written by any registered estimator's ``save``."""
    from transferome.models import available_models, get_model

    meta_file = Path(path) / "model.json"
    if not meta_file.is_file():
        raise ModelFileError(f"{path}: model.json is missing; not a transferome model folder")
    try:
        model_class = json.loads(meta_file.read_text(encoding="utf-8"))["model_class"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{meta_file}: unreadable model description ({exc})") from exc
    for name in available_models():
        cls = get_model(name)
        if cls.__name__ == model_class:
            return cls.load(path)
    raise ModelFileError(
        f"{path} holds a {model_class!r} model, which is not a registered transferome model"
    )


def read_targets(
    path: str | None, pairs: Sequence[str], *, schema: Schema
) -> list[tuple[str, str]]:
    """Read targets from a CSV and from ``CONTEXT:PERTURBATION`` strings.

    The CSV columns are named by the schema's context and perturbation keys.
    """
    targets: list[tuple[str, str]] = []
    if path is not None:
        try:
            table = pd.read_csv(path, dtype=str)
        except (OSError, ValueError) as exc:
            raise ReaderError(f"{path}: not a readable CSV table ({exc})") from exc
        for key in (schema.context_key, schema.perturbation_key):
            if key not in table.columns:
                raise ReaderError(
                    f"{path}: column {key!r} is missing; columns are {list(table.columns)}"
                )
        targets += list(zip(table[schema.context_key], table[schema.perturbation_key], strict=True))
    for pair in pairs:
        context, sep, perturbation = pair.partition(":")
        if not sep or not context or not perturbation:
            raise DataValidationError(f"--target {pair!r}: expected CONTEXT:PERTURBATION")
        targets.append((context, perturbation))
    if not targets:
        raise DataValidationError("no target given (--targets FILE or --target C:P)")
    return [(str(c), str(p)) for c, p in targets]


def evaluator_layout(
    prediction: AnnData,
    data: AnnData,
    *,
    schema: Schema,
    replicates: int = 1,
    clip_negative: bool = False,
) -> AnnData:
    """Predicted profiles plus the observed controls of their contexts, in one AnnData.

    Parameters
    ----------
    prediction
        A model's ``predict`` output (rows labelled by context and perturbation).
    data
        The data the prediction started from; its controls of each target context are added.
    schema
        The obs keys.
    replicates
        Copies of each predicted row (evaluators that test differential expression need
        several observations per perturbation).
    clip_negative
        Set negative values (predicted and control) to 0, for a consumer that needs
        non-negative input. Off by default: the values are then exactly those the benchmark
        scores, so ``predict`` + ``evaluate`` agree with ``benchmark``.

    Returns
    -------
    AnnData
        ``X`` dense float32, genes of ``data``; ``obs`` has the context and perturbation keys
        and ``predicted`` (bool). A prediction with interval bounds keeps them in
        ``layers["lower"]`` / ``layers["upper"]`` (an observed control is its own bound),
        and its ``uns["interval"]`` and ``uns["provenance"]``.
    """
    genes = [str(g) for g in data.var_names]
    missing = sorted(set(genes) - set(map(str, prediction.var_names)))
    if missing:
        raise DataValidationError(f"the prediction lacks {len(missing)} genes, e.g. {missing[:5]}")
    if replicates < 1:
        raise DataValidationError(f"replicates must be at least 1, got {replicates}")
    contexts = sorted(set(obs_labels(prediction, schema.context_key)))
    data_contexts = obs_labels(data, schema.context_key)
    is_control = obs_labels(data, schema.perturbation_key) == schema.control
    rows = is_control & np.isin(data_contexts, contexts)
    absent = sorted(set(contexts) - set(data_contexts[rows]))
    if absent:
        raise DataValidationError(f"no {schema.control!r} observations of context(s) {absent}")
    predicted = prediction[:, genes]
    values = np.asarray(predicted.X, dtype=np.float32)
    if clip_negative:
        values = np.clip(values, 0.0, None)
    values = np.repeat(values, replicates, axis=0)
    obs = pd.DataFrame(
        {
            schema.context_key: np.repeat(obs_labels(predicted, schema.context_key), replicates),
            schema.perturbation_key: np.repeat(
                obs_labels(predicted, schema.perturbation_key), replicates
            ),
        }
    )
    obs.index = [f"pred_{i}" for i in range(len(obs))]
    pred_part = AnnData(X=values, obs=obs, var=pd.DataFrame(index=genes))
    bounds = [name for name in ("lower", "upper") if name in predicted.layers]
    for name in bounds:
        bound = np.asarray(predicted.layers[name], dtype=np.float32)
        pred_part.layers[name] = np.repeat(
            np.clip(bound, 0.0, None) if clip_negative else bound, replicates, axis=0
        )
    controls = data[rows]
    matrix = controls.X
    control_values = np.asarray(
        matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=np.float32
    )
    control_obs = pd.DataFrame(
        {
            schema.context_key: data_contexts[rows],
            schema.perturbation_key: schema.control,
        },
        index=[f"control_{name}" for name in controls.obs_names],
    )
    if clip_negative:
        control_values = np.clip(control_values, 0.0, None)
    control_part = AnnData(X=control_values, obs=control_obs, var=pd.DataFrame(index=genes))
    for name in bounds:  # an observed control is its own bound
        control_part.layers[name] = control_values
    out = ad.concat([control_part, pred_part])
    for key in ("interval", "provenance"):
        if key in prediction.uns:
            out.uns[key] = prediction.uns[key]
    out.obs["predicted"] = [False] * control_part.n_obs + [True] * pred_part.n_obs
    for key in (schema.context_key, schema.perturbation_key):
        out.obs[key] = out.obs[key].astype("category")
    return out

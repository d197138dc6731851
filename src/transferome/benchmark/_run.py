"""Run a benchmark task: split, fit every model on each training part, predict, score."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd
from anndata import AnnData

from transferome._logging import get_logger
from transferome.benchmark._result import (
    _REFERENCE,
    CEILING,
    REFERENCE_ROWS,
    RESULT_COLUMNS,
    TRUTH,
    BenchmarkResult,
)
from transferome.benchmark._scoring import (
    _pool,
    _reference_predictions,
    _score_predictions,
    _truth_prediction,
    _with_ceiling,
)
from transferome.benchmark._tasks import get_task
from transferome.data.blocks import in_memory, is_backed, lazy
from transferome.data.schema import Schema, obs_labels, validate
from transferome.data.splits import Split
from transferome.errors import DataValidationError, TransferomeError
from transferome.metrics import (
    control_means,
    summarize,
)
from transferome.models import Estimator, get_model

__all__ = [
    "CEILING",
    "REFERENCE_ROWS",
    "RESULT_COLUMNS",
    "TRUTH",
    "BenchmarkResult",
    "run_task",
    "with_zero_controls",
]

_log = get_logger(__name__)
ValueKind = Literal["log", "delta"]


def with_zero_controls(adata: AnnData, *, schema: Schema) -> AnnData:
    """Copy change data (e.g. L1000 signatures), with one all-zero control per context.

    Existing control observations are dropped: for changes against control the control
    profile is zero by definition.
    """
    for key in (schema.context_key, schema.perturbation_key):
        if key not in adata.obs.columns:
            raise DataValidationError(
                f"obs key {key!r} is missing; obs has columns {list(map(str, adata.obs.columns))}"
            )
    labels = obs_labels(adata, schema.perturbation_key)
    kept = adata[labels != schema.control]
    contexts = sorted(set(obs_labels(kept, schema.context_key)))
    obs = pd.DataFrame(
        {schema.context_key: contexts, schema.perturbation_key: schema.control},
        index=[f"zero_control_{i}" for i in range(len(contexts))],
    )
    zeros = AnnData(
        X=np.zeros((len(contexts), adata.n_vars), dtype=np.float32),
        obs=obs,
        var=pd.DataFrame(index=adata.var_names.copy()),
    )
    body = AnnData(
        X=np.asarray(kept.X.toarray() if hasattr(kept.X, "toarray") else kept.X, np.float32),
        obs=kept.obs[[schema.context_key, schema.perturbation_key]].astype(str),
        var=pd.DataFrame(index=adata.var_names.copy()),
    )
    return ad.concat([body, zeros], join="outer", merge="first")


def _instantiate(
    models: Sequence[str | Estimator] | Mapping[str, str | Estimator],
    model_params: Mapping[str, Mapping[str, Any]],
) -> list[tuple[str, type[Estimator], dict[str, Any]]]:
    if isinstance(models, Mapping):
        labelled = [(str(label), model) for label, model in models.items()]
    else:
        labelled = [
            (model if isinstance(model, str) else type(model).name or type(model).__name__, model)
            for model in models
        ]
    specs = []
    for label, model in labelled:
        if isinstance(model, str):
            cls = get_model(model)
            specs.append((label, cls, dict(model_params.get(label, model_params.get(model, {})))))
        elif isinstance(model, Estimator):
            specs.append((label, type(model), model.get_params()))
        else:
            raise TransferomeError(f"models must be names or estimators, got {model!r}")
    labels = [label for label, _, _ in specs]
    if len(set(labels)) != len(labels):
        raise TransferomeError(f"duplicated model names {labels}")
    if not specs:
        raise TransferomeError("no model given to benchmark")
    return specs


def _variants(
    specs: Sequence[tuple[str, type[Estimator], dict[str, Any]]],
    variants: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Model label -> {reported name: hyperparameter changes}; one entry without variants."""
    labels = [label for label, _, _ in specs]
    unknown = sorted(set(variants) - set(labels))
    if unknown:
        raise TransferomeError(f"variants of {unknown}, which are not among the models {labels}")
    outputs: dict[str, dict[str, dict[str, Any]]] = {}
    for label, cls, _ in specs:
        named = variants.get(label, {label: {}})
        if not named:
            raise TransferomeError(f"variants[{label!r}] is empty; give at least one variant")
        outputs[label] = {str(name): dict(changes) for name, changes in named.items()}
        known = set(cls.param_names())
        for name, changes in outputs[label].items():
            wrong = sorted(set(changes) - known)
            if wrong:
                raise TransferomeError(
                    f"variants[{label!r}][{name!r}] changes {wrong}, which are not "
                    f"hyperparameters of {cls.__name__}"
                )
    names = [name for named in outputs.values() for name in named]
    if len(set(names)) != len(names) or set(REFERENCE_ROWS) & set(names):
        raise TransferomeError(f"the reported model names must be distinct, got {names}")
    return outputs


def run_task(  # noqa: PLR0913 - a task runner: the task, the data, keyword-only options
    task_name: str,
    adata: AnnData,
    *,
    schema: Schema | None = None,
    models: Sequence[str | Estimator] | Mapping[str, str | Estimator],
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    values: ValueKind = "log",
    n_degs: int = 50,
    task_options: Mapping[str, Any] | None = None,
    ceiling: bool = True,
    splits: Sequence[Split] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    keep_models: bool = False,
    on_step: Callable[[str], None] | None = None,
    truth: AnnData | None = None,
    variants: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> BenchmarkResult:
    """Run a registered task on ``adata`` for every model.

    Parameters
    ----------
    task_name
        A name of :data:`~transferome.benchmark.TASKS` (``transfer``, ``combination``, ...).
    adata
        The data (log-normalised ``X``, or changes against control with ``values="delta"``);
        never modified.
    schema
        The obs keys.
    models
        Registered model names or estimator instances (refitted, fresh, on every split,
        from their parameters), or a mapping of labels to them (e.g. variants of one
        estimator side by side).
    model_params
        Hyperparameters per model name (or label).
    seed
        Seed of the splits.
    values
        ``log``: non-negative log-normalised values, the control of a group is the observed
        control mean of its context. ``delta``: values are already changes against control
        (negative allowed); controls are replaced by one zero profile per context.
    n_degs
        DEGs per group.
    task_options
        Extra keyword arguments of the task's split builder; for ``transfer``: ``holdout``
        (``"group"``, the default, or ``"context"``), ``contexts``, ``perturbations`` and
        ``max_splits`` (see :func:`~transferome.benchmark.get_task`).
    ceiling
        Add each held-out group's noise ceiling (model ``"ceiling"``, metrics
        ``pearson_delta`` and ``pearson_delta_deg``; see
        :func:`~transferome.metrics.noise_ceiling`, seeded with ``seed``) and every model's
        ``scaled_pearson_delta`` = (score - additive) / (ceiling - additive) per group, NaN
        where the ceiling is undefined or not above the additive score. Without ``additive``
        among ``models`` it is fitted for the scaling alone and not reported.
    splits
        Splits of ``adata`` to use instead of those the task builds (``task_options`` must
        then be empty, and :attr:`BenchmarkResult.holdout` is ``""``: the caller knows what
        they hold out); with ``values="delta"`` they index the rows of
        :func:`with_zero_controls` of ``adata``.
    on_error
        ``"raise"``: a model's :class:`~transferome.TransferomeError` stops the run.
        ``"skip"``: the model is left out from then on and named in
        :attr:`BenchmarkResult.skipped` with the reason.
    keep_models
        Keep each model fitted on the last split (:attr:`BenchmarkResult.fitted`).
    on_step
        Called with a short message after each fit (a progress display).
    truth
        Noise-free mean profiles of (at least) the held-out groups, one row per (context,
        perturbation), e.g. :meth:`~transferome.datasets.SimulationTruth.profiles` of a
        simulated atlas; with a control row per context or the layer ``"change"``. Adds the
        rows of model ``"truth"``: the observed control mean of the context plus the true
        change, scored like every model (what a perfect model would score; it validates the
        split-half ceiling).
    variants
        Predictions of one fit under several settings: ``{label: {name: changes}}``. The
        model fitted under ``label`` predicts once per ``name``, its hyperparameters changed
        by ``changes`` (:meth:`~transferome.models.Estimator.set_params`, no refit), and each
        prediction is reported as model ``name`` instead of ``label`` (its fit time repeated
        on each). E.g. XTransfer's ``prediction="decoded"`` and ``"anchored"`` side by side.

    Returns
    -------
    BenchmarkResult
    """
    schema = schema or Schema()
    if values not in ("log", "delta"):
        raise DataValidationError(f"values must be 'log' or 'delta', got {values!r}")
    if on_error not in ("raise", "skip"):
        raise DataValidationError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if splits is not None and task_options:
        raise TransferomeError("give splits or task_options, not both")
    task = get_task(task_name)
    specs = _instantiate(models, model_params or {})
    outputs = _variants(specs, variants or {})
    delta = values == "delta"
    # X on disk stays there: the splits are views of it, and the validation, group means and
    # scores stream it a block of rows at a time (once per group; see data._stream). Change data
    # gain zero controls first, which needs them in memory.
    streamed = is_backed(adata) and not delta
    adata = lazy(adata) if streamed else in_memory(adata, what="run_task")
    if delta:
        data = with_zero_controls(adata, schema=schema)
        keys = schema.without_optional_keys()
        description = validate(data, keys, allow_negative=True, allow_nan=True)
    else:
        description = validate(adata, schema, require_controls=False)
        data = adata
    schema = description.schema
    options = dict(task_options or {})
    holdout = ""
    if splits is None:
        splits = task.make_splits(data, schema=schema, seed=seed, **options)
        holdout = task.holdout_of(options)
    splits = list(splits)
    split_of: dict[tuple[str, str], str] = {}
    for split in splits:
        for group in split.held_out:
            if group in split_of:
                raise TransferomeError(f"group {group} is held out by two splits of {task.name}")
            split_of[group] = split.name
    _log.info("task %s: %d splits, %d models", task.name, len(splits), len(specs))
    predictions: dict[str, list[AnnData]] = {
        name: [] for named in outputs.values() for name in named
    }
    timings = []
    last: dict[str, Estimator] = {}
    skipped: dict[str, str] = {}
    for number, split in enumerate(splits, start=1):
        train = data[split.train] if streamed else data[split.train].copy()
        where = f"split {number}/{len(splits)} ({split.name})"
        split_start = time.perf_counter()
        for label, cls, params in specs:
            if label in skipped:
                continue
            _log.info("%s: fitting %s", where, label)
            model = cls(**params)
            as_built = model.get_params()  # every variant starts from these, none leaks on
            start = time.perf_counter()
            predicted: dict[str, tuple[AnnData, float]] = {}
            try:
                model.fit(train, schema=description)  # validated once, above
                fitted = time.perf_counter()
                for name, changes in outputs[label].items():
                    begin = time.perf_counter()
                    model.set_params(**{**as_built, **changes})
                    held_out = model.predict(train, list(split.held_out))
                    predicted[name] = (held_out, time.perf_counter() - begin)
                model.set_params(**as_built)
            except TransferomeError as exc:
                if on_error == "raise":
                    raise
                _log.warning("%s cannot run on %s: %s", label, split.name, exc)
                skipped[label] = str(exc)
                continue
            finally:
                if on_step is not None:
                    on_step(f"{split.name}: {label}")
            for name, (held_out, seconds) in predicted.items():
                predictions[name].append(held_out)
                timings.append((split.name, name, fitted - start, seconds))
            if keep_models:
                last[label] = model
            _log.debug("%s: %s fitted in %.1f s", where, label, fitted - start)
        _log.info("%s: done in %.1f s", where, time.perf_counter() - split_start)
    for label in skipped:
        for name in outputs[label]:
            predictions.pop(name, None)
        last.pop(label, None)
    if not predictions:
        raise TransferomeError(f"no model could run on these data: {skipped}")
    controls = control_means(data, schema=schema)
    pooled = {label: _pool(parts) for label, parts in predictions.items()}
    scored_models = dict(pooled)
    if truth is not None:
        scored_models[TRUTH] = _truth_prediction(truth, list(split_of), controls, schema, data)
    results = _score_predictions(
        scored_models,
        data,
        schema=schema,
        controls=controls,
        task=task.name,
        split_of=split_of,
        n_degs=n_degs,
    )
    if ceiling:
        reference = None
        if _REFERENCE not in predictions:
            reference = _reference_predictions(data, splits, schema)
        results = _with_ceiling(
            results,
            data,
            schema=schema,
            split_of=split_of,
            controls=controls if delta else None,
            reference=reference,
            seed=seed,
            n_degs=n_degs,
        )
    timing_frame = pd.DataFrame(timings, columns=["split", "model", "fit_s", "predict_s"])
    return BenchmarkResult(
        task.name,
        results,
        summarize(results),
        timing_frame,
        holdout,
        predictions=pooled,
        fitted=last,
        skipped=skipped,
    )

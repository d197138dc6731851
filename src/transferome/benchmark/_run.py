"""Run a benchmark task: split, fit every model on each training part, predict, score."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd
from anndata import AnnData

from transferome._logging import get_logger
from transferome.benchmark._tasks import HOLDOUT_TEXT, get_task
from transferome.data._backed import in_memory, is_backed, lazy
from transferome.data.schema import Schema, obs_labels, validate
from transferome.data.splits import Split
from transferome.errors import DataValidationError, TransferomeError
from transferome.metrics import (
    METRICS,
    control_means,
    evaluate_groups,
    interval_metrics,
    noise_ceiling,
    summarize,
)
from transferome.models import Estimator, get_model

__all__ = [
    "CEILING",
    "REFERENCE_ROWS",
    "TRUTH",
    "BenchmarkResult",
    "run_task",
    "with_zero_controls",
]

_log = get_logger(__name__)
ValueKind = Literal["log", "delta"]
RESULT_COLUMNS = ["task", "split", "model", "context", "perturbation", "metric", "value"]
CEILING = "ceiling"
"""Model name of the noise-ceiling rows of a result table."""
TRUTH = "truth"
"""Model name of the rows scoring the noise-free truth (simulated data only)."""
REFERENCE_ROWS = (CEILING, TRUTH)
"""Model names of a result table that are bounds, not models."""
_REFERENCE = "additive"
_SCALED = "scaled_pearson_delta"


@dataclass(frozen=True)
class BenchmarkResult:
    """Tables of a benchmark run.

    Attributes
    ----------
    task
        Name of the task.
    results
        One row per split x group x model x metric (columns :data:`RESULT_COLUMNS`). Unless
        switched off, rows of model ``"ceiling"`` hold each group's noise ceiling under the
        metric names ``pearson_delta`` and ``pearson_delta_deg``, and every model has the
        metric ``scaled_pearson_delta``. With a ``truth``, rows of model ``"truth"`` score
        the noise-free profiles as if they were a prediction (the Bayes ceiling).
    summary
        Mean and median over groups per model x metric (NaN values left out, counted in
        ``n_nan``; see :func:`transferome.metrics.summarize`).
    timings
        Seconds spent in ``fit`` and ``predict`` per split and model.
    holdout
        What each split held out: ``"group"`` (one (context, perturbation) group, the
        context's other perturbations in training), ``"context"`` (every perturbed group of
        one context at once) or ``"combination"``; see :data:`HOLDOUT_TEXT`.
    predictions
        Model label -> its predicted mean profiles, one row per held-out group (all splits).
    fitted
        Model label -> the estimator fitted on the last split (only with ``keep_models``).
    skipped
        Model label -> why it could not run (with ``on_error="skip"``); such a model has no
        results.
    """

    task: str
    results: pd.DataFrame
    summary: pd.DataFrame
    timings: pd.DataFrame = field(repr=False)
    holdout: str = ""
    predictions: dict[str, AnnData] = field(default_factory=dict, repr=False)
    fitted: dict[str, Estimator] = field(default_factory=dict, repr=False)
    skipped: dict[str, str] = field(default_factory=dict)

    def holdout_text(self) -> str:
        """One sentence saying what the splits held out."""
        return HOLDOUT_TEXT.get(self.holdout, self.holdout)

    def per_perturbation(self, metric: str = "pearson_delta") -> pd.DataFrame:
        """Mean of ``metric`` over the held-out groups of each perturbation, per model.

        One row per perturbation (with ``n_groups``, the number of held-out groups), one
        column per model; NaN where the metric is undefined in every group.
        """
        rows = self.results[self.results["metric"] == metric]
        table = rows.pivot_table(
            index="perturbation", columns="model", values="value", aggfunc="mean", sort=True
        )
        models = [m for m in dict.fromkeys(self.results["model"]) if m in table.columns]
        table = table.reindex(columns=models)
        table.columns.name = None
        n_groups = rows.drop_duplicates(["context", "perturbation"]).groupby("perturbation")
        table.insert(0, "n_groups", n_groups.size().reindex(table.index).astype(int))
        return table

    def report_markdown(self, metric: str = "pearson_delta") -> str:
        """:meth:`to_markdown`, what the splits held out, and the per-perturbation table."""
        lines = [self.to_markdown(), ""]
        if self.holdout:
            lines += [f"Held out ({self.holdout}): {self.holdout_text()}.", ""]
        table = self.per_perturbation(metric)
        if not table.empty:
            models = [c for c in table.columns if c != "n_groups"]
            lines += [
                f"Mean `{metric}` per perturbation (over its held-out groups):",
                "",
                "| perturbation | groups | " + " | ".join(models) + " |",
                "|---|---:|" + "---:|" * len(models),
            ]
            for perturbation, row in table.iterrows():
                cells = [f"{row[m]:.3f}" if np.isfinite(row[m]) else "n/a" for m in models]
                lines.append(
                    f"| {perturbation} | {int(row['n_groups'])} | " + " | ".join(cells) + " |"
                )
        return "\n".join(lines).rstrip() + "\n"

    def to_markdown(self, metrics: Sequence[str] | None = None) -> str:
        """Markdown table: one row per metric, one column per model, ``mean (median)``."""
        frame = self.summary
        names = list(metrics) if metrics is not None else list(dict.fromkeys(frame["metric"]))
        models = list(dict.fromkeys(frame["model"]))
        cells = frame.set_index(["metric", "model"])
        lines = [
            "| metric | " + " | ".join(models) + " |",
            "|---|" + "---:|" * len(models),
        ]
        for name in names:
            arrow = (
                "" if name not in METRICS else (" ↑" if METRICS[name].higher_is_better else " ↓")
            )
            row = []
            for model in models:
                if (name, model) not in cells.index:
                    row.append("")
                    continue
                mean, median = cells.loc[(name, model), ["mean", "median"]]
                row.append(f"{mean:.3f} ({median:.3f})" if np.isfinite(mean) else "n/a")
            lines.append(f"| {name}{arrow} | " + " | ".join(row) + " |")
        n_models = len(set(self.results["model"]) - set(REFERENCE_ROWS))
        n = int(self.results[["context", "perturbation"]].drop_duplicates().shape[0])
        lines.append("")
        lines.append(
            f"Task `{self.task}`: mean (median) over {n} held-out groups; n/a: undefined in "
            f"every group. {n_models} models."
        )
        ceilings = self.results[
            (self.results["model"] == CEILING) & (self.results["metric"] == "pearson_delta")
        ]
        if len(ceilings):
            n_groups_with_ceiling = int(ceilings["value"].notna().sum())
            lines[-1] += (
                f" `{CEILING}`: split-half noise ceiling of the measured change "
                f"(Spearman-Brown), defined in {n_groups_with_ceiling} of {n} groups; "
                f"`{_SCALED}` = (score - {_REFERENCE}) / ({CEILING} - {_REFERENCE})."
            )
        if (self.results["model"] == TRUTH).any():
            lines[-1] += (
                f" `{TRUTH}`: the noise-free profiles scored as a prediction, the best any "
                "model can do (simulated data)."
            )
        return "\n".join(lines)


def with_zero_controls(adata: AnnData, *, schema: Schema) -> AnnData:
    """A copy of change data (e.g. L1000 signatures) with one all-zero control per context.

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


def run_task(
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
            start = time.perf_counter()
            predicted: dict[str, tuple[AnnData, float]] = {}
            try:
                model.fit(train, schema=description)  # validated once, above
                fitted = time.perf_counter()
                for name, changes in outputs[label].items():
                    begin = time.perf_counter()
                    model.set_params(**{**params, **changes})
                    held_out = model.predict(train, list(split.held_out))
                    predicted[name] = (held_out, time.perf_counter() - begin)
                model.set_params(**params)
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
    """The held-out groups as a perfect model would predict them: observed control + true
    change (so that the score measures only the noise in the held-out observations)."""
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

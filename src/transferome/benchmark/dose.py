"""Dose and time tasks: predict conditions that were not measured.

``unseen_dose``: each split holds out one condition of a dose series (one dose of a
perturbation in a context) and predicts it from the series' other doses and everything
else; a held-out dose inside the measured range is ``interpolation``, the highest or lowest
``extrapolation_high`` / ``extrapolation_low``. ``unseen_time``: the same along time (one
time point of a perturbation at one dose). ``dose_transfer``: each split holds out every
dose of a perturbation in one context and predicts each from the perturbation's other
contexts, at any doses (``transfer``).

Every held-out condition is scored on its change against the controls of its context
(:func:`~transferome.metrics.group_metrics`, DEGs = the condition's ``n_degs`` genes that
change most), beside the split-half noise ceiling of that change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome._logging import get_logger
from transferome.data.dose import ConditionTable, condition_table
from transferome.data.schema import Schema
from transferome.errors import DataValidationError
from transferome.metrics import group_metrics, noise_ceiling, summarize
from transferome.models.dose import DOSE_MODELS, DoseModel, get_dose_model

__all__ = [
    "DEFAULT_DOSE_MODELS",
    "DOSE_METRICS",
    "DOSE_TASKS",
    "DoseBenchmarkResult",
    "DoseSplit",
    "dose_splits",
    "run_dose_task",
]

_log = get_logger(__name__)
DOSE_TASKS: dict[str, dict[str, str]] = {
    "unseen_dose": {
        "axis": "dose",
        "holdout": "point",
        "description": "hold out one dose of a perturbation in a context; predict it from "
        "the other doses",
    },
    "unseen_time": {
        "axis": "time",
        "holdout": "point",
        "description": "hold out one time point of a perturbation at one dose; predict it "
        "from the other time points",
    },
    "dose_transfer": {
        "axis": "dose",
        "holdout": "series",
        "description": "hold out every dose of a perturbation in one context; predict each "
        "dose from the perturbation's other contexts at any doses",
    },
}
"""The dose tasks: axis, what a split holds out, one line of description."""
DEFAULT_DOSE_MODELS = ("nearest_dose", "log_linear", "dose_mean", "dose_response")
DOSE_METRICS = ("pearson_delta", "pearson_delta_deg", "r2_delta_deg", "interval_coverage")
KINDS = ("interpolation", "extrapolation_high", "extrapolation_low", "transfer")
CEILING = "ceiling"


@dataclass(frozen=True)
class DoseSplit:
    """One split: the held-out condition rows of the table and what kind of holdout it is."""

    name: str
    held: tuple[int, ...]
    kind: str


def dose_splits(table: ConditionTable, holdout: str) -> list[DoseSplit]:
    """Split a table: ``holdout="point"`` (one condition) or ``"series"`` (a series).

    A point is held out from series with two or more conditions; a series only when its
    perturbation has another series to learn from.
    """
    series = table.series()
    splits: list[DoseSplit] = []
    if holdout == "point":
        for rows in series.values():
            if len(rows) < 2:
                continue
            for i, row in enumerate(rows):
                if 0 < i < len(rows) - 1:
                    kind = "interpolation"
                else:
                    kind = "extrapolation_high" if i == len(rows) - 1 else "extrapolation_low"
                splits.append(DoseSplit(table.label(int(row)), (int(row),), kind))
    elif holdout == "series":
        perturbation = table.conditions.drop_duplicates("series").set_index("series")[
            "perturbation"
        ]
        counts = perturbation.value_counts()
        for s, rows in series.items():
            if counts[perturbation[s]] >= 2:
                splits.append(DoseSplit(s, tuple(int(r) for r in rows), "transfer"))
    else:
        raise DataValidationError(f"holdout must be 'point' or 'series', got {holdout!r}")
    return splits


@dataclass
class DoseBenchmarkResult:
    """Tables of a dose-task run.

    Attributes
    ----------
    task, axis
        The task and its axis.
    results
        One row per split x held-out condition x model x metric: ``split``, ``kind``,
        ``series``, ``context``, ``perturbation``, ``value_label`` (the dose or time held
        out), ``model``, ``metric``, ``value``. Rows of model ``ceiling`` hold the
        condition's split-half noise ceiling of ``pearson_delta`` (and ``_deg``).
    timings
        Seconds in fit + predict per split and model.
    predictions
        Model -> held-out condition label -> predicted change (one array per gene).
    fitted
        Model -> the model fitted on the full table (with ``keep_models``).
    """

    task: str
    axis: str
    results: pd.DataFrame
    timings: pd.DataFrame = field(repr=False)
    predictions: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    fitted: dict[str, DoseModel] = field(default_factory=dict, repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        """Mean and median per kind x model x metric (see :func:`transferome.metrics.summarize`)."""
        return summarize(self.results, by=("kind", "model", "metric"))

    def to_markdown(self, metrics: Sequence[str] = ("pearson_delta_deg", "r2_delta_deg")) -> str:
        """One table per metric: kinds as rows, models as columns, mean over conditions."""
        frame = self.summary
        models = [m for m in dict.fromkeys(self.results["model"]) if m != CEILING]
        if (self.results["model"] == CEILING).any():
            models.append(CEILING)
        kinds = [k for k in KINDS if k in set(self.results["kind"])]
        lines = []
        cells = frame.set_index(["kind", "model", "metric"])
        counts = self.results.drop_duplicates(["split", "series", "value_label"]).groupby("kind")
        n_of = counts.size().to_dict()
        for metric in metrics:
            present = [m for m in models if (kinds[0], m, metric) in cells.index] if kinds else []
            if not present:
                continue
            lines += [
                f"`{metric}` (mean over held-out conditions), task `{self.task}`:",
                "",
                "| held out | n | " + " | ".join(present) + " |",
                "|---|---:|" + "---:|" * len(present),
            ]
            for kind in kinds:
                row = []
                for model in present:
                    key = (kind, model, metric)
                    mean = cells.loc[key, "mean"] if key in cells.index else np.nan
                    row.append(f"{mean:.3f}" if np.isfinite(mean) else "n/a")
                lines.append(f"| {kind} | {n_of.get(kind, 0)} | " + " | ".join(row) + " |")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def report_markdown(self) -> str:
        """Return what ``transferome benchmark`` prints and writes to ``summary.md``."""
        return self.to_markdown(("pearson_delta", "pearson_delta_deg", "r2_delta_deg"))


def _ceilings(
    adata: AnnData, table: ConditionTable, schema: Schema, rows: Sequence[int], n_degs: int
) -> dict[int, tuple[float, float]]:
    """Split-half noise ceiling of each condition's change (one replicate per half allowed)."""
    if table.obs_condition is None or table.obs_control is None:
        return {}
    labels = np.where(
        table.obs_condition >= 0,
        np.char.add("condition_", table.obs_condition.astype(str)),
        schema.control,
    )
    obs = pd.DataFrame(
        {"context": table.obs_control.astype(str), "perturbation": labels},
        index=adata.obs_names,
    )
    relabelled = AnnData(X=adata.X, obs=obs)
    keys = Schema().without_optional_keys()
    groups = [(str(table.conditions.at[r, "control"]), f"condition_{r}") for r in rows]
    frame = noise_ceiling(relabelled, groups, schema=keys, min_per_half=1, n_degs=n_degs)
    out = {}
    for r, (_, row) in zip(rows, frame.iterrows(), strict=True):
        out[r] = (float(row["ceiling_pearson_delta"]), float(row["ceiling_pearson_delta_deg"]))
    return out


def _coverage(true: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    finite = np.isfinite(true) & np.isfinite(lower) & np.isfinite(upper)
    if not finite.any():
        return float("nan")
    t = true[finite]
    return float(np.mean((t >= lower[finite]) & (t <= upper[finite])))


def run_dose_task(  # noqa: PLR0913 - a task runner: the data, the task, keyword-only options
    adata: AnnData,
    task: str = "unseen_dose",
    *,
    models: Sequence[str] | Mapping[str, Mapping[str, Any]] | None = None,
    schema: Schema | None = None,
    table: ConditionTable | None = None,
    match_key: str | None = None,
    n_degs: int = 50,
    max_splits: int | None = None,
    kinds: Sequence[str] | None = None,
    seed: int = 0,
    ceiling: bool = True,
    keep_models: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DoseBenchmarkResult:
    """Run a dose task: fit every model without the held-out conditions, score each.

    Parameters
    ----------
    adata
        Log-normalised observations with a dose (and, for ``unseen_time``, a time) column;
        never modified.
    task
        A key of :data:`DOSE_TASKS`.
    models
        Short names (default :data:`DEFAULT_DOSE_MODELS`), or name -> parameters.
    schema
        The obs keys (``Schema()`` when ``None``).
    table
        A prebuilt :func:`~transferome.data.dose.condition_table` of ``adata`` (built
        here when ``None``).
    match_key
        Without ``table``: the obs column a condition's controls must share with it (an
        experiment id), see :func:`~transferome.data.dose.condition_table`.
    n_degs
        DEGs of the ``_deg`` metrics.
    max_splits
        Keep at most this many splits, drawn by ``seed`` (``None``: all).
    kinds
        Keep only splits of these kinds (e.g. ``["interpolation"]``).
    seed
        Seed of the ``max_splits`` draw.
    ceiling
        Add the split-half noise ceiling of every held-out condition.
    keep_models
        Also fit every model on the full table (``result.fitted``).
    progress
        Called with ``(done, total)`` after each split.
    """
    if task not in DOSE_TASKS:
        raise DataValidationError(f"unknown dose task {task!r}; available: {sorted(DOSE_TASKS)}")
    spec = DOSE_TASKS[task]
    schema = schema or Schema()
    if table is None:
        table = condition_table(
            adata,
            schema=schema,
            axis=spec["axis"],  # type: ignore[arg-type]
            match_key=match_key,
        )
    elif match_key is not None:
        raise DataValidationError("give match_key or a prebuilt table, not both")
    elif table.axis != spec["axis"]:
        raise DataValidationError(f"task {task!r} needs a {spec['axis']} table, got {table.axis}")
    if models is None:
        models = DEFAULT_DOSE_MODELS
    configs = (
        {str(m): dict(p or {}) for m, p in models.items()}
        if isinstance(models, Mapping)
        else {str(m): {} for m in models}
    )
    unknown = [m for m in configs if m not in DOSE_MODELS]
    if unknown:
        raise DataValidationError(
            f"unknown dose model(s) {unknown}; available: {sorted(DOSE_MODELS)}"
        )
    splits = dose_splits(table, spec["holdout"])
    if kinds is not None:
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise DataValidationError(f"unknown kind(s) {bad}; kinds: {KINDS}")
        splits = [s for s in splits if s.kind in set(kinds)]
    if not splits:
        raise DataValidationError(
            f"task {task!r} has nothing to hold out: no {spec['axis']} series with two or more "
            "conditions"
            + (" of the chosen kinds" if kinds else "")
            + (" and no perturbation in two contexts" if spec["holdout"] == "series" else "")
        )
    if max_splits is not None and len(splits) > max_splits:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(splits), int(max_splits), replace=False))
        splits = [splits[i] for i in keep]
    held_rows = sorted({r for s in splits for r in s.held})
    ceilings = _ceilings(adata, table, schema, held_rows, n_degs) if ceiling else {}
    records: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    predictions: dict[str, dict[str, np.ndarray]] = {m: {} for m in configs}
    for done, split in enumerate(splits, start=1):
        held = np.array(split.held)
        train = table.subset(np.setdiff1d(np.arange(len(table.conditions)), held))
        queries = table.conditions.iloc[held]
        for name, params in configs.items():
            started = time.process_time()
            model = get_dose_model(name, **params).fit(train)
            pred = model.predict(queries)
            timings.append(
                {"split": split.name, "model": name, "cpu_s": time.process_time() - started}
            )
            for j, row in enumerate(held):
                control = table.control_of(int(row))
                true = table.deltas[row]
                scores = group_metrics(
                    control + pred.delta[j], control + true, control, n_degs=n_degs
                )
                if pred.lower is not None and pred.upper is not None:
                    scores["interval_coverage"] = _coverage(true, pred.lower[j], pred.upper[j])
                predictions[name][table.label(int(row))] = pred.delta[j]
                records += _rows(split, table, int(row), name, scores)
        for row in held:
            if int(row) in ceilings:
                full, deg = ceilings[int(row)]
                scores = {"pearson_delta": full, "pearson_delta_deg": deg}
                records += _rows(split, table, int(row), CEILING, scores)
        if progress is not None:
            progress(done, len(splits))
    results = pd.DataFrame.from_records(records)
    results = results[results["metric"].isin(DOSE_METRICS)].reset_index(drop=True)
    fitted = {}
    if keep_models:
        fitted = {name: get_dose_model(name, **p).fit(table) for name, p in configs.items()}
    return DoseBenchmarkResult(
        task=task,
        axis=spec["axis"],
        results=results,
        timings=pd.DataFrame(timings),
        predictions=predictions,
        fitted=fitted,
    )


def _rows(
    split: DoseSplit, table: ConditionTable, row: int, model: str, scores: Mapping[str, float]
) -> list[dict[str, Any]]:
    c = table.conditions.iloc[row]
    base = {
        "split": split.name,
        "kind": split.kind,
        "series": c["series"],
        "context": c["context"],
        "perturbation": c["perturbation"],
        "value_label": c["value"],
        "model": model,
    }
    return [{**base, "metric": k, "value": float(v)} for k, v in scores.items()]

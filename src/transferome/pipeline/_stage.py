"""The stage registry of ``transferome run``.

What a stage is, what it is given and returns, and the helpers every stage module shares (the
built-in stages are in
:mod:`transferome.pipeline.stages`, the cross-species and design stages in their own modules,
all registered through :func:`register_stage`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from transferome.errors import DataValidationError

__all__ = [
    "DEFAULT_NOUNS",
    "RUN_ORDER",
    "STAGES",
    "RunContext",
    "Stage",
    "StageResult",
    "data_nouns",
    "model_factory",
    "nouns",
    "profile_table",
    "register_stage",
    "transfer_models",
]


@dataclass
class RunContext:
    """What every stage sees: the validated config, the data, a progress callback.

    ``shared`` carries fitted objects from one stage to a later one (the cross-species model
    of ``species_transfer`` is reused by ``annotation`` and ``gene_mapping``).
    """

    config: Any
    data: Any
    combination_data: Any = None
    step: Callable[[str], None] = lambda message: None
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageResult:
    """Tables (written as ``<stage>_<name>.csv``) and fitted models of a stage.

    ``title`` and ``description`` are the stage's heading in the words of the data
    (:meth:`Stage.heading`), set by :func:`~transferome.pipeline.run_pipeline`; the report
    reads them from here, as data.
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    title: str = ""
    description: str = ""


@dataclass(frozen=True)
class Stage:
    """A registered stage.

    Attributes
    ----------
    name, title, description
        Short name (``tasks.<name>``), heading of the report section, one line on what it does;
        the last two may name the data's own covariates as ``{context}``, ``{contexts}``,
        ``{Context}``, ``{perturbation}`` and ``{perturbations}`` (see :meth:`heading`).
    run
        ``run(context, **options) -> StageResult``.
    requires
        ``requires(context) -> str | None``: why the stage cannot run, or ``None``.
    fits
        ``fits(context, options) -> list[str]``: model names of every fit it will make
        (the progress display estimates the duration from them).
    defaults
        ``defaults(quick) -> dict``: options of the built-in run.
    check
        ``check(options, models, where)``: validation of the options beyond their types
        against the configured models (raises :class:`~transferome.pipeline.ConfigError`).
    """

    name: str
    title: str
    description: str
    run: Callable[..., StageResult]
    requires: Callable[[RunContext], str | None]
    fits: Callable[[RunContext, Mapping[str, Any]], list[str]]
    defaults: Callable[[bool], dict[str, Any]]
    check: Callable[[Mapping[str, Any], Mapping[str, Any], str], None] | None = None

    def heading(self, nouns: Mapping[str, str] | None = None) -> tuple[str, str]:
        """Title and description in the words of the data (:func:`data_nouns`)."""
        words = dict(DEFAULT_NOUNS if nouns is None else nouns)
        return self.title.format_map(words), self.description.format_map(words)


def _plural(noun: str) -> str:
    return noun if noun.endswith("s") else noun + "s"


def nouns(context: str, perturbation: str) -> dict[str, str]:
    """Return the words a stage heading uses for the data's context and perturbation."""
    return {
        "context": context,
        "contexts": _plural(context),
        "Context": context[:1].upper() + context[1:],
        "perturbation": perturbation,
        "perturbations": _plural(perturbation),
    }


DEFAULT_NOUNS = nouns("organ", "drug")
"""The words of the built-in simulated atlas (organs and drugs)."""


def data_nouns(data: Any) -> dict[str, str]:
    """Words for the contexts and perturbations of ``data`` (a ``RunData``).

    The built-in atlas has organs (bulk) or cell lines (single-cell) and drugs; the user's
    data are named by their own obs keys (``donor`` -> "across donors").
    """
    atlas = getattr(data, "atlas", None)
    if atlas is not None:
        return nouns("organ" if getattr(atlas, "mode", "bulk") == "bulk" else "cell line", "drug")
    schema = getattr(data, "schema", None)
    if schema is None:
        return dict(DEFAULT_NOUNS)
    return nouns(
        str(schema.context_key).replace("_", " "), str(schema.perturbation_key).replace("_", " ")
    )


STAGES: dict[str, Stage] = {}
"""Registered stages by name."""

RUN_ORDER = (
    "transfer",
    "species_transfer",
    "annotation",
    "combination",
    "gene_mapping",
    "design",
    "ablation",
)
"""Order of the built-in run and of the report's sections (other stages follow)."""


def register_stage(stage: Stage) -> Stage:
    """Add ``stage`` to :data:`STAGES`."""
    STAGES[stage.name] = stage
    return stage


# -- helpers ----------------------------------------------------------------------------------
def transfer_models(config: Any, chosen: Sequence[str] | None = None) -> list[str]:
    """Return the configured models that follow the single-dataset transfer contract.

    That is ``fit(schema=)``. ``chosen`` restricts them (a task's ``models`` option); a name
    that is not configured, or does not follow the contract, is an error.
    """
    from transferome.models import get_model

    names = [
        name
        for name in config.models
        if "schema" in inspect.signature(get_model(name).fit).parameters
    ]
    if chosen is None:
        return names
    wrong = [m for m in chosen if m not in names]
    if wrong:
        raise DataValidationError(
            f"task option models: {wrong} are not configured transfer models ({names})"
        )
    return list(chosen)


def model_factory(config: Any, name: str, **overrides: Any) -> Callable[[], Any]:
    """Return a function returning a fresh estimator ``name`` with the configured parameters."""
    from transferome.models import get_model

    cls = get_model(name)
    params = config.model_params(name)
    if "random_state" in inspect.signature(cls.__init__).parameters:
        params.setdefault("random_state", config.seed)
    params.update(overrides)
    return lambda: cls(**params)


def profile_table(predicted: Any, observed: Any, *, schema: Any, model: str) -> pd.DataFrame:
    """Tidy predicted vs observed mean expression of every predicted group, gene by gene.

    Columns ``model, context, perturbation, gene, control, observed, predicted``: the mean
    log expression of the context's controls, of the held-out group, and the prediction.
    """
    from transferome.metrics import control_means, group_means

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

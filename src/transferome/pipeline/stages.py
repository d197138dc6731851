"""The stages of ``transferome run``: each one a task of the project, run on the loaded data.

A stage is listed in :data:`STAGES` with a ``run(context, **options)`` function whose keyword
options are the ``tasks.<name>`` fields of the configuration, a ``requires(context)`` check
(a reason it cannot run on these data and models, or ``None``) and an estimate of its
duration for the progress display. Stages return a :class:`StageResult` of tidy tables.

The perturbation stages are thin adapters over :mod:`transferome.benchmark`: they build the
splits and the estimators from the configuration and hand them to
:func:`~transferome.benchmark.run_task` (or
:func:`~transferome.benchmark.species.species_transfer`), so ``transferome run`` and
``transferome benchmark`` compute every score the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

import transferome.pipeline._stage as _stage
from transferome.errors import DataValidationError
from transferome.pipeline._stage import *  # noqa: F403 (the registry, with the built-in stages in it)
from transferome.pipeline._stage import (
    RunContext,
    Stage,
    StageResult,
    model_factory,
    profile_table,
    register_stage,
    transfer_models,
)

__all__ = list(_stage.__all__)


def _first_species(data: Any, species: str | None) -> str:
    if species is None:
        return data.species[0]
    if species not in data.adatas:
        raise DataValidationError(f"species {species!r} not in the data ({list(data.species)})")
    return species


def _transfer_splits(
    adata: Any, schema: Any, seed: int, perturbations: Sequence[str] | None, max_splits: int | None
) -> list:
    """Return the transfer task's splits, all or a sample of ``max_splits``.

    The sample is drawn by ``seed`` (not the first ones, which would all hold out the first
    contexts).
    """
    from transferome.benchmark import get_task

    options: dict[str, Any] = {"perturbations": list(perturbations)} if perturbations else {}
    if max_splits:
        options["max_splits"] = max_splits
    return get_task("transfer").make_splits(adata, schema=schema, seed=seed, **options)


def _best_profiles(result: Any, observed: Any, schema: Any) -> pd.DataFrame:
    """Tabulate predicted vs observed profiles of the best model (and of ``additive``).

    The best model has the highest mean ``pearson_delta``; the noise ceiling is not a model
    and has no profiles.
    """
    scores = result.summary[result.summary["metric"] == "pearson_delta"]
    scores = scores[scores["mean"].notna() & scores["model"].isin(list(result.predictions))]
    frames = []
    models = list(scores.sort_values("mean", ascending=False)["model"])
    for model in models[:1] + [m for m in models[1:] if m == "additive"]:
        frames.append(
            profile_table(result.predictions[model], observed, schema=schema, model=model)
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _tables(result: Any, observed: Any, schema: Any) -> dict[str, pd.DataFrame]:
    """Return the stage tables of a :class:`~transferome.benchmark.BenchmarkResult`.

    ``results`` keeps the pipeline's columns (``split, model, context, perturbation, metric,
    value``; the task is the file name).
    """
    tables = {
        "results": result.results.drop(columns="task"),
        "summary": result.summary,
        "timings": result.timings,
        "profiles": _best_profiles(result, observed, schema),
    }
    provenance = [
        prediction.uns["provenance"].assign(model=model)
        for model, prediction in result.predictions.items()
        if isinstance(prediction.uns.get("provenance"), pd.DataFrame)
    ]
    if provenance:
        tables["provenance"] = pd.concat(provenance, ignore_index=True)
    if result.skipped:
        tables["skipped"] = pd.DataFrame(list(result.skipped.items()), columns=["model", "reason"])
    return tables


def _benchmark(
    context: RunContext,
    task: str,
    adata: Any,
    schema: Any,
    models: Mapping[str, Any],
    *,
    splits: Sequence[Any] | None = None,
    data: Any = None,
    species: str | None = None,
) -> Any:
    """:func:`~transferome.benchmark.run_task` with the run's seed, DEGs and progress.

    A model that cannot run on these data is skipped (and listed), not fatal; the models
    fitted on the last split are kept. When ``data`` (a ``RunData``) is the built-in atlas,
    the noise-free truth of ``species`` is scored beside the models (rows of model ``truth``).
    """
    from transferome.benchmark import run_task

    config = context.config
    return run_task(
        task,
        adata,
        schema=schema,
        models=models,
        splits=splits,
        seed=config.seed,
        n_degs=config.n_degs,
        on_error="skip",
        keep_models=True,
        on_step=context.step,
        truth=_simulated_truth(data, species, schema),
    )


def _simulated_truth(data: Any, species: str | None, schema: Any) -> Any:
    """Return the noise-free profiles of ``species`` when ``data`` is the built-in atlas."""
    atlas = getattr(data, "atlas", None)
    if atlas is None or species is None:
        return None
    return atlas.truth.profiles(
        species, context_key=schema.context_key, perturbation_key=schema.perturbation_key
    )


def _check_models_option(options: Mapping[str, Any], models: Mapping[str, Any], where: str) -> None:
    from types import SimpleNamespace

    from transferome.pipeline.config import ConfigError

    chosen = options.get("models")
    if chosen is None:
        return
    allowed = transfer_models(SimpleNamespace(models=models))
    wrong = [m for m in chosen if m not in allowed]
    if wrong:
        raise ConfigError(
            f"config field {where}.models: {wrong} are not configured models that follow the "
            f"transfer contract; expected some of {allowed}"
        )


def _check_ablation(options: Mapping[str, Any], models: Mapping[str, Any], where: str) -> None:
    from transferome.models import get_model
    from transferome.pipeline.config import ConfigError, check_arguments

    model = options.get("model", "xtransfer")
    if model not in models:
        raise ConfigError(f"config field {where}.model: {model!r} is not a configured model")
    for label, overrides in (options.get("variants") or {}).items():
        check_arguments(get_model(model).__init__, overrides or {}, f"{where}.variants.{label}")


# -- transfer across contexts -------------------------------------------------------------------
def _run_transfer(
    context: RunContext,
    *,
    species: str | None = None,
    perturbations: list[str] | None = None,
    max_splits: int | None = None,
    models: list[str] | None = None,
) -> StageResult:
    data = context.data
    config = context.config
    species = _first_species(data, species)
    adata = data.adatas[species]
    splits = _transfer_splits(adata, data.schema, config.seed, perturbations, max_splits)
    chosen = {m: model_factory(config, m)() for m in transfer_models(config, models)}
    result = _benchmark(
        context, "transfer", adata, data.schema, chosen, splits=splits, data=data, species=species
    )
    return StageResult(tables=_tables(result, adata, data.schema), models=result.fitted)


def _transfer_fits(context: RunContext, options: Mapping[str, Any]) -> list[str]:
    data = context.data
    adata = data.adatas[_first_species(data, options.get("species"))]
    splits = _transfer_splits(
        adata,
        data.schema,
        context.config.seed,
        options.get("perturbations"),
        options.get("max_splits"),
    )
    return [m for _ in splits for m in transfer_models(context.config, options.get("models"))]


def _needs_transfer_models(context: RunContext) -> str | None:
    if not transfer_models(context.config):
        return "no configured model follows the transfer contract"
    return None


register_stage(
    Stage(
        "transfer",
        "Perturbation transfer across {contexts}",
        "each ({context}, {perturbation}) group is held out in turn and predicted from the "
        "{context}'s controls and the {perturbation} measured in the other {contexts}",
        _run_transfer,
        _needs_transfer_models,
        _transfer_fits,
        lambda quick: {"max_splits": 4} if quick else {"max_splits": 11},
        _check_models_option,
    )
)


# -- combinations -------------------------------------------------------------------------------
def _combination_input(context: RunContext) -> tuple[Any, Any]:
    data = context.combination_data or context.data
    return data.adatas[data.species[0]], data.schema


def _run_combination(context: RunContext, *, models: list[str] | None = None) -> StageResult:
    config = context.config
    adata, schema = _combination_input(context)
    chosen = {m: model_factory(config, m)() for m in transfer_models(config, models)}
    data = context.combination_data or context.data
    result = _benchmark(
        context, "combination", adata, schema, chosen, data=data, species=data.species[0]
    )
    return StageResult(tables=_tables(result, adata, schema), models=result.fitted)


def _combination_requires(context: RunContext) -> str | None:
    reason = _needs_transfer_models(context)
    if reason:
        return reason
    adata, schema = _combination_input(context)
    from transferome.data.schema import obs_labels, split_combination

    labels = set(obs_labels(adata, schema.perturbation_key))
    if not any(len(split_combination(p, schema.combination_sep)) > 1 for p in labels):
        return f"no combination (labels joined by {schema.combination_sep!r}) in the data"
    return None


register_stage(
    Stage(
        "combination",
        "Drug combinations",
        "every combination whose single drugs were measured is held out and predicted from them",
        _run_combination,
        _combination_requires,
        lambda context, options: transfer_models(context.config, options.get("models")),
        lambda quick: {},
        _check_models_option,
    )
)


# -- ablation -----------------------------------------------------------------------------------
_ABLATION = {
    "all losses": {},
    "without L_sim": {"w_sim": 0.0},
    "without L_orth": {"w_orth": 0.0},
    "without L_cross": {"w_cross": 0.0},
    "without L_reco": {"w_reco": 0.0, "w_reco_control": 0.0},
}


def _run_ablation(
    context: RunContext,
    *,
    model: str = "xtransfer",
    variants: dict[str, dict[str, Any]] | None = None,
    perturbations: list[str] | None = None,
    max_splits: int | None = None,
) -> StageResult:
    from transferome.models import get_model
    from transferome.pipeline.config import check_arguments

    data, config = context.data, context.config
    adata = data.adatas[data.species[0]]
    variants = dict(_ABLATION if variants is None else variants)
    for label, overrides in variants.items():
        check_arguments(get_model(model).__init__, overrides, f"tasks.ablation.variants.{label}")
    splits = _transfer_splits(adata, data.schema, config.seed, perturbations, max_splits)
    chosen = {
        label: model_factory(config, model, **overrides)() for label, overrides in variants.items()
    }
    result = _benchmark(context, "transfer", adata, data.schema, chosen, splits=splits)
    tables = {"results": result.results.drop(columns="task"), "summary": result.summary}
    tables["variants"] = pd.DataFrame(
        [(label, repr(overrides)) for label, overrides in variants.items()],
        columns=["variant", "changed_arguments"],
    )
    return StageResult(tables=tables)


def _ablation_fits(context: RunContext, options: Mapping[str, Any]) -> list[str]:
    data = context.data
    splits = _transfer_splits(
        data.adatas[data.species[0]],
        data.schema,
        context.config.seed,
        options.get("perturbations"),
        options.get("max_splits"),
    )
    model = options.get("model", "xtransfer")
    return [model for _ in splits for _ in (options.get("variants") or _ABLATION)]


register_stage(
    Stage(
        "ablation",
        "Ablation of the XTransferCDR losses",
        "the transfer task again with each loss term of the model switched off in turn",
        _run_ablation,
        lambda context: (
            None
            if "xtransfer" in context.config.models
            else "the model 'xtransfer' is not configured"
        ),
        _ablation_fits,
        lambda quick: {"max_splits": 1} if quick else {"max_splits": 2},
        _check_ablation,
    )
)

# The cross-species and design stages live in their own modules; importing them registers them.
import transferome.pipeline._design  # noqa: E402
import transferome.pipeline._species  # noqa: E402, F401

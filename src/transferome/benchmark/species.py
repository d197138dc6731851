"""Cross-species benchmark tasks of the universal gene embedding (UGE paper 4.1 and 4.2).

* :func:`~transferome.benchmark.annotation.annotation_transfer` (in its own module): labels
  learned on a source species only, predicted for a target species.
* :func:`species_perturbation`: held-out ``(target species, context, perturbation)`` groups
  predicted from the target's controls and the other species' data; per-context metrics of
  :func:`~transferome.metrics.evaluate_groups` (squared Pearson, delta metrics) for UGE's two
  latent-arithmetic routes, the additive baseline and the default predictor through the
  ortholog table, through the UGE gene mapping and through any other map, and the control
  baseline, on all genes and on named gene sets.
* :func:`species_transfer`: the same prediction as a benchmark task, one split per
  perturbation (every group of it in the target species held out at once), the
  cross-species model refitted on each split, scored like
  :func:`~transferome.benchmark.run_task` (noise ceiling and scaled score included); this is
  what ``transferome run`` reports.

They take fitted models (or fit them) and return tidy frames; they never write files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd
from anndata import AnnData

from transferome._logging import get_logger
from transferome.benchmark._result import BenchmarkResult
from transferome.benchmark._scoring import _score_predictions, _with_ceiling
from transferome.data.schema import Schema, obs_labels
from transferome.data.species import LONG_COLUMNS, MultiSpecies
from transferome.errors import DataValidationError, TransferomeError
from transferome.metrics import control_means, summarize
from transferome.models.base import Estimator
from transferome.models.uge.estimator import UniversalGeneEmbedding

__all__ = [
    "gene_pairs",
    "species_perturbation",
    "species_transfer",
]

_log = get_logger(__name__)


def gene_pairs(
    gene_map: pd.DataFrame,
    source_genes: Sequence[str],
    target_genes: Sequence[str],
    *,
    source_column: str | None = None,
    target_column: str | None = None,
) -> pd.DataFrame:
    """Return the (``source_gene``, ``target_gene``) pairs of an ortholog table among the genes.

    ``source_column`` / ``target_column`` name the table's columns; ``None`` detects each as
    the text column holding most of the source (target) genes, as
    :func:`~transferome.crossspecies.map_genes` does.
    """
    from transferome.crossspecies import ortholog_matrix

    columns = None
    if source_column is not None or target_column is not None:
        if source_column is None or target_column is None:
            raise DataValidationError("give both source_column and target_column, or neither")
        columns = (source_column, target_column)
    source_index = pd.Index([str(g) for g in source_genes])
    target_index = pd.Index([str(g) for g in target_genes])
    matrix = ortholog_matrix(gene_map, source_index, target_index, columns, None).tocoo()
    return pd.DataFrame(
        {
            "source_gene": source_index.to_numpy()[matrix.col],
            "target_gene": target_index.to_numpy()[matrix.row],
        }
    )


def _held_mask(target: AnnData, groups: Sequence[tuple[str, str]], schema: Schema) -> np.ndarray:
    held = np.zeros(target.n_obs, dtype=bool)
    contexts = obs_labels(target, schema.context_key)
    perturbations = obs_labels(target, schema.perturbation_key)
    for context, perturbation in groups:
        held |= (contexts == context) & (perturbations == perturbation)
    return held


def species_perturbation(  # noqa: PLR0913 - the model, the data, keyword-only options
    model: UniversalGeneEmbedding,
    adatas: Mapping[str, AnnData],
    held_out: Sequence[tuple[str, str]],
    *,
    source_species: str,
    target_species: str,
    gene_map: pd.DataFrame,
    source_column: str,
    target_column: str,
    schema: Schema | None = None,
    n_degs: int = 50,
    gene_maps: Mapping[str, pd.DataFrame] | None = None,
    stacked: bool = True,
    gene_sets: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Per-context scores of cross-species perturbation prediction.

    Every gene map (the ortholog table, UGE's top-1 mapping ``uge_map`` and the extra
    ``gene_maps``) carries the source species' changes to the target genes for the additive
    baseline (``additive_<map>``) and, with ``stacked``, for the default predictor
    (``stacked_<map>``: :class:`~transferome.models.StackedTransfer` with the source's
    contexts as extra sources); UGE's two latent-arithmetic routes (``uge_drug``,
    ``uge_species``) and the control baseline are scored beside them.

    Parameters
    ----------
    model
        A UGE fitted on ``adatas`` without the ``held_out`` groups of the target species.
    adatas
        Full data of both species (the held-out groups included: they are the truth).
    held_out
        ``(context, perturbation)`` groups of the target species to predict.
    source_species, target_species
        Keys of ``adatas``: the species whose changes are carried over, and the one predicted.
    gene_map, source_column, target_column
        Ortholog table (many-to-many pairs averaged), labelled ``orthologs``.
    schema
        The obs keys (shared by the species); ``None``: the defaults.
    n_degs
        DEGs per group (at most the number of genes scored).
    gene_maps
        More named maps (columns ``source_gene``, ``target_gene``), e.g. a functional
        mapping from :func:`~transferome.crossspecies.map_genes`.
    stacked
        Also score the default predictor through every map.
    gene_sets
        Named sets of target genes to score on besides all genes (e.g. the functionally
        diverged orthologs); the delta metrics and DEGs are then computed within each set.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``genes`` (``all`` or a ``gene_sets`` name), ``context``,
        ``perturbation``, ``metric``, ``value``; the metrics of
        :func:`~transferome.metrics.evaluate_groups`.
    """
    from transferome.models.baselines.means import AdditiveBaseline, ControlBaseline
    from transferome.models.stacked.estimator import StackedTransfer

    schema = schema or Schema()
    target = adatas[target_species]
    source = adatas[source_species]
    targets = [(str(c), str(p)) for c, p in held_out]
    train = target[~_held_mask(target, targets, schema)].copy()
    maps = {
        "orthologs": gene_pairs(
            gene_map,
            list(map(str, source.var_names)),
            list(map(str, target.var_names)),
            source_column=source_column,
            target_column=target_column,
        ),
        "uge_map": model.map_genes(source_species, target_species, top_k=1)[
            ["source_gene", "target_gene"]
        ],
    }
    for name, frame in (gene_maps or {}).items():
        missing = {"source_gene", "target_gene"} - set(frame.columns)
        if missing:
            raise DataValidationError(f"gene map {name!r} lacks the column(s) {sorted(missing)}")
        maps[name] = frame[["source_gene", "target_gene"]]
    predictions = {
        "uge_drug": model.predict(train, targets, species=target_species, route="drug"),
        "uge_species": model.predict(train, targets, species=target_species, route="species"),
    }
    for name, pairs in maps.items():
        predictions[f"additive_{name}"] = (
            AdditiveBaseline()
            .fit(train, schema=schema, source=source, gene_map=pairs)
            .predict(train, targets)
        )
        if stacked:
            predictions[f"stacked_{name}"] = (
                StackedTransfer()
                .fit(train, schema=schema, source=source, gene_map=pairs)
                .predict(train, targets)
            )
    predictions["control"] = ControlBaseline().fit(train, schema=schema).predict(train, targets)
    sets: dict[str, list[str] | None] = {"all": None}
    genes = set(map(str, target.var_names))
    for name, members in (gene_sets or {}).items():
        chosen = [g for g in dict.fromkeys(map(str, members)) if g in genes]
        if not chosen:
            raise DataValidationError(f"gene set {name!r} has none of the target's genes")
        sets[name] = chosen
    tables = []
    for name, subset in sets.items():
        truth = target if subset is None else target[:, subset]
        scored = _score_predictions(
            {label: (p if subset is None else p[:, subset]) for label, p in predictions.items()},
            truth,
            schema=schema,
            controls=control_means(truth, schema=schema),
            task="species_perturbation",
            split_of=dict.fromkeys(targets, ""),
            n_degs=min(n_degs, truth.n_vars),
        )
        scored.insert(1, "genes", name)
        tables.append(scored)
    scored = pd.concat(tables, ignore_index=True)
    columns = ["model", "genes", "context", "perturbation", "metric", "value"]
    return scored[columns].reset_index(drop=True)


def _species_splits(
    target: AnnData, source: AnnData, perturbations: Sequence[str] | None, schema: Schema
) -> list[tuple[str, list[tuple[str, str]]]]:
    """One (name, held-out groups) split per perturbation measured in both species."""
    contexts = obs_labels(target, schema.context_key)
    labels = obs_labels(target, schema.perturbation_key)
    with_control = set(contexts[labels == schema.control])
    measured = sorted(set(labels) - {schema.control})
    chosen = measured if perturbations is None else [str(p) for p in perturbations]
    unknown = [p for p in chosen if p not in measured]
    if unknown:
        raise DataValidationError(
            f"perturbation(s) {unknown} are not measured in the target species (measured: "
            f"{measured})"
        )
    in_source = set(obs_labels(source, schema.perturbation_key))
    absent = [p for p in chosen if p not in in_source]
    if absent:
        raise DataValidationError(
            f"perturbation(s) {absent} are not measured in the source species; a "
            "cross-species prediction needs them there"
        )
    splits = []
    for perturbation in chosen:
        held = sorted(
            {
                (str(c), perturbation)
                for c in contexts[(labels == perturbation)]
                if c in with_control
            }
        )
        if held:
            splits.append((perturbation, held))
    if not splits:
        raise DataValidationError(
            "no chosen perturbation is measured in a target context that has controls"
        )
    return splits


def _takes_orthologs(model: Estimator) -> bool:
    """Whether ``model.fit`` accepts an ``orthologs`` table (its gene tokens can be tied)."""
    import inspect

    return "orthologs" in inspect.signature(model.fit).parameters


def species_transfer(  # noqa: PLR0913 - a task runner: the data, keyword-only options
    adatas: Mapping[str, AnnData] | MultiSpecies,
    *,
    source_species: str,
    target_species: str,
    gene_map: pd.DataFrame | None = None,
    source_column: str | None = None,
    target_column: str | None = None,
    schema: Schema | None = None,
    perturbations: Sequence[str] | None = None,
    model: Estimator | None = None,
    routes: Mapping[str, str | None] | None = None,
    additive_label: str = "additive_orthologs",
    seed: int = 0,
    n_degs: int = 50,
    ceiling: bool = True,
    on_error: Literal["raise", "skip"] = "raise",
    keep_models: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Cross-species perturbation transfer as a benchmark task.

    One split per perturbation: every ``(context, perturbation)`` group of the target
    species whose context has controls is held out at once and predicted from the target's
    controls and the source species' data (in which nothing is held out). On each split
    ``control`` (no change), the additive baseline through ``gene_map``
    (:class:`~transferome.models.AdditiveBaseline` fitted with ``source=``: the target
    control plus the source's mean change over its contexts, carried to the target genes,
    many-to-many pairs averaged) and, when given, ``model`` (refitted fresh on both
    species, the held-out rows removed) are scored like
    :func:`~transferome.benchmark.run_task`.

    Parameters
    ----------
    adatas
        Log-normalised data of each species (the held-out groups included: they are the
        truth): a mapping, or a :class:`~transferome.data.MultiSpecies`.
    source_species, target_species
        Keys of ``adatas``.
    gene_map
        Ortholog table (one row per gene pair); ``None``: the (source, target) pairs of the
        ortholog table of a :class:`~transferome.data.MultiSpecies`, or else genes of
        identical names.
    source_column, target_column
        Its columns of source and target genes (``None``: detected; see
        :func:`gene_pairs`).
    schema
        The obs keys (shared by the species).
    perturbations
        Perturbations to hold out (``None``: every one measured in the target species).
    model
        A cross-species estimator (e.g. :class:`~transferome.models.UniversalGeneEmbedding`)
        whose parameters are used for a fresh fit per split, as
        ``fit(adatas, schema=, labelled_species=[source_species])``, plus
        ``orthologs=`` (the pairs of ``gene_map``) when the model's ``fit`` takes it (UGE's
        tied gene tokens); ``None``: baselines only.
    routes
        Label -> ``route`` argument of ``model.predict`` (``None``: its default), one scored
        model each; default ``{"uge": None}``.
    additive_label
        Label of the additive baseline (the reference of the scaled score).
    seed
        Seed of the noise ceiling.
    n_degs
        DEGs per group.
    ceiling
        Add the noise-ceiling rows and ``scaled_pearson_delta`` (see
        :func:`~transferome.benchmark.run_task`).
    on_error
        ``"raise"`` a model's :class:`~transferome.TransferomeError`, or ``"skip"`` that
        model from then on (recorded in :attr:`BenchmarkResult.skipped`).
    keep_models
        Keep each model fitted on the last split in :attr:`BenchmarkResult.fitted`.
    on_step
        Called with a short message after each split (progress display).

    Returns
    -------
    BenchmarkResult
        Task ``species_transfer``; splits are named by the held-out perturbation.
    """
    from transferome.models.baselines.means import AdditiveBaseline, ControlBaseline

    if on_error not in ("raise", "skip"):
        raise DataValidationError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    schema = schema or Schema()
    for name in (source_species, target_species):
        if name not in adatas:
            raise DataValidationError(f"species {name!r} not in the data ({list(adatas)})")
    if source_species == target_species:
        raise DataValidationError(f"source and target species are both {source_species!r}")
    source, target = adatas[source_species], adatas[target_species]
    if gene_map is None and isinstance(adatas, MultiSpecies) and adatas.orthologs is not None:
        gene_map = adatas.gene_map(source_species, target_species)
        source_column, target_column = "source_gene", "target_gene"
    pairs = None
    if gene_map is not None:
        pairs = gene_pairs(
            gene_map,
            list(map(str, source.var_names)),
            list(map(str, target.var_names)),
            source_column=source_column,
            target_column=target_column,
        )
    links = None
    if pairs is not None and model is not None and _takes_orthologs(model):
        # the long layout names both species, whatever the layout of the table given
        links = pairs.assign(source_species=source_species, target_species=target_species)
        links = links[list(LONG_COLUMNS)]
    routes = dict({"uge": None} if routes is None else routes) if model is not None else {}
    splits = _species_splits(target, source, perturbations, schema)
    labels = ["control", additive_label, *routes]
    if len(set(labels)) != len(labels):
        raise TransferomeError(f"duplicated model labels {labels}")
    predictions: dict[str, list[AnnData]] = {label: [] for label in labels}
    split_of: dict[tuple[str, str], str] = {}
    timings: list[tuple[str, str, float, float]] = []
    skipped: dict[str, str] = {}
    fitted: dict[str, Any] = {}

    def fit(names: tuple[str, ...], train: AnnData) -> Any:
        if names[0] == "control":
            return ControlBaseline().fit(train, schema=schema)
        if names[0] == additive_label:
            return AdditiveBaseline().fit(train, schema=schema, source=source, gene_map=pairs)
        assert model is not None
        estimator = type(model)(**model.get_params())
        both = {**adatas, target_species: train}
        extra = {} if links is None else {"orthologs": links}
        return estimator.fit(both, schema=schema, labelled_species=[source_species], **extra)

    def predict(label: str, estimator: Any, train: AnnData, held_out: list) -> AnnData:
        if label in routes:
            return estimator.predict(train, held_out, species=target_species, route=routes[label])
        return estimator.predict(train, held_out)

    fitters = [("control",), (additive_label,)] + ([tuple(routes)] if routes else [])
    _log.info("task species_transfer: %d splits", len(splits))
    for name, held_out in splits:
        for group in held_out:
            split_of[group] = name
        train = target[~_held_mask(target, held_out, schema)].copy()
        for names in fitters:
            if names[0] in skipped:
                continue
            start = time.perf_counter()
            try:
                estimator = fit(names, train)
                done = time.perf_counter()
                outputs = [predict(label, estimator, train, held_out) for label in names]
            except TransferomeError as exc:
                if on_error == "raise":
                    raise
                _log.warning("%s cannot run on %s: %s", ", ".join(names), name, exc)
                skipped.update(dict.fromkeys(names, str(exc)))
                continue
            predict_s = (time.perf_counter() - done) / len(names)
            for label, predicted in zip(names, outputs, strict=True):
                predictions[label].append(predicted)
                timings.append((name, label, done - start, predict_s))
                if keep_models:
                    fitted[label] = estimator
        if on_step is not None:
            on_step(f"{target_species} {name}: {len(held_out)} groups")
    for label in skipped:
        predictions.pop(label, None)
    if not any(predictions.values()):
        raise TransferomeError(f"no model could run on these data: {skipped}")
    pooled = {label: ad.concat(parts, index_unique="-") for label, parts in predictions.items()}
    results = _score_predictions(
        pooled,
        target,
        schema=schema,
        controls=control_means(target, schema=schema),
        task="species_transfer",
        split_of=split_of,
        n_degs=n_degs,
    )
    if ceiling:
        results = _with_ceiling(
            results,
            target,
            schema=schema,
            split_of=split_of,
            controls=None,
            reference=None,
            reference_label=additive_label,
            seed=seed,
            n_degs=n_degs,
        )
    timing_frame = pd.DataFrame(timings, columns=["split", "model", "fit_s", "predict_s"])
    return BenchmarkResult(
        "species_transfer",
        results,
        summarize(results),
        timing_frame,
        predictions=pooled,
        fitted=fitted,
        skipped=skipped,
    )

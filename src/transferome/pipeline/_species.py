"""Cross-species stages: transfer, annotation, the shared latent space, gene mapping.

Perturbation transfer between species, organ annotation transfer, the shared latent space,
and gene mapping by function.

``species_transfer`` is an adapter over
:func:`transferome.benchmark.species.species_transfer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from transferome.data.schema import obs_labels
from transferome.errors import DataValidationError
from transferome.pipeline._stage import (
    RunContext,
    Stage,
    StageResult,
    profile_table,
    register_stage,
)

if TYPE_CHECKING:
    from transferome.crossspecies.mapping import Method

__all__: list[str] = []

_CROSS = "uge"
_ADDITIVE = "additive (orthologs)"
"""Label of the additive baseline across species (through the ortholog table)."""


def _pair(context: RunContext, source: str | None, target: str | None) -> tuple[str, str]:
    species = context.data.species
    source = species[0] if source is None else source
    target = next((s for s in species if s != source), None) if target is None else target
    for name, value in (("source", source), ("target", target)):
        if value not in species:
            raise DataValidationError(f"{name} species {value!r} not in the data {list(species)}")
    if source == target:
        raise DataValidationError(f"source and target species are both {source!r}")
    return source, target  # type: ignore[return-value]


def _two_species(context: RunContext) -> str | None:
    if len(context.data.species) < 2:
        return "the data hold one species"
    return None


_ANNOTATION = {
    "alignment": "coral",
    "values": "standardised",
    "pooled_cls": True,
    "balance_classes": True,
}
"""Settings of the annotation model that the run's configuration does not set itself: the
species' ``<cls>`` distributions aligned, genes standardised within their species, ``<cls>``
started from the expression-weighted gene tokens, classes weighted equally."""


def _cross_factory(context: RunContext) -> Any:
    """Return the factory of the run's cross-species model.

    It takes the configured parameters, plus :data:`_ANNOTATION` where the configuration does
    not set them.
    """
    from transferome.pipeline._stage import model_factory

    config = context.config
    configured = config.model_params(_CROSS)
    extra = {k: v for k, v in _ANNOTATION.items() if k not in configured}
    return model_factory(config, _CROSS, label_key=context.data.schema.context_key, **extra)


def _cross_model(context: RunContext) -> Any:
    """Fit the cross-species model for annotation.

    It is fitted on every species with the source's labels only, gene tokens tied through the
    ortholog table when the data have one.
    """
    data = context.data
    schema = data.schema
    source, _ = context.shared["pair"]
    model = _cross_factory(context)()
    adatas = dict(data.adatas)
    model.fit(adatas, schema=schema, labelled_species=[source], orthologs=data.orthologs)
    tied = " (ortholog tokens tied)" if data.orthologs is not None else ""
    context.step(f"{_CROSS} fitted on {', '.join(adatas)}{tied}")
    return model


def _is_tied(model: Any) -> bool:
    network = getattr(model, "network_", None)
    return network is not None and network.config.n_groups > 0


def _run_species(
    context: RunContext,
    *,
    source: str | None = None,
    target: str | None = None,
    perturbations: list[str] | None = None,
) -> StageResult:
    from transferome.benchmark.species import species_transfer

    data, config = context.data, context.config
    schema = data.schema
    source, target = _pair(context, source, target)
    context.shared["pair"] = (source, target)
    tgt = data.adatas[target]
    labels = obs_labels(tgt, schema.perturbation_key)
    measured = sorted(set(labels) - {schema.control})
    unknown = [p for p in (perturbations or []) if p not in measured]
    if unknown:
        raise DataValidationError(f"tasks.species_transfer.perturbations: {unknown} not measured")
    cross = _cross_factory(context)() if _CROSS in config.models else None
    result = species_transfer(
        data.adatas,
        source_species=source,
        target_species=target,
        gene_map=data.orthologs,
        schema=schema,
        perturbations=perturbations,
        model=cross,
        routes={_CROSS: None},
        additive_label=_ADDITIVE,
        seed=config.seed,
        n_degs=config.n_degs,
        on_error="skip",
        keep_models=True,
        on_step=context.step,
    )
    profiles = [
        profile_table(predicted, tgt, schema=schema, model=label)
        for label, predicted in result.predictions.items()
        if label != "control"
    ]
    out = StageResult(
        tables={
            "results": result.results.drop(columns=["task", "split"]),
            "summary": result.summary,
            "profiles": pd.concat(profiles, ignore_index=True),
        }
    )
    if result.skipped:
        out.tables["skipped"] = pd.DataFrame(
            list(result.skipped.items()), columns=["model", "reason"]
        )
    fitted = result.fitted.get(_CROSS)
    if fitted is not None:
        context.shared[_CROSS] = fitted
        out.models[_CROSS] = fitted
        out.tables["latent"] = _latent_map(context, fitted)
    return out


def _latent_map(context: RunContext, model: Any) -> pd.DataFrame:
    """2-D UMAP of the ``<cls>`` embeddings of every sample of every species."""
    import warnings

    with warnings.catch_warnings():
        # umap-learn warns on import that its optional TensorFlow variant is unavailable
        warnings.simplefilter("ignore", ImportWarning)
        import umap

    data = context.data
    schema = data.schema
    parts, frames = [], []
    for species, adata in data.adatas.items():
        parts.append(model.transform(adata, species=species))
        frames.append(
            pd.DataFrame(
                {
                    "species": species,
                    "context": obs_labels(adata, schema.context_key),
                    "perturbation": obs_labels(adata, schema.perturbation_key),
                }
            )
        )
    z = np.concatenate(parts)
    n_neighbors = int(min(15, max(2, len(z) - 1)))
    reducer = umap.UMAP(n_neighbors=n_neighbors, random_state=context.config.seed, n_jobs=1)
    coords = reducer.fit_transform(z)
    frame = pd.concat(frames, ignore_index=True)
    frame["umap_1"], frame["umap_2"] = coords[:, 0], coords[:, 1]
    return frame


def _species_fits(context: RunContext, options: Mapping[str, Any]) -> list[str]:
    data = context.data
    perturbations = options.get("perturbations")
    if perturbations is None:
        tgt = data.adatas[data.species[1]]
        labels = set(obs_labels(tgt, data.schema.perturbation_key))
        perturbations = sorted(labels - {data.schema.control})
    return [_CROSS if _CROSS in context.config.models else "additive"] * len(perturbations)


register_stage(
    Stage(
        "species_transfer",
        "Perturbation transfer across species",
        "every ({context}, {perturbation}) group of the target species is held out and "
        "predicted from the "
        "source species, by latent arithmetic in the shared space and by the ortholog baseline",
        _run_species,
        _two_species,
        _species_fits,
        lambda quick: {"perturbations": ["tetracycline"]} if quick else {},
    )
)


# -- annotation transfer ------------------------------------------------------------------------
def _run_annotation(
    context: RunContext, *, source: str | None = None, target: str | None = None
) -> StageResult:
    from transferome.benchmark.annotation import annotation_transfer

    data = context.data
    schema = data.schema
    pair = _pair(context, source, target)
    shared = context.shared.get(_CROSS)
    own = (
        shared is None
        or context.shared.get("pair") != pair
        or (data.orthologs is not None and not _is_tied(shared))
    )
    if own:
        # no perturbation-transfer model of this pair with tied tokens (the stage did not
        # run, or ran for another pair): annotation fits its own
        context.shared["pair"] = pair
        model = _cross_model(context)
    else:
        model = shared
    source, target = pair
    scores = annotation_transfer(
        model,
        data.adatas[source],
        data.adatas[target],
        source_species=source,
        target_species=target,
        label_key=schema.context_key,
        # the ortholog-mapped classifiers (logistic regression, kNN) beside chance
        gene_map=None if data.orthologs is None else data.multi_species.gene_map(source, target),
        seed=context.config.seed,
    )
    table = scores.pivot(index="class", columns="model", values="accuracy")
    table = table.rename(columns={"uge": "accuracy", "random": "chance"})
    table.insert(0, "n", scores.drop_duplicates("class").set_index("class")["n"])
    order = [*sorted(c for c in table.index if c != "all"), "all"]
    baselines = [c for c in table.columns if c not in ("n", "accuracy", "chance")]
    table = table.loc[order, ["n", "accuracy", "chance", *baselines]]
    rows = table.rename_axis("context").reset_index()
    rows.columns.name = None
    true = obs_labels(data.adatas[target], schema.context_key)
    predicted = model.predict_labels(data.adatas[target], species=target).astype(str)
    confusion = pd.crosstab(
        pd.Series(true, name="observed"), pd.Series(predicted, name="predicted")
    )
    return StageResult(
        tables={"accuracy": rows, "confusion": confusion.reset_index()},
        models={_CROSS: model} if own else {},
    )


register_stage(
    Stage(
        "annotation",
        "{Context} annotation transfer",
        "the {context} of every target-species sample is predicted by a classifier trained on the "
        "source species' labels in the shared latent space",
        _run_annotation,
        lambda context: (
            _two_species(context)
            or (None if _CROSS in context.config.models else f"model {_CROSS!r} not configured")
        ),
        lambda context, options: [] if "species_transfer" in context.config.tasks else [_CROSS],
        lambda quick: {},
    )
)


# -- gene mapping -------------------------------------------------------------------------------
def _run_mapping(
    context: RunContext,
    *,
    source: str | None = None,
    target: str | None = None,
    methods: list[str] | None = None,
    top_k: int = 5,
) -> StageResult:
    from transferome.crossspecies import map_genes
    from transferome.metrics import evaluate_mapping, simulation_truth

    data, config = context.data, context.config
    source, target = _pair(context, source, target)
    if methods is None:
        methods = (
            ["ortholog", "reactome", "combined"] if data.orthologs is not None else ["reactome"]
        )
    mappings: dict[str, pd.DataFrame] = {}
    for method in methods:
        mappings[method] = map_genes(
            data.reactome(source),  # computed once a run, shared by the methods and stages
            data.reactome(target),
            # a name from the run configuration (a plain str there); map_genes refuses others
            method=cast("Method", method),
            orthologs=data.orthologs,
            top_k=top_k,
            schema=data.schema,
            random_state=config.seed,
        )
        context.step(f"mapping by {method}")
    model = context.shared.get(_CROSS)
    if model is not None and context.shared.get("pair") == (source, target):
        mappings[f"{_CROSS} embedding"] = model.map_genes(source, target, top_k=top_k)
    tables = {
        "mappings": pd.concat(
            [m.assign(method=name) for name, m in mappings.items()], ignore_index=True
        )
    }
    if data.atlas is not None:
        truth = simulation_truth(data.atlas, source, target)
        scores = [evaluate_mapping(m, truth).assign(method=name) for name, m in mappings.items()]
        tables["precision"] = pd.concat(scores, ignore_index=True)
    return StageResult(tables=tables)


register_stage(
    Stage(
        "gene_mapping",
        "Gene mapping across species",
        "each target-species gene is matched to source genes by ortholog table, by reactome "
        "similarity, by both, and by the shared gene embedding; scored against the known "
        "functional correspondence when the data are simulated",
        _run_mapping,
        _two_species,
        lambda context, options: [],
        lambda quick: {},
    )
)

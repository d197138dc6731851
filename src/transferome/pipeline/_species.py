"""Cross-species stages: perturbation transfer between species, organ annotation transfer,
the shared latent space, and gene mapping by function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from transferome.data.schema import obs_labels
from transferome.errors import DataValidationError
from transferome.metrics import control_means, evaluate_groups, summarize
from transferome.models.base import prediction_adata
from transferome.pipeline._evaluate import profile_table
from transferome.pipeline.stages import RunContext, Stage, StageResult, register_stage

__all__: list[str] = []

_CROSS = "uge"


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


def _cross_model(context: RunContext, *, exclude: Any = None) -> Any:
    """Fit the cross-species model on every species (held-out rows of the target removed)."""
    from transferome.pipeline.stages import model_factory

    data, config = context.data, context.config
    schema = data.schema
    source, target = context.shared["pair"]
    model = model_factory(config, _CROSS, label_key=schema.context_key)()
    adatas = dict(data.adatas)
    if exclude is not None:
        adatas[target] = adatas[target][~exclude].copy()
    model.fit(adatas, schema=schema, labelled_species=[source])
    context.step(f"{_CROSS} fitted on {', '.join(adatas)}")
    return model


def _ortholog_map(context: RunContext, source: str, target: str) -> pd.Series:
    """Target gene -> its best source ortholog (from the ortholog table)."""
    from transferome.crossspecies import map_genes

    data = context.data
    if data.orthologs is None:
        return pd.Series(dtype=object)
    mapping = map_genes(
        list(map(str, data.adatas[source].var_names)),
        list(map(str, data.adatas[target].var_names)),
        method="ortholog",
        orthologs=data.orthologs,
        top_k=1,
    )
    found = mapping[mapping["source_gene"].notna()]
    return pd.Series(found["source_gene"].astype(str).to_numpy(), index=found["target_gene"])


def _additive_across(
    context: RunContext, targets: list[tuple[str, str]], source: str, target: str
) -> np.ndarray:
    """Target control + the source's change in the same context, through the ortholog map."""
    from transferome.metrics import group_means

    data = context.data
    schema = data.schema
    src = data.adatas[source]
    tgt_controls = control_means(data.adatas[target], schema=schema)
    src_controls = control_means(src, schema=schema)
    ortholog = _ortholog_map(context, source, target)
    genes = list(map(str, data.adatas[target].var_names))
    src_index = {g: i for i, g in enumerate(map(str, src.var_names))}
    position = np.array([src_index.get(ortholog.get(g, ""), -1) for g in genes])
    observed = set(
        zip(
            obs_labels(src, schema.context_key),
            obs_labels(src, schema.perturbation_key),
            strict=True,
        )
    )
    rows = []
    for c, p in targets:
        if (c, p) in observed and c in src_controls.index:
            change = group_means(src, schema=schema, groups=[(c, p)]).to_numpy()[0]
            change = change - src_controls.loc[c].to_numpy()
        else:
            where = [(cc, pp) for cc, pp in observed if pp == p and cc in src_controls.index]
            if not where:
                raise DataValidationError(f"{p!r} was not measured in {source!r}")
            means = group_means(src, schema=schema, groups=where).to_numpy()
            change = (means - src_controls.loc[[cc for cc, _ in where]].to_numpy()).mean(0)
        mapped = np.where(position >= 0, change[np.maximum(position, 0)], 0.0)
        rows.append(tgt_controls.loc[c].to_numpy() + mapped)
    return np.asarray(rows)


def _run_species(
    context: RunContext,
    *,
    source: str | None = None,
    target: str | None = None,
    perturbations: list[str] | None = None,
) -> StageResult:
    data, config = context.data, context.config
    schema = data.schema
    source, target = _pair(context, source, target)
    context.shared["pair"] = (source, target)
    tgt = data.adatas[target]
    contexts = obs_labels(tgt, schema.context_key)
    labels = obs_labels(tgt, schema.perturbation_key)
    with_control = set(contexts[labels == schema.control])
    measured = sorted(set(labels) - {schema.control})
    chosen = measured if perturbations is None else list(perturbations)
    unknown = [p for p in chosen if p not in measured]
    if unknown:
        raise DataValidationError(f"tasks.species_transfer.perturbations: {unknown} not measured")
    predictions: dict[str, list[Any]] = {"control": [], "additive (orthologs)": []}
    fitted = None
    for p in chosen:
        held = (labels == p) & np.isin(contexts, sorted(with_control))
        targets = sorted(set(zip(contexts[held], labels[held], strict=True)))
        controls = control_means(tgt, schema=schema)
        base = np.stack([controls.loc[c].to_numpy() for c, _ in targets])
        genes = list(map(str, tgt.var_names))
        predictions["control"].append(prediction_adata(base, targets, genes, schema))
        additive = _additive_across(context, targets, source, target)
        predictions["additive (orthologs)"].append(
            prediction_adata(additive, targets, genes, schema)
        )
        if _CROSS in config.models:
            fitted = _cross_model(context, exclude=held)
            train = tgt[~held].copy()
            predictions.setdefault(_CROSS, []).append(
                fitted.predict(train, targets, species=target)
            )
        if _CROSS not in config.models:
            context.step(f"{target} {p}: {len(targets)} groups")
    import anndata as ad

    controls = control_means(tgt, schema=schema)
    tables, profiles = [], []
    for label, parts in predictions.items():
        pooled = ad.concat(parts, index_unique="-")
        scored = evaluate_groups(
            pooled, tgt, schema=schema, control_means=controls, n_degs=config.n_degs
        )
        scored.insert(0, "model", label)
        tables.append(scored)
        if label != "control":
            profiles.append(profile_table(pooled, tgt, schema=schema, model=label))
    results = pd.concat(tables, ignore_index=True)
    out = StageResult(
        tables={
            "results": results,
            "summary": summarize(results),
            "profiles": pd.concat(profiles, ignore_index=True),
        }
    )
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
    from transferome.metrics import accuracy, random_accuracy

    data = context.data
    schema = data.schema
    pair = _pair(context, source, target)
    model = context.shared.get(_CROSS)
    if model is None or context.shared.get("pair") != pair:
        context.shared["pair"] = pair
        model = _cross_model(context)
    source, target = pair
    true = obs_labels(data.adatas[target], schema.context_key)
    train = obs_labels(data.adatas[source], schema.context_key)
    predicted = model.predict_labels(data.adatas[target], species=target).astype(str)
    frequency = pd.Series(train).value_counts(normalize=True)
    rows = []
    for label in sorted(set(true)):
        mask = true == label
        rows.append(
            {
                "context": label,
                "n": int(mask.sum()),
                "accuracy": float(np.mean(predicted[mask] == label)),
                "chance": float(frequency.get(label, 0.0)),
            }
        )
    rows.append(
        {
            "context": "all",
            "n": len(true),
            "accuracy": accuracy(true, predicted),
            "chance": random_accuracy(train, true),
        }
    )
    confusion = pd.crosstab(
        pd.Series(true, name="observed"), pd.Series(predicted, name="predicted")
    )
    return StageResult(
        tables={"accuracy": pd.DataFrame(rows), "confusion": confusion.reset_index()},
        models={} if _CROSS in context.shared else {_CROSS: model},
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
    from transferome.crossspecies.evaluation import evaluate_mapping, simulation_truth

    data, config = context.data, context.config
    source, target = _pair(context, source, target)
    if methods is None:
        methods = (
            ["ortholog", "reactome", "combined"] if data.orthologs is not None else ["reactome"]
        )
    mappings = {}
    for method in methods:
        mappings[method] = map_genes(
            data.adatas[source],
            data.adatas[target],
            method=method,
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

"""The steps of ``UniversalGeneEmbedding.fit`` around the training itself.

See :meth:`UniversalGeneEmbedding.fit
<transferome.models.uge.estimator.UniversalGeneEmbedding.fit>`.

Before it: the checks of the hyperparameters, the species' blocks with their token and decode
genes (the token genes chosen jointly over the ortholog groups when an ortholog table is
given), the standardised gene description table, the class labels and external tokens
(:func:`fit_inputs`), and the network built from them (:func:`build_network`). After it: the
mean latent of every (species, context, perturbation) group (:func:`group_latents`), which
the latent arithmetic of :mod:`~transferome.models.uge.transfer` reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from transferome._logging import get_logger
from transferome.data.schema import Schema, obs_labels
from transferome.data.species import ortholog_links
from transferome.errors import DataValidationError
from transferome.models.uge._encode import encode_known
from transferome.models.uge.data import (
    SpeciesBlock,
    class_labels,
    perturbation_codes,
    species_descriptions,
    standardise,
    validate_block,
)
from transferome.models.uge.genes import align_columns, gene_variances, top_by_variance
from transferome.models.uge.network import ALIGNMENTS, UGEConfig, UGENetwork
from transferome.models.uge.orthologs import ortholog_groups, shared_token_genes

if TYPE_CHECKING:
    from transferome.models.uge.estimator import UniversalGeneEmbedding

__all__ = ["FitInputs", "build_network", "check_params", "fit_inputs", "group_latents"]

_log = get_logger(__name__)


def check_params(model: UniversalGeneEmbedding) -> None:
    """Raise :class:`~transferome.errors.DataValidationError` for a bad hyperparameter."""
    if model.route not in ("drug", "species", "both"):
        raise DataValidationError(f"route={model.route!r} is not one of 'drug', 'species', 'both'")
    choices = {
        "alignment": ALIGNMENTS,
        "values": ("relative", "standardised"),
        "unlabelled_descriptions": ("orthologs", "own"),
    }
    for name, allowed in choices.items():
        if getattr(model, name) not in allowed:
            raise DataValidationError(
                f"{name}={getattr(model, name)!r} is not one of {list(allowed)}"
            )
    for name in ("tie_weight", "alignment_weight", "residual_weight"):
        if not float(getattr(model, name)) >= 0:
            raise DataValidationError(f"{name} must be >= 0, got {getattr(model, name)}")
    if int(model.max_epochs) < 0:
        raise DataValidationError(f"max_epochs must be at least 0, got {model.max_epochs}")
    for name in ("n_tokens", "n_decode", "d_model", "n_layers", "n_heads"):
        if int(getattr(model, name)) < 1:
            raise DataValidationError(f"{name} must be at least 1, got {getattr(model, name)}")
    if model.d_model % model.n_heads:
        raise DataValidationError(
            f"d_model={model.d_model} must be a multiple of n_heads={model.n_heads}"
        )


@dataclasses.dataclass(frozen=True)
class FitInputs:
    """What the network is built and trained from.

    Every species' genes in one vocabulary (species ``s`` from ``offsets[s]``, ``n_genes`` in
    all).
    """

    blocks: list[SpeciesBlock]
    offsets: dict[str, int]
    n_genes: int
    var_names: dict[str, list[str]]
    groups: np.ndarray
    """Ortholog group of every vocabulary gene (-1: in none)."""
    columns: list[str]
    """The gene description columns every species has."""
    mean: np.ndarray
    scale: np.ndarray
    """Mean and scale of each description column over the vocabulary."""
    table: np.ndarray
    """The standardised descriptions (vocabulary x columns, NaN -> 0)."""
    labels: dict[str, np.ndarray]
    classes: list[str]
    external: dict[str, np.ndarray]
    categories: list[str]


def fit_inputs(
    model: UniversalGeneEmbedding,
    data: Mapping[str, AnnData],
    schema: Schema,
    *,
    given: Mapping[str, pd.DataFrame],
    labelled_species: Sequence[str] | None,
    orthologs: pd.DataFrame | None,
    ortholog_columns: Mapping[str, str] | None,
) -> FitInputs:
    """Return the validated blocks, gene descriptions, labels and external tokens of ``data``.

    From the arguments of :meth:`~transferome.models.uge.estimator.UniversalGeneEmbedding.fit`.
    """
    unknown = sorted(set(given) - set(data))
    if unknown:
        raise DataValidationError(
            f"gene descriptions given for species {unknown} that are not in the data "
            f"({sorted(data)})"
        )
    blocks: list[SpeciesBlock] = []
    offsets, start = {}, 0
    for species, adata in data.items():
        description = validate_block(adata, schema, species=species)
        variance = gene_variances(adata)
        blocks.append(
            SpeciesBlock(
                species=species,
                adata=adata,
                description=description,
                tokens=top_by_variance(variance, model.n_tokens),
                decode=top_by_variance(variance, model.n_decode),
            )
        )
        offsets[species] = start
        start += adata.n_vars
    var_names = {b.species: [str(g) for g in b.adata.var_names] for b in blocks}
    groups = np.full(start, -1, dtype=np.int64)
    links = None
    if orthologs is not None:
        links = ortholog_links(orthologs, list(data), columns=ortholog_columns)
        groups = ortholog_groups(links, var_names, offsets)
        chosen = shared_token_genes(
            {b.species: gene_variances(b.adata) for b in blocks},
            groups,
            offsets,
            model.n_tokens,
        )
        blocks = [dataclasses.replace(b, tokens=chosen[b.species]) for b in blocks]
        _log.info("UGE: %d genes in %d ortholog groups", int((groups >= 0).sum()), groups.max() + 1)
    descriptions = species_descriptions(
        blocks,
        schema,
        given=given,
        kind=model.gene_description,
        links=links if model.label_key is not None else None,
        labelled_species=labelled_species,
        borrow=model.unlabelled_descriptions == "orthologs",
    )
    columns = align_columns(descriptions)
    stacked = pd.concat([descriptions[b.species][columns] for b in blocks], axis=0)
    mean = np.nanmean(stacked.to_numpy(dtype=np.float64), axis=0)
    scale = np.nanstd(stacked.to_numpy(dtype=np.float64), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    table = np.nan_to_num(standardise(stacked, mean, scale))

    labels, classes = class_labels(blocks, model.label_key, labelled_species)
    external, categories = (
        perturbation_codes(blocks, schema) if model.perturbation_token else ({}, [])
    )
    external = external or {b.species: np.zeros(b.adata.n_obs) for b in blocks}
    return FitInputs(
        blocks=blocks,
        offsets=offsets,
        n_genes=start,
        var_names=var_names,
        groups=groups,
        columns=columns,
        mean=mean,
        scale=scale,
        table=table,
        labels=labels,
        classes=classes,
        external=external,
        categories=categories,
    )


def build_network(model: UniversalGeneEmbedding, inputs: FitInputs) -> UGENetwork:
    """Build the untrained network of ``model``'s hyperparameters over ``inputs``' vocabulary.

    Initialised from ``model.random_state`` (the global torch generator is left as it was).
    """
    config = UGEConfig(
        n_genes=inputs.n_genes,
        n_features=len(inputs.columns),
        d_model=model.d_model,
        n_layers=model.n_layers,
        n_heads=model.n_heads,
        d_ff=model.d_ff,
        dropout=model.dropout,
        n_external=len(inputs.categories) + 1,
        n_classes=len(inputs.classes),
        mask_fraction=model.mask_fraction,
        ecs_weight=model.ecs_weight,
        ecs_beta=model.ecs_beta,
        class_weight=model.class_weight,
        residual_weight=model.residual_weight,
        n_groups=int(inputs.groups.max()) + 1,
        tie_weight=model.tie_weight,
        alignment=model.alignment,
        alignment_weight=model.alignment_weight,
        pooled_cls=bool(model.pooled_cls),
    )
    generator = torch.Generator().manual_seed(int(model.random_state))
    with model.seeded(int(torch.randint(0, 2**31 - 1, (1,), generator=generator))):
        network = UGENetwork(
            config, torch.from_numpy(inputs.table), torch.from_numpy(inputs.groups)
        )
    if model.balance_classes and inputs.classes:
        every = np.concatenate([v for v in inputs.labels.values()])
        counts = np.bincount(every[every >= 0], minlength=len(inputs.classes)).astype(np.float64)
        weights = np.where(
            counts > 0, counts.sum() / np.maximum(counts, 1) / len(inputs.classes), 0
        )
        network.class_weights.copy_(torch.from_numpy(weights.astype(np.float32)))
    return network


def group_latents(
    model: UniversalGeneEmbedding, blocks: Sequence[SpeciesBlock], schema: Schema
) -> pd.DataFrame:
    """Return the mean latent and size of every (species, context, perturbation) group.

    The size is column ``n``; the groups are those of the fitted ``model``'s training data.
    """
    frames = []
    for block in blocks:
        z = encode_known(model, block.adata, block.species)
        keys = pd.DataFrame(
            {
                "species": block.species,
                "context": obs_labels(block.adata, schema.context_key),
                "perturbation": obs_labels(block.adata, schema.perturbation_key),
            }
        )
        means = pd.DataFrame(z).groupby([keys[c] for c in keys.columns], sort=True).mean()
        means["n"] = keys.groupby(list(keys.columns), sort=True).size()
        frames.append(means)
    return pd.concat(frames)

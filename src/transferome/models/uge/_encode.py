"""Data and genes through a fitted UGE network.

For the methods of :class:`~transferome.models.uge.estimator.UniversalGeneEmbedding`.

The ``<cls>`` latents of one species' data (:func:`encode`; :func:`encode_known` for a species
seen in training), the token embeddings of a fitted species' genes (:func:`species_table`) or
of genes known by their descriptions only (:func:`descriptor_table`, :func:`descriptions_of`),
and which species some data are (:func:`resolve_species`, :func:`known_species`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from transferome._logging import get_logger
from transferome.data.schema import obs_labels
from transferome.errors import DataValidationError
from transferome.models._persist import check_var_names
from transferome.models.uge.data import (
    category_codes,
    standardise,
    token_rows,
    token_statistics,
    token_values,
    validate_block,
)
from transferome.models.uge.genes import describe_genes

if TYPE_CHECKING:
    from transferome.models.uge.estimator import UniversalGeneEmbedding

__all__ = [
    "descriptions_of",
    "descriptor_table",
    "encode",
    "encode_known",
    "known_species",
    "resolve_species",
    "species_table",
]

_log = get_logger(__name__)


def species_table(model: UniversalGeneEmbedding, species: str) -> torch.Tensor:
    """Token embeddings (genes x d_model) of a fitted species' genes."""
    start = model.offsets_[species]
    with torch.no_grad():
        return model.network_.gene_table()[start : start + len(model.var_names_[species])]


def resolve_species(model: UniversalGeneEmbedding, adata: AnnData, species: str | None) -> str:
    """Return the species of ``adata``.

    ``species``, else the one species of ``adata``'s species column, else the model's only
    species; raises :class:`~transferome.errors.DataValidationError` when none is.
    """
    if species is not None:
        return str(species)
    key = model.schema.species_key
    if key is not None and key in adata.obs.columns:
        found = sorted(set(obs_labels(adata, key)))
        if len(found) != 1:
            raise DataValidationError(
                f"the data hold {len(found)} species in obs[{key!r}] "
                f"({found[:5]}); pass one species' data"
            )
        return found[0]
    if len(model.species_) == 1:
        return model.species_[0]
    raise DataValidationError(
        f"which species are these data? pass species= (one of {list(model.species_)})"
    )


def encode(
    model: UniversalGeneEmbedding,
    adata: AnnData,
    table: torch.Tensor,
    tokens: np.ndarray,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    batch_size: int = 256,
) -> np.ndarray:
    """Encode ``adata`` as ``<cls>`` latents (n_obs, d_model).

    Its ``tokens`` columns are read as the gene tokens of ``table`` (standardised with
    ``stats``, or on ``adata`` itself when the model's values are standardised and ``stats`` is
    ``None``).
    """
    if getattr(model, "values", "relative") == "standardised" and stats is None:
        stats = token_statistics(adata, tokens)
    external = None
    key = model.schema.perturbation_key
    if model.perturbation_token and key in adata.obs.columns:
        external = category_codes(obs_labels(adata, key), model.external_categories_)
    token_index = torch.arange(len(tokens))
    out = np.zeros((adata.n_obs, model.d_model), dtype=np.float32)
    with torch.no_grad():
        for positions, raw in token_rows(adata, tokens):
            values = token_values(raw, stats)
            for start in range(0, len(positions), batch_size):
                at = positions[start : start + batch_size]
                chunk = torch.from_numpy(values[start : start + batch_size])
                ext = torch.from_numpy(external[at]) if external is not None else None
                z = model.network_.encode(
                    token_index.expand(len(chunk), -1), chunk, ext, table=table[tokens]
                )
                out[at] = z.numpy()
    return out


def encode_known(model: UniversalGeneEmbedding, adata: AnnData, species: str) -> np.ndarray:
    """``<cls>`` latents of data of a species seen in training (its genes, in its order)."""
    check_var_names(model.var_names_[species], adata.var_names, what=f"{species} data")
    scaling = getattr(model, "token_scaling_", None)
    stats = None if scaling is None else scaling[species]
    return encode(model, adata, species_table(model, species), model.tokens_[species], stats)


def descriptor_table(model: UniversalGeneEmbedding, frame: pd.DataFrame) -> torch.Tensor:
    """Return the token embeddings of genes described by ``frame``.

    ``frame`` is genes x description columns; missing columns are set to the training mean.
    """
    aligned = frame.reindex(columns=model.description_columns_)
    missing = [c for c in model.description_columns_ if c not in frame.columns]
    if missing:
        _log.info("gene descriptions lack %d columns (set to the mean)", len(missing))
    values = np.nan_to_num(standardise(aligned, model.description_mean_, model.description_scale_))
    with torch.no_grad():
        return model.network_.gene_table(torch.from_numpy(values))


def known_species(model: UniversalGeneEmbedding, adata: AnnData) -> str | None:
    """Return the fitted species ``adata`` is (with its genes in order), else ``None``."""
    try:
        species = resolve_species(model, adata, None)
    except DataValidationError:
        return None
    if species in model.species_ and list(map(str, adata.var_names)) == model.var_names_[species]:
        return species
    return None


def descriptions_of(
    model: UniversalGeneEmbedding, adata: AnnData, given: pd.DataFrame | None
) -> pd.DataFrame:
    """Return the descriptions of ``adata``'s genes.

    Those of ``given``, else computed from ``adata`` (``model.gene_description``).
    """
    if given is not None:
        missing = [g for g in map(str, adata.var_names) if g not in given.index]
        if missing:
            raise DataValidationError(
                f"gene descriptions lack {len(missing)} genes of the data, e.g. {missing[:5]}"
            )
        return given.loc[list(map(str, adata.var_names))]
    validate_block(adata, model.schema, species="new")
    return describe_genes(adata, schema=model.schema, kind=model.gene_description)

"""Input preparation of the Universal Gene Embedding: species split, validation, token tables.

Kept apart from the estimator (``uge.py``) so each file holds one idea: here AnnData becomes
validated per-species blocks and the tensors the network trains on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.schema import DatasetDescription, Schema, obs_labels, validate
from transferome.errors import DataValidationError
from transferome.models.uge_genes import (
    dense_values,
    describe_genes,
    descriptions_through_map,
    relative_values,
)

__all__ = [
    "SpeciesBlock",
    "category_codes",
    "class_labels",
    "perturbation_codes",
    "species_descriptions",
    "split_species",
    "standardise",
    "token_statistics",
    "token_values",
    "training_tensors",
    "validate_block",
]

DEFAULT_SPECIES = "default"


@dataclass(frozen=True)
class SpeciesBlock:
    """One species' data and the genes the network reads (tokens) and rebuilds (decode)."""

    species: str
    adata: AnnData
    description: DatasetDescription
    tokens: np.ndarray
    decode: np.ndarray


def split_species(
    adatas: Mapping[str, AnnData] | AnnData, species_key: str | None
) -> dict[str, AnnData]:
    """One AnnData per species from a mapping or from one AnnData with a species column."""
    if isinstance(adatas, AnnData):
        if species_key is not None and species_key in adatas.obs.columns:
            labels = obs_labels(adatas, species_key)
            return {s: adatas[labels == s] for s in sorted(set(labels))}
        return {DEFAULT_SPECIES: adatas}
    if not isinstance(adatas, Mapping) or not adatas:
        raise DataValidationError(
            "expected an AnnData or a non-empty mapping {species: AnnData}, "
            f"got {type(adatas).__name__}"
        )
    out = {}
    for species, adata in adatas.items():
        if not isinstance(adata, AnnData):
            raise DataValidationError(
                f"data of species {species!r} is a {type(adata).__name__}, expected an AnnData"
            )
        out[str(species)] = adata
    return out


def validate_block(adata: AnnData, schema: Schema, *, species: str) -> DatasetDescription:
    """Validate one species' data; the values must be log-normalised."""
    try:
        description = validate(
            adata,
            species_key=None,
            context_key=schema.context_key,
            perturbation_key=schema.perturbation_key,
            control=schema.control,
            require_controls=False,
        )
    except DataValidationError as exc:
        raise DataValidationError(f"species {species!r}: {exc}") from exc
    if description.value_type != "log":
        raise DataValidationError(
            f"species {species!r}: X holds {description.value_type} values; the universal gene "
            "embedding expects log-normalised expression (normalize_total + log1p)"
        )
    return description


def standardise(frame: pd.DataFrame, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Column-standardised description values as float32."""
    return ((frame.to_numpy(dtype=np.float64) - mean) / scale).astype(np.float32)


def training_tensors(
    blocks: list[SpeciesBlock],
    offsets: Mapping[str, int],
    *,
    labels: Mapping[str, np.ndarray],
    external: Mapping[str, np.ndarray],
    scaling: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """Row tensors of every species stacked: tokens and values, decode genes padded to one width.

    Parameters
    ----------
    blocks
        The species' data with their token and decode gene indices (local to the species).
    offsets
        First vocabulary index of each species' genes.
    labels, external
        Per species, the class index (-1: unlabelled) and external category of each row.
    scaling
        Per species, the mean and scale of each token gene: token values are standardised
        with them (see :func:`token_values`); ``None``: relative values (paper 3.1.2).

    The rows also carry ``species``, the position of their species in ``blocks``.
    """
    width = max(len(b.decode) for b in blocks)
    parts: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "tokens",
            "values",
            "decode_genes",
            "targets",
            "decode_mask",
            "label",
            "external",
            "species",
        )
    }
    for position, block in enumerate(blocks):
        n = block.adata.n_obs
        offset = offsets[block.species]
        values = dense_values(block.adata)
        parts["tokens"].append(np.broadcast_to(block.tokens + offset, (n, len(block.tokens))))
        stats = None if scaling is None else scaling[block.species]
        parts["values"].append(token_values(values[:, block.tokens], stats))
        genes = np.zeros(width, dtype=np.int64)
        genes[: len(block.decode)] = block.decode + offset
        mask = np.zeros(width, dtype=bool)
        mask[: len(block.decode)] = True
        targets = np.zeros((n, width), dtype=np.float32)
        targets[:, : len(block.decode)] = values[:, block.decode]
        parts["decode_genes"].append(np.broadcast_to(genes, (n, width)))
        parts["targets"].append(targets)
        parts["decode_mask"].append(np.broadcast_to(mask, (n, width)))
        parts["label"].append(labels[block.species])
        parts["external"].append(external[block.species])
        parts["species"].append(np.full(n, position, dtype=np.int64))
    out = {k: np.concatenate(v, axis=0) for k, v in parts.items()}
    out["tokens"] = out["tokens"].astype(np.int64)
    out["label"] = out["label"].astype(np.int64)
    out["external"] = out["external"].astype(np.int64)
    return out


def token_statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale (standard deviation, 1 where it is 0) of each column, as float32."""
    mean = values.mean(axis=0, dtype=np.float64)
    scale = values.std(axis=0, dtype=np.float64)
    return mean.astype(np.float32), np.where(scale > 0, scale, 1.0).astype(np.float32)


def token_values(
    values: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None, clip: float = 10.0
) -> np.ndarray:
    """Input values of tokens: relative (``stats=None``) or standardised per gene and clipped.

    Standardising each species' genes by their own mean and scale removes the differences of
    level and spread between species and platforms, as the ortholog baselines do.
    """
    if stats is None:
        return relative_values(values)
    mean, scale = stats
    return np.clip((values - mean) / scale, -clip, clip).astype(np.float32)


def class_labels(
    blocks: list[SpeciesBlock], label_key: str | None, labelled_species: Sequence[str] | None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Class index of every row (-1: unlabelled) and the sorted classes of the labelled species."""
    n_rows = {b.species: b.adata.n_obs for b in blocks}
    if label_key is None:
        return {s: np.full(n, -1) for s, n in n_rows.items()}, []
    chosen = list(n_rows) if labelled_species is None else [str(s) for s in labelled_species]
    unknown = sorted(set(chosen) - set(n_rows))
    if unknown:
        raise DataValidationError(
            f"labelled species {unknown} are not in the data ({sorted(n_rows)})"
        )
    raw = {}
    for block in blocks:
        if block.species not in chosen:
            continue
        if label_key not in block.adata.obs.columns:
            raise DataValidationError(
                f"species {block.species!r}: label_key {label_key!r} is not an obs "
                f"column; obs has {list(block.adata.obs.columns)}"
            )
        raw[block.species] = obs_labels(block.adata, label_key)
    classes = sorted({c for v in raw.values() for c in v})
    index = {c: i for i, c in enumerate(classes)}
    labels = {
        s: np.array([index[c] for c in raw[s]]) if s in raw else np.full(n, -1)
        for s, n in n_rows.items()
    }
    return labels, classes


def category_codes(labels: np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """External-token codes: 1 + the category's position, 0 for labels not in ``categories``."""
    index = {c: i + 1 for i, c in enumerate(categories)}
    return np.array([index.get(str(c), 0) for c in labels], dtype=np.int64)


def perturbation_codes(
    blocks: list[SpeciesBlock], schema: Schema
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per species, the external-token code of each row's perturbation, and the categories."""
    raw = {b.species: obs_labels(b.adata, schema.perturbation_key) for b in blocks}
    categories = sorted({c for v in raw.values() for c in v})
    return {s: category_codes(v, categories) for s, v in raw.items()}, categories


def species_descriptions(
    blocks: Sequence[SpeciesBlock],
    schema: Schema,
    *,
    given: Mapping[str, pd.DataFrame],
    kind: str,
    links: pd.DataFrame | None,
    labelled_species: Sequence[str] | None,
    borrow: bool,
) -> dict[str, pd.DataFrame]:
    """Each species' gene descriptions: given, borrowed through orthologs, or its own.

    Parameters
    ----------
    blocks
        The species' data.
    schema
        The obs keys.
    given
        Descriptions passed by the caller (``{species: genes x features}``); they win.
    kind
        Description kind of :func:`~transferome.models.uge_genes.describe_genes`.
    links
        Ortholog links (:func:`~transferome.models.uge_orthologs.ortholog_links`), or ``None``.
    labelled_species
        Species whose labels may be read (``None``: all).
    borrow
        With ``links``: describe each species outside ``labelled_species`` through its
        orthologs in the first labelled species (its own contexts, which may be its labels,
        are then never read).
    """
    labelled = (
        [b.species for b in blocks]
        if labelled_species is None
        else [str(s) for s in labelled_species]
    )
    out: dict[str, pd.DataFrame] = {}
    pending = []
    for block in blocks:
        species, genes = block.species, list(map(str, block.adata.var_names))
        if species in given:
            frame = given[species]
            missing = [g for g in genes if g not in frame.index]
            if missing:
                raise DataValidationError(
                    f"gene descriptions of species {species!r} lack {len(missing)} of its "
                    f"genes, e.g. {missing[:5]}"
                )
            out[species] = frame.loc[genes]
        elif links is not None and borrow and species not in labelled:
            pending.append(block)
        else:
            out[species] = describe_genes(block.adata, schema=schema, kind=kind)  # type: ignore[arg-type]
    for block in pending:
        sources = [s for s in labelled if s in out]
        if links is None or not sources:
            raise DataValidationError(
                f"species {block.species!r} is unlabelled and would borrow its gene "
                "descriptions through the orthologs of a labelled species, but no labelled "
                f"species is in the data (labelled_species={labelled})"
            )
        source = sources[0]
        forward = links[(links.species_a == source) & (links.species_b == block.species)]
        backward = links[(links.species_b == source) & (links.species_a == block.species)]
        pairs = pd.DataFrame(
            {
                "source": [*forward.gene_a, *backward.gene_b],
                "target": [*forward.gene_b, *backward.gene_a],
            }
        )
        out[block.species] = descriptions_through_map(
            out[source],
            pairs,
            list(map(str, block.adata.var_names)),
            source_column="source",
            target_column="target",
        )
    return out

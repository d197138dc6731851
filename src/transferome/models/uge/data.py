"""Input preparation of the Universal Gene Embedding: species split, validation, token tables.

Kept apart from the estimator (``uge.py``) so each file holds one idea: here AnnData becomes
validated per-species blocks and the tensors the network trains on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from transferome.data.aggregate import column_moments
from transferome.data.blocks import dense, iter_row_blocks
from transferome.data.schema import DatasetDescription, Schema, obs_labels, validate
from transferome.data.species import MultiSpecies
from transferome.errors import DataValidationError
from transferome.models.uge.genes import (
    describe_genes,
    descriptions_through_map,
    relative_values,
)
from transferome.training.data import AnnDataRows

__all__ = [
    "SpeciesBlock",
    "UGERows",
    "category_codes",
    "class_labels",
    "perturbation_codes",
    "species_descriptions",
    "split_species",
    "standardise",
    "token_rows",
    "token_statistics",
    "token_values",
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
        return dict(MultiSpecies.from_adata(adatas, species_key, name=DEFAULT_SPECIES))
    if not isinstance(adatas, Mapping):
        raise DataValidationError(
            "expected an AnnData or a non-empty mapping {species: AnnData}, "
            f"got {type(adatas).__name__}"
        )
    return dict(MultiSpecies(adatas))


def validate_block(adata: AnnData, schema: Schema, *, species: str) -> DatasetDescription:
    """Validate one species' data; the values must be log-normalised."""
    try:
        keys = Schema(
            species_key=None,
            context_key=schema.context_key,
            perturbation_key=schema.perturbation_key,
            control=schema.control,
        )
        description = validate(adata, keys, require_controls=False)
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


class UGERows(torch.utils.data.Dataset):
    """The rows the network trains on, every species stacked, built a batch at a time.

    ``rows[index_array]`` gives, for those rows: ``tokens`` and ``values`` (the species' token
    genes, as vocabulary indices, and their input values), ``decode_genes``, ``targets`` and
    ``decode_mask`` (the genes rebuilt, padded to one width), ``label``, ``external`` and
    ``species`` (the position of the row's species in ``blocks``). The expression values are
    read per batch (:class:`~transferome.training.AnnDataRows`: an on-disk matrix is read a
    batch of rows at a time, never whole; a sparse one densified a batch at a time).

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
    rows
        The stacked rows this dataset holds (default all), e.g. a training split.
    """

    batched_indexing = True

    def __init__(
        self,
        blocks: list[SpeciesBlock],
        offsets: Mapping[str, int],
        *,
        labels: Mapping[str, np.ndarray],
        external: Mapping[str, np.ndarray],
        scaling: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
        rows: np.ndarray | None = None,
    ) -> None:
        self.blocks, self.scaling = blocks, scaling
        self.offsets = [int(offsets[b.species]) for b in blocks]
        self.width = max(len(b.decode) for b in blocks)
        self.starts = np.cumsum([0] + [b.adata.n_obs for b in blocks])
        self.rows = np.arange(self.starts[-1]) if rows is None else np.asarray(rows, np.int64)
        self.labels = np.concatenate([np.asarray(labels[b.species]) for b in blocks])
        self.external = np.concatenate([np.asarray(external[b.species]) for b in blocks])
        self.readers = [AnnDataRows(b.adata) for b in blocks]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> dict[str, torch.Tensor]:
        stacked = self.rows[np.asarray(index, dtype=np.int64)]
        species = np.searchsorted(self.starts, stacked, side="right") - 1
        n = len(stacked)
        tokens = np.zeros((n, max(len(b.tokens) for b in self.blocks)), dtype=np.int64)
        values = np.zeros(tokens.shape, dtype=np.float32)
        genes = np.zeros((n, self.width), dtype=np.int64)
        targets = np.zeros((n, self.width), dtype=np.float32)
        mask = np.zeros((n, self.width), dtype=bool)
        for position in np.unique(species):
            at = np.flatnonzero(species == position)
            block, offset = self.blocks[position], self.offsets[position]
            x = self.readers[position][stacked[at] - self.starts[position]]["x"].numpy()
            stats = None if self.scaling is None else self.scaling[block.species]
            n_tokens, n_decode = len(block.tokens), len(block.decode)
            tokens[at, :n_tokens] = block.tokens + offset
            values[at, :n_tokens] = token_values(x[:, block.tokens], stats)
            genes[at, :n_decode] = block.decode + offset
            targets[at, :n_decode] = x[:, block.decode]
            mask[at, :n_decode] = True
        return {
            "tokens": torch.from_numpy(tokens),
            "values": torch.from_numpy(values),
            "decode_genes": torch.from_numpy(genes),
            "targets": torch.from_numpy(targets),
            "decode_mask": torch.from_numpy(mask),
            "label": torch.from_numpy(self.labels[stacked].astype(np.int64)),
            "external": torch.from_numpy(self.external[stacked].astype(np.int64)),
            "species": torch.from_numpy(species.astype(np.int64)),
        }


def token_statistics(adata: AnnData, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and scale of the ``tokens`` columns of ``adata``, as float32.

    The scale is the standard deviation, 1 where it is 0; in one pass a block of rows at a time.
    """
    mean, variance = column_moments(adata, columns=tokens)
    scale = np.sqrt(variance)
    return mean.astype(np.float32), np.where(scale > 0, scale, 1.0).astype(np.float32)


def token_rows(adata: AnnData, tokens: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(positions, values)``: the ``tokens`` columns of those rows as dense float32.

    A block of rows at a time (an on-disk matrix is never read whole).
    """
    for positions, block in iter_row_blocks(adata):
        yield positions, dense(block[:, tokens])


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
        Description kind of :func:`~transferome.models.uge.genes.describe_genes`.
    links
        Ortholog links (:func:`~transferome.data.species.ortholog_links`), or ``None``.
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
            out[species] = describe_genes(block.adata, schema=schema, kind=kind)
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

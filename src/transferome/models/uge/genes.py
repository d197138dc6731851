"""Species-independent gene descriptions and token selection for the Universal Gene Embedding.

A gene's description is a vector whose columns mean the same thing in every species, so that a
network of it places genes of all species in one space:

* ``profile``: the gene's mean log expression in each context (organ, cell type), centred on the
  gene's mean over contexts (its specificity), plus that mean (its level). Controls only when the
  data hold perturbations.
* ``reactome``: the gene's expression change under each perturbation in each context (mean log
  treated minus mean log control of the same context) -- the paper's reactome.
* ``both``: the two side by side (the default when perturbations exist).

Columns are labelled ``"profile|<context>"``, ``"level"`` and
``"reactome|<context>|<perturbation>"``; only columns measured in every training species are
used. Descriptions may also be *transferred* through a gene map
(:func:`descriptions_through_map`) when a species' own labels must not be used (zero-shot
annotation transfer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.aggregate import column_moments
from transferome.data.blocks import dense_values as _dense_values
from transferome.data.blocks import is_backed, row_stats
from transferome.data.schema import Schema, obs_labels
from transferome.errors import DataValidationError

__all__ = [
    "DescriptionKind",
    "align_columns",
    "best_matches",
    "cosine_similarity",
    "dense_values",
    "describe_genes",
    "descriptions_through_map",
    "gene_variances",
    "mean_profile",
    "relative_values",
    "top_by_variance",
]

DescriptionKind = Literal["auto", "profile", "reactome", "both"]


def dense_values(adata: AnnData, columns: np.ndarray | None = None) -> np.ndarray:
    """Return ``X`` (optionally a subset of columns) as a dense float32 array (a copy).

    An on-disk ``X`` is read a block of rows at a time, after checking that the array fits in
    memory.
    """
    return _dense_values(adata, columns, what="UniversalGeneEmbedding")


def mean_profile(adata: AnnData) -> np.ndarray:
    """Return the mean of each gene over the observations (float32).

    In one pass a block of rows at a time (an on-disk matrix is never read whole).
    """
    return column_moments(adata)[0].astype(np.float32)


def gene_variances(adata: AnnData) -> np.ndarray:
    """Return the variance of each gene over the observations.

    From a file in one streamed pass (in memory as float32 values, whose ties the token choice
    breaks as it always has).
    """
    if is_backed(adata):
        return column_moments(adata)[1]
    return dense_values(adata).var(axis=0)


def _grouped(
    adata: AnnData, values: np.ndarray | None, rows: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the sorted unique labels of the ``rows`` (a boolean mask) and their mean profiles.

    From ``values``, or streamed from the file when ``values`` is ``None``.
    """
    if values is not None:
        return _group_means(values[rows], labels[rows])
    groups, codes = np.unique(labels[rows], return_inverse=True)
    full = np.full(adata.n_obs, -1, dtype=np.int64)
    full[np.flatnonzero(rows)] = codes
    stats = row_stats(adata, full, len(groups))
    means = np.vstack([s.means for s in stats]) if stats else np.zeros((0, adata.n_vars))
    return groups, means


def _group_means(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique labels and the column means of ``values`` per label."""
    groups, codes = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(groups), values.shape[1]), dtype=np.float64)
    np.add.at(sums, codes, values)
    counts = np.bincount(codes, minlength=len(groups)).astype(np.float64)
    return groups, sums / counts[:, None]


def describe_genes(
    adata: AnnData, *, schema: Schema | None = None, kind: DescriptionKind | str = "auto"
) -> pd.DataFrame:
    """Describe every gene of one species (genes x features), see the module docstring.

    Parameters
    ----------
    adata
        Log-normalised data of one species with the schema's context and perturbation keys.
    schema
        Keys (defaults of :class:`~transferome.data.schema.Schema` when ``None``).
    kind
        ``profile``, ``reactome``, ``both``, or ``auto`` (``both`` when the data hold a
        perturbation, else ``profile``). Any string is accepted, as the models' hyperparameter
        passes it on unchecked: another one raises ``DataValidationError``.
    """
    schema = schema or Schema()
    for key in (schema.context_key, schema.perturbation_key):
        if key not in adata.obs.columns:
            raise DataValidationError(f"obs key {key!r} is missing; obs has {list(adata.obs)}")
    contexts = obs_labels(adata, schema.context_key)
    perturbations = obs_labels(adata, schema.perturbation_key)
    is_control = perturbations == schema.control
    has_perturbations = bool((~is_control).any())
    if kind == "auto":
        kind = "both" if has_perturbations else "profile"
    if kind not in ("profile", "reactome", "both"):
        raise DataValidationError(
            f"gene description {kind!r} is not one of 'auto', 'profile', 'reactome', 'both'"
        )
    if kind != "profile" and not has_perturbations:
        raise DataValidationError(
            f"a {kind!r} gene description needs perturbed observations; obs"
            f"[{schema.perturbation_key!r}] holds only {schema.control!r}"
        )
    values = None if is_backed(adata) else dense_values(adata)
    base = is_control if has_perturbations else np.ones(len(contexts), dtype=bool)
    control_groups, control_means = _grouped(adata, values, base, contexts)
    control_of = {c: control_means[i] for i, c in enumerate(control_groups)}
    parts: list[pd.DataFrame] = []
    if kind in ("profile", "both"):
        level = control_means.mean(axis=0)
        columns = {f"profile|{c}": control_of[c] - level for c in control_groups}
        columns["level"] = level
        parts.append(pd.DataFrame(columns, index=adata.var_names.astype(str)))
    if kind in ("reactome", "both"):
        treated = ~is_control & np.isin(contexts, control_groups)
        pair_labels = np.char.add(np.char.add(contexts.astype(str), "|"), perturbations.astype(str))
        pairs, pair_means = _grouped(adata, values, treated, pair_labels)
        columns = {}
        for label, mean in zip(pairs, pair_means, strict=True):
            context = str(label).split("|", 1)[0]
            columns[f"reactome|{label}"] = mean - control_of[context]
        parts.append(pd.DataFrame(columns, index=adata.var_names.astype(str)))
    return pd.concat(parts, axis=1).astype(np.float32)


def descriptions_through_map(
    source: pd.DataFrame,
    gene_map: pd.DataFrame,
    target_genes: Sequence[str],
    *,
    source_column: str,
    target_column: str,
    weight_column: str | None = None,
) -> pd.DataFrame:
    """Descriptions of a species' genes borrowed from their partners in another species.

    Each target gene gets the (weighted) mean description of its source partners in
    ``gene_map`` (many-to-many pairs are averaged); genes without a partner get zeros, the
    column mean once descriptions are standardised. No label of the target species is used.

    Parameters
    ----------
    source
        Source-species descriptions (genes x features), e.g. from :func:`describe_genes`.
    gene_map
        Pairs of genes, one row per pair (an ortholog table or a learned mapping).
    target_genes
        Genes of the target species, in the order wanted.
    source_column, target_column
        Columns of ``gene_map`` naming the source and the target gene.
    weight_column
        Optional non-negative weight of each pair (e.g. sequence identity or confidence).
    """
    for column in (source_column, target_column, weight_column):
        if column is not None and column not in gene_map.columns:
            raise DataValidationError(
                f"gene map column {column!r} is missing; it has {list(gene_map.columns)}"
            )
    target_index = pd.Index([str(g) for g in target_genes])
    pairs = pd.DataFrame(
        {
            "s": gene_map[source_column].astype(str).to_numpy(),
            "t": gene_map[target_column].astype(str).to_numpy(),
            "w": (
                gene_map[weight_column].astype(float).to_numpy()
                if weight_column is not None
                else np.ones(len(gene_map))
            ),
        }
    )
    pairs = pairs[pairs["s"].isin(source.index) & pairs["t"].isin(target_index)]
    pairs = pairs[pairs["w"] > 0].drop_duplicates(["s", "t"])
    out = np.zeros((len(target_index), source.shape[1]), dtype=np.float64)
    if len(pairs):
        rows = target_index.get_indexer(pairs["t"])
        weighted = (
            source.loc[pairs["s"]].to_numpy(dtype=np.float64) * pairs["w"].to_numpy()[:, None]
        )
        np.add.at(out, rows, weighted)
        totals = np.bincount(rows, weights=pairs["w"].to_numpy(), minlength=len(target_index))
        mapped = totals > 0
        out[mapped] /= totals[mapped, None]
    return pd.DataFrame(out.astype(np.float32), index=target_index, columns=source.columns)


def top_by_variance(variance: np.ndarray, n: int) -> np.ndarray:
    """Return the indices (sorted) of the ``n`` largest variances (the first on ties)."""
    chosen = np.argsort(-np.asarray(variance), kind="stable")[: min(int(n), len(variance))]
    return np.sort(chosen)


def relative_values(values: np.ndarray) -> np.ndarray:
    """Relative expression (paper 3.1.2): each row divided by its maximum (all-zero rows stay 0)."""
    peak = values.max(axis=1, keepdims=True)
    return np.divide(values, peak, out=np.zeros_like(values), where=peak > 0).astype(np.float32)


def align_columns(descriptions: Mapping[str, pd.DataFrame]) -> list[str]:
    """Return the description columns present in every species, in the first species' order."""
    frames = list(descriptions.values())
    shared = set(frames[0].columns)
    for frame in frames[1:]:
        shared &= set(frame.columns)
    columns = [c for c in frames[0].columns if c in shared]
    if not columns:
        raise DataValidationError(
            "the gene descriptions of the species share no column (context / perturbation); "
            f"species: {list(descriptions)}"
        )
    return columns


def cosine_similarity(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """Cosine similarity of the rows of two embedding frames (left rows x right rows)."""
    a = left.to_numpy(np.float64)
    b = right.to_numpy(np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return pd.DataFrame(a @ b.T, index=left.index, columns=right.index)


def best_matches(similarity: pd.DataFrame, top_k: int = 1) -> pd.DataFrame:
    """For each column (target gene), its ``top_k`` rows (source genes) by similarity.

    Returns a tidy frame with columns ``target_gene``, ``source_gene``, ``score`` and ``rank``
    (1 = best).
    """
    values = similarity.to_numpy()
    k = max(1, min(int(top_k), values.shape[0]))
    best = np.argsort(-values, axis=0, kind="stable")[:k]
    source_genes = similarity.index.to_numpy()
    rows = [
        (gene, source_genes[i], float(values[i, j]), rank)
        for j, gene in enumerate(similarity.columns)
        for rank, i in enumerate(best[:, j], start=1)
    ]
    return pd.DataFrame(rows, columns=["target_gene", "source_gene", "score", "rank"])

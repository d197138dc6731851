"""Ortholog groups of the Universal Gene Embedding: which gene tokens start tied.

An ortholog table links genes of two or more species; its links are read, long or wide, by
:func:`~transferome.data.species.ortholog_links`.

The genes of the training vocabulary and these links form a graph; each connected component
that holds genes of at least two species is one *ortholog group* (a one-to-one pair, or a
one-to-many / many-to-many family). Every gene of a group starts from the group's shared token
vector; see :class:`~transferome.models.uge.network.UGENetwork`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from transferome.errors import DataValidationError

__all__ = ["ortholog_groups", "shared_token_genes"]


def ortholog_groups(
    links: pd.DataFrame,
    var_names: Mapping[str, Sequence[str]],
    offsets: Mapping[str, int],
) -> np.ndarray:
    """Ortholog group of every vocabulary gene (``-1``: the gene is in no group).

    Groups are the connected components of the link graph over the vocabulary (all species'
    genes, species ``s`` starting at ``offsets[s]``) that hold genes of two or more species;
    they are numbered in the order of their first gene. Links naming a gene outside the
    vocabulary are ignored.

    Raises
    ------
    DataValidationError
        No link joins two genes of the data (the table names none of the data's genes, or
        the wrong species' genes).
    """
    n = sum(len(v) for v in var_names.values())
    index = {
        (s, str(g)): offsets[s] + i for s, genes in var_names.items() for i, g in enumerate(genes)
    }
    a = np.array(
        [index.get((s, g), -1) for s, g in zip(links["species_a"], links["gene_a"], strict=True)],
        dtype=np.int64,
    )
    b = np.array(
        [index.get((s, g), -1) for s, g in zip(links["species_b"], links["gene_b"], strict=True)],
        dtype=np.int64,
    )
    keep = (a >= 0) & (b >= 0)
    if not keep.any():
        examples = links.head(3).to_dict(orient="records")
        raise DataValidationError(
            f"none of the {len(links)} ortholog links joins two genes of the data (species "
            f"{list(var_names)}); e.g. {examples}, while the data's genes are e.g. "
            + ", ".join(f"{s}: {list(v[:3])}" for s, v in var_names.items())
        )
    a, b = a[keep], b[keep]
    graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    species_of = np.empty(n, dtype=np.int64)
    for k, s in enumerate(var_names):
        species_of[offsets[s] : offsets[s] + len(var_names[s])] = k
    frame = pd.DataFrame({"component": component, "species": species_of})
    n_species = frame.groupby("component")["species"].nunique()
    tied = frame["component"].map(n_species).to_numpy() >= 2
    groups = np.full(n, -1, dtype=np.int64)
    if tied.any():
        _, first = np.unique(component[tied], return_index=True)
        order = np.argsort(np.flatnonzero(tied)[first], kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        _, inverse = np.unique(component[tied], return_inverse=True)
        groups[tied] = rank[inverse]
    return groups


def shared_token_genes(
    variances: Mapping[str, np.ndarray],
    groups: np.ndarray,
    offsets: Mapping[str, int],
    n_tokens: int,
) -> dict[str, np.ndarray]:
    """Token genes (sorted local indices) of each species, ortholog groups chosen jointly.

    Tied genes come first: a group scores the mean over species of its best member's
    variance percentile (within the species), and the groups are taken best first, so that
    every species reads the same groups (a cell of either species is then a sequence over
    the same orthologs). Untied genes, by their own percentile, fill what the groups leave.
    """
    percentile = {}
    for s, v in variances.items():
        ranks = pd.Series(v).rank(method="average").to_numpy()
        percentile[s] = ranks / max(len(v), 1)
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    group_score = np.zeros(n_groups)
    n_species = np.zeros(n_groups)
    for s, p in percentile.items():
        local = groups[offsets[s] : offsets[s] + len(p)]
        tied = local >= 0
        best = np.full(n_groups, -np.inf)
        np.maximum.at(best, local[tied], p[tied])
        seen = np.isfinite(best)
        group_score[seen] += best[seen]
        n_species[seen] += 1
    group_score = group_score / np.maximum(n_species, 1)
    out = {}
    for s, p in percentile.items():
        local = groups[offsets[s] : offsets[s] + len(p)]
        score = np.where(local >= 0, 1.0 + group_score[np.maximum(local, 0)], p)
        # ties between genes of one group or equal scores: the group, then the gene's own rank
        order = np.lexsort((-p, -score))
        out[s] = np.sort(order[: min(int(n_tokens), len(p))])
    return out

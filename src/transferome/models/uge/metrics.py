"""How well a shared space integrates species: mixing, label conservation, and a baseline space.

Formulas follow the integration benchmarks (scIB, Luecken et al. 2022) in plain numpy /
scikit-learn, on a k-nearest-neighbour graph of the embeddings (Euclidean):

* ``species_mixing``: per sample, the fraction of its neighbours from another species divided
  by that fraction under perfect mixing (the share of other species in the data), capped at 1
  and averaged (1 = as mixed as a random draw, 0 = neighbours only of its own species);
* ``ilisi``: the inverse Simpson index of the species among the neighbours, rescaled to
  ``(ilisi - 1) / (n_species - 1)`` (scIB's iLISI without its perplexity weighting);
* ``knn_label_accuracy``: the share of samples whose neighbours' majority label is their own
  (all species together);
* ``cross_species_knn_accuracy``: target samples labelled by the majority label of their ``k``
  nearest *source* samples (label transfer through the space itself);
* ``label_silhouette``: the silhouette of the labels, rescaled to ``(s + 1) / 2`` (scIB's ASW).

:func:`ortholog_pca` builds the reference space: PCA of the one-to-one orthologs of both
species jointly, each species' genes standardised within that species.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.errors import DataValidationError
from transferome.models.uge.genes import dense_values

__all__ = ["integration_scores", "ortholog_pca"]


def _neighbours(z: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    k = int(min(k, len(z) - 1))
    found = NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z, return_distance=False)
    return found[:, 1:]


def _majority(labels: np.ndarray) -> np.ndarray:
    """Most frequent entry of each row (ties: the smallest code)."""
    n_codes = int(labels.max()) + 1
    counts = np.zeros((len(labels), n_codes), dtype=np.int64)
    np.add.at(counts, (np.arange(len(labels))[:, None], labels), 1)
    return counts.argmax(axis=1)


def integration_scores(
    z: np.ndarray,
    species: Sequence[str] | np.ndarray,
    labels: Sequence[str] | np.ndarray,
    *,
    source: str | None = None,
    k: int = 15,
    max_silhouette: int = 5000,
    seed: int = 0,
) -> dict[str, float]:
    """Species mixing and label conservation of an embedding (see the module docstring).

    Parameters
    ----------
    z
        (n_samples, n_dims) embeddings of the samples of every species.
    species, labels
        Species and label of each sample.
    source
        Species whose samples label the others in ``cross_species_knn_accuracy`` (default:
        the first species); labels seen in the source only are scored.
    k
        Neighbours per sample.
    max_silhouette
        Samples (drawn at random) the silhouette is computed on.
    seed
        Seed of that draw.
    """
    from sklearn.metrics import silhouette_score

    z = np.asarray(z, dtype=np.float64)
    species = np.asarray(species, dtype=object).astype(str)
    labels = np.asarray(labels, dtype=object).astype(str)
    if z.ndim != 2 or len(z) != len(species) or len(z) != len(labels):
        raise DataValidationError(
            f"embeddings {z.shape}, {len(species)} species and {len(labels)} labels disagree"
        )
    kinds = list(dict.fromkeys(species))
    if len(kinds) < 2:
        raise DataValidationError(f"integration needs two or more species, got {kinds}")
    if not np.isfinite(z).all():
        raise DataValidationError("the embeddings hold NaN or infinite values")
    neighbours = _neighbours(z, k)
    species_codes = pd.Index(kinds).get_indexer(species)
    near_species = species_codes[neighbours]
    other = (near_species != species_codes[:, None]).mean(axis=1)
    share = pd.Series(species).map(pd.Series(species).value_counts(normalize=True)).to_numpy()
    mixing = np.minimum(other / np.maximum(1.0 - share, 1e-12), 1.0)
    proportions = np.stack([(near_species == c).mean(axis=1) for c in range(len(kinds))], axis=1)
    simpson = 1.0 / np.maximum((proportions**2).sum(axis=1), 1e-12)
    label_index = pd.Index(sorted(set(labels)))
    label_codes = label_index.get_indexer(labels)
    knn_label = _majority(label_codes[neighbours]) == label_codes
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(z), size=min(max_silhouette, len(z)), replace=False))
    silhouette = (
        float(silhouette_score(z[chosen], label_codes[chosen]))
        if len(set(label_codes[chosen])) > 1
        else float("nan")
    )
    source = kinds[0] if source is None else str(source)
    if source not in kinds:
        raise DataValidationError(f"source species {source!r} not among {kinds}")
    from sklearn.neighbors import KNeighborsClassifier

    is_source = species == source
    seen = ~is_source & np.isin(labels, labels[is_source])
    transfer = float("nan")
    if seen.any():
        knn = KNeighborsClassifier(n_neighbors=min(k, int(is_source.sum()))).fit(
            z[is_source], labels[is_source]
        )
        transfer = float(np.mean(knn.predict(z[seen]) == labels[seen]))
    return {
        "species_mixing": float(mixing.mean()),
        "ilisi": float(np.mean((simpson - 1.0) / (len(kinds) - 1))),
        "knn_label_accuracy": float(knn_label.mean()),
        "cross_species_knn_accuracy": transfer,
        "label_silhouette": (silhouette + 1.0) / 2.0,
    }


def ortholog_pca(
    adatas: Mapping[str, AnnData],
    pairs: pd.DataFrame,
    *,
    n_components: int = 50,
    n_genes: int = 2000,
) -> dict[str, np.ndarray]:
    """Joint PCA of two species on their one-to-one orthologs (the baseline shared space).

    Parameters
    ----------
    adatas
        ``{species: AnnData}`` of exactly two species (log-normalised).
    pairs
        One row per one-to-one pair with one column per species (named by the species).
    n_components
        Principal components kept.
    n_genes
        Pairs kept, the most variable (mean of the two species' variance ranks) first.

    Returns
    -------
    dict
        ``{species: (n_obs, n_components)}`` coordinates.
    """
    from sklearn.decomposition import PCA

    names = list(adatas)
    if len(names) != 2:
        raise DataValidationError(f"ortholog PCA takes two species, got {names}")
    missing = [s for s in names if s not in pairs.columns]
    if missing:
        raise DataValidationError(
            f"the ortholog pairs have no column for species {missing}; they have "
            f"{list(pairs.columns)}"
        )
    a, b = names
    known = pairs[
        pairs[a].astype(str).isin(adatas[a].var_names)
        & pairs[b].astype(str).isin(adatas[b].var_names)
    ]
    if len(known) < 2:
        raise DataValidationError(
            f"only {len(known)} ortholog pairs are among the genes of both species"
        )
    blocks, ranks = {}, []
    for s in names:
        values = dense_values(adatas[s], adatas[s].var_names.get_indexer(known[s].astype(str)))
        blocks[s] = values
        ranks.append(pd.Series(values.var(axis=0)).rank().to_numpy())
    keep = np.argsort(-np.mean(ranks, axis=0), kind="stable")[:n_genes]
    scaled = []
    for s in names:
        values = blocks[s][:, keep].astype(np.float64)
        scale = values.std(axis=0)
        scaled.append((values - values.mean(axis=0)) / np.where(scale > 0, scale, 1.0))
    joint = np.concatenate(scaled)
    n_components = int(min(n_components, joint.shape[1], len(joint) - 1))
    coords = PCA(n_components=n_components, random_state=0).fit_transform(joint)
    n_a = len(scaled[0])
    return {a: coords[:n_a], b: coords[n_a:]}

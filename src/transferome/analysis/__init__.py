"""Analyses of expression data and learned embeddings.

:func:`tau_index` and :func:`tissue_emd` measure how tissue-specific each gene is;
:func:`embedding_benchmark` compares sample embeddings by k-nearest-neighbour prediction of
sample labels against PCA, t-SNE and UMAP; :func:`distance_preservation` correlates pairwise
sample distances between two spaces.
"""

from __future__ import annotations

from transferome.analysis.embedding import (
    baseline_embeddings,
    distance_preservation,
    embedding_benchmark,
    knn_scores,
)
from transferome.analysis.specificity import group_means, tau_index, tissue_emd

__all__ = [
    "baseline_embeddings",
    "distance_preservation",
    "embedding_benchmark",
    "group_means",
    "knn_scores",
    "tau_index",
    "tissue_emd",
]

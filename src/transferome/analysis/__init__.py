"""Analyses of expression data and learned embeddings.

:func:`tau_index` and :func:`tissue_emd` measure how tissue-specific each gene is;
:func:`embedding_benchmark` compares sample embeddings by k-nearest-neighbour prediction of
sample labels against PCA, t-SNE and UMAP, and :func:`compare_embeddings` ranks them with
the paper's ANOVA and Tukey test; :func:`distance_preservation` correlates pairwise
sample distances between two spaces. :mod:`~transferome.analysis.imputation` benchmarks
imputation: :func:`hide_entries` hides observed entries, :func:`impute_gene_mean`,
:func:`impute_knn`, :func:`impute_soft` (soft-impute) and :func:`impute_fe` (Factorized
Embeddings) fill them back, and :func:`imputation_scores` scores the hidden entries.
"""

from __future__ import annotations

from transferome.analysis.embedding import (
    baseline_embeddings,
    compare_embeddings,
    distance_preservation,
    embedding_benchmark,
    knn_scores,
)
from transferome.analysis.imputation import (
    hide_entries,
    imputation_scores,
    impute_fe,
    impute_gene_mean,
    impute_knn,
    impute_soft,
)
from transferome.analysis.specificity import group_means, tau_index, tissue_emd

__all__ = [
    "baseline_embeddings",
    "compare_embeddings",
    "distance_preservation",
    "embedding_benchmark",
    "group_means",
    "hide_entries",
    "imputation_scores",
    "impute_fe",
    "impute_gene_mean",
    "impute_knn",
    "impute_soft",
    "knn_scores",
    "tau_index",
    "tissue_emd",
]

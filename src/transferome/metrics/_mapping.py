"""Gene-mapping metrics: precision@k and mean reciprocal rank against a truth table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

__all__ = ["mapping_metrics", "mean_reciprocal_rank", "precision_at_k"]


def _truth_sets(truth: pd.DataFrame | Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    if isinstance(truth, pd.DataFrame):
        if truth.shape[1] < 2:
            raise ValueError("the truth table needs two columns: source gene, target gene")
        pairs = truth.iloc[:, :2].astype(str).itertuples(index=False, name=None)
        sets: dict[str, set[str]] = {}
        for source, target in pairs:
            sets.setdefault(source, set()).add(target)
        return sets
    return {str(k): {str(v) for v in values} for k, values in truth.items()}


def _queries(
    ranked: Mapping[str, Sequence[str]], truth: dict[str, set[str]]
) -> list[tuple[list[str], set[str]]]:
    items = [([str(g) for g in ranked[q]], truth[q]) for q in ranked if truth.get(q)]
    if not items:
        raise ValueError("no ranked gene has a true match in the truth table")
    return items


def precision_at_k(
    ranked: Mapping[str, Sequence[str]],
    truth: pd.DataFrame | Mapping[str, Sequence[str]],
    k: int = 1,
) -> float:
    """Fraction of query genes with a true match among their top ``k`` candidates.

    Parameters
    ----------
    ranked
        Each query (source) gene mapped to its candidate target genes, best first.
    truth
        Either a DataFrame whose first two columns are (source gene, target gene) pairs, or a
        mapping of source gene to its true targets. Query genes without a truth are skipped.
    k
        Number of top candidates considered.
    """
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    items = _queries(ranked, _truth_sets(truth))
    return sum(bool(set(c[:k]) & t) for c, t in items) / len(items)


def mean_reciprocal_rank(
    ranked: Mapping[str, Sequence[str]], truth: pd.DataFrame | Mapping[str, Sequence[str]]
) -> float:
    """Mean over query genes of ``1 / rank`` of the first true match (0 when none is ranked)."""
    items = _queries(ranked, _truth_sets(truth))
    total = 0.0
    for candidates, true in items:
        for rank, gene in enumerate(candidates, start=1):
            if gene in true:
                total += 1.0 / rank
                break
    return total / len(items)


def mapping_metrics(
    ranked: Mapping[str, Sequence[str]], truth: pd.DataFrame | Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """``precision_at_1``, ``precision_at_5`` and ``mrr`` in one dictionary."""
    return {
        "precision_at_1": precision_at_k(ranked, truth, 1),
        "precision_at_5": precision_at_k(ranked, truth, 5),
        "mrr": mean_reciprocal_rank(ranked, truth),
    }

"""Score matrices between target and source genes, read in chunks: top-k, mutual best, softmax.

Scores are never materialised whole (20k x 15k genes would not fit in memory comfortably): a
:class:`ScoreSource` yields blocks of target rows, from which the candidates, each source
gene's best target, the log partition function and the anchor scores are gathered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

__all__ = [
    "Candidates",
    "ScoreSource",
    "collect_candidates",
    "fit_temperature",
    "similarity_features",
]

SIMILARITIES = ("pearson", "spearman", "cosine", "euclidean")


def similarity_features(
    matrix: np.ndarray, similarity: str, role: str = "source"
) -> tuple[np.ndarray, np.ndarray]:
    """Row features whose dot products are the chosen similarity; and a row-validity mask.

    Rows with a non-finite entry or no variance (cosine: all zero) are invalid: those genes
    have no partner. Pearson and Spearman scores lie in [-1, 1]; so do cosine scores.
    ``euclidean`` ranks by distance: source rows ``[s, |s|^2 / 2]`` and target rows
    ``[t, -1]`` give ``s.t - |s|^2 / 2 = (|t|^2 - |s - t|^2) / 2``, the negative half squared
    distance up to a constant per target (which changes neither ranks nor the softmax).
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    x = np.asarray(matrix, dtype=np.float64)
    valid = np.asarray(np.isfinite(x).all(axis=1), dtype=bool)
    x = np.where(valid[:, None], x, 0.0)
    if similarity == "euclidean":
        extra = 0.5 * (x**2).sum(axis=1) if role == "source" else -np.ones(x.shape[0])
        return np.column_stack([x, np.where(valid, extra, 0.0)]), valid
    if similarity == "spearman":
        x = pd.DataFrame(x).rank(axis=1).to_numpy()
    if similarity in ("pearson", "spearman"):
        x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1)
    valid &= norm > 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0)))
    x = np.where(valid[:, None], x / np.where(norm > 0, norm, 1.0)[:, None], 0.0)
    return x, valid


@dataclass(frozen=True)
class ScoreSource:
    """Scores of ``n_target`` target rows against ``n_source`` source columns, by blocks.

    ``block(rows)`` returns the dense scores of the target rows ``rows`` (an index array);
    ``-inf`` marks a pair that is not a candidate.
    """

    n_target: int
    n_source: int
    block: Callable[[np.ndarray], np.ndarray]
    chunk_size: int = 1024

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.n_target, self.chunk_size):
            stop = min(start + self.chunk_size, self.n_target)
            yield start, self.block(np.arange(start, stop))


@dataclass(frozen=True)
class Candidates:
    """The gathered result of one pass over the scores."""

    index: np.ndarray  # (n_target, k) source indices, -1 where fewer candidates
    score: np.ndarray  # (n_target, k)
    log_partition: np.ndarray  # (n_target,) logsumexp(scores / temperature)
    source_best: np.ndarray  # (n_source,) best target of each source gene, -1 if none


def collect_candidates(scores: ScoreSource, top_k: int, temperature: float) -> Candidates:
    """Top-``top_k`` sources of each target, the softmax normaliser, each source's best target."""
    k = min(top_k, scores.n_source)
    index = np.full((scores.n_target, k), -1, dtype=np.int64)
    value = np.full((scores.n_target, k), -np.inf)
    log_partition = np.full(scores.n_target, -np.inf)
    best_value = np.full(scores.n_source, -np.inf)
    best_target = np.full(scores.n_source, -1, dtype=np.int64)
    for start, block in scores.blocks():
        rows = np.arange(block.shape[0])
        if k < block.shape[1]:
            part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(block.shape[1]), (block.shape[0], 1))
        part_scores = block[rows[:, None], part]
        order = np.argsort(-part_scores, axis=1, kind="stable")
        top = part[rows[:, None], order]
        top_scores = part_scores[rows[:, None], order]
        stop = start + block.shape[0]
        index[start:stop] = np.where(np.isfinite(top_scores), top, -1)
        value[start:stop] = top_scores
        with np.errstate(invalid="ignore"):
            log_partition[start:stop] = logsumexp(block / temperature, axis=1)
        column_best = block.argmax(axis=0)
        column_value = block[column_best, np.arange(block.shape[1])]
        better = column_value > best_value
        best_value[better] = column_value[better]
        best_target[better] = column_best[better] + start
    return Candidates(index, value, log_partition, best_target)


def fit_temperature(rows: np.ndarray, true_index: np.ndarray) -> float:
    """Softmax temperature that minimises the anchors' negative log likelihood.

    ``rows`` holds each anchor target's scores over all source genes (``-inf`` for
    non-candidates); ``true_index`` the column of its anchor partner.
    """
    picked = rows[np.arange(rows.shape[0]), true_index]
    keep = np.isfinite(picked)
    rows, picked = rows[keep], picked[keep]
    if rows.shape[0] == 0:
        raise ValueError("no anchor pair has a finite score")

    def nll(log_t: float) -> float:
        t = float(np.exp(log_t))
        return float(np.mean(logsumexp(rows / t, axis=1) - picked / t))

    result = minimize_scalar(nll, bounds=(np.log(1e-4), np.log(1e2)), method="bounded")
    return float(np.exp(result.x))

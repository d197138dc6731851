"""Cross-species gene mapping by function (reactomes, expression profiles) or by the ortholog table.

:func:`map_genes` returns a tidy table: for each target gene its ranked source candidates with
a score, the rank, a mutual-best flag and a calibrated confidence.

Calibration
-----------
The confidence of candidate ``j`` for target ``i`` is a softmax over *all* source genes,
``exp(s_ij / T) / sum_k exp(s_ik / T)``, whose temperature ``T`` is fitted by maximum likelihood
on anchor pairs whose answer is trusted: ``anchors`` when given, else the one-to-one rows of the
ortholog table. Some one-to-one orthologs have diverged in function, so anchors from the table
make the temperature conservative. A single temperature cannot follow both the sharp and the
ambiguous genes (several source genes with near-identical reactomes share the softmax mass), so
with at least 20 anchors the softmax probabilities are then mapped by an isotonic regression
onto the anchors' rank-1 hit rate (``attrs["calibration"]`` ends in ``"+isotonic"``). For an
honest reliability check, fit on one set of anchors and score other genes. Without anchors the
temperature is the spread of the scores and ``attrs["calibration"]`` is ``"none"``.

``combined`` treats the ortholog table as a prior: the probability that a target's partner is
one of its ``k`` table orthologs is ``pi`` (shared by the ``k``), the rest spread over the other
genes; the reactome likelihood ``exp(s / T)`` updates it. ``pi`` is estimated by expectation
maximisation over the genes with a table ortholog unless given. The posterior, like the softmax of
the other methods, is then mapped by the isotonic regression on the anchors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scipy.special import logsumexp
from sklearn.isotonic import IsotonicRegression

from transferome.crossspecies._inputs import one_to_one, ortholog_matrix, profile_features
from transferome.crossspecies._scoring import (
    SIMILARITIES,
    Candidates,
    ScoreSource,
    collect_candidates,
    fit_temperature,
    similarity_features,
)
from transferome.crossspecies.reactome import Reactome, reactome
from transferome.data.schema import Schema
from transferome.errors import DataValidationError

__all__ = ["METHODS", "GeneInput", "map_genes"]

METHODS = ("ortholog", "reactome", "profile", "combined")
GeneInput: TypeAlias = Reactome | AnnData | Sequence[str]
Method = Literal["ortholog", "reactome", "profile", "combined"]
COLUMNS = [
    "target_gene",
    "source_gene",
    "rank",
    "score",
    "similarity",
    "confidence",
    "mutual_best",
    "is_ortholog",
]


def _gene_names(data: GeneInput, role: str) -> pd.Index:
    if isinstance(data, Reactome):
        return pd.Index(data.genes.astype(str))
    if isinstance(data, AnnData):
        return pd.Index(data.var_names.astype(str))
    if isinstance(data, str) or not isinstance(data, Sequence | pd.Index | np.ndarray):
        raise DataValidationError(
            f"{role} must be a Reactome, an AnnData or a sequence of gene names, "
            f"got {type(data).__name__}"
        )
    return pd.Index([str(g) for g in data])


def _as_reactome(data: GeneInput, role: str, schema: Schema | None, layer: str | None) -> Reactome:
    if isinstance(data, Reactome):
        return data
    if isinstance(data, AnnData):
        return reactome(data, schema=schema, layer=layer)
    raise DataValidationError(
        f"{role} must be a Reactome or an AnnData for this method, got {type(data).__name__}"
    )


def _reactome_features(
    source: Reactome, target: Reactome
) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    common = source.measured_pairs().intersection(target.measured_pairs())
    if len(common) < 3:
        raise DataValidationError(
            f"the two reactomes share {len(common)} measured (context, perturbation) pairs; "
            "at least 3 are needed to compare genes (context and perturbation labels must match)"
        )
    return source.values[common].to_numpy(), target.values[common].to_numpy(), common


def _anchor_indices(
    anchors: pd.DataFrame | None,
    ortho: sp.csr_matrix | None,
    source_genes: pd.Index,
    target_genes: pd.Index,
) -> tuple[np.ndarray, np.ndarray, str]:
    if anchors is not None:
        missing = {"source_gene", "target_gene"} - set(anchors.columns)
        if missing:
            raise DataValidationError(
                f"anchors need columns 'source_gene' and 'target_gene'; missing {sorted(missing)}"
            )
        t = target_genes.get_indexer(anchors["target_gene"].astype(str))
        s = source_genes.get_indexer(anchors["source_gene"].astype(str))
        keep = (t >= 0) & (s >= 0)
        return t[keep], s[keep], "anchors"
    if ortho is not None:
        t, s = one_to_one(ortho)
        return t, s, "orthologs"
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), "none"


def _estimate_prior(
    block: np.ndarray, ortho_rows: sp.csr_matrix, n_valid: int, iterations: int = 200
) -> float:
    """EM estimate of the probability that a gene's partner is among its table orthologs."""
    mask = ortho_rows.toarray() > 0
    k = mask.sum(axis=1)
    inside = logsumexp(np.where(mask, block, -np.inf), axis=1)
    outside = logsumexp(np.where(mask, -np.inf, block), axis=1)
    keep = np.isfinite(inside) & (k < n_valid)
    inside, outside, k = inside[keep], outside[keep], k[keep]
    if inside.size == 0:
        return 0.5
    pi = 0.5
    for _ in range(iterations):
        a = np.log(pi) - np.log(k) + inside
        b = np.log1p(-pi) - np.log(n_valid - k) + np.where(np.isfinite(outside), outside, -np.inf)
        mass = np.exp(a - np.logaddexp(a, b))
        new = float(np.clip(mass.mean(), 1e-6, 1 - 1e-6))
        if abs(new - pi) < 1e-8:
            break
        pi = new
    return pi


def _tidy(
    candidates: Candidates,
    score: np.ndarray,
    confidence: np.ndarray,
    similarity: np.ndarray,
    *,
    source_genes: pd.Index,
    target_genes: pd.Index,
    ortho: sp.csr_matrix | None,
) -> pd.DataFrame:
    n_target, k = candidates.index.shape
    rows_t = np.repeat(np.arange(n_target), k)
    rank = np.tile(np.arange(1, k + 1), n_target)
    idx = candidates.index.ravel()
    present = idx >= 0
    has_any = np.asarray((candidates.index >= 0).any(axis=1))
    keep = present | ((rank == 1) & ~has_any[rows_t])
    rows_t, rank, idx = rows_t[keep], rank[keep], idx[keep]
    found = idx >= 0
    safe = np.where(found, idx, 0)
    frame = pd.DataFrame(
        {
            "target_gene": target_genes.to_numpy()[rows_t],
            "source_gene": np.where(found, source_genes.to_numpy()[safe], None),
            "rank": pd.array(np.where(found, rank, 0), dtype="Int64"),
            "score": np.where(found, score.ravel()[keep], np.nan),
            "similarity": np.where(found, similarity.ravel()[keep], np.nan),
            "confidence": np.where(found, confidence.ravel()[keep], np.nan),
            "mutual_best": found & (rank == 1) & (candidates.source_best[safe] == rows_t),
            "is_ortholog": False,
        }
    )
    frame.loc[~found, "rank"] = pd.NA
    if ortho is not None:
        frame["is_ortholog"] = found & (np.asarray(ortho[rows_t, safe]).ravel() > 0)
    return frame[COLUMNS]


_MIN_ISOTONIC = 20


def _isotonic(
    confidence: np.ndarray, index: np.ndarray, t_idx: np.ndarray, s_idx: np.ndarray
) -> np.ndarray:
    """Map softmax confidences to the anchors' rank-1 hit rate (monotone, in [0, 1])."""
    top_p = confidence[t_idx, 0]
    hit = (index[t_idx, 0] == s_idx).astype(float)
    keep = np.isfinite(top_p)
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(top_p[keep], hit[keep])
    out = np.full_like(confidence, np.nan)
    finite = np.isfinite(confidence)
    out[finite] = model.predict(confidence[finite])
    return out


def map_genes(  # noqa: PLR0913 - the two species, then keyword-only options
    source: GeneInput,
    target: GeneInput,
    *,
    method: Method = "reactome",
    similarity: Literal["pearson", "spearman", "cosine", "euclidean"] = "pearson",
    orthologs: pd.DataFrame | None = None,
    ortholog_columns: tuple[str, str] | None = None,
    ortholog_score: str | None = None,
    anchors: pd.DataFrame | None = None,
    prior: float | None = None,
    top_k: int = 5,
    schema: Schema | None = None,
    layer: str | None = None,
    min_mean: float = 0.0,
    max_anchors: int = 2000,
    random_state: int = 0,
    chunk_size: int = 1024,
) -> pd.DataFrame:
    """Map each target gene to its ranked source candidates.

    Parameters
    ----------
    source, target
        The two species. ``reactome`` and ``combined``: :class:`Reactome` results or AnnData
        (their reactome is computed with ``schema`` and ``layer``). ``profile``: AnnData with
        log values and a context column (``schema.context_key``) whose labels match across the
        species (e.g. cell types). ``ortholog``: any of these, or a sequence of gene names.
    method
        ``ortholog`` (the table), ``reactome`` (similarity of reactome vectors over the pairs
        measured in both species), ``profile`` (similarity of mean expression over matched
        contexts) or ``combined`` (reactome evidence with the table as a prior).
    similarity
        ``pearson``, ``spearman``, ``cosine`` or ``euclidean`` (``reactome``, ``profile``,
        ``combined``). ``euclidean`` compares levels as well as shapes (``similarity`` is then
        minus the distance), which suits ``profile`` where few contexts are matched.
    orthologs
        Ortholog table (one row per pair); required by ``ortholog`` and ``combined``, used as
        calibration anchors by the other methods when given.
    ortholog_columns
        ``(source column, target column)`` of ``orthologs``; detected from the gene names
        when omitted.
    ortholog_score
        Column of positive pair scores (e.g. sequence identity) that ranks a gene's several
        orthologs in method ``ortholog``; all pairs score 1 when omitted.
    anchors
        Trusted pairs (columns ``source_gene``, ``target_gene``) to fit the confidence
        temperature; default: the one-to-one rows of ``orthologs``.
    prior
        ``combined`` only: probability that a gene's partner is among its table orthologs;
        estimated by expectation maximisation when omitted.
    top_k
        Candidates kept per target gene.
    schema, layer
        Keys and layer used when AnnData are given.
    min_mean
        ``profile`` only: genes whose mean expression stays below this in every context have
        no partner.
    max_anchors
        At most this many anchors (drawn with ``random_state``) fit the temperature.
    random_state
        Seed of the random draws: the anchors kept under ``max_anchors``, the genes that
        estimate ``prior`` (``combined``), and the genes that set the temperature when there
        is no anchor.
    chunk_size
        Target genes scored at a time (memory is ``chunk_size x n_source``).

    Returns
    -------
    pandas.DataFrame
        Columns ``target_gene, source_gene, rank, score, similarity, confidence, mutual_best,
        is_ortholog``; ``top_k`` rows per target gene at most, ordered by target then rank.
        ``score`` orders the candidates (``combined``: log posterior; ``ortholog``: the table
        score); ``similarity`` is the raw similarity (NaN for ``ortholog``); ``mutual_best``
        marks a rank-1 source whose own best target is this gene. A target gene with no
        candidate (no ortholog, a flat or unmeasured vector) has one row with ``source_gene``
        and ``rank`` missing. ``attrs`` holds ``method``, ``similarity``, ``temperature``,
        ``prior``, ``calibration`` and ``n_anchors``.
    """
    if method not in METHODS:
        raise DataValidationError(f"method must be one of {METHODS}, got {method!r}")
    if similarity not in SIMILARITIES:
        raise DataValidationError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    if top_k < 1:
        raise DataValidationError(f"top_k must be at least 1, got {top_k}")
    if method in ("ortholog", "combined") and orthologs is None:
        raise DataValidationError(f"method {method!r} needs an ortholog table (orthologs=)")
    source_genes = _gene_names(source, "source")
    target_genes = _gene_names(target, "target")
    ortho = None
    if orthologs is not None:
        ortho = ortholog_matrix(
            orthologs, source_genes, target_genes, ortholog_columns, ortholog_score
        )
    if method == "ortholog":
        return _map_orthologs(ortho, source_genes, target_genes, top_k, chunk_size)

    schema = schema or Schema()
    if method == "profile":
        s_raw, t_raw, _ = profile_features(source, target, schema.context_key, layer, min_mean)
    else:
        s_raw, t_raw, _ = _reactome_features(
            _as_reactome(source, "source", schema, layer),
            _as_reactome(target, "target", schema, layer),
        )
    s_feat, s_valid = similarity_features(s_raw, similarity)
    t_feat, t_valid = similarity_features(t_raw, similarity, role="target")

    def similarity_block(rows: np.ndarray) -> np.ndarray:
        block = t_feat[rows] @ s_feat.T
        block[~t_valid[rows]] = -np.inf
        block[:, ~s_valid] = -np.inf
        return block

    sim_source = ScoreSource(len(target_genes), len(source_genes), similarity_block, chunk_size)
    t_idx, s_idx, calibration = _anchor_indices(anchors, ortho, source_genes, target_genes)
    usable = t_valid[t_idx] & s_valid[s_idx]
    t_idx, s_idx = t_idx[usable], s_idx[usable]
    rng = np.random.default_rng(random_state)
    if len(t_idx) > max_anchors:
        pick = rng.choice(len(t_idx), size=max_anchors, replace=False)
        t_idx, s_idx = t_idx[pick], s_idx[pick]
    if len(t_idx) > 0:
        temperature = fit_temperature(similarity_block(t_idx), s_idx)
    else:
        calibration = "none"
        sample = rng.choice(np.flatnonzero(t_valid), size=min(200, int(t_valid.sum())))
        finite = similarity_block(sample)
        temperature = float(np.std(finite[np.isfinite(finite)])) or 1.0

    pi = float("nan")
    score_source = sim_source
    if method == "combined":
        assert ortho is not None  # checked above: combined needs the ortholog table
        n_valid = int(s_valid.sum())
        pattern = ortho.copy()
        pattern.data = np.ones_like(pattern.data)
        pattern = pattern.multiply(s_valid[None, :]).tocsr()
        k = np.asarray(pattern.sum(axis=1)).ravel()
        if prior is None:
            with_orth = np.flatnonzero((k > 0) & t_valid)
            if len(with_orth) > max_anchors:
                with_orth = rng.choice(with_orth, size=max_anchors, replace=False)
            rows = similarity_block(with_orth) / temperature
            pi = _estimate_prior(rows, pattern[with_orth], n_valid)
        else:
            if not 0.0 < prior < 1.0:
                raise DataValidationError(f"prior must lie strictly between 0 and 1, got {prior}")
            pi = float(prior)
        with np.errstate(divide="ignore"):
            log_in = np.log(pi) - np.log(np.maximum(k, 1))
            log_out = np.where(
                k > 0, np.log1p(-pi) - np.log(np.maximum(n_valid - k, 1)), -np.log(n_valid)
            )

        def posterior_block(rows: np.ndarray) -> np.ndarray:
            block = similarity_block(rows) / temperature
            inside = pattern[rows].toarray() > 0
            return block + np.where(inside, log_in[rows, None], log_out[rows, None])

        score_source = ScoreSource(
            len(target_genes), len(source_genes), posterior_block, chunk_size
        )
        candidates = collect_candidates(score_source, top_k, 1.0)
        score = candidates.score - candidates.log_partition[:, None]
        confidence = np.exp(score)
    else:
        candidates = collect_candidates(score_source, top_k, temperature)
        score = candidates.score
        confidence = np.exp(candidates.score / temperature - candidates.log_partition[:, None])
    if len(t_idx) >= _MIN_ISOTONIC:
        confidence = _isotonic(confidence, candidates.index, t_idx, s_idx)
        calibration += "+isotonic"

    safe = np.where(candidates.index >= 0, candidates.index, 0)
    if similarity == "euclidean":
        diff = np.nan_to_num(t_raw)[:, None, :] - np.nan_to_num(s_raw)[safe]
        similarity_values = -np.sqrt((diff**2).sum(axis=2))
    else:
        similarity_values = np.einsum("ij,ikj->ik", t_feat, s_feat[safe])
    frame = _tidy(
        candidates,
        score,
        confidence,
        similarity_values,
        source_genes=source_genes,
        target_genes=target_genes,
        ortho=ortho,
    )
    frame.attrs.update(
        method=method,
        similarity=similarity,
        temperature=temperature,
        prior=pi,
        calibration=calibration,
        n_anchors=len(t_idx),
    )
    return frame


def _map_orthologs(
    ortho: sp.csr_matrix, source_genes: pd.Index, target_genes: pd.Index, top_k: int, chunk: int
) -> pd.DataFrame:
    def block(rows: np.ndarray) -> np.ndarray:
        dense = ortho[rows].toarray()
        return np.where(dense > 0, dense, -np.inf)

    candidates = collect_candidates(
        ScoreSource(len(target_genes), len(source_genes), block, chunk), top_k, 1.0
    )
    totals = np.asarray(ortho.sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(candidates.index >= 0, candidates.score / totals[:, None], np.nan)
    similarity = np.full(candidates.index.shape, np.nan)
    frame = _tidy(
        candidates,
        candidates.score,
        confidence,
        similarity,
        source_genes=source_genes,
        target_genes=target_genes,
        ortho=ortho,
    )
    frame.attrs.update(
        method="ortholog",
        similarity=None,
        temperature=float("nan"),
        prior=float("nan"),
        calibration="table",
        n_anchors=0,
    )
    return frame

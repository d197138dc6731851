"""Imputation benchmark: hide observed entries, fill them back, score the filled values.

:func:`hide_entries` draws the entries to hide from a matrix (random entries, or whole genes
of a random subset of samples), never hiding an entry that is already missing. The baselines
take a matrix with ``NaN`` for every missing entry and return it filled:
:func:`impute_gene_mean` (each gene's observed mean), :func:`impute_knn` (mean of the ``k``
nearest samples, scikit-learn's ``KNNImputer``) and :func:`impute_soft` (soft-impute,
Mazumder, Hastie & Tibshirani 2010). :func:`impute_fe` runs
:class:`~transferome.models.fe.estimator.FactorizedEmbedding` through the same path (a
mask-aware fit on the observed entries, then ``impute``). :func:`imputation_scores` scores a
filled matrix on the hidden entries only.

Typical use::

    hidden = hide_entries(np.isfinite(x), 0.3, random_state=0)
    filled = impute_soft(np.where(hidden, np.nan, x))
    imputation_scores(x, filled, hidden)   # {"nrmse": ..., "pearson": ..., ...}
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from transferome.errors import DataValidationError

__all__ = [
    "hide_entries",
    "imputation_scores",
    "impute_fe",
    "impute_gene_mean",
    "impute_knn",
    "impute_soft",
]

Mode = Literal["entries", "genes"]


# -- hiding entries --------------------------------------------------------------------------
def _observed_of(shape_or_mask: tuple[int, int] | np.ndarray) -> np.ndarray:
    if isinstance(shape_or_mask, tuple):
        if len(shape_or_mask) != 2 or any(int(n) < 1 for n in shape_or_mask):
            raise DataValidationError(
                f"shape must be (n_samples, n_genes) with both >= 1, got {shape_or_mask}"
            )
        return np.ones(tuple(int(n) for n in shape_or_mask), dtype=bool)
    observed = np.asarray(shape_or_mask)
    if observed.dtype != bool or observed.ndim != 2:
        raise DataValidationError(
            "shape_or_mask must be a (n_samples, n_genes) tuple or a 2-D boolean mask of "
            f"observed entries, got {observed.dtype} array of shape {observed.shape}"
        )
    return observed


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or not 0.0 < value < 1.0:
        raise DataValidationError(f"{name} must be in (0, 1), got {value}")
    return value


def hide_entries(
    shape_or_mask: tuple[int, int] | np.ndarray,
    fraction: float,
    *,
    mode: Mode = "entries",
    gene_fraction_of_samples: float = 0.5,
    random_state: int = 0,
) -> np.ndarray:
    """Entries to hide from a matrix for an imputation benchmark.

    Parameters
    ----------
    shape_or_mask
        ``(n_samples, n_genes)`` for a fully observed matrix, or a boolean mask of its
        observed entries (``True`` = observed, e.g. ``np.isfinite(x)``). Entries already
        missing are never hidden.
    fraction
        Fraction of the observed entries to hide, in ``(0, 1)``.
    mode
        ``"entries"``: exactly ``round(fraction * n_observed)`` observed entries drawn
        uniformly at random.

        ``"genes"``: a panel design. A random subset of ``round(gene_fraction_of_samples *
        n_samples)`` samples loses one shared random set of ``round(fraction * n_genes /
        gene_fraction_of_samples)`` genes entirely (every observed entry of those genes in
        those samples is hidden); the other samples keep every gene. For a fully observed
        matrix about ``fraction`` of the entries are hidden (exactly, up to the rounding of
        the two counts); with entries already missing, the share follows theirs.
    gene_fraction_of_samples
        ``"genes"`` mode only: fraction of the samples that lose genes, in ``(0, 1)``; it
        must be at least ``fraction`` (a sample cannot lose more than all its genes).
    random_state
        Seed.

    Returns
    -------
    numpy.ndarray
        Boolean ``(n_samples, n_genes)`` mask, ``True`` = hidden. Hidden entries are always
        observed ones.

    Raises
    ------
    DataValidationError
        A fraction outside ``(0, 1)``, a mask that is not a 2-D boolean array, an unknown
        ``mode``, or a draw that would hide no entry or every observed entry of a gene in
        every sample.
    """
    observed = _observed_of(shape_or_mask)
    fraction = _check_fraction("fraction", fraction)
    rng = np.random.default_rng(random_state)
    n_samples, n_genes = observed.shape
    hidden = np.zeros_like(observed)
    if mode == "entries":
        where = np.flatnonzero(observed)
        count = round(fraction * len(where))
        if count == 0:
            raise DataValidationError(
                f"fraction={fraction} of {len(where)} observed entries hides no entry"
            )
        hidden.flat[rng.choice(where, size=count, replace=False)] = True
        return hidden
    if mode != "genes":
        raise DataValidationError(f"mode={mode!r}; expected 'entries' or 'genes'")
    share = _check_fraction("gene_fraction_of_samples", gene_fraction_of_samples)
    if fraction > share:
        raise DataValidationError(
            f"fraction={fraction} > gene_fraction_of_samples={share}: the chosen samples would "
            "have to lose more than all their genes; raise gene_fraction_of_samples"
        )
    n_chosen = round(share * n_samples)
    n_lost = round(fraction * n_genes / share)
    if n_chosen == 0 or n_lost == 0:
        raise DataValidationError(
            f"mode='genes' with fraction={fraction}, gene_fraction_of_samples={share} hides "
            f"{n_lost} genes in {n_chosen} of {n_samples} samples: nothing to hide"
        )
    if n_chosen == n_samples and n_lost == n_genes:
        raise DataValidationError("mode='genes' would hide every entry")
    samples = rng.choice(n_samples, size=n_chosen, replace=False)
    genes = rng.choice(n_genes, size=n_lost, replace=False)
    hidden[np.ix_(samples, genes)] = True
    return hidden & observed


# -- baselines -------------------------------------------------------------------------------
def _as_values(values: np.ndarray, what: str = "values") -> np.ndarray:
    x = np.array(values, dtype=np.float64)
    if x.ndim != 2:
        raise DataValidationError(f"{what} must be a 2-D samples x genes array, got {x.shape}")
    if np.isinf(x).any():
        raise DataValidationError(f"{what} has {int(np.isinf(x).sum())} infinite entries")
    observed = ~np.isnan(x)
    empty = np.flatnonzero(~observed.any(axis=0))
    if len(empty):
        raise DataValidationError(
            f"{len(empty)} genes (columns {empty[:10].tolist()}) have no observed value; "
            "drop them before imputing"
        )
    return x


def _gene_means(x: np.ndarray) -> np.ndarray:
    observed = ~np.isnan(x)
    return np.where(observed, x, 0.0).sum(axis=0) / observed.sum(axis=0)


def impute_gene_mean(values: np.ndarray) -> np.ndarray:
    """Fill every missing (``NaN``) entry with its gene's (column's) observed mean.

    Parameters
    ----------
    values
        Samples x genes, ``NaN`` for missing entries; every gene needs one observed value.

    Returns
    -------
    numpy.ndarray
        Filled float64 copy; observed entries unchanged.
    """
    x = _as_values(values)
    return np.where(np.isnan(x), _gene_means(x)[None, :], x)


def impute_knn(values: np.ndarray, *, k: int = 10) -> np.ndarray:
    """Fill missing entries with the mean of the ``k`` nearest samples that observe the gene.

    Sample distances are the NaN-aware Euclidean distances over the genes both samples
    observe (:class:`sklearn.impute.KNNImputer`, uniform weights).

    Parameters
    ----------
    values
        Samples x genes, ``NaN`` for missing entries.
    k
        Number of neighbours (>= 1).

    Returns
    -------
    numpy.ndarray
        Filled float64 copy; observed entries unchanged.
    """
    from sklearn.impute import KNNImputer

    if int(k) < 1:
        raise DataValidationError(f"k must be >= 1, got {k}")
    x = _as_values(values)
    filled = KNNImputer(n_neighbors=int(k), keep_empty_features=True).fit_transform(x)
    return np.where(np.isnan(x), filled, x)


def _top_svd(
    x: np.ndarray, rank: int, start: np.ndarray | None, rng: np.random.Generator, n_power: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leading singular triplets of ``x``: exact SVD, or randomized subspace iteration.

    With subspace iteration the triplets of an oversampled basis (``rank + 10`` columns,
    started from ``start`` when given) come back; the caller keeps the leading ones.
    """
    if rank >= 0.5 * min(x.shape):
        return np.linalg.svd(x, full_matrices=False)
    basis = rng.normal(size=(x.shape[1], rank + 10)) if start is None else start
    for _ in range(n_power):
        q, _ = np.linalg.qr(x @ basis)
        basis, _ = np.linalg.qr(x.T @ q)
    q, _ = np.linalg.qr(x @ basis)
    u, s, vt = np.linalg.svd(q.T @ x, full_matrices=False)
    return q @ u, s, vt


def impute_soft(
    values: np.ndarray,
    *,
    shrinkage: float = 0.05,
    rank: int | None = 100,
    max_iter: int = 100,
    tol: float = 1e-4,
    random_state: int = 0,
) -> np.ndarray:
    """Soft-impute: iterative SVD with soft-thresholded singular values (Mazumder et al. 2010).

    Genes are centred on their observed means. Starting from ``Z = 0``, each iteration
    fills the missing entries of the centred matrix with ``Z`` and replaces ``Z`` by
    ``U max(S - lambda, 0) V^T`` from the SVD of the filled matrix, until the relative
    change ``||Z_new - Z||_F^2 / ||Z||_F^2`` falls below ``tol``. The filled matrix is the
    observed values plus ``Z`` (and the gene means) on the missing entries.

    Parameters
    ----------
    values
        Samples x genes, ``NaN`` for missing entries.
    shrinkage
        ``lambda`` as a fraction of the largest singular value of the centred matrix with
        its missing entries set to 0 (the smallest ``lambda`` that gives ``Z = 0``).
    rank
        Cap on the rank of ``Z``: only the leading ``rank`` singular triplets are computed
        (warm-started subspace iteration), which bounds the cost of an iteration on large
        matrices; ``None``: full SVD.
    max_iter, tol
        Iteration cap and convergence threshold.
    random_state
        Seed of the subspace iteration's starting basis.

    Returns
    -------
    numpy.ndarray
        Filled float64 copy; observed entries unchanged.
    """
    if not 0.0 <= float(shrinkage) < 1.0:
        raise DataValidationError(f"shrinkage must be in [0, 1), got {shrinkage}")
    if rank is not None and int(rank) < 1:
        raise DataValidationError(f"rank must be >= 1 or None, got {rank}")
    if int(max_iter) < 1 or not float(tol) > 0:
        raise DataValidationError(f"need max_iter >= 1 and tol > 0, got {max_iter}, {tol}")
    x = _as_values(values)
    missing = np.isnan(x)
    means = _gene_means(x)
    centred = np.where(missing, 0.0, x - means[None, :])
    if not missing.any():
        return x
    k = min(x.shape) if rank is None else min(int(rank), min(x.shape))
    rng = np.random.default_rng(random_state)
    lam = float(shrinkage) * float(_top_svd(centred, 1, None, rng, 8)[1][0])
    z = np.zeros_like(centred)
    start = None
    for _ in range(int(max_iter)):
        u, s, vt = _top_svd(np.where(missing, z, centred), k, start, rng, 4 if start is None else 0)
        s = np.maximum(s[:k] - lam, 0.0)
        keep = np.flatnonzero(s > 0)
        new = (u[:, keep] * s[keep]) @ vt[keep]
        start = vt.T if len(vt) > k else None  # warm start of the next subspace iteration
        change = float(np.sum((new - z) ** 2)) / max(float(np.sum(z**2)), 1e-12)
        z = new
        if change < float(tol):
            break
    return np.where(missing, z + means[None, :], x)


def impute_fe(
    values: np.ndarray,
    *,
    random_state: int = 0,
    **params: Any,
) -> np.ndarray:
    """Fill missing entries with a :class:`~transferome.models.fe.estimator.FactorizedEmbedding`.

    The model is fitted on the observed entries only (``fit(..., factors=(), mask=...)``) and
    its :meth:`~transferome.models.fe.estimator.FactorizedEmbedding.impute` predicts the rest.

    Parameters
    ----------
    values
        Samples x genes, ``NaN`` for missing entries.
    random_state
        Seed of the model.
    **params
        Other constructor arguments of ``FactorizedEmbedding`` (sizes, epochs, ``lr``,
        ``early_stopping``...).

    Returns
    -------
    numpy.ndarray
        Filled float64 copy; observed entries unchanged.
    """
    import pandas as pd
    from anndata import AnnData

    from transferome.models.fe.estimator import FactorizedEmbedding

    x = _as_values(values)
    observed = ~np.isnan(x)
    adata = AnnData(
        X=np.where(observed, x, 0.0).astype(np.float32),
        obs=pd.DataFrame(index=[f"s{i}" for i in range(x.shape[0])]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(x.shape[1])]),
    )
    model = FactorizedEmbedding(random_state=random_state, **params)
    model.fit(adata, factors=(), mask=observed)
    filled = np.asarray(model.impute(adata, mask=observed).X, dtype=np.float64)
    return np.where(observed, x, filled)


# -- scores ----------------------------------------------------------------------------------
def imputation_scores(
    truth: np.ndarray, filled: np.ndarray, hidden: np.ndarray, *, min_per_gene: int = 5
) -> dict[str, float]:
    """Scores of a filled matrix on the hidden entries.

    Parameters
    ----------
    truth
        The true values (entries outside ``hidden`` are never read, so they may be ``NaN``).
    filled
        The imputed matrix, same shape.
    hidden
        Boolean mask of the scored entries (those hidden before imputing).
    min_per_gene
        Genes with fewer hidden entries are left out of the per-gene correlation.

    Returns
    -------
    dict
        ``nrmse``: root mean squared error over the hidden entries divided by the standard
        deviation of their true values (1 for a constant guess at their mean); ``rmse``;
        ``pearson``: correlation of filled and true values over all hidden entries;
        ``gene_pearson``: median over genes of the same correlation within each gene (NaN
        when no gene has ``min_per_gene`` hidden entries of non-constant values); ``n``: the
        number of hidden entries.

    Raises
    ------
    DataValidationError
        Shapes differ, ``hidden`` is not boolean or empty, or a hidden entry of ``truth``
        or ``filled`` is not finite.
    """
    truth = np.asarray(truth, dtype=np.float64)
    filled = np.asarray(filled, dtype=np.float64)
    hidden = np.asarray(hidden)
    if hidden.dtype != bool:
        raise DataValidationError(f"hidden must be a boolean mask, got {hidden.dtype}")
    if not truth.shape == filled.shape == hidden.shape:
        raise DataValidationError(
            f"truth {truth.shape}, filled {filled.shape} and hidden {hidden.shape} must have "
            "the same shape"
        )
    if not hidden.any():
        raise DataValidationError("hidden marks no entry; nothing to score")
    t, f = truth[hidden], filled[hidden]
    for name, v in (("truth", t), ("filled", f)):
        if not np.isfinite(v).all():
            raise DataValidationError(
                f"{int((~np.isfinite(v)).sum())} hidden entries of {name} are NaN or infinite"
            )
    rmse = float(np.sqrt(np.mean((f - t) ** 2)))
    sd = float(t.std())
    pearson = float(np.corrcoef(t, f)[0, 1]) if np.ptp(t) > 0 and np.ptp(f) > 0 else float("nan")
    per_gene = []
    for j in np.flatnonzero(hidden.sum(axis=0) >= int(min_per_gene)):
        rows = hidden[:, j]
        tj, fj = truth[rows, j], filled[rows, j]
        if np.ptp(tj) > 0 and np.ptp(fj) > 0:
            per_gene.append(np.corrcoef(tj, fj)[0, 1])
    return {
        "nrmse": rmse / sd if sd > 0 else float("nan"),
        "rmse": rmse,
        "pearson": pearson,
        "gene_pearson": float(np.median(per_gene)) if per_gene else float("nan"),
        "n": int(hidden.sum()),
    }

"""Alternating ridge least squares for :class:`~transferome.models.LinearBaseline`.

The data are a (contexts x perturbations x genes) tensor of changes ``R`` with an observation
mask ``M``; the model is ``m + a_c + b_p + A_c . B_p`` per gene.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["fit_effects", "predict_cells", "select_rank_penalty"]

Effects = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def fit_effects(
    tensor: np.ndarray,
    mask: np.ndarray,
    *,
    rank: int,
    penalty: float,
    n_iter: int,
    seed: int,
    tol: float = 1e-6,
) -> Effects:
    """Fit ``(m, a, b, A, B)`` by block coordinate descent (each block an exact ridge solve).

    Parameters
    ----------
    tensor
        ``(C, P, G)`` changes; unobserved cells are ignored.
    mask
        ``(C, P)`` 1 where observed.
    rank, penalty, n_iter, seed
        Interaction rank, ridge penalty, maximum sweeps, seed of the initial context factors.
    tol
        Without interaction, stop when no effect moves by more than ``tol`` times the
        largest change in ``tensor`` (plus one).
    """
    n_c, n_p, n_g = tensor.shape
    weights = mask[:, :, None]
    n_per_c, n_per_p = mask.sum(axis=1), mask.sum(axis=0)
    m = np.zeros(n_g)
    a = np.zeros((n_c, n_g))
    b = np.zeros((n_p, n_g))
    rng = np.random.default_rng(seed)
    factors_c = rng.normal(scale=0.1, size=(n_c, rank))
    factors_p = np.zeros((n_p, rank, n_g))
    eye = np.eye(rank)
    scale = tol * (1.0 + float(np.abs(tensor).max()))
    for _ in range(n_iter):
        inter = np.einsum("ck,pkg->cpg", factors_c, factors_p) if rank else 0.0
        base = (tensor - inter) * weights
        previous = (m, a, b)
        m = (base - weights * (a[:, None] + b[None])).sum(axis=(0, 1)) / mask.sum()
        a = (base.sum(axis=1) - n_per_c[:, None] * m - mask @ b) / (n_per_c + penalty)[:, None]
        b = (base.sum(axis=0) - n_per_p[:, None] * m - mask.T @ a) / (n_per_p + penalty)[:, None]
        moved = max(
            float(np.abs(new - old).max()) for new, old in zip((m, a, b), previous, strict=True)
        )
        if not rank:
            if moved < scale:
                break
            continue
        resid = (tensor - m - a[:, None] - b[None]) * weights
        lhs = np.einsum("cp,ck,cl->pkl", mask, factors_c, factors_c) + penalty * eye
        rhs = np.einsum("ck,cpg->pkg", factors_c, resid)
        factors_p = np.linalg.solve(lhs, rhs)
        lhs = np.einsum("cp,pkg,plg->ckl", mask, factors_p, factors_p, optimize=True)
        rhs = np.einsum("pkg,cpg->ck", factors_p, resid, optimize=True)
        factors_c = np.linalg.solve(lhs + penalty * eye, rhs[:, :, None])[:, :, 0]
    return m, a, b, factors_c, factors_p


def predict_cells(effects: Effects, cells: Sequence[tuple[int, int]]) -> np.ndarray:
    """Predicted changes of (context, perturbation) positions, one row each."""
    m, a, b, factors_c, factors_p = effects
    return np.vstack([m + a[c] + b[p] + factors_c[c] @ factors_p[p] for c, p in cells])


def _validation_cells(mask: np.ndarray, fraction: float, rng: np.random.Generator) -> list:
    """Observed cells to hold out, each leaving its perturbation observed elsewhere."""
    observed = [tuple(map(int, cell)) for cell in np.argwhere(mask > 0)]
    target = max(1, round(fraction * len(observed)))
    remaining = mask.sum(axis=0).copy()
    chosen: list[tuple[int, int]] = []
    for k in rng.permutation(len(observed)):
        if len(chosen) >= target:
            break
        c, p = observed[k]
        if remaining[p] >= 2:
            chosen.append((c, p))
            remaining[p] -= 1
    return chosen


def select_rank_penalty(
    tensor: np.ndarray,
    mask: np.ndarray,
    *,
    ranks: Sequence[int],
    penalties: Sequence[float],
    n_iter: int,
    val_fraction: float,
    seed: int,
) -> tuple[int, float, dict[str, float]]:
    """Choose (rank, penalty) by the squared error on held-out observed cells.

    Returns the chosen pair and the validation error of every candidate (keys
    ``"rank=R penalty=P"``). Without a cell to hold out (each perturbation seen once, or
    ``val_fraction`` 0) the smallest rank and the middle penalty are used and the scores are
    empty.
    """
    rng = np.random.default_rng(seed)
    cells = _validation_cells(mask, val_fraction, rng) if val_fraction > 0 else []
    ordered = sorted(penalties)
    if not cells:
        return min(ranks), float(ordered[len(ordered) // 2]), {}
    inner = mask.copy()
    for c, p in cells:
        inner[c, p] = 0.0
    truth = np.vstack([tensor[c, p] for c, p in cells])
    scores: dict[str, float] = {}
    grid = [(rank, penalty) for rank in sorted(set(ranks)) for penalty in ordered]
    errors: list[float] = []
    for rank, penalty in grid:
        effects = fit_effects(tensor, inner, rank=rank, penalty=penalty, n_iter=n_iter, seed=seed)
        # a context left without training cells gets zero effects from the ridge solves
        error = float(np.mean((predict_cells(effects, cells) - truth) ** 2))
        scores[f"rank={rank} penalty={penalty:g}"] = error
        errors.append(error)
    _, rank, penalty = min((e, r, p) for (r, p), e in zip(grid, errors, strict=True))
    return rank, float(penalty), scores

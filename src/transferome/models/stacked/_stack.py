"""The stack of :class:`~transferome.models.stacked.estimator.StackedTransfer`.

Ridge coefficients of the base predictors over the pseudo-targets, their out-of-fold error
against that of each single predictor, and the choice between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transferome.errors import DataValidationError

__all__ = ["Stack", "fit_stack", "solve"]


@dataclass(frozen=True)
class Stack:
    """A fitted stack and the rows it was fitted on."""

    coefficients: np.ndarray
    """Coefficient of each base predictor."""
    choice: str
    """``stacked``, or the single predictor used instead (its coefficient 1, the others 0)."""
    errors: dict[str, float]
    """Out-of-fold mean relative squared error of the stack and of each single predictor."""
    oof: np.ndarray
    """Out-of-fold prediction of every row (of the chosen predictor), weighted as the rows."""
    groups: np.ndarray
    """The pseudo-target of every row."""


def solve(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Solve for the ridge coefficients of ``y`` on ``x``.

    The penalty is relative to the mean diagonal of the normal equations.
    """
    gram = x.T @ x
    scale = float(np.mean(np.diag(gram))) or 1.0
    return np.linalg.solve(gram + float(ridge) * scale * np.eye(gram.shape[0]), x.T @ y)


def fit_stack(
    features: list[np.ndarray],
    truths: list[np.ndarray],
    *,
    predictors: Sequence[str],
    singles: Sequence[str],
    ridge: float,
    n_folds: int,
    random_state: int,
) -> Stack:
    """Fit the stack of the pseudo-targets' base predictions on their changes.

    ``features`` (genes x ``predictors`` each) on ``truths``; the best of ``singles`` alone
    where the stack's out-of-fold error is not lower.
    """
    rows_x, rows_y, group_of = [], [], []
    for k, (f, y) in enumerate(zip(features, truths, strict=True)):
        ok = np.isfinite(y)
        energy = float(np.sum(y[ok] ** 2))
        if not ok.any() or energy == 0:
            continue
        weight = 1.0 / np.sqrt(energy)  # every pseudo-target weighs the same
        rows_x.append(f[ok] * weight)
        rows_y.append(y[ok] * weight)
        group_of.append(np.full(int(ok.sum()), k))
    if not rows_x:
        raise DataValidationError("every measured change is zero or unmeasured")
    x, y, groups = np.vstack(rows_x), np.concatenate(rows_y), np.concatenate(group_of)
    rng = np.random.default_rng(random_state)
    fold_of_group = rng.permutation(len(features)) % n_folds
    folds = fold_of_group[groups]
    oof = np.zeros_like(y)
    for fold in range(n_folds):
        test = folds == fold
        if test.any() and (~test).any():
            oof[test] = x[test] @ solve(x[~test], y[~test], ridge)
    # each pseudo-target's rows carry weight 1/|y|, so a sum of squares is a mean of
    # relative errors
    n_groups = len(rows_x)
    errors = {"stacked": float(np.sum((oof - y) ** 2)) / n_groups}
    for name in singles:
        j = list(predictors).index(name)
        errors[name] = float(np.sum((x[:, j] - y) ** 2)) / n_groups
    coefficients = solve(x, y, ridge)
    best_single = min(singles, key=errors.__getitem__)
    if errors["stacked"] >= errors[best_single]:
        j = list(predictors).index(best_single)
        coefficients = np.zeros(len(predictors))
        coefficients[j] = 1.0
        return Stack(coefficients, best_single, errors, x[:, j], groups)
    return Stack(coefficients, "stacked", errors, oof, groups)

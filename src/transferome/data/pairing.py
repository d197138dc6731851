"""Training pairs for XTransfer (XTransferCDR): two perturbations, one context, and controls.

The paper trains on pairs of perturbed profiles ``(X_a, X_b)`` taken from the same context
under two different perturbations. Perturbations are split into two groups of about equal
size *at the perturbation level*, so that a pair always joins one perturbation of each group
(never the same perturbation twice, never the same pair in both orders); cells of the two
groups are then drawn within each context until every cell of the larger group is paired.
Each member of a pair also gets a control cell of the same context, the target of the
control-reconstruction term ``D(S) -> control``.

Contexts with a single perturbation
-----------------------------------
When a context holds only one perturbation besides its controls (Kang PBMC: ``control`` vs
``stimulated`` in each cell type) no cross-perturbation pair exists. Such contexts pair each
perturbed cell with a *control* cell of the same context as the second member, i.e. the
control is treated as the perturbation "nothing" (``P`` of a control cell is learnt like any
other). The cross term then teaches ``D(S_control + P_a) -> X_a``, which is exactly the
prediction the model makes for a new context. A context whose perturbations all fall in one
group of the global split (but which has two or more of them) is split again on its own.

Everything here is torch-free and returns integer index arrays into the observations; the
torch ``Dataset`` that serves the pairs lives in :mod:`transferome.models.xtransfer.estimator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transferome.errors import DataValidationError

__all__ = ["Pairs", "make_pairs", "split_perturbations"]


@dataclass(frozen=True)
class Pairs:
    """Index arrays of training pairs (all of length ``n_pairs``).

    Attributes
    ----------
    a, b
        Observation indices of the two perturbed members of each pair.
    control_a, control_b
        Observation indices of a control cell of the same context for each member.
    degenerate
        True where the context had a single perturbation and ``b`` is a control cell.
    """

    a: np.ndarray
    b: np.ndarray
    control_a: np.ndarray
    control_b: np.ndarray
    degenerate: np.ndarray

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def take(self, index: np.ndarray) -> Pairs:
        """Return the pairs at positions ``index``."""
        return Pairs(
            a=self.a[index],
            b=self.b[index],
            control_a=self.control_a[index],
            control_b=self.control_b[index],
            degenerate=self.degenerate[index],
        )


def split_perturbations(
    perturbations: Sequence[str], rng: np.random.Generator
) -> tuple[frozenset[str], frozenset[str]]:
    """Split unique perturbation labels in two groups of ``ceil(n/2)`` and ``floor(n/2)``."""
    labels = np.array(sorted(set(map(str, perturbations))), dtype=object)
    order = rng.permutation(len(labels))
    half = (len(labels) + 1) // 2
    return frozenset(labels[order[:half]]), frozenset(labels[order[half:]])


def _draw_cross(
    first: np.ndarray, second: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pair cells of two groups until every cell of the larger group is used once."""
    n = max(len(first), len(second))

    def cover(cells: np.ndarray) -> np.ndarray:
        repeats = -(-n // len(cells))
        pool = np.concatenate([rng.permutation(cells) for _ in range(repeats)])
        return pool[:n]

    return cover(first), cover(second)


def make_pairs(
    contexts: Sequence[str] | np.ndarray,
    perturbations: Sequence[str] | np.ndarray,
    *,
    control: str = "control",
    random_state: int = 0,
) -> Pairs:
    """Draw the training pairs of the XTransferCDR paper.

    Parameters
    ----------
    contexts, perturbations
        Labels of every observation (same length).
    control
        Label of control observations in ``perturbations``.
    random_state
        Seed of the ``numpy`` generator; the same seed gives the same pairs.

    Returns
    -------
    Pairs
        Index arrays; pairs of one context are contiguous, contexts in sorted order.

    Raises
    ------
    DataValidationError
        Lengths differ, a context with perturbed cells has no control cell, or no context
        has any perturbed cell.
    """
    contexts = np.asarray(contexts, dtype=str)
    perturbations = np.asarray(perturbations, dtype=str)
    if contexts.shape != perturbations.shape or contexts.ndim != 1:
        raise DataValidationError(
            f"contexts and perturbations must be 1-d of the same length, got shapes "
            f"{contexts.shape} and {perturbations.shape}"
        )
    rng = np.random.default_rng(random_state)
    is_control = perturbations == control
    perturbed_labels = perturbations[~is_control]
    if perturbed_labels.size == 0:
        raise DataValidationError(
            f"no perturbed observations: every label is the control {control!r}"
        )
    group_a, _ = split_perturbations(perturbed_labels, rng)

    parts: list[tuple[np.ndarray, ...]] = []
    for context in map(str, np.unique(contexts)):
        in_context = contexts == context
        controls = np.flatnonzero(in_context & is_control)
        treated = np.flatnonzero(in_context & ~is_control)
        if treated.size == 0:
            continue
        if controls.size == 0:
            raise DataValidationError(
                f"context {context!r} has perturbed cells but no {control!r} cell to pair them with"
            )
        labels = perturbations[treated]
        unique = np.unique(labels)
        degenerate = unique.size == 1
        if degenerate:
            first, second = _draw_cross(treated, controls, rng)
        else:
            in_a = np.isin(labels, sorted(group_a))
            if in_a.all() or not in_a.any():
                local_a, _ = split_perturbations(list(unique), rng)
                in_a = np.isin(labels, sorted(local_a))
            first, second = _draw_cross(treated[in_a], treated[~in_a], rng)
        n = first.size
        parts.append(
            (
                first,
                second,
                rng.choice(controls, size=n),
                rng.choice(controls, size=n),
                np.full(n, degenerate),
            )
        )
    a, b, control_a, control_b, flags = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    return Pairs(
        a=a.astype(np.int64),
        b=b.astype(np.int64),
        control_a=control_a.astype(np.int64),
        control_b=control_b.astype(np.int64),
        degenerate=flags.astype(bool),
    )

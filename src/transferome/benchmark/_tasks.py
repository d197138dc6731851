"""Benchmark tasks: each builds the splits of a dataset; a registry lets others add tasks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from anndata import AnnData

from transferome._logging import get_logger
from transferome.data.schema import Schema
from transferome.data.splits import (
    HOLDOUTS,
    Split,
    holdout_combinations,
    leave_one_context_out,
    leave_whole_context_out,
    sample_splits,
)
from transferome.errors import DataValidationError, TransferomeError

__all__ = ["HOLDOUT_TEXT", "TASKS", "Task", "get_task", "register_task"]

_log = get_logger(__name__)
SplitBuilder = Callable[..., list[Split]]

HOLDOUT_TEXT: dict[str, str] = {
    "group": "each split holds out one (context, perturbation) group; the context's other "
    "perturbations stay in training",
    "context": "each split holds out every perturbed group of one context at once (a new "
    "context: donor, cell line, organ); only its controls stay in training",
    "combination": "every combination whose singles are observed alone is held out in all "
    "contexts; the singles stay in training",
}
"""What the splits held out, by the ``holdout`` label of a :class:`BenchmarkResult`."""


@dataclass(frozen=True)
class Task:
    """A benchmark task.

    Attributes
    ----------
    name
        Short name (``transferome benchmark NAME``).
    description
        One line saying what is held out.
    make_splits
        ``make_splits(adata, *, schema, seed, **options) -> list[Split]``.
    holdout_of
        ``holdout_of(options) -> str``: the label of what the splits hold out under these
        options (a key of :data:`HOLDOUT_TEXT`, or ``""``).
    """

    name: str
    description: str
    make_splits: SplitBuilder
    holdout_of: Callable[[Mapping[str, Any]], str] = lambda options: ""


def _transfer_splits(
    adata: AnnData,
    *,
    schema: Schema,
    seed: int = 0,
    holdout: str = "group",
    contexts: Any = None,
    perturbations: Any = None,
    max_splits: int | None = None,
) -> list[Split]:
    """Build the splits of the transfer task.

    Parameters
    ----------
    adata
        The observations to split.
    schema
        The obs keys.
    seed
        Seed of the split builder and of the ``max_splits`` sample.
    holdout
        ``"group"``: one split per (context, perturbation) group, the context's other
        perturbations staying in training; ``"context"``: one split per context, all its
        perturbed groups held out at once (its controls kept), as for a new donor.
    contexts, perturbations
        Restrict the held-out contexts / perturbations (``None``: all that can be predicted,
        i.e. whose perturbation is measured in another context that has controls).
    max_splits
        Keep at most this many splits, a sample drawn by ``seed`` (``None``: all).
    """
    if holdout not in HOLDOUTS:
        raise DataValidationError(f"holdout must be one of {HOLDOUTS}, got {holdout!r}")
    builder = leave_one_context_out if holdout == "group" else leave_whole_context_out
    splits = list(
        builder(adata, schema=schema, perturbations=perturbations, contexts=contexts, seed=seed)
    )
    if not splits:
        raise DataValidationError(
            f"no perturbation in obs[{schema.perturbation_key!r}] is measured in two or more "
            f"contexts of obs[{schema.context_key!r}] that have controls"
            + (" among the chosen contexts / perturbations" if contexts or perturbations else "")
            + "; the transfer task has nothing to hold out"
        )
    kept = sample_splits(splits, max_splits, seed)
    if len(kept) < len(splits):
        _log.info("transfer: %d of %d splits, drawn with seed %d", len(kept), len(splits), seed)
    return kept


def _combination_splits(
    adata: AnnData, *, schema: Schema, seed: int = 0, combinations: Any = None
) -> list[Split]:
    return [holdout_combinations(adata, combinations, schema=schema, seed=seed)]


TASKS: dict[str, Task] = {}
"""Registered tasks by name."""


def register_task(task: Task) -> Task:
    """Add ``task`` to :data:`TASKS` (an existing name is an error) and return it."""
    if task.name in TASKS:
        raise TransferomeError(f"a benchmark task named {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """Return the task registered under ``name``."""
    if name not in TASKS:
        raise TransferomeError(f"unknown benchmark task {name!r}; available: {sorted(TASKS)}")
    return TASKS[name]


register_task(
    Task(
        "transfer",
        "leave one context out: each (context, perturbation) group whose perturbation is "
        "measured in two or more contexts is held out in turn (holdout='group', the context's "
        "other perturbations stay in training) or every such group of a context at once "
        "(holdout='context', a new context), and predicted from the context's controls",
        _transfer_splits,
        lambda options: str(options.get("holdout", "group")),
    )
)
register_task(
    Task(
        "combination",
        "hold out every combination whose singles are observed alone, in all contexts; "
        "predict it from the singles",
        _combination_splits,
        lambda options: "combination",
    )
)

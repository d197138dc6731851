"""Benchmark tasks: each builds the splits of a dataset; a registry lets others add tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anndata import AnnData

from transferome.data.schema import Schema
from transferome.data.splits import Split, holdout_combinations, leave_one_context_out
from transferome.errors import DataValidationError, TransferomeError

__all__ = ["TASKS", "Task", "get_task", "register_task"]

SplitBuilder = Callable[..., list[Split]]


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
    """

    name: str
    description: str
    make_splits: SplitBuilder


def _transfer_splits(
    adata: AnnData, *, schema: Schema, seed: int = 0, perturbations: Any = None
) -> list[Split]:
    splits = list(
        leave_one_context_out(adata, schema=schema, perturbations=perturbations, seed=seed)
    )
    if not splits:
        raise DataValidationError(
            f"no perturbation in obs[{schema.perturbation_key!r}] is measured in two or more "
            f"contexts of obs[{schema.context_key!r}] that have controls; the transfer task "
            "has nothing to hold out"
        )
    return splits


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
    """The task registered under ``name``."""
    if name not in TASKS:
        raise TransferomeError(f"unknown benchmark task {name!r}; available: {sorted(TASKS)}")
    return TASKS[name]


register_task(
    Task(
        "transfer",
        "leave one context out: each (context, perturbation) group whose perturbation is "
        "measured in two or more contexts is held out in turn and predicted from the context's "
        "controls",
        _transfer_splits,
    )
)
register_task(
    Task(
        "combination",
        "hold out every combination whose singles are observed alone, in all contexts; "
        "predict it from the singles",
        _combination_splits,
    )
)

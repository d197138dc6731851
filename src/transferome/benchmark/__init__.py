"""Benchmark harness: tasks that split a dataset, fit, predict and return tidy tables.

The tasks split a dataset, fit every model and baseline on the training part, predict the
held-out groups and return tidy tables.

Tasks (:data:`TASKS`): ``transfer`` (leave one context out: one (context, perturbation) group
per split, or with ``task_options={"holdout": "context"}`` every group of a context at once) and
``combination`` (hold out combinations whose singles are seen). Add a task with
:func:`register_task`.
"""

from __future__ import annotations

from transferome.benchmark._run import (
    CEILING,
    REFERENCE_ROWS,
    TRUTH,
    BenchmarkResult,
    run_task,
    with_zero_controls,
)
from transferome.benchmark._tasks import HOLDOUT_TEXT, TASKS, Task, get_task, register_task

__all__ = [
    "CEILING",
    "HOLDOUT_TEXT",
    "REFERENCE_ROWS",
    "TASKS",
    "TRUTH",
    "BenchmarkResult",
    "Task",
    "get_task",
    "register_task",
    "run_task",
    "with_zero_controls",
]

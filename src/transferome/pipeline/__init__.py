"""``transferome run``: the whole project on one dataset, from a YAML configuration.

:func:`load_config` / :func:`validate_config` check a configuration in full before any
training; :func:`default_config` is the built-in run on the simulated atlas;
:func:`run_pipeline` runs every task and writes tables, figures, models and the HTML report.
"""

from __future__ import annotations

from transferome.pipeline.config import (
    ConfigError,
    RunConfig,
    default_config,
    load_config,
    validate_config,
)
from transferome.pipeline.progress import Progress
from transferome.pipeline.run import RunResult, run_pipeline, versions
from transferome.pipeline.stages import STAGES, Stage, StageResult

__all__ = [
    "STAGES",
    "ConfigError",
    "Progress",
    "RunConfig",
    "RunResult",
    "Stage",
    "StageResult",
    "default_config",
    "load_config",
    "run_pipeline",
    "validate_config",
    "versions",
]

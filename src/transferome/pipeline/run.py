"""``run_pipeline``: every configured stage, then tables, figures, models and the report.

The results are written into a temporary sibling of the output folder, renamed into place only
when everything succeeded: an interrupted run (an error, Ctrl-C) leaves no half-written results
under the output name. An existing output folder is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from transferome._logging import get_logger
from transferome.data import atomic_path, atomic_write_text, make_temporary_folder, spreadsheet_safe
from transferome.pipeline.config import RunConfig
from transferome.pipeline.progress import Progress, estimate_seconds
from transferome.pipeline.stages import RUN_ORDER, STAGES, RunContext, StageResult, data_nouns

__all__ = ["RunResult", "prepare_output", "run_pipeline", "versions"]

_log = get_logger(__name__)


@dataclass
class RunResult:
    """What a run produced.

    Attributes
    ----------
    out
        The output folder.
    stages
        Stage name -> :class:`~transferome.pipeline.stages.StageResult`, in the order of
        the report (:data:`~transferome.pipeline.stages.RUN_ORDER`, then the others).
    skipped
        Stage name -> why it did not run.
    timings
        ``stage, estimate_s, seconds, cpu_s`` (``cpu_s``: CPU time of this process, all its
        threads; on a shared machine it says more about the cost than ``seconds``).
    """

    out: Path
    stages: dict[str, StageResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)


def versions() -> dict[str, str]:
    """Versions of Python, transferome and the libraries the results depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in (
        "transferome",
        "numpy",
        "scipy",
        "pandas",
        "anndata",
        "scanpy",
        "scikit-learn",
        "torch",
        "lightning",
        "umap-learn",
        "matplotlib",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


#: Files every finished run writes; a folder without them is not replaced by ``overwrite``.
OUTPUT_MARKERS = ("versions.json", "config.yaml")


def _check_replaceable(final: Path) -> None:
    """Refuse to replace a folder that is not the results of a run (a user's own files)."""
    missing = [name for name in OUTPUT_MARKERS if not (final / name).is_file()]
    if missing:
        raise FileExistsError(
            f"{final} exists and does not look like transferome results (no "
            f"{' or '.join(missing)}); --overwrite only replaces a folder written by "
            "`transferome run`: choose another --out or empty it yourself"
        )


def prepare_output(out: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Check the output folder and create the temporary sibling the run writes into.

    Raises
    ------
    FileExistsError
        ``out`` exists (and is not an empty folder) and ``overwrite`` is false, or it is a
        file, or it is a folder of other files than a run's results (``overwrite`` or not).
    """
    final = Path(out)
    if final.exists() and not final.is_dir():
        raise FileExistsError(f"{final} exists and is not a folder")
    if final.is_dir() and any(final.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{final} exists; pass --overwrite to replace its results")
        _check_replaceable(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return make_temporary_folder(final, suffix=".partial")


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back while the results are moved into place.

    A signal then cannot strike between moving the old results aside and renaming the new ones.
    """
    names = ("SIGINT", "SIGTERM", "SIGHUP")
    held = {getattr(signal, n) for n in names if hasattr(signal, n)}
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _publish(tmp: Path, final: Path, *, overwrite: bool = False) -> None:
    """Move the finished folder ``tmp`` to ``final``.

    Without ``overwrite`` the rename itself refuses a non-empty ``final`` (one that appeared
    while the run was working, say from a second run with the same ``--out``); with it, the
    results there are moved aside and removed, but only if they look like a run's results.

    Raises
    ------
    FileExistsError
        ``final`` holds files and ``overwrite`` is false, or it holds other files than results.
    """
    if not overwrite:
        try:
            os.rename(tmp, final)  # atomic; fails on a non-empty folder or a file
        except OSError as exc:
            if not final.exists():
                raise
            raise FileExistsError(
                f"{final} appeared while this run was working (another run with the same "
                "--out?); its content is kept and these results are not written; pass "
                "--overwrite to replace it"
            ) from exc
        return
    old = None
    if final.exists():
        if not final.is_dir():
            raise FileExistsError(f"{final} exists and is not a folder")
        if any(final.iterdir()):
            _check_replaceable(final)
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{time.time_ns()}")
    with _signals_deferred():
        if old is not None:
            os.replace(final, old)
        os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_tables(folder: Path, name: str, result: StageResult) -> None:
    for table, frame in result.tables.items():
        with atomic_path(folder / "tables" / f"{name}_{table}.csv") as tmp:
            spreadsheet_safe(frame).to_csv(tmp, index=False)


def _save_models(folder: Path, name: str, result: StageResult) -> None:
    for label, model in result.models.items():
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)
        model.save(folder / "models" / f"{name}_{safe}")


def run_pipeline(
    config: RunConfig,
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    config_text: str | None = None,
) -> RunResult:
    """Run every task of ``config`` and write the results to ``out``.

    Layout of ``out``: ``report.html``; ``tables/<task>_<table>.csv``;
    ``figures/<name>.png`` and ``.svg``; ``models/<task>_<model>/`` (safetensors + JSON);
    ``config.yaml`` (the configuration used, defaults filled in); ``versions.json``.

    Parameters
    ----------
    config
        A validated configuration (:func:`~transferome.pipeline.load_config`).
    out
        Output folder.
    overwrite
        Replace an existing output folder.
    progress
        Progress display (default: on standard error).
    config_text
        The configuration file as written by the user (kept beside the results).
    """
    import json

    import yaml

    from transferome.pipeline._data import load_data
    from transferome.report import write_report

    final = Path(out)
    tmp = prepare_output(final, overwrite=overwrite)
    progress = progress or Progress()
    try:
        started = time.perf_counter()
        data = load_data(config.data, config.schema())
        combination = None
        if config.combination_data is not None and "combination" in config.tasks:
            combination = load_data(config.combination_data, config.schema(config.combination_data))
        context = RunContext(config, data, combination, progress.step)
        result = RunResult(out=final)
        runnable = []
        for name, options in config.tasks.items():
            reason = STAGES[name].requires(context)
            if reason is not None:
                result.skipped[name] = reason
                _log.warning("task %s skipped: %s", name, reason)
            else:
                runnable.append((name, options))
        plan = [
            (name, estimate_seconds(STAGES[name].fits(context, options)))
            for name, options in runnable
        ]
        progress.plan(plan)
        rows = []
        for index, ((name, options), (_, estimate)) in enumerate(
            zip(runnable, plan, strict=True), start=1
        ):
            steps = len(STAGES[name].fits(context, options))
            title, description = STAGES[name].heading(data_nouns(data))
            progress.start(title, index, len(runnable), estimate, steps)
            cpu = time.process_time()
            stage_result = STAGES[name].run(context, **options)
            stage_result.title, stage_result.description = title, description
            seconds = progress.end()
            result.stages[name] = stage_result
            rows.append((name, estimate, seconds, time.process_time() - cpu))
            _write_tables(tmp, name, stage_result)
            _save_models(tmp, name, stage_result)
        result.timings = pd.DataFrame(rows, columns=["stage", "estimate_s", "seconds", "cpu_s"])
        order = [n for n in RUN_ORDER if n in result.stages]
        order += [n for n in result.stages if n not in order]
        result.stages = {n: result.stages[n] for n in order}
        info = versions()
        atomic_write_text(tmp / "config.yaml", yaml.safe_dump(dict(config.raw), sort_keys=False))
        if config_text is not None:
            atomic_write_text(tmp / "config.original.yaml", config_text)
        atomic_write_text(tmp / "versions.json", json.dumps(info, indent=2) + "\n")
        write_report(
            tmp,
            result,
            config=config,
            data=data,
            combination=combination,
            versions=info,
            seconds=time.perf_counter() - started,
        )
        _publish(tmp, final, overwrite=overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    result.out = final
    return result

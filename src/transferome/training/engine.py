"""``fit_module``: train a plain ``nn.Module`` with Lightning, from a laptop to a cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from transferome._logging import get_logger
from transferome.errors import ModelFileError
from transferome.training.checkpoint import load_module_state, read_checkpoint
from transferome.training.config import TrainingConfig, TrainingConfigError

if TYPE_CHECKING:
    from transferome.training.module import SamplerFactory

__all__ = ["TrainingResult", "fit_module"]

log = get_logger(__name__)

# Lightning messages that say nothing useful about a run the engine set up on purpose.
_IGNORED_WARNINGS = (
    r".*does not have many workers.*",
    r".*num_workers.*",
    r".*GPU available but not used.*",
    r".*LeafSpec.*",
    r".*The number of training batches \(\d+\) is smaller than the logging interval.*",
    r".*`training_step` returned `None`.*",
    r".*Total length of .* across ranks is zero.*",
    r".*You defined a `validation_step` but have no `val_dataloader`.*",
    r".*on_train_epoch_end.*sync_dist.*",
    r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*",
)
_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
# Launchers that run training in child processes whose results never come back to this one.
_UNSUPPORTED_STRATEGY_WORDS = ("spawn", "fork", "notebook")


@dataclass
class TrainingResult:
    """What :func:`fit_module` returns.

    Attributes
    ----------
    history
        One row per epoch (0-based ``epoch``): ``train_loss``, ``val_loss`` (NaN without a
        validation set), ``train_<component>`` / ``val_<component>`` for every named loss
        component, the learning rate ``lr`` used in the epoch, and wall-clock ``seconds``.
    best_epoch
        Epoch whose weights the module holds: lowest validation loss, else the last epoch.
    stopped_early
        Whether early stopping ended the run before ``max_epochs``.
    global_rank
        Index of this process in a multi-process run (``strategy="ddp"`` runs the calling
        script once per device and every process returns); save results only where it is 0.
    """

    history: pd.DataFrame
    best_epoch: int
    stopped_early: bool
    global_rank: int = 0


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's informational output and known-harmless warnings, only here."""
    levels = {}
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        levels[name] = logger.level
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _IGNORED_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _preserved_rng() -> Iterator[None]:
    """Restore torch's global random states (CPU, CUDA) after training.

    The engine seeds torch's default generator at the start of every epoch (dropout and
    noise layers draw from it); the caller's random state is put back afterwards.
    """
    torch_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _check_arguments(module: torch.nn.Module, train: Any, val: Any, config: TrainingConfig) -> None:
    if not isinstance(config, TrainingConfig):
        raise TrainingConfigError(f"config must be a TrainingConfig, got {type(config).__name__}")
    if not isinstance(module, torch.nn.Module) or not callable(getattr(module, "loss", None)):
        raise TrainingConfigError(
            f"{type(module).__name__} is not an nn.Module with a loss(batch) method"
        )
    if not any(p.requires_grad for p in module.parameters()):
        raise TrainingConfigError(f"{type(module).__name__} has no trainable parameters")
    if len(train) == 0:
        raise TrainingConfigError("the training set is empty")
    if val is not None and len(val) == 0:
        raise TrainingConfigError("the validation set is empty; pass val=None instead")
    if config.early_stopping is not None and val is None:
        raise TrainingConfigError(
            f"early_stopping={config.early_stopping} needs a validation set (val=...)"
        )
    if any(word in config.strategy for word in _UNSUPPORTED_STRATEGY_WORDS):
        raise TrainingConfigError(
            f"strategy={config.strategy!r} trains in child processes; use strategy='ddp' "
            "from a script (or torchrun / srun), which runs this same call in every process"
        )


def _resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    folder = Path(path)
    if (folder / "last").is_dir() and not (folder / "config.json").exists():
        return folder / "last"
    return folder


def _trainer(config: TrainingConfig, epochs: int) -> Any:
    import lightning.pytorch as pl
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        return _make_trainer(pl, config, epochs)
    except (MisconfigurationException, ValueError, RuntimeError) as exc:
        raise TrainingConfigError(
            f"accelerator={config.accelerator!r}, devices={config.devices!r}, "
            f"strategy={config.strategy!r}, num_nodes={config.num_nodes} cannot be used "
            f"here: {exc}"
        ) from exc


def _make_trainer(pl: Any, config: TrainingConfig, epochs: int) -> Any:
    return pl.Trainer(
        max_epochs=epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        precision=config.precision,
        gradient_clip_val=config.gradient_clip,
        enable_checkpointing=False,
        logger=False,
        enable_model_summary=False,
        enable_progress_bar=config.progress,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        log_every_n_steps=50,
    )


def fit_module(
    module: torch.nn.Module,
    train: torch.utils.data.Dataset,
    val: torch.utils.data.Dataset | None = None,
    *,
    config: TrainingConfig,
    collate_fn: Callable[[Any], Any] | None = None,
    sampler_factory: SamplerFactory | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume_from: str | os.PathLike[str] | None = None,
) -> TrainingResult:
    """Train ``module`` in place and return its training history.

    Parameters
    ----------
    module
        A plain ``nn.Module`` with ``loss(batch) -> dict[str, Tensor]`` (key ``"loss"`` is
        minimised; other keys are logged per epoch). Optionally
        ``configure_optimizer(config)`` returning an optimizer or ``(optimizer, scheduler)``
        (the scheduler is stepped once per epoch); the default is Adam(``lr``,
        ``weight_decay``) with a StepLR when ``config.lr_step_size`` is set.
    train, val
        Datasets. One with ``batched_indexing = True`` (:class:`AnnDataRows`,
        :class:`TensorRows`) is indexed a whole batch at a time; any other map-style dataset
        is read item by item and collated with ``collate_fn``.
    config
        Epochs, batch size, optimiser, hardware, precision and seed.
    collate_fn
        Turns what the dataset returns into the batch ``module.loss`` receives.
    sampler_factory
        ``f(dataset, *, batch_size, shuffle, seed, num_replicas, rank)`` returning an iterable
        of index batches (with an optional ``set_epoch(epoch)``) to replace the default
        :class:`IndexBatchSampler`.
    checkpoint_dir
        Write ``best/`` and ``last/`` checkpoints here after every epoch.
    resume_from
        A checkpoint folder (or a ``checkpoint_dir``, meaning its ``last/``) to continue from;
        the run then ends at ``config.max_epochs`` as if it had never stopped (a run that
        stopped early stays stopped).

    Returns
    -------
    TrainingResult
        The module holds the weights of the epoch with the lowest validation loss (the last
        epoch without a validation set).

    Raises
    ------
    TrainingConfigError
        Invalid arguments (e.g. early stopping without a validation set).
    ModelFileError
        ``resume_from`` is corrupt or does not match ``module``.
    """
    from transferome.training.module import EngineModule  # imports Lightning

    _check_arguments(module, train, val, config)
    resume = None
    best_state = None
    if resume_from is not None:
        folder = _resolve_checkpoint(resume_from)
        resume = read_checkpoint(folder)
        if resume.module_class != type(module).__qualname__:
            raise ModelFileError(
                f"{folder} holds a checkpoint of {resume.module_class}, "
                f"not of {type(module).__qualname__}"
            )
        load_module_state(module, resume.module_state, folder)
        best_state = _best_state_for(folder, resume.progress, module, val)
        _note_changed_settings(folder, resume.training_config, config)
    engine = EngineModule(
        module,
        config,
        train,
        val,
        collate_fn=collate_fn,
        sampler_factory=sampler_factory,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir is not None else None,
        resume=resume,
    )
    engine.best_state = best_state
    stopped = resume is not None and bool(resume.progress.get("stopped_early", False))
    remaining = config.max_epochs - engine.first_epoch
    global_rank = 0
    if remaining > 0 and not stopped:
        with _preserved_rng(), _quiet_lightning():
            trainer = _trainer(config, remaining)
            trainer.fit(engine)
            global_rank = trainer.global_rank
        log.debug("trained %s for %d epochs", type(module).__name__, len(engine.records))
    engine.stopped_early = engine.stopped_early or stopped
    if engine.best_state is not None:
        module.load_state_dict(engine.best_state)
    return TrainingResult(
        history=engine.history(),
        best_epoch=engine.best_epoch,
        stopped_early=engine.stopped_early,
        global_rank=global_rank,
    )


# Settings a resumed run may change without changing what it computes.
_RESUMABLE_CHANGES = {"max_epochs", "progress", "accelerator", "devices", "strategy", "num_nodes"}


def _note_changed_settings(folder: Path, saved: dict[str, Any], config: TrainingConfig) -> None:
    """Log the training settings that differ from the checkpoint's (results will differ)."""
    current = config.to_dict()
    changed = sorted(
        k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k]
    )
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        log.warning("resuming %s with changed training settings (%s)", folder, details)


def _best_state_for(
    folder: Path, progress: dict[str, Any], module: torch.nn.Module, val: Any
) -> dict[str, torch.Tensor] | None:
    """Read the best weights so far of a resumed run (from the sibling ``best/`` folder)."""
    if val is None:
        return None
    best_epoch = int(progress.get("best_epoch", -1))
    if best_epoch == int(progress["epoch"]):
        return {k: v.detach().clone() for k, v in module.state_dict().items()}
    best = read_checkpoint(folder.parent / "best")
    if int(best.progress["epoch"]) != best_epoch:
        raise ModelFileError(
            f"{folder.parent / 'best'} holds epoch {best.progress['epoch']}, but {folder} "
            f"names epoch {best_epoch} as the best one"
        )
    return best.module_state

"""The training arguments every neural estimator exposes, validated once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from transferome.errors import TransferomeError

__all__ = ["LossError", "TrainingConfig", "TrainingConfigError"]


class TrainingConfigError(TransferomeError, ValueError):
    """A training argument has a value the engine cannot use."""


class LossError(TransferomeError, ValueError):
    """A module's ``loss`` (or ``configure_optimizer``) returned something unusable."""


_ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
_PRECISIONS = (
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
    "64-true",
    "transformer-engine",
    "transformer-engine-float16",
)


@dataclass(frozen=True)
class TrainingConfig:
    """How to train a module: epochs, batches, optimiser, hardware and randomness.

    Parameters
    ----------
    max_epochs
        Number of passes over the training data (fewer when early stopping triggers).
    batch_size
        Rows per batch *in each process*; with ``devices=N`` data-parallel processes the
        global batch is ``batch_size * N * num_nodes``.
    lr, weight_decay
        Learning rate and L2 penalty of the default Adam optimiser.
    early_stopping
        Patience in epochs on the validation loss; ``None`` trains for ``max_epochs``.
    validation_fraction
        Fraction of the training rows estimators hold out as a validation split when
        ``early_stopping`` is set (the engine itself takes the split it is given).
    lr_step_size, lr_gamma
        Multiply the learning rate by ``lr_gamma`` every ``lr_step_size`` epochs
        (``None``: constant learning rate).
    accelerator, devices, strategy, num_nodes
        Passed to :class:`lightning.Trainer`; ``strategy="ddp"`` trains one process per device.
    precision
        Lightning precision string: ``"32-true"``, ``"bf16-mixed"``, ``"16-mixed"``, ...
    random_state
        Seed of the data order and of the module's own randomness (dropout, noise).
    progress
        Show a progress bar with the loss and the speed.
    gradient_clip
        Clip the gradient norm to this value (``None``: no clipping).
    """

    max_epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    early_stopping: int | None = None
    validation_fraction: float = 0.1
    lr_step_size: int | None = None
    lr_gamma: float = 0.5
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "32-true"
    random_state: int = 0
    progress: bool = False
    gradient_clip: float | None = None
    num_nodes: int = 1

    def __post_init__(self) -> None:
        _check_int(self, "max_epochs", minimum=0)
        _check_int(self, "batch_size", minimum=1)
        _check_int(self, "random_state", minimum=0)
        _check_int(self, "num_nodes", minimum=1)
        for name in ("early_stopping", "lr_step_size"):
            if getattr(self, name) is not None:
                _check_int(self, name, minimum=1)
        _check_float(self, "lr", low=0.0, low_open=True)
        _check_float(self, "weight_decay", low=0.0)
        _check_float(self, "lr_gamma", low=0.0, low_open=True)
        _check_float(self, "validation_fraction", low=0.0, high=1.0, high_open=True)
        if self.gradient_clip is not None:
            _check_float(self, "gradient_clip", low=0.0, low_open=True)
        if self.accelerator not in _ACCELERATORS:
            raise TrainingConfigError(
                f"accelerator={self.accelerator!r}; expected one of {', '.join(_ACCELERATORS)}"
            )
        if not isinstance(self.strategy, str) or not self.strategy:
            raise TrainingConfigError(f"strategy={self.strategy!r}; expected a Lightning name")
        if self.precision not in _PRECISIONS:
            raise TrainingConfigError(
                f"precision={self.precision!r}; expected one of {', '.join(_PRECISIONS)}"
            )
        devices = self.devices
        valid_devices = (isinstance(devices, int) and not isinstance(devices, bool)) or (
            isinstance(devices, str) and devices
        )
        if not valid_devices or (isinstance(devices, int) and devices < 1):
            raise TrainingConfigError(
                f"devices={devices!r}; expected a positive int, 'auto' or a Lightning device string"
            )
        if not isinstance(self.progress, bool):
            raise TrainingConfigError(f"progress={self.progress!r}; expected True or False")

    def replace(self, **changes: Any) -> TrainingConfig:
        """Return a copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TrainingConfigError(f"unknown training arguments: {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Build a config from :meth:`to_dict` output; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise TrainingConfigError(f"unknown training arguments: {sorted(unknown)}")
        return cls(**values)


def _check_int(config: TrainingConfig, name: str, *, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TrainingConfigError(f"{name}={value!r}; expected an integer >= {minimum}")


def _check_float(
    config: TrainingConfig,
    name: str,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    value = getattr(config, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        upper = "inf" if high is None else high
        raise TrainingConfigError(
            f"{name}={value!r}; expected a number in {left}{low}, {upper}{right}"
        )

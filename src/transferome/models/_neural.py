"""The base of the neural estimators.

The training arguments, the validation split, the training history and its place in the model
files.

Every neural estimator takes the fields of :class:`~transferome.training.TrainingConfig` as
keyword arguments beside its own (``max_epochs``, ``batch_size``, ``lr``, ...; each class sets
its defaults in ``training_defaults``), stores them under the same names and builds its
training configuration from them with :meth:`NeuralEstimator.training_config`.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import os
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd
import torch

from transferome.models._persist import load_described
from transferome.models.base import Estimator
from transferome.training.config import TrainingConfig

__all__ = ["TRAINING_ARGUMENTS", "NeuralEstimator", "history_from_json", "history_to_json"]

TRAINING_ARGUMENTS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainingConfig))
"""The training arguments every neural estimator takes: the fields of ``TrainingConfig``."""

_CONFIG_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainingConfig)}
_Neural = TypeVar("_Neural", bound="NeuralEstimator")


class NeuralEstimator(Estimator, abc.ABC):
    """An estimator trained by the engine (:func:`~transferome.training.fit_module`).

    Subclasses list their own hyperparameters as keyword-only ``__init__`` arguments, take the
    training arguments as ``**training`` and pass them to ``super().__init__``.
    """

    training_defaults: ClassVar[Mapping[str, Any]] = {}
    """This model's defaults of the training arguments, where they differ from
    ``TrainingConfig``'s."""

    # the training arguments, one per field of TrainingConfig (tests/test_training_args.py)
    max_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    early_stopping: int | None
    validation_fraction: float
    lr_step_size: int | None
    lr_gamma: float
    accelerator: str
    devices: int | str
    strategy: str
    precision: str
    random_state: int
    progress: bool
    gradient_clip: float | None
    num_nodes: int

    history_: pd.DataFrame

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Show the training arguments in the signature of the subclass's ``__init__``.

        Introspection (``get_params``, ``repr``, the configuration checks, the ``--param``
        checks) then sees every argument with this model's default and its type.
        """
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)
        own = [
            p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        clash = sorted({p.name for p in own} & set(TRAINING_ARGUMENTS))
        if clash:
            raise TypeError(f"{cls.__name__}.__init__ repeats the training arguments {clash}")
        hints = typing.get_type_hints(TrainingConfig)
        training = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=cls.training_default(name),
                annotation=hints[name],
            )
            for name in TRAINING_ARGUMENTS
        ]
        init.__signature__ = signature.replace(parameters=[*own, *training])
        init.__annotations__ = {
            **{k: v for k, v in init.__annotations__.items() if k != "training"},
            **{name: hints[name] for name in TRAINING_ARGUMENTS},
        }

    def __init__(self, **training: Any) -> None:
        unknown = sorted(set(training) - set(TRAINING_ARGUMENTS))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got an unexpected keyword argument "
                f"{', '.join(map(repr, unknown))}; "
                f"its training arguments are {list(TRAINING_ARGUMENTS)}"
            )
        for name in TRAINING_ARGUMENTS:
            setattr(self, name, training.get(name, self.training_default(name)))

    @classmethod
    def training_default(cls, name: str) -> Any:
        """Return the default of training argument ``name`` for this model."""
        return cls.training_defaults.get(name, _CONFIG_DEFAULTS[name])

    def training_config(self, **overrides: Any) -> TrainingConfig:
        """Build the :class:`~transferome.training.TrainingConfig` of this model's arguments.

        The training arguments with ``overrides``, validated: a bad value raises
        ``TrainingConfigError``.
        """
        values = {name: getattr(self, name) for name in TRAINING_ARGUMENTS}
        return TrainingConfig(**{**values, **overrides})

    @contextmanager
    def seeded(self, seed: int | None = None) -> Iterator[None]:
        """Seed torch's global generator for the block (``random_state`` unless ``seed``).

        The caller's random state is restored afterwards, so building a network never moves
        the user's own torch random numbers.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.random_state if seed is None else seed))
            yield

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model folder at ``path`` and return it.

        The folder holds ``weights.safetensors`` + ``model.json``, with the training history.
        """
        self._check_fitted()
        return self._write_files(path)

    @classmethod
    def load(cls: type[_Neural], path: str | os.PathLike[str]) -> _Neural:
        """Read a model folder written by :meth:`save`.

        ``model.json`` is checked against the stored weights before the network is built
        (see :func:`~transferome.models._persist.restore_module`).

        Raises
        ------
        ModelFileError
            A file is missing or corrupt, or ``model.json`` and ``weights.safetensors``
            disagree (a size, a shape, a missing tensor); the message names them.
        """
        model: _Neural = load_described(path, cls.__name__, cls._read_files)
        return model

    @abc.abstractmethod
    def _write_files(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model's folder at ``path`` (each model's own fields)."""

    @classmethod
    @abc.abstractmethod
    def _read_files(
        cls: type[_Neural],
        path: str | os.PathLike[str],
        meta: dict[str, Any],
        arrays: dict[str, np.ndarray],
    ) -> _Neural:
        """Build the model that ``meta`` and ``arrays`` describe (checked against each other)."""

    def _validation_split(
        self, n: int, *, seed: Any, minimum: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Split ``n`` rows into sorted training and validation rows.

        Validation is a ``validation_fraction`` share (at least one row) drawn with ``seed``;
        every row trains and validation is ``None`` when early stopping is off or there are
        fewer than ``minimum`` rows.
        """
        order = np.random.default_rng(seed).permutation(n)
        if self.early_stopping is None or n < minimum:
            return np.sort(order), None
        n_val = max(1, round(self.validation_fraction * n))
        return np.sort(order[n_val:]), np.sort(order[:n_val])


def history_to_json(history: pd.DataFrame) -> dict[str, Any]:
    """Convert the training history to the ``extra`` entries of a model file (missing: null)."""
    return {
        "history": {
            str(col): [None if pd.isna(v) else float(v) for v in history[col]]
            for col in history.columns
        },
        "history_columns": [str(col) for col in history.columns],
    }


def history_from_json(extra: Mapping[str, Any]) -> pd.DataFrame:
    """Inverse of :func:`history_to_json`; an empty table for files written without one."""
    if "history" not in extra:
        return pd.DataFrame()
    columns = extra.get("history_columns", list(extra["history"]))
    history = pd.DataFrame(extra["history"], dtype="float64")[list(columns)]
    if "epoch" in history:
        history["epoch"] = history["epoch"].astype(np.int64)
    return history

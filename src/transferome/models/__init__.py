"""Models: the baselines and the neural estimators, all with one contract.

One sub-package per model: :mod:`.baselines` (``control``, ``additive``, ``linear``,
``similar``, ``collaborative``), :mod:`.stacked` (the default predictor), :mod:`.fe`,
:mod:`.xtransfer`, :mod:`.uge` and :mod:`.dose`. The classes below are imported on first use
(``from transferome.models import StackedTransfer`` loads only that model);
``get_model(name)`` returns an estimator class by its short name (used by the benchmark and
the command line).
"""

from __future__ import annotations

import importlib
from typing import Any

from transferome.models.base import Estimator, NotFittedError, Target, prediction_adata

__all__ = [
    "AdditiveBaseline",
    "CollaborativeBaseline",
    "ControlBaseline",
    "DoseModel",
    "DoseResponse",
    "Estimator",
    "FactorizedEmbedding",
    "LinearBaseline",
    "NotFittedError",
    "SimilarBaseline",
    "StackedTransfer",
    "Target",
    "UniversalGeneEmbedding",
    "XTransfer",
    "available_models",
    "get_dose_model",
    "get_model",
    "prediction_adata",
]

# public name -> the sub-package that defines it (imported when the name is first read)
_LAZY: dict[str, str] = {
    "AdditiveBaseline": "baselines",
    "CollaborativeBaseline": "baselines",
    "ControlBaseline": "baselines",
    "LinearBaseline": "baselines",
    "SimilarBaseline": "baselines",
    "StackedTransfer": "stacked",
    "XTransfer": "xtransfer",
    "FactorizedEmbedding": "fe",
    "UniversalGeneEmbedding": "uge",
    "DoseModel": "dose",
    "DoseResponse": "dose",
    "get_dose_model": "dose",
}

# short name -> class; each model adds its line here.
_REGISTRY: dict[str, str] = {
    "control": "ControlBaseline",
    "additive": "AdditiveBaseline",
    "linear": "LinearBaseline",
    "similar": "SimilarBaseline",
    "collaborative": "CollaborativeBaseline",
    "stacked": "StackedTransfer",
    "xtransfer": "XTransfer",
    "fe": "FactorizedEmbedding",
    "uge": "UniversalGeneEmbedding",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def available_models() -> tuple[str, ...]:
    """Short names of the registered models."""
    return tuple(_REGISTRY)


def get_model(name: str) -> type[Estimator]:
    """Return the estimator class registered under ``name``."""
    from transferome.errors import TransferomeError

    if name not in _REGISTRY:
        raise TransferomeError(f"unknown model {name!r}; available: {sorted(_REGISTRY)}")
    model: type[Estimator] = __getattr__(_REGISTRY[name])
    return model

"""Models: the baselines and the neural estimators, all with one contract.

``get_model(name)`` returns an estimator class by its short name (used by the benchmark and
the command line); the classes are imported on first use.
"""

from __future__ import annotations

import importlib

from transferome.models.base import Estimator, NotFittedError, Target, prediction_adata

__all__ = [
    "Estimator",
    "NotFittedError",
    "Target",
    "available_models",
    "get_model",
    "prediction_adata",
]

# short name -> "module:Class"; each model adds its line here.
_REGISTRY: dict[str, str] = {
    "control": "transferome.models.baselines:ControlBaseline",
    "additive": "transferome.models.baselines:AdditiveBaseline",
    "linear": "transferome.models.baselines:LinearBaseline",
    "similar": "transferome.models.similarity:SimilarBaseline",
    "collaborative": "transferome.models.similarity:CollaborativeBaseline",
    "stacked": "transferome.models.stacked:StackedTransfer",
    "xtransfer": "transferome.models.xtransfer:XTransfer",
    "fe": "transferome.models.factorized:FactorizedEmbedding",
    "uge": "transferome.models.uge:UniversalGeneEmbedding",
}


def available_models() -> tuple[str, ...]:
    """Short names of the registered models."""
    return tuple(_REGISTRY)


def get_model(name: str) -> type[Estimator]:
    """The estimator class registered under ``name``."""
    from transferome.errors import TransferomeError

    if name not in _REGISTRY:
        raise TransferomeError(f"unknown model {name!r}; available: {sorted(_REGISTRY)}")
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)

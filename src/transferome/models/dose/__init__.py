"""Responses at doses and time points that were not measured.

Every model fits a :class:`~transferome.data.dose.ConditionTable` (:mod:`.base`): the
baselines :class:`NearestDose`, :class:`LogLinearDose` and :class:`MeanDose`
(:mod:`.baselines`) and transferome's model :class:`DoseResponse` (:mod:`.response`).
"""

from __future__ import annotations

from typing import Any

from transferome.errors import TransferomeError
from transferome.models.dose.base import QUERY_COLUMNS, DoseModel, DosePrediction
from transferome.models.dose.baselines import LogLinearDose, MeanDose, NearestDose
from transferome.models.dose.response import DoseResponse

__all__ = [
    "DOSE_MODELS",
    "QUERY_COLUMNS",
    "DoseModel",
    "DosePrediction",
    "DoseResponse",
    "LogLinearDose",
    "MeanDose",
    "NearestDose",
    "get_dose_model",
]

DOSE_MODELS: dict[str, type[DoseModel]] = {
    m.name: m for m in (NearestDose, LogLinearDose, MeanDose, DoseResponse)
}
"""Models of the dose tasks by short name."""


def get_dose_model(name: str, **params: Any) -> DoseModel:
    """Return an unfitted dose model by short name, with ``params``."""
    if name not in DOSE_MODELS:
        raise TransferomeError(f"unknown dose model {name!r}; available: {sorted(DOSE_MODELS)}")
    return DOSE_MODELS[name](**params)

"""The baselines of the dose tasks.

The nearest measured dose, log-linear interpolation and the series mean, in the query's own
series or averaged over its peers.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from transferome.errors import DataValidationError
from transferome.models.dose.base import DoseModel

__all__ = ["LogLinearDose", "MeanDose", "NearestDose"]


def _nearest(x: np.ndarray, y: np.ndarray, q: float) -> np.ndarray:
    distance = np.abs(x - q)
    return y[np.flatnonzero(distance == distance.min())[-1]]


def _interpolate(x: np.ndarray, y: np.ndarray, q: float) -> np.ndarray:
    if len(x) == 1 or q <= x[0]:
        return y[0]
    if q >= x[-1]:
        return y[-1]
    right = int(np.searchsorted(x, q))
    w = (q - x[right - 1]) / (x[right] - x[right - 1])
    return (1 - w) * y[right - 1] + w * y[right]


def _series_mean(x: np.ndarray, y: np.ndarray, q: float) -> np.ndarray:
    return np.nanmean(y, axis=0)


class _BaselineDose(DoseModel):
    """A baseline: one rule applied in the query's series, or averaged over its peers."""

    @staticmethod
    @abc.abstractmethod
    def rule(x: np.ndarray, y: np.ndarray, q: float) -> np.ndarray:
        """Change at position ``q`` from a series' positions ``x`` and changes ``y``."""

    def _predict_row(self, series: str, perturbation: str, q: float) -> tuple[np.ndarray, str]:
        if series in self.series_:
            return self.rule(*self.series_[series], q), "series"
        peers = [s for s in self.peers_.get(perturbation, []) if s != series]
        if not peers:
            raise DataValidationError(
                f"cannot predict {perturbation!r} in series {series!r}: the perturbation has "
                "no measured condition in training"
            )
        rows = [self.rule(*self.series_[s], q) for s in peers]
        return np.nanmean(np.vstack(rows), axis=0), "peers"


class NearestDose(_BaselineDose):
    """The change of the measured condition nearest in position (ties: the higher dose)."""

    name: ClassVar[str] = "nearest_dose"
    rule = staticmethod(_nearest)


class LogLinearDose(_BaselineDose):
    """Linear interpolation in log dose between the two bracketing conditions.

    Beyond the measured range the nearest end is kept (no extrapolation), as
    :func:`numpy.interp` does.
    """

    name: ClassVar[str] = "log_linear"
    rule = staticmethod(_interpolate)


class MeanDose(_BaselineDose):
    """The mean change over the series' measured conditions."""

    name: ClassVar[str] = "dose_mean"
    rule = staticmethod(_series_mean)

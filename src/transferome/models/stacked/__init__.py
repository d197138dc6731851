"""``stacked``, the default transfer predictor (:class:`StackedTransfer`, in :mod:`.estimator`)."""

from __future__ import annotations

from transferome.models.stacked.estimator import BASE_PREDICTORS, StackedTransfer

__all__ = ["BASE_PREDICTORS", "StackedTransfer"]

"""Classification accuracy against the class-frequency random model (UGE paper)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["accuracy", "per_class_accuracy", "random_accuracy"]


def _labels(values: Iterable[object], what: str) -> np.ndarray:
    array = np.asarray([str(v) for v in values], dtype=object)
    if array.size == 0:
        raise ValueError(f"{what} is empty")
    return array


def accuracy(true: Iterable[object], pred: Iterable[object]) -> float:
    """Fraction of predictions equal to the true label."""
    t, p = _labels(true, "true"), _labels(pred, "pred")
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels but {p.size} predictions")
    return float(np.mean(t == p))


def per_class_accuracy(true: Iterable[object], pred: Iterable[object]) -> pd.Series:
    """Accuracy (recall) within each true class, indexed by class, sorted."""
    t, p = _labels(true, "true"), _labels(pred, "pred")
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels but {p.size} predictions")
    frame = pd.DataFrame({"true": t, "correct": t == p})
    result = frame.groupby("true", sort=True)["correct"].mean().astype(float)
    result.index.name = "class"
    return result.rename("accuracy")


def random_accuracy(train: Iterable[object], true: Iterable[object]) -> float:
    """Return the expected accuracy of drawing labels from the training class frequencies.

    Equals ``sum_c f_train(c) * f_test(c)`` where ``f`` are class frequencies; classes absent
    from training are never predicted.
    """
    tr, t = _labels(train, "train"), _labels(true, "true")
    f_train = pd.Series(tr).value_counts(normalize=True)
    f_test = pd.Series(t).value_counts(normalize=True)
    shared = f_train.index.intersection(f_test.index)
    return float((f_train[shared] * f_test[shared]).sum())

"""The contract of the dose models: a condition table in, changes of queried conditions out."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np
import pandas as pd

from transferome.data.dose import ConditionTable
from transferome.errors import DataValidationError
from transferome.models.base import Estimator

__all__ = ["QUERY_COLUMNS", "DoseModel", "DosePrediction"]

QUERY_COLUMNS = ("series", "perturbation", "position")


@dataclass(frozen=True)
class DosePrediction:
    """Predicted changes of queried conditions (rows follow the queries).

    ``lower`` / ``upper`` bound the central ``level`` interval per gene where the model
    gives one (``None`` otherwise); ``source`` says how each row was predicted
    (``series``: from its own series, ``peers``: from the perturbation in other contexts).
    """

    delta: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    source: tuple[str, ...]
    level: float = 0.8


def _check_queries(queries: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in QUERY_COLUMNS if c not in queries.columns]
    if missing:
        raise DataValidationError(f"queries lack the column(s) {missing}; need {QUERY_COLUMNS}")
    positions = queries["position"].to_numpy(dtype=float)
    if not np.isfinite(positions).all():
        raise DataValidationError("query positions must be finite (log dose or level rank)")
    return queries.reset_index(drop=True)


_Dose = TypeVar("_Dose", bound="DoseModel")


class DoseModel(Estimator, abc.ABC):
    """Shared plumbing: series of the training table and their peers."""

    name: ClassVar[str] = ""

    def fit(self: _Dose, table: ConditionTable) -> _Dose:
        """Learn the series of the condition ``table``; return ``self``."""
        if len(table.conditions) == 0:
            raise DataValidationError("the condition table is empty: nothing to learn from")
        self.table_ = table
        self.series_ = {
            s: (table.conditions["position"].to_numpy()[rows], table.deltas[rows])
            for s, rows in table.series().items()
        }
        first = table.conditions.drop_duplicates("series").set_index("series")
        self.series_perturbation_ = first["perturbation"].to_dict()
        self.peers_: dict[str, list[str]] = {}
        for s, p in self.series_perturbation_.items():
            self.peers_.setdefault(p, []).append(s)
        self._fit_extra()
        return self

    def _fit_extra(self) -> None:
        """Learn more than the series (a hook for the models that do)."""

    @abc.abstractmethod
    def _predict_row(self, series: str, perturbation: str, q: float) -> tuple[np.ndarray, str]:
        """Predict the change of one query and say how (``series`` or ``peers``)."""

    def predict(self, queries: pd.DataFrame) -> DosePrediction:
        """Predicted changes of ``queries`` (columns ``series``, ``perturbation``, ``position``)."""
        self._check_fitted()
        queries = _check_queries(queries)
        out, sources = [], []
        for row in queries.itertuples(index=False):
            values, source = self._predict_row(
                str(row.series), str(row.perturbation), float(row.position)
            )
            out.append(values)
            sources.append(source)
        delta = np.vstack(out) if out else np.zeros((0, self.table_.n_genes))
        return DosePrediction(delta, None, None, tuple(sources))

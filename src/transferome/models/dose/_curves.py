"""The pieces of a fitted dose-response curve, shared by the model and its files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class _Centers:
    by_series: dict[str, float]  # free midpoint of each series with 2+ conditions
    offset: float  # their median, measured from each perturbation's highest dose


@dataclass(frozen=True)
class _Curve:
    center: float  # midpoint position (log EC50, or level rank)
    amplitude: np.ndarray  # genes


@dataclass(frozen=True)
class _GenesOnly:
    """What a loaded model keeps of its training table: the genes and the axis."""

    genes: tuple[str, ...]
    axis: str
    levels: tuple[str, ...] = ()

    @property
    def n_genes(self) -> int:
        return len(self.genes)

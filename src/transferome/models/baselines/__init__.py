"""The baselines every model is measured against.

``control`` (the context's control mean), ``additive`` (control plus the perturbation's mean
change elsewhere), ``linear`` (a low-rank fit of the changes) in :mod:`.means`; ``similar``
and ``collaborative`` (means weighted by how alike the contexts are) in :mod:`.similarity`.
"""

from __future__ import annotations

from transferome.models.baselines.means import AdditiveBaseline, ControlBaseline, LinearBaseline
from transferome.models.baselines.similarity import CollaborativeBaseline, SimilarBaseline

__all__ = [
    "AdditiveBaseline",
    "CollaborativeBaseline",
    "ControlBaseline",
    "LinearBaseline",
    "SimilarBaseline",
]

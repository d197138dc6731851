"""Built-in simulated atlas and loaders of public datasets.

:func:`simulate` generates a perturbation atlas with a known ground truth (no download);
the ``load_*`` functions read the public datasets into AnnData with the schema's obs keys.
"""

from __future__ import annotations

from transferome.datasets.simulator import (
    ORGANS,
    GenerativeParams,
    SimulatedAtlas,
    SimulationTruth,
    simulate,
)

__all__ = [
    "ORGANS",
    "GenerativeParams",
    "SimulatedAtlas",
    "SimulationTruth",
    "simulate",
]

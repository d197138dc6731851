"""Built-in simulated atlas and loaders of public datasets.

:func:`simulate` generates a perturbation atlas with a known ground truth (no download);
the ``load_*`` functions read the public datasets into AnnData with the schema's obs keys.
"""

from __future__ import annotations

from transferome.datasets.loaders import (
    load_cmap,
    load_drugmatrix_signatures,
    load_kang_muscat,
    load_kang_scgen,
    load_l1000_modz,
    load_perturbseq_signatures,
    load_sciplex3_pseudobulk,
    load_tahoe_signatures,
    load_tggates,
    load_tggates_rat_liver,
)
from transferome.datasets.packaged import ORTHOLOG_COLUMNS, load_baron, load_orthologs
from transferome.datasets.simulator import (
    ORGANS,
    QUICK,
    GenerativeParams,
    SimulatedAtlas,
    SimulationTruth,
    simulate,
)

__all__ = [
    "ORGANS",
    "ORTHOLOG_COLUMNS",
    "QUICK",
    "GenerativeParams",
    "SimulatedAtlas",
    "SimulationTruth",
    "load_baron",
    "load_cmap",
    "load_drugmatrix_signatures",
    "load_kang_muscat",
    "load_kang_scgen",
    "load_l1000_modz",
    "load_orthologs",
    "load_perturbseq_signatures",
    "load_sciplex3_pseudobulk",
    "load_tahoe_signatures",
    "load_tggates",
    "load_tggates_rat_liver",
    "simulate",
]

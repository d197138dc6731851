"""Cross-species layer: reactome vectors, functional gene mapping, experimental design.

:func:`reactome` computes each gene's change under every (context, perturbation) pair;
:func:`map_genes` maps genes of one species to another by reactome or expression-profile
similarity, by the ortholog table, or by both; :func:`evaluate_mapping` scores a mapping
against a known answer; :func:`predict_reactome` completes unmeasured reactome entries;
:func:`suggest_experiments` ranks the experiments worth running next.
"""

from __future__ import annotations

from transferome.crossspecies.mapping import METHODS, map_genes
from transferome.crossspecies.reactome import Reactome, reactome

__all__ = [
    "METHODS",
    "Reactome",
    "map_genes",
    "reactome",
]

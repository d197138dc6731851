"""Cross-species layer: reactome vectors, functional gene mapping, experimental design.

:func:`reactome` computes each gene's change under every (context, perturbation) pair;
:func:`map_genes` maps genes of one species to another by reactome or expression-profile
similarity, by the ortholog table, or by both; :func:`evaluate_mapping` scores a mapping
against a known answer; :func:`predict_reactome` completes unmeasured reactome entries;
:func:`suggest_experiments` ranks the experiments worth running next; :func:`ortholog_matrix`
reads an ortholog table as a sparse gene x gene matrix.
"""

from __future__ import annotations

from transferome.crossspecies._inputs import ortholog_matrix
from transferome.crossspecies.completion import (
    CompletionConfig,
    ReactomeCompleter,
    ortholog_groups,
    predict_reactome,
)
from transferome.crossspecies.design import (
    ReactomeEnsemble,
    measured_cells,
    only_measured,
    reactome_ensemble,
    suggest_experiments,
)
from transferome.crossspecies.mapping import METHODS, map_genes
from transferome.crossspecies.reactome import Reactome, reactome, signature_reactome

__all__ = [
    "METHODS",
    "CompletionConfig",
    "Reactome",
    "ReactomeCompleter",
    "ReactomeEnsemble",
    "map_genes",
    "measured_cells",
    "only_measured",
    "ortholog_groups",
    "ortholog_matrix",
    "predict_reactome",
    "reactome",
    "reactome_ensemble",
    "signature_reactome",
    "suggest_experiments",
]

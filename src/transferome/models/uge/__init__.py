"""Universal gene embedding (UGE).

The estimator (:mod:`.estimator`, knows AnnData), the network (:mod:`.network`, knows
tensors), and beside them the gene descriptions
(:mod:`.genes`), the ortholog links (:mod:`.orthologs`), the training rows (:mod:`.data`),
the cross-species transfer (:mod:`.transfer`), the annotation scores (:mod:`.metrics`) and
the model files (:mod:`.persist`); the estimator's steps around the training (:mod:`._fit`)
and its encoding of data and genes (:mod:`._encode`) are private modules beside it.
"""

from __future__ import annotations

from transferome.models.uge.estimator import UniversalGeneEmbedding
from transferome.models.uge.network import UGEConfig, UGENetwork

__all__ = ["UGEConfig", "UGENetwork", "UniversalGeneEmbedding"]

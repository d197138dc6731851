"""Factorized Embeddings.

The estimator (:mod:`.estimator`, knows AnnData), the network (:mod:`.network`, knows tensors)
and the training blocks from memory or a file (:mod:`.data`).
"""

from __future__ import annotations

from transferome.models.fe.estimator import FactorizedEmbedding
from transferome.models.fe.network import FEConfig, FEModule

__all__ = ["FEConfig", "FEModule", "FactorizedEmbedding"]

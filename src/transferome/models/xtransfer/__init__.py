"""XTransfer (XTransferCDR).

The estimator (:mod:`.estimator`, knows AnnData) and the network (:mod:`.network`, knows
tensors); :class:`PairRows`, its training pairs as a dataset.
"""

from __future__ import annotations

from transferome.models.xtransfer._pairs import PairRows
from transferome.models.xtransfer.estimator import XTransfer
from transferome.models.xtransfer.network import XTransferConfig, XTransferModule

__all__ = ["PairRows", "XTransfer", "XTransferConfig", "XTransferModule"]

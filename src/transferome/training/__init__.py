"""One training engine for every neural model, built on PyTorch Lightning.

Each model provides a plain ``nn.Module`` with ``loss(batch) -> dict[str, Tensor]``;
:func:`fit_module` trains it under a :class:`TrainingConfig` (epochs, batch size, optimiser,
early stopping, accelerator, devices, strategy, precision, seed), with data read from
AnnData by :class:`AnnDataRows` without densifying the whole matrix, safetensors + JSON
checkpoints and resumption, and multi-process data-parallel training (``strategy="ddp"``).
"""

from __future__ import annotations

from transferome.training.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from transferome.training.config import LossError, TrainingConfig, TrainingConfigError
from transferome.training.data import (
    AnnDataRows,
    IndexBatchSampler,
    TensorRows,
    supports_batched_indexing,
)
from transferome.training.engine import TrainingResult, fit_module

__all__ = [
    "AnnDataRows",
    "Checkpoint",
    "IndexBatchSampler",
    "LossError",
    "TensorRows",
    "TrainingConfig",
    "TrainingConfigError",
    "TrainingResult",
    "fit_module",
    "read_checkpoint",
    "supports_batched_indexing",
    "write_checkpoint",
]

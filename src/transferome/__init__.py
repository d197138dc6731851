"""transferome: predict perturbation responses in contexts where they were never measured.

Namespaces: :mod:`transferome.data` (schema, readers, preprocessing, splits),
:mod:`transferome.datasets` (simulator and real-data loaders), :mod:`transferome.models`,
:mod:`transferome.metrics`, :mod:`transferome.benchmark`, :mod:`transferome.crossspecies`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from transferome.errors import (
    DataValidationError,
    ModelFileError,
    ReaderError,
    TransferomeError,
)

try:
    __version__ = version("transferome")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "DataValidationError",
    "ModelFileError",
    "ReaderError",
    "TransferomeError",
    "__version__",
]

"""Data layer: schema and validation, readers and writers, preprocessing, splits."""

from __future__ import annotations

from transferome.data._atomic import atomic_path, atomic_write_text
from transferome.data.io import read, read_h5ad, write_h5ad
from transferome.data.schema import (
    DatasetDescription,
    Schema,
    ValueType,
    detect_value_type,
    obs_labels,
    split_combination,
    validate,
)

__all__ = [
    "DatasetDescription",
    "Schema",
    "ValueType",
    "atomic_path",
    "atomic_write_text",
    "detect_value_type",
    "obs_labels",
    "read",
    "read_h5ad",
    "split_combination",
    "validate",
    "write_h5ad",
]

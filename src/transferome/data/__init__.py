"""Data layer: schema and validation, readers and writers, preprocessing, splits."""

from __future__ import annotations

from transferome.data._atomic import atomic_path, atomic_write_text, make_temporary_folder
from transferome.data._spreadsheet import spreadsheet_safe
from transferome.data.io import (
    read,
    read_10x_mtx,
    read_gct,
    read_h5ad,
    read_metadata,
    read_table,
    write,
    write_10x_mtx,
    write_gct,
    write_h5ad,
    write_table,
)
from transferome.data.preprocess import (
    VALUES,
    GeneSet,
    PreparedValues,
    prepare_values,
    preprocess,
    project_genes,
)
from transferome.data.schema import (
    DatasetDescription,
    Schema,
    ValueType,
    detect_value_type,
    obs_labels,
    split_combination,
    validate,
)
from transferome.data.species import MultiSpecies, ortholog_links

__all__ = [
    "VALUES",
    "DatasetDescription",
    "GeneSet",
    "MultiSpecies",
    "PreparedValues",
    "Schema",
    "ValueType",
    "atomic_path",
    "atomic_write_text",
    "detect_value_type",
    "make_temporary_folder",
    "obs_labels",
    "ortholog_links",
    "prepare_values",
    "preprocess",
    "project_genes",
    "read",
    "read_10x_mtx",
    "read_gct",
    "read_h5ad",
    "read_metadata",
    "read_table",
    "split_combination",
    "spreadsheet_safe",
    "validate",
    "write",
    "write_10x_mtx",
    "write_gct",
    "write_h5ad",
    "write_table",
]

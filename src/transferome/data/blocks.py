"""The rows of an expression matrix a block at a time, in memory or in a file on disk.

The public home of the streaming helpers the other layers read data with (the models, the
metrics, the training engine): an AnnData read with ``read_h5ad(path, backed=True)`` keeps
``X`` in the file, and these read it a block of rows at a time instead of whole.
"""

from __future__ import annotations

from transferome.data._backed import dense_values, in_memory, is_backed, lazy
from transferome.data._stream import (
    dense,
    dense_rows,
    iter_row_blocks,
    memory_block,
    on_disk,
    read_rows,
    row_stats,
    stored_source,
)

__all__ = [
    "dense",
    "dense_rows",
    "dense_values",
    "in_memory",
    "is_backed",
    "iter_row_blocks",
    "lazy",
    "memory_block",
    "on_disk",
    "read_rows",
    "row_stats",
    "stored_source",
]

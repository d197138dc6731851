"""The settings of the built-in run: the models' hyperparameters and the simulated data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Hyperparameters of the default (full) run, sized for a laptop CPU; --quick uses each
# model's ``fast_params``.
_FULL_PARAMS: dict[str, dict[str, Any]] = {
    "fe": {
        "embedding_dim": 16,
        "hidden": [64, 32],
        "max_epochs": 6,
        "batch_size": 64,
        "gene_block": 512,
        "lr": 5e-3,
        "transform_epochs": 15,
    },
    "xtransfer": {
        "hidden": [128, 64],
        "latent_dim": 32,
        "max_epochs": 6,
        "batch_size": 64,
        "lr": 1e-3,
        "lr_step_size": None,
    },
    "uge": {
        "n_tokens": 48,
        "n_decode": 256,
        "d_model": 32,
        "n_layers": 2,
        "n_heads": 4,
        "d_ff": 64,
        "max_epochs": 10,
        "lr": 2e-3,
    },
}
# On top of ``fast_params`` for --quick: larger blocks (fewer optimiser steps per epoch).
_QUICK_OVERRIDES: dict[str, dict[str, Any]] = {
    "fe": {"batch_size": 64, "gene_block": 128, "max_epochs": 5, "transform_epochs": 15},
    "xtransfer": {"max_epochs": 5},
    "uge": {"max_epochs": 6, "batch_size": 32},
}
_QUICK_SIMULATION = {
    "bulk": {"mode": "bulk", "n_genes": 300, "animals_per_group": 3},
    "single_cell": {
        "mode": "single_cell",
        "n_genes": 300,
        "cells_per_group": 10,
        "drugs": ["drug_01", "drug_02", "drug_03", "drug_04"],
        "combinations": 2,
    },
}
_FULL_SIMULATION = {
    "bulk": {"mode": "bulk", "n_genes": 1000, "animals_per_group": 6},
    "single_cell": {
        "mode": "single_cell",
        "n_genes": 500,
        "cells_per_group": 20,
        "drugs": [f"drug_{i:02d}" for i in range(1, 7)],
        "combinations": 3,
    },
}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value

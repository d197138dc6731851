"""Model folders of the universal gene embedding: safetensors weights + JSON metadata.

The folder holds the network's state (with the ortholog group of every gene), the description
standardisation, each species' token genes (and their value scaling) and the group latents
(arrays), and the network config, schema, species, gene names,
description columns, classes and training history (JSON). No pickle.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from transferome.data.schema import Schema
from transferome.models._neural import history_from_json, history_to_json
from transferome.models._persist import (
    check_described,
    check_params_match,
    restore_module,
    write_model_files,
)
from transferome.models.uge.network import UGEConfig, UGENetwork

if TYPE_CHECKING:
    from transferome.models.uge.estimator import UniversalGeneEmbedding

__all__ = ["read_files", "write_files"]

# Hyperparameters that are also fields of the network description (a saved model must agree).
_ARCHITECTURE = (
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "dropout",
    "mask_fraction",
    "ecs_weight",
    "ecs_beta",
    "class_weight",
    "residual_weight",
    "tie_weight",
    "alignment",
    "alignment_weight",
    "pooled_cls",
)


def write_files(model: UniversalGeneEmbedding, path: str | os.PathLike[str]) -> Path:
    """Write a fitted model's folder and return it."""
    arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in model.network_.state_dict().items()}
    arrays["description_mean"] = np.asarray(model.description_mean_, dtype=np.float64)
    arrays["description_scale"] = np.asarray(model.description_scale_, dtype=np.float64)
    for species in model.species_:
        arrays[f"tokens.{species}"] = np.asarray(model.tokens_[species], dtype=np.int64)
        if model.token_scaling_ is not None:
            mean, scale = model.token_scaling_[species]
            arrays[f"token_mean.{species}"] = np.asarray(mean, dtype=np.float32)
            arrays[f"token_scale.{species}"] = np.asarray(scale, dtype=np.float32)
    latents = model.group_latents_
    arrays["group_latents"] = latents.drop(columns="n").to_numpy(dtype=np.float32)
    arrays["group_sizes"] = latents["n"].to_numpy(dtype=np.int64)
    extra = {
        "config": model.network_.config.__dict__,
        "schema": model.schema_.to_dict(),
        "species": list(model.species_),
        "species_var_names": model.var_names_,
        "offsets": model.offsets_,
        "description_columns": list(model.description_columns_),
        "classes": list(model.classes_),
        "external_categories": list(model.external_categories_),
        "groups": [list(map(str, key)) for key in latents.index],
        **history_to_json(model.history_),
    }
    all_genes = [f"{s}:{g}" for s in model.species_ for g in model.var_names_[s]]
    return write_model_files(
        path,
        model_class=type(model).__name__,
        params=model.get_params(),
        arrays=arrays,
        var_names=all_genes,
        extra=extra,
    )


def read_files(
    cls: type[UniversalGeneEmbedding],
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> UniversalGeneEmbedding:
    """Build the model described by ``meta`` and ``arrays`` (a folder of :func:`write_files`)."""
    extra = meta["extra"]
    model = cls(**meta["params"])
    config = UGEConfig(**extra["config"])
    check_params_match(path, meta["params"], extra["config"], _ARCHITECTURE)
    var_names = {s: list(v) for s, v in extra["species_var_names"].items()}
    check_described(
        path,
        "genes",
        sum(len(v) for v in var_names.values()),
        config.n_genes,
        "the network's n_genes",
    )
    check_described(
        path,
        "description columns",
        len(extra["description_columns"]),
        config.n_features,
        "the network's n_features",
    )
    check_described(
        path, "classes", len(extra["classes"]), config.n_classes, "the network's n_classes"
    )
    model.network_ = restore_module(lambda: UGENetwork(config), arrays, path, prefix="net.")
    model.schema_ = Schema.from_dict(extra["schema"])
    model.species_ = tuple(extra["species"])
    model.var_names_ = var_names
    model.tokens_ = {s: arrays[f"tokens.{s}"] for s in model.species_}
    model.token_scaling_ = None
    if model.values == "standardised":
        model.token_scaling_ = {
            s: (arrays[f"token_mean.{s}"], arrays[f"token_scale.{s}"]) for s in model.species_
        }
    model.offsets_ = {s: int(v) for s, v in extra["offsets"].items()}
    model.description_columns_ = list(extra["description_columns"])
    model.description_mean_ = arrays["description_mean"]
    model.description_scale_ = arrays["description_scale"]
    model.classes_ = list(extra["classes"])
    model.external_categories_ = list(extra["external_categories"])
    index = pd.MultiIndex.from_tuples(
        [tuple(g) for g in extra["groups"]], names=["species", "context", "perturbation"]
    )
    latents = pd.DataFrame(arrays["group_latents"], index=index)
    latents["n"] = arrays["group_sizes"]
    model.group_latents_ = latents
    model.history_ = history_from_json(extra)
    return model

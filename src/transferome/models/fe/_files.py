"""The model files of :class:`~transferome.models.fe.FactorizedEmbedding` (safetensors + JSON)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from transferome.data.schema import Schema
from transferome.models._neural import history_from_json, history_to_json
from transferome.models._persist import (
    check_described,
    check_params_match,
    restore_module,
    write_model_files,
)
from transferome.models.fe.network import FEConfig, FEModule

if TYPE_CHECKING:
    from transferome.models.fe.estimator import FactorizedEmbedding

TUPLE_PARAMS = ("hidden",)


def write_files(model: FactorizedEmbedding, path: str | os.PathLike[str]) -> Path:
    """Write the fitted ``model`` (its weights, descriptors and training history) to ``path``."""
    arrays = {f"module.{k}": v.detach().numpy() for k, v in model.module_.state_dict().items()}
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in model.get_params().items()}
    extra = {
        "config": model.module_.config.to_dict(),
        "schema": model.schema_.to_dict(),
        "obs_names": model.obs_names_,
        "factor_keys": model.factor_keys_,
        "factor_levels": model.factor_levels_,
        "var_factor_keys": model.var_factor_keys_,
        "var_factor_levels": model.var_factor_levels_,
        "train_labels": {k: v.tolist() for k, v in model.train_labels_.items()},
        **history_to_json(model.history_),
    }
    return write_model_files(
        path,
        model_class=type(model).__name__,
        params=params,
        arrays=arrays,
        var_names=model.var_names_,
        extra=extra,
    )


def read_files(
    cls: type[FactorizedEmbedding],
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> FactorizedEmbedding:
    """Build the model described by ``meta`` and ``arrays``, checked against each other."""
    params = dict(meta["params"])
    for name in TUPLE_PARAMS:
        params[name] = tuple(params[name])
    model = cls(**params)
    extra = meta["extra"]
    config = FEConfig.from_dict(extra["config"])
    check_params_match(path, params, config.to_dict(), ("embedding_dim", "hidden", "activation"))
    var_names = list(meta["var_names"])
    obs_names = list(extra["obs_names"])
    check_described(path, "genes", len(var_names), config.n_genes, "the network's n_genes")
    check_described(path, "samples", len(obs_names), config.n_samples, "the network's n_samples")
    factor_keys = list(extra["factor_keys"])
    factor_levels = {k: list(v) for k, v in extra["factor_levels"].items()}
    var_factor_keys = list(extra["var_factor_keys"])
    var_factor_levels = {k: list(v) for k, v in extra["var_factor_levels"].items()}
    for keys, levels, counts, side in (
        (factor_keys, factor_levels, config.obs_factor_levels, "obs_factor_levels"),
        (var_factor_keys, var_factor_levels, config.var_factor_levels, "var_factor_levels"),
    ):
        check_described(path, "factors", len(keys), len(counts), f"the length of {side}")
        for key, count in zip(keys, counts, strict=True):
            check_described(
                path, f"levels of {key!r}", len(levels[key]), count, f"its entry of {side}"
            )
    train_labels = {k: np.asarray(v, dtype=str) for k, v in extra["train_labels"].items()}
    for key, labels in train_labels.items():
        check_described(
            path,
            f"training labels of {key!r}",
            len(labels),
            config.n_samples,
            "the network's n_samples",
        )
    model.module_ = restore_module(lambda: FEModule(config), arrays, path, prefix="module.")
    model.schema_ = Schema.from_dict(extra["schema"])
    model.var_names_ = var_names
    model.obs_names_ = obs_names
    model.factor_keys_ = factor_keys
    model.factor_levels_ = factor_levels
    model.var_factor_keys_ = var_factor_keys
    model.var_factor_levels_ = var_factor_levels
    model.train_labels_ = train_labels
    model.history_ = history_from_json(extra)
    return model

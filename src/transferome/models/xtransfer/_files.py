"""The model files of :class:`~transferome.models.xtransfer.XTransfer` (safetensors + JSON)."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from transferome.data.schema import Schema
from transferome.models._neural import history_from_json, history_to_json
from transferome.models._persist import (
    check_described,
    check_params_match,
    restore_module,
    stored_array,
    write_model_files,
)
from transferome.models.xtransfer.network import XTransferConfig, XTransferModule

if TYPE_CHECKING:
    from transferome.models.xtransfer.estimator import XTransfer

# Hyperparameters that are also fields of the network description (a saved model must agree).
ARCHITECTURE = tuple(f.name for f in fields(XTransferConfig) if f.name != "n_genes")


def write_files(model: XTransfer, path: str | os.PathLike[str]) -> Path:
    """Write the fitted ``model`` (weights, perturbation latents, training history) to ``path``."""
    arrays = {
        f"module.{k}": v.detach().cpu().numpy() for k, v in model.module_.state_dict().items()
    }
    arrays["perturbation_latents"] = model.perturbation_latents_
    params = model.get_params()
    params["hidden"] = [int(h) for h in model.hidden]
    return write_model_files(
        path,
        model_class=type(model).__name__,
        params=params,
        arrays=arrays,
        var_names=model.var_names_,
        extra={
            "schema": model.schema_.to_dict(),
            "module_config": model.module_.config.to_dict(),
            "perturbations": model.perturbations_,
            "n_pairs": model.n_pairs_,
            **history_to_json(model.history_),
        },
    )


def read_files(
    cls: type[XTransfer],
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> XTransfer:
    """Build the model described by ``meta`` and ``arrays``, checked against each other."""
    params = dict(meta["params"])
    params["hidden"] = tuple(params["hidden"])
    model = cls(**params)
    extra = meta["extra"]
    config = XTransferConfig.from_dict(extra["module_config"])
    check_params_match(path, params, config.to_dict(), ARCHITECTURE)
    var_names = list(meta["var_names"])
    check_described(path, "genes", len(var_names), config.n_genes, "the network's n_genes")
    perturbations = list(extra["perturbations"])
    latents = stored_array(
        arrays,
        "perturbation_latents",
        path,
        shape=(len(perturbations), config.latent_dim),
        what="its perturbations and latent_dim",
    )
    module = restore_module(lambda: XTransferModule(config), arrays, path, prefix="module.")
    model.module_ = module
    model.schema_ = Schema.from_dict(extra["schema"])
    model.var_names_ = var_names
    model.perturbations_ = perturbations
    model.perturbation_latents_ = np.asarray(latents, np.float32)
    model.n_pairs_ = int(extra["n_pairs"])
    model.history_ = history_from_json(extra)
    return model

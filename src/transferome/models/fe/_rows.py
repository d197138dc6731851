"""The array work behind :class:`~transferome.models.fe.FactorizedEmbedding`.

Labels to codes, embeddings to predicted rows, and the centroid shifts of vector arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from transferome.errors import DataValidationError
from transferome.models._persist import check_var_names
from transferome.models.fe.data import values_and_mask
from transferome.models.fe.network import FEModule, embed_samples

if TYPE_CHECKING:
    from transferome.models.fe.estimator import FactorizedEmbedding

PRED_CHUNK = 2**22  # values per prediction chunk (bounds memory)


def predict_rows(module: FEModule, z: np.ndarray, vectors: list[np.ndarray]) -> np.ndarray:
    """Compute the network's values of every gene for embeddings ``z`` and rows ``vectors``.

    ``z`` are the sample embeddings and ``vectors`` the descriptor rows; a chunk of rows at a
    time (bounded memory).
    """
    n_genes = module.config.n_genes
    out = np.empty((len(z), n_genes), dtype=np.float32)
    width = max(module.config.hidden[0], 1)
    chunk = max(1, PRED_CHUNK // (n_genes * width) + 1)
    with torch.no_grad():
        gene_h = module.gene_side(torch.arange(n_genes))
        for start in range(0, len(z), chunk):
            # Copies: the descriptor rows may be read-only broadcast views.
            parts = [
                torch.tensor(np.array(a[start : start + chunk], dtype=np.float32))
                for a in (z, *vectors)
            ]
            sample_h = module.first_sample(torch.cat(parts, dim=1))
            out[start : start + chunk] = module.head(sample_h, gene_h).numpy()
    return out


def centroid_shift(
    z: np.ndarray,
    labels: np.ndarray,
    source: str,
    target: str,
    *,
    groups: np.ndarray | None,
    within: str | None,
) -> np.ndarray:
    """``centroid(target) - centroid(source)``, averaged over ``groups`` having both."""
    if groups is None:
        return z[labels == target].mean(axis=0) - z[labels == source].mean(axis=0)
    shifts = []
    for group in np.unique(groups):
        in_group = groups == group
        src, tgt = in_group & (labels == source), in_group & (labels == target)
        if src.any() and tgt.any():
            shifts.append(z[tgt].mean(axis=0) - z[src].mean(axis=0))
    if not shifts:
        raise DataValidationError(
            f"no group of {within!r} holds both {source!r} and {target!r} rows; "
            "vector arithmetic needs at least one"
        )
    return np.mean(shifts, axis=0)


def arithmetic_shift(
    z: np.ndarray,
    contexts: np.ndarray,
    perturbations: np.ndarray,
    *,
    control: str,
    context: str,
    perturbation: str,
) -> np.ndarray:
    """Compute the shift of vector arithmetic for ``perturbation`` in ``context``.

    It is the mean, over the training contexts other than ``context`` that measured
    ``perturbation``, of its centroid minus the control's.
    """
    keep = np.isin(perturbations, [control, perturbation]) & (contexts != context)
    if not (perturbations[keep] == perturbation).any():
        raise DataValidationError(
            f"perturbation {perturbation!r} was not measured in any training context other "
            f"than {context!r}; vector arithmetic has no shift to transfer"
        )
    return centroid_shift(
        z[keep], perturbations[keep], control, perturbation, groups=contexts[keep], within="context"
    )


def column_labels(frame: pd.DataFrame, key: str, axis: str) -> np.ndarray:
    if key not in frame.columns:
        raise DataValidationError(
            f"{axis} key {key!r} is missing; {axis} has columns {list(map(str, frame.columns))}"
        )
    column = frame[key]
    if column.isna().any():
        raise DataValidationError(
            f"{axis} key {key!r} has {int(column.isna().sum())} missing labels"
        )
    return column.astype(str).to_numpy()


def encode(labels: np.ndarray, levels: list[str], key: str, axis: str) -> np.ndarray:
    lookup = {level: i for i, level in enumerate(levels)}
    unknown = sorted({v for v in labels if v not in lookup})
    if unknown:
        raise DataValidationError(
            f"{axis}[{key!r}] has values not seen in fit: {unknown[:10]}; known: {levels[:20]}"
        )
    return np.fromiter((lookup[v] for v in labels), dtype=np.int64, count=len(labels))


def subset_mask(mask: np.ndarray | str | None, rows: np.ndarray) -> np.ndarray | str | None:
    if mask is None or isinstance(mask, str):
        return mask
    return np.asarray(mask)[rows]


def profile_adata(values: np.ndarray, obs: pd.DataFrame, var_names: Sequence[str]) -> AnnData:
    return AnnData(
        X=np.asarray(values, dtype=np.float32),
        obs=obs,
        var=pd.DataFrame(index=[str(g) for g in var_names]),
    )


def embed_rows(
    model: FactorizedEmbedding,
    adata: AnnData,
    *,
    layer: str | None = None,
    mask: np.ndarray | str | None = None,
    use_learned: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the sample embeddings and descriptor codes of the rows of ``adata``.

    A row seen in ``fit`` takes its learned embedding (when ``use_learned``), any other one
    fitted with the network frozen.
    """
    if not isinstance(adata, AnnData):
        raise DataValidationError(f"expected an AnnData, got {type(adata).__name__}")
    check_var_names(model.var_names_, adata.var_names, what="data")
    labels = {k: column_labels(adata.obs, k, "obs") for k in model.factor_keys_}
    codes = model._codes(labels, adata.n_obs)
    index = {name: i for i, name in enumerate(model.obs_names_)} if use_learned else {}
    rows = np.array([index.get(str(o), -1) for o in adata.obs_names], dtype=np.int64)
    learned = model.module_.sample_embedding.weight.detach().numpy()
    z = np.zeros((adata.n_obs, learned.shape[1]), dtype=np.float32)
    z[rows >= 0] = learned[rows[rows >= 0]]
    new = np.flatnonzero(rows < 0)
    if len(new):
        values, observed = values_and_mask(adata[new], layer=layer, mask=subset_mask(mask, new))
        z[new] = embed_samples(
            model.module_,
            values,
            observed,
            codes[new],
            epochs=int(model.transform_epochs),
            lr=float(model.transform_lr),
            gene_block=int(model.gene_block),
        )
    return z, codes

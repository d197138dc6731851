"""The training pairs of XTransfer as a torch dataset, and what starts and weights its output.

The gene means that start its output, and the weight of its anchored correction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from transferome.data.pairing import Pairs

__all__ = ["ENCODE_BATCH", "PairRows", "anchor_weight", "gene_means"]

ENCODE_BATCH = 2048  # rows encoded at a time


def gene_means(rows: Any) -> np.ndarray:
    """Mean of every gene over all rows, read a chunk at a time."""
    total = np.zeros(rows.n_vars, dtype=np.float64)
    for start in range(0, len(rows), ENCODE_BATCH):
        chunk = rows[np.arange(start, min(start + ENCODE_BATCH, len(rows)))]["x"]
        total += chunk.double().sum(dim=0).numpy()
    return (total / max(len(rows), 1)).astype(np.float32)


def anchor_weight(observed: np.ndarray, decoded: np.ndarray) -> float:
    """Weight of the model's correction, fitted by leaving each source context out.

    Each source context ``c`` is predicted from the others as
    ``mean_{c' != c}(observed) + w * (decoded_c - mean_{c' != c}(decoded))``; ``w`` is the
    least-squares weight over all sources and genes, clipped to ``[0, 1]`` (1 with fewer than
    two sources, where nothing can be left out; 0 when the decoded changes do not differ).
    """
    n = observed.shape[0]
    if n < 2:
        return 1.0
    cross, norm = 0.0, 0.0
    for c in range(n):
        rest = np.arange(n) != c
        residual = observed[c] - observed[rest].mean(axis=0)
        correction = decoded[c] - decoded[rest].mean(axis=0)
        cross += float(residual @ correction)
        norm += float(correction @ correction)
    if norm <= 0.0:
        return 0.0
    return float(np.clip(cross / norm, 0.0, 1.0))


class PairRows(torch.utils.data.Dataset):
    """Torch dataset of training pairs: items hold ``x_a``, ``x_b``, ``control_a``, ``control_b``.

    Indexed a whole batch at a time (``batched_indexing``): the rows of the four members are
    read from ``rows`` (an :class:`~transferome.training.AnnDataRows`) in one slice.
    """

    batched_indexing = True

    def __init__(self, rows: Any, pairs: Pairs) -> None:
        self.rows = rows
        self.index = np.stack([pairs.a, pairs.b, pairs.control_a, pairs.control_b], axis=1)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __getitem__(self, index: Any) -> dict[str, torch.Tensor]:
        scalar = np.ndim(index) == 0
        chosen = self.index[np.atleast_1d(np.asarray(index, dtype=np.int64))]
        unique, inverse = np.unique(chosen.reshape(-1), return_inverse=True)
        x = self.rows[unique]["x"][torch.from_numpy(inverse.reshape(chosen.shape))]
        item = {name: x[:, j] for j, name in enumerate(("x_a", "x_b", "control_a", "control_b"))}
        return {k: v[0] for k, v in item.items()} if scalar else item

"""The training data of Factorized Embeddings.

Observed values in blocks of samples x genes, held in memory or read from an on-disk file, and
the PCA start of the embeddings.

In memory (:func:`training_data` on an in-memory AnnData, or a boolean mask array) the values
become one dense float32 array and :class:`~transferome.models.fe.network.FEBlocks` cuts it into
blocks of randomly drawn samples and genes.

From a file (``read_h5ad(path, backed=True)``, or a view of one) the matrix is never held
whole: :class:`StoredBlocks` reads it a chunk of consecutive rows at a time and cuts each chunk
into blocks of its own rows; the engine's sampler visits the chunks in a random order and the
blocks of a few chunks at a time in a random order, so every chunk is read once per epoch. The
PCA start (:func:`stored_start`) takes its gene loadings from up to :data:`PCA_ROWS` rows drawn
at random and projects every row onto them in one pass; on a file of at most that many rows it
is the PCA of :func:`~transferome.models.fe.network.pca_embeddings`. The entries held out to
monitor early stopping are drawn per block from the seed, so training and validation blocks
read the same chunk and agree on which entries each holds.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from anndata import AnnData

from transferome.data.blocks import (
    dense,
    dense_rows,
    dense_values,
    iter_row_blocks,
    memory_block,
    on_disk,
    read_rows,
    stored_source,
)
from transferome.data.schema import check_matrix
from transferome.errors import DataValidationError
from transferome.models.fe.network import FEBlocks, pca_embeddings

__all__ = [
    "PCA_ROWS",
    "StoredBlocks",
    "TrainingData",
    "stored_start",
    "training_data",
    "values_and_mask",
]

# Rows drawn for the gene loadings of the PCA start of on-disk data.
PCA_ROWS = 8192
# Rows per read of an on-disk matrix, and how many such chunks stay in memory (the engine's
# sampler mixes the blocks of 4 chunks at a time).
CHUNK_ROWS = 1024
CACHE_CHUNKS = 6
# Consecutive rows read together: a chunk gathers CHUNK_ROWS / STRIPE_ROWS such stripes.
STRIPE_ROWS = 32


@dataclass(frozen=True)
class TrainingData:
    """What :meth:`FactorizedEmbedding.fit` trains on.

    Attributes
    ----------
    train, val
        Datasets of blocks (``val`` is ``None`` without early stopping).
    mean_value
        Mean of the observed values (the start of the output bias).
    start
        PCA sample and gene embeddings, or ``None`` (random start).
    """

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset | None
    mean_value: float
    start: tuple[np.ndarray, np.ndarray] | None


def _check_mask_layer(adata: AnnData, mask: str) -> None:
    if mask not in adata.layers:
        raise DataValidationError(f"mask layer {mask!r} not found; layers: {list(adata.layers)}")


def values_and_mask(
    adata: AnnData, *, layer: str | None, mask: np.ndarray | str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Dense float32 values (missing entries set to 0) and the observed mask (None: all)."""
    check_matrix(adata, layer)
    values = dense_values(adata, layer=layer, what="FactorizedEmbedding")
    if isinstance(mask, str):
        _check_mask_layer(adata, mask)
        mask = dense_values(adata, layer=mask, what="FactorizedEmbedding").astype(bool)
    finite = np.isfinite(values)
    if mask is None:
        observed = None if finite.all() else finite
    else:
        observed = np.asarray(mask)
        if observed.shape != values.shape or observed.dtype != bool:
            raise DataValidationError(
                f"mask must be a boolean array of shape {values.shape}, got "
                f"{observed.dtype} {observed.shape}"
            )
        bad = observed & ~finite
        if bad.any():
            raise DataValidationError(
                f"{int(bad.sum())} entries marked observed by the mask are NaN or infinite"
            )
    if observed is not None:
        if not observed.any():
            raise DataValidationError("the mask marks no entry as observed")
        values[~observed] = 0.0
    return values, observed


def training_data(
    adata: AnnData,
    *,
    layer: str | None,
    mask: np.ndarray | str | None,
    obs_factors: np.ndarray,
    dim: int,
    pca: bool,
    sample_block: int,
    gene_block: int,
    validation_fraction: float | None,
    seed: int,
) -> TrainingData:
    """Blocks to train on, the mean observed value and the PCA start.

    An on-disk matrix (with ``mask`` ``None`` or a layer name) streams through
    :class:`StoredBlocks`; anything else is read into one dense array (see the module
    docstring). ``validation_fraction`` ``None``: no validation blocks.
    """
    check_matrix(adata, layer)
    stored, _, _ = stored_source(adata, layer)
    if on_disk(stored) and not isinstance(mask, np.ndarray):
        if isinstance(mask, str):
            _check_mask_layer(adata, mask)
        start, mean_value = stored_start(
            adata, layer=layer, mask_layer=mask, dim=dim, pca=pca, seed=seed
        )

        def stored_blocks(held: tuple[float, str] | None) -> StoredBlocks:
            return StoredBlocks(
                adata,
                layer=layer,
                mask_layer=mask,
                obs_factors=obs_factors,
                sample_block=sample_block,
                gene_block=gene_block,
                seed=seed,
                held=held,
            )

        if validation_fraction is None:
            return TrainingData(stored_blocks(None), None, mean_value, start)
        fraction = float(validation_fraction)
        train, val = (stored_blocks((fraction, part)) for part in ("train", "val"))
        return TrainingData(train, val, mean_value, start)

    values, observed = values_and_mask(adata, layer=layer, mask=mask)
    start = pca_embeddings(values, observed, dim, seed=seed) if pca else None
    mean_value = float(values.mean() if observed is None else values[observed].mean())
    train_mask, val_mask = observed, None
    if validation_fraction is not None:
        rng = np.random.default_rng(seed)
        held = rng.random(values.shape) < float(validation_fraction)
        all_observed = np.ones_like(held) if observed is None else observed
        train_mask, val_mask = all_observed & ~held, all_observed & held

    def memory_blocks(part_mask: np.ndarray | None) -> FEBlocks:
        return FEBlocks(
            values,
            part_mask,
            obs_factors,
            sample_block=int(sample_block),
            gene_block=int(gene_block),
            seed=seed,
        )

    val_blocks = None if val_mask is None else memory_blocks(val_mask)
    return TrainingData(memory_blocks(train_mask), val_blocks, mean_value, start)


def _observed_block(
    adata: AnnData, positions: np.ndarray, block: Any, mask_layer: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Dense float32 values of a block of rows and which of them are observed."""
    x = dense(block)
    observed = np.isfinite(x)
    if mask_layer is not None:
        marked = dense(read_rows(adata, positions, layer=mask_layer), bool)
        bad = marked & ~observed
        if bad.any():
            raise DataValidationError(
                f"{int(bad.sum())} entries marked observed by the mask are NaN or infinite"
            )
        observed = marked
    return x, observed


def _rms(sum_sq: float, size: int) -> float:
    """Root mean square of ``size`` values whose squares sum to ``sum_sq`` (never 0)."""
    return max(float(np.sqrt(sum_sq / max(size, 1))), 1e-12)


def stored_start(
    adata: AnnData,
    *,
    layer: str | None,
    mask_layer: str | None,
    dim: int,
    pca: bool,
    seed: int,
    sample_rows: int | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray] | None, float]:
    """PCA start (or ``None`` without ``pca``) and mean observed value of on-disk data.

    The gene loadings come from the SVD of up to ``sample_rows`` rows drawn at random
    (unobserved entries filled with their gene's mean over those rows, as
    :func:`~transferome.models.fe.network.pca_embeddings` does), and every row's sample
    embedding is its centred values projected onto them, ``x V S^-1/2`` (which is ``U
    S^1/2`` on the drawn rows), in one pass over the file. Each table is rescaled to unit
    root mean square; dimensions beyond the rank are drawn from ``N(0, 0.1^2)``.
    """
    n, n_genes = adata.n_obs, adata.n_vars
    sample_rows = int(sample_rows or PCA_ROWS)
    rng = np.random.default_rng(seed)
    basis = means = None
    genes = None
    k = 0
    if pca:
        drawn = (
            np.arange(n) if n <= sample_rows else np.sort(rng.choice(n, sample_rows, replace=False))
        )
        x, observed = _observed_block(
            adata, drawn, read_rows(adata, drawn, layer=layer), mask_layer
        )
        x = x.astype(np.float64)
        counts = observed.sum(axis=0)
        means = np.where(observed, x, 0.0).sum(axis=0) / np.maximum(counts, 1)
        _, s, vt = np.linalg.svd(np.where(observed, x - means, 0.0), full_matrices=False)
        k = min(int(dim), int(np.sum(s > s[0] * 1e-6)) if s.size and s[0] > 0 else 0)
        genes = rng.normal(0.0, 0.1, (n_genes, int(dim)))
        if k:
            part = vt[:k].T * np.sqrt(s[:k])[None, :]
            genes[:, :k] = part / _rms(float(np.sum(part**2)), part.size)
            basis = vt[:k].T / np.sqrt(s[:k])[None, :]
        genes = genes.astype(np.float32)
    samples = np.empty((n, int(dim)), dtype=np.float32) if pca else None
    total, count, sum_sq = 0.0, 0, 0.0
    for b, (positions, block) in enumerate(iter_row_blocks(adata, layer=layer)):
        x, observed = _observed_block(adata, positions, block, mask_layer)
        total += float(x[observed].sum(dtype=np.float64))
        count += int(observed.sum())
        if samples is None:
            continue
        filler = np.random.default_rng([seed, b]).normal(0.0, 0.1, (len(positions), int(dim)))
        if basis is not None:
            projected = np.where(observed, x - means, 0.0) @ basis
            filler[:, :k] = projected
            sum_sq += float(np.sum(projected**2))
        samples[positions] = filler
    if count == 0:
        raise DataValidationError("the mask marks no entry as observed")
    if samples is not None and basis is not None:
        samples[:, :k] /= _rms(sum_sq, n * k)
    if samples is None or genes is None:
        return None, total / count
    return (samples, genes), total / count


class StoredBlocks(torch.utils.data.Dataset):
    """Blocks of samples x genes of an on-disk matrix, read a chunk of rows at a time.

    The rows are cut into stripes of ``stripe_rows`` consecutive rows, and the stripes, in an
    order drawn from ``seed``, into chunks of ``chunk_rows`` rows: a chunk is read in one
    pass of a few scattered runs, and its rows come from all over the file (a file sorted by
    condition still gives blocks of mixed conditions). Each chunk's rows are shuffled and cut
    into sample blocks, the genes into gene blocks shared by every chunk. Items are numbered
    chunk by chunk, :attr:`chunk_size` per full chunk, so the engine's sampler (which reads
    that attribute) keeps the blocks of a few chunks together and each chunk is read once per
    epoch. Items are those of :class:`~transferome.models.fe.network.FEBlocks`: ``x``
    (unobserved entries 0), ``sample``, ``gene``, ``obs_factors`` and ``mask`` (where some
    entry is not observed).

    Parameters
    ----------
    adata
        A backed AnnData or a view of one (never modified).
    layer, mask_layer
        Read values from this layer instead of ``X``; the layer marking observed entries
        (default: the finite values).
    obs_factors
        Integer codes ``(n_obs, k)`` of the extra sample-side factors.
    sample_block, gene_block
        Block sizes.
    seed
        Seed of the stripes' order, of the shuffles and of the held-out entries.
    held
        ``(fraction, "train" | "val")``: leave out (``"train"``) or keep only (``"val"``) a
        random ``fraction`` of each block's entries, drawn from the seed and the block.
    chunk_rows, stripe_rows, cache_chunks
        Rows per chunk (rounded to whole stripes), consecutive rows per stripe and chunks
        kept in memory (defaults :data:`CHUNK_ROWS`, :data:`STRIPE_ROWS`,
        :data:`CACHE_CHUNKS`).
    """

    def __init__(  # noqa: PLR0913 - what and how to read, all keyword-only
        self,
        adata: AnnData,
        *,
        layer: str | None,
        mask_layer: str | None,
        obs_factors: np.ndarray,
        sample_block: int,
        gene_block: int,
        seed: int = 0,
        held: tuple[float, str] | None = None,
        chunk_rows: int | None = None,
        stripe_rows: int | None = None,
        cache_chunks: int | None = None,
    ) -> None:
        if held is not None and held[1] not in ("train", "val"):
            raise ValueError(f"held part must be 'train' or 'val', got {held[1]!r}")
        self.adata, self.layer, self.mask_layer = adata, layer, mask_layer
        self.obs_factors = torch.as_tensor(np.asarray(obs_factors, dtype=np.int64))
        self.sample_block = max(1, int(sample_block))
        self.cache_chunks = max(1, int(cache_chunks or CACHE_CHUNKS))
        self.seed, self.held = int(seed), held
        rng = np.random.default_rng(self.seed)
        genes = rng.permutation(adata.n_vars)
        step = max(1, int(gene_block))
        self.gene_blocks = [genes[i : i + step] for i in range(0, len(genes), step)]
        # whole stripes in a drawn order; a last, shorter stripe goes last
        n = adata.n_obs
        stripe = max(1, int(stripe_rows or STRIPE_ROWS))
        per_chunk = max(1, -(-max(int(chunk_rows or CHUNK_ROWS), self.sample_block) // stripe))
        n_full = n // stripe
        starts = np.concatenate(
            [rng.permutation(n_full) * stripe, np.arange(n_full * stripe, n, stripe)]
        )
        self.chunk_rows = per_chunk * stripe
        self._chunks = [
            np.sort(
                np.concatenate(
                    [np.arange(s, min(s + stripe, n)) for s in starts[i : i + per_chunk]]
                )
            )
            for i in range(0, len(starts), per_chunk)
        ]
        n_gene_blocks = len(self.gene_blocks)
        self.chunk_size = -(-self.chunk_rows // self.sample_block) * n_gene_blocks
        last = -(-len(self._chunks[-1]) // self.sample_block) * n_gene_blocks
        self._len = (len(self._chunks) - 1) * self.chunk_size + last
        self._cache: OrderedDict[int, tuple[np.ndarray, Any, np.ndarray | None]] = OrderedDict()

    def __len__(self) -> int:
        return self._len

    def _chunk(self, c: int) -> tuple[np.ndarray, Any, np.ndarray | None]:
        """Rows of chunk ``c`` in a shuffled order, their values and mask, cached."""
        found = self._cache.get(c)
        if found is not None:
            self._cache.move_to_end(c)
            return found
        rows = self._chunks[c]
        values = memory_block(read_rows(self.adata, rows, layer=self.layer))
        mask = None
        if self.mask_layer is not None:
            mask = dense(read_rows(self.adata, rows, layer=self.mask_layer), bool)
        order = np.random.default_rng([self.seed, c]).permutation(len(rows))
        found = (order, values, mask)
        self._cache[c] = found
        if len(self._cache) > self.cache_chunks:
            self._cache.popitem(last=False)
        return found

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= int(index) < self._len:
            raise IndexError(f"block {index} out of range for {self._len} blocks")
        c, local = divmod(int(index), self.chunk_size)
        s, g = divmod(local, len(self.gene_blocks))
        order, values, mask = self._chunk(c)
        picked = order[s * self.sample_block : (s + 1) * self.sample_block]
        cols = self.gene_blocks[g]
        x = dense_rows(values, picked)[:, cols]
        observed = np.isfinite(x)
        if mask is not None:
            observed &= mask[picked][:, cols]
        if self.held is not None:
            fraction, part = self.held
            drawn = np.random.default_rng([self.seed, c, s, g]).random(x.shape) < fraction
            observed &= ~drawn if part == "train" else drawn
        samples = torch.as_tensor(self._chunks[c][picked])
        item = {
            "x": torch.from_numpy(np.where(observed, x, np.float32(0.0))),
            "sample": samples,
            "gene": torch.as_tensor(cols),
            "obs_factors": self.obs_factors[samples],
        }
        if not observed.all():
            item["mask"] = torch.from_numpy(observed)
        return item

    collate = staticmethod(FEBlocks.collate)

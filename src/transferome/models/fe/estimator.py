"""Factorized Embeddings (FE): sample, gene and descriptor embeddings from one expression matrix.

:class:`FactorizedEmbedding` learns one embedding per sample, per gene and per level of any
extra descriptor (obs keys such as tissue, species, drug or donor; var keys such as a gene
family), and an MLP that predicts each value from the embeddings of its descriptors
(Trofimov et al. 2020). Training runs on the shared engine over blocks of samples x genes
(:mod:`transferome.models.fe.network`), read from memory or, for a file opened with
``read_h5ad(path, backed=True)``, from the file a chunk of rows at a time
(:mod:`transferome.models.fe.data`); it fits only observed entries (a mask), and the fitted
model imputes missing values, embeds new samples with the network frozen, moves samples
between contexts by vector arithmetic and predicts unmeasured (context, perturbation) cells.

The transfer task (``predict(adata, targets)``)
-----------------------------------------------
For a target ``(context c, perturbation p)`` the model takes every control observation of
``c`` in ``adata`` (its learned sample embedding when its obs name was seen in ``fit``, else an
embedding fitted with the network frozen, see :meth:`FactorizedEmbedding.transform`), and:

- ``transfer="factors"`` (default): keeps each control's sample embedding and sets its
  descriptor embeddings to those of ``c`` and ``p`` (a combination ``a+b`` never seen as a
  label gets the sum of its parts' embeddings). Needs ``perturbation_key`` among ``factors``.
- ``transfer="arithmetic"``: adds to each control's sample embedding the mean, over the
  training contexts where ``p`` was measured, of ``centroid(context, p) -
  centroid(context, control)`` of the learned sample embeddings (paper section 3.8).

The predicted profiles of the controls are averaged: one mean profile per target.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from transferome.data.blocks import in_memory
from transferome.data.schema import (
    DatasetDescription,
    Schema,
    as_schema,
    check_matrix,
    split_combination,
)
from transferome.errors import DataValidationError
from transferome.models._neural import NeuralEstimator
from transferome.models.base import Target, prediction_adata
from transferome.models.fe._files import read_files, write_files
from transferome.models.fe._rows import (
    arithmetic_shift,
    centroid_shift,
    column_labels,
    embed_rows,
    encode,
    predict_rows,
    profile_adata,
)
from transferome.models.fe.data import training_data, values_and_mask
from transferome.models.fe.network import FEBlocks, FEConfig, FEModule

__all__ = ["FactorizedEmbedding"]


class FactorizedEmbedding(NeuralEstimator):
    """Factorized Embeddings estimator (defaults from the paper).

    Parameters
    ----------
    embedding_dim
        Size of every embedding (sample, gene, each descriptor).
    hidden
        Hidden layer sizes of the MLP.
    activation
        ``"tanh"`` (paper), ``"relu"`` or ``"gelu"``.
    init
        Start of the sample and gene embeddings: ``"pca"`` (scores and loadings of a PCA of
        the training data, see :func:`~transferome.models.fe.network.pca_embeddings`; of an
        on-disk file, loadings from up to 8,192 rows drawn at random and every row projected
        onto them, see :func:`~transferome.models.fe.data.stored_start`) or ``"random"``
        (``N(0, 1)``, as the paper).
    embedding_lr
        Learning rate of the sample and gene tables (default ``lr``). A sample's embedding is
        updated once per epoch (once per gene block holding it), so a larger rate than the
        network's speeds up training.
    gene_block
        Genes per training block; a block holds ``batch_size`` samples x ``gene_block`` genes
        (blocks of a few thousand values keep the activations in cache on CPUs).
    transfer
        How ``predict(adata, targets)`` moves controls to a perturbation: ``"factors"`` or
        ``"arithmetic"`` (see the module docstring).
    transform_epochs, transform_lr
        Adam steps and learning rate used to embed samples not seen in ``fit``.
    **training
        The training arguments, the fields of :class:`~transferome.training.TrainingConfig`
        (``max_epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``early_stopping``, ...;
        defaults as there except ``batch_size=32``, ``weight_decay=1e-5`` and
        ``accelerator="cpu"``). ``batch_size`` is the number of samples per block;
        ``validation_fraction`` is the fraction of the observed entries held out to monitor
        early stopping.
    """

    name: ClassVar[str] = "fe"
    training_defaults: ClassVar[Mapping[str, Any]] = {
        "batch_size": 32,
        "weight_decay": 1e-5,
        "accelerator": "cpu",
    }
    fast_params: ClassVar[dict[str, Any]] = {
        "embedding_dim": 8,
        "hidden": (24, 12),
        "max_epochs": 10,
        "batch_size": 8,
        "gene_block": 16,
        "lr": 2e-2,
        "transform_epochs": 30,
    }

    def __init__(
        self,
        *,
        embedding_dim: int = 50,
        hidden: tuple[int, ...] = (250, 150, 100, 50, 10),
        activation: str = "tanh",
        init: str = "pca",
        embedding_lr: float | None = None,
        gene_block: int = 256,
        transfer: str = "factors",
        transform_epochs: int = 200,
        transform_lr: float = 1e-2,
        **training: Any,
    ) -> None:
        super().__init__(**training)
        self.embedding_dim = embedding_dim
        self.hidden = hidden
        self.activation = activation
        self.init = init
        self.embedding_lr = embedding_lr
        self.gene_block = gene_block
        self.transfer = transfer
        self.transform_epochs = transform_epochs
        self.transform_lr = transform_lr

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self,
        adata: AnnData,
        *,
        schema: Schema | DatasetDescription | None = None,
        factors: Sequence[str] | None = None,
        var_factors: Sequence[str] = (),
        layer: str | None = None,
        mask: np.ndarray | str | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume_from: str | os.PathLike[str] | None = None,
    ) -> FactorizedEmbedding:
        """Learn the embeddings and the network from ``adata`` (never modified).

        Parameters
        ----------
        adata
            Observations x genes, log-normalised values.
        schema
            Keys of context and perturbation (used by the transfer ``predict``); default
            :class:`~transferome.data.schema.Schema()`.
        factors
            obs keys embedded as extra descriptors; default the schema's context and
            perturbation keys that exist in ``adata.obs``.
        var_factors
            var keys embedded as extra gene descriptors.
        layer
            Use ``adata.layers[layer]`` instead of ``X``.
        mask
            Observed entries: a boolean ``(n_obs, n_vars)`` array, a layer name, or ``None``
            (the finite entries). Only observed entries are fitted.
        checkpoint_dir, resume_from
            Write best/last checkpoints there; continue an interrupted run from a checkpoint
            folder (see :func:`~transferome.training.fit_module`).

        Returns
        -------
        FactorizedEmbedding
            ``self``, fitted.
        """
        from transferome.training import fit_module

        if self.transfer not in ("factors", "arithmetic"):
            raise DataValidationError(
                f"transfer={self.transfer!r}; expected 'factors' or 'arithmetic'"
            )
        if self.init not in ("pca", "random"):
            raise DataValidationError(f"init={self.init!r}; expected 'pca' or 'random'")
        schema = as_schema(schema)
        check_matrix(adata, layer)
        if factors is None:
            factors = [
                k for k in (schema.context_key, schema.perturbation_key) if k in adata.obs.columns
            ]
        factors, var_factors = list(factors), list(var_factors)
        obs_labels = {k: column_labels(adata.obs, k, "obs") for k in factors}
        var_labels = {k: column_labels(adata.var, k, "var") for k in var_factors}
        self.schema_ = schema
        self.factor_keys_ = factors
        self.factor_levels_ = {k: sorted(set(v)) for k, v in obs_labels.items()}
        self.var_factor_keys_ = var_factors
        self.var_factor_levels_ = {k: sorted(set(v)) for k, v in var_labels.items()}
        self.var_names_ = [str(g) for g in adata.var_names]
        self.obs_names_ = [str(o) for o in adata.obs_names]
        self.train_labels_ = {
            k: column_labels(adata.obs, k, "obs")
            for k in (schema.context_key, schema.perturbation_key)
            if k in adata.obs.columns
        }
        config = FEConfig(
            n_samples=adata.n_obs,
            n_genes=adata.n_vars,
            obs_factor_levels=tuple(len(self.factor_levels_[k]) for k in factors),
            var_factor_levels=tuple(len(self.var_factor_levels_[k]) for k in var_factors),
            embedding_dim=int(self.embedding_dim),
            hidden=tuple(int(h) for h in self.hidden),
            activation=self.activation,
        )
        data = training_data(
            adata,
            layer=layer,
            mask=mask,
            obs_factors=self._codes(obs_labels, adata.n_obs),
            dim=config.embedding_dim,
            pca=self.init == "pca",
            sample_block=int(self.batch_size),
            gene_block=int(self.gene_block),
            validation_fraction=(
                None if self.early_stopping is None else float(self.validation_fraction)
            ),
            seed=int(self.random_state),
        )
        with self.seeded():
            module = FEModule(config, embedding_lr=self.embedding_lr)
        with torch.no_grad():
            if data.start is not None:
                module.sample_embedding.weight.copy_(torch.as_tensor(data.start[0]))
                module.gene_embedding.weight.copy_(torch.as_tensor(data.start[1]))
            module.var_factor_codes.copy_(torch.as_tensor(self._var_codes(var_labels)))
            # start the output at the mean value: fewer epochs to fit offsets
            module.last.bias.fill_(data.mean_value)
        training = self.training_config(batch_size=1)  # a batch is one block
        result = fit_module(
            module,
            data.train,
            data.val,
            config=training,
            collate_fn=FEBlocks.collate,
            checkpoint_dir=checkpoint_dir,
            resume_from=resume_from,
        )
        module.eval()
        self.module_ = module
        self.history_ = result.history
        return self

    # -- embeddings ------------------------------------------------------------------------
    @property
    def sample_embeddings_(self) -> pd.DataFrame:
        """Learned sample embeddings, indexed by the training obs names."""
        self._check_fitted()
        z = self.module_.sample_embedding.weight.detach().numpy()
        return pd.DataFrame(z, index=self.obs_names_)

    @property
    def gene_embeddings_(self) -> pd.DataFrame:
        """Learned gene embeddings, indexed by gene name."""
        self._check_fitted()
        z = self.module_.gene_embedding.weight.detach().numpy()
        return pd.DataFrame(z, index=self.var_names_)

    def factor_embeddings(self, key: str) -> pd.DataFrame:
        """Embeddings of the levels of descriptor ``key`` (an obs or var factor)."""
        self._check_fitted()
        if key in self.factor_keys_:
            table = self.module_.factor_weight("obs", self.factor_keys_.index(key))
            levels = self.factor_levels_[key]
        elif key in self.var_factor_keys_:
            table = self.module_.factor_weight("var", self.var_factor_keys_.index(key))
            levels = self.var_factor_levels_[key]
        else:
            raise DataValidationError(
                f"{key!r} is not a descriptor of this model; descriptors: "
                f"{self.factor_keys_ + self.var_factor_keys_}"
            )
        return pd.DataFrame(table.detach().numpy(), index=levels)

    def transform(
        self,
        adata: AnnData,
        *,
        layer: str | None = None,
        mask: np.ndarray | str | None = None,
        use_learned: bool = True,
    ) -> np.ndarray:
        """Sample embeddings of the rows of ``adata``, shape ``(n_obs, embedding_dim)``.

        ``adata`` must have the model's genes in the same order. Rows whose obs name was seen
        in ``fit`` get their learned embedding (unless ``use_learned`` is false); the others
        are embedded by optimising only their sample embeddings against their observed
        values, network and gene embeddings frozen. Their descriptor values (``factors``)
        must be levels seen in ``fit``.
        """
        self._check_fitted()
        return self._embed(adata, layer=layer, mask=mask, use_learned=use_learned)[0]

    # -- prediction ------------------------------------------------------------------------
    def predict(
        self,
        adata: AnnData,
        targets: Sequence[Target] | None = None,
        *,
        layer: str | None = None,
    ) -> AnnData:
        """Predicted profiles.

        Without ``targets``: the reconstruction of every row of ``adata`` (same obs). With
        ``targets``: one mean profile per ``(context, perturbation)`` target, following the
        transfer contract of :mod:`transferome.models.base` (method in the module docstring).
        """
        self._check_fitted()
        if targets is None:
            z, codes = self._embed(adata, layer=layer)
            values = self._predict_rows(z, self._factor_vectors(codes))
            return profile_adata(values, adata.obs.copy(), self.var_names_)
        schema = self.schema_
        for key in (schema.context_key, schema.perturbation_key):
            if key not in adata.obs.columns:
                raise DataValidationError(
                    f"obs key {key!r} is missing; predict(adata, targets) needs the schema keys"
                )
        contexts = column_labels(adata.obs, schema.context_key, "obs")
        perturbations = column_labels(adata.obs, schema.perturbation_key, "obs")
        profiles = []
        for context, perturbation in targets:
            rows = np.flatnonzero((contexts == str(context)) & (perturbations == schema.control))
            if len(rows) == 0:
                raise DataValidationError(
                    f"no {schema.control!r} observations of context {context!r} in "
                    f"obs[{schema.context_key!r}]; the transfer prediction starts from them"
                )
            z, codes = self._embed(adata[rows], layer=layer)
            vectors = self._factor_vectors(codes, overrides={schema.context_key: str(context)})
            if self.transfer == "arithmetic":
                z = z + self._perturbation_shift(str(context), str(perturbation))[None, :]
            if schema.perturbation_key in self.factor_keys_:
                vectors[self.factor_keys_.index(schema.perturbation_key)] = np.broadcast_to(
                    self._level_vector(schema.perturbation_key, str(perturbation)), z.shape
                )
            elif self.transfer == "factors":
                raise DataValidationError(
                    f"transfer='factors' needs {schema.perturbation_key!r} among the factors "
                    f"of fit (factors were {self.factor_keys_}); use transfer='arithmetic'"
                )
            profiles.append(self._predict_rows(z, vectors).mean(axis=0))
        return prediction_adata(np.vstack(profiles), list(targets), self.var_names_, schema)

    def impute(
        self,
        adata: AnnData,
        *,
        layer: str | None = None,
        mask: np.ndarray | str | None = None,
    ) -> AnnData:
        """Return a copy of ``adata`` whose unobserved entries are replaced by predictions.

        ``mask`` marks the observed entries (default: the finite ones); observed values are
        kept as they are.
        """
        self._check_fitted()
        values, observed = values_and_mask(adata, layer=layer, mask=mask)
        z, codes = self._embed(adata, layer=layer, mask=mask)
        predicted = self._predict_rows(z, self._factor_vectors(codes))
        # Nothing missing: the data come back unchanged.
        filled = values if observed is None else np.where(observed, values, predicted)
        out = in_memory(adata, what="FactorizedEmbedding.impute", copy=True)
        if layer is None:
            out.X = filled.astype(np.float32)
        else:
            out.layers[layer] = filled.astype(np.float32)
        return out

    def translate(
        self,
        adata: AnnData,
        *,
        key: str,
        source: str,
        target: str,
        within: str | None = None,
        layer: str | None = None,
    ) -> AnnData:
        """Move the ``source`` rows of ``adata`` to ``target`` by vector arithmetic.

        Each row with ``obs[key] == source`` gets the embedding ``z - centroid(source) +
        centroid(target)``, the centroids taken over the rows of ``adata`` (all of them
        embedded as in :meth:`transform`). With ``within`` (e.g. the donor or cell-type key),
        the shift is the mean of ``centroid(w, target) - centroid(w, source)`` over the groups
        ``w`` that have both. When ``key`` is a descriptor its embedding is switched too.

        Returns
        -------
        AnnData
            Predicted profiles of the moved rows; obs copied, with ``obs[key] = target``.
        """
        self._check_fitted()
        labels = column_labels(adata.obs, key, "obs")
        moved = np.flatnonzero(labels == str(source))
        if len(moved) == 0 or not (labels == str(target)).any():
            raise DataValidationError(
                f"obs[{key!r}] needs rows labelled {source!r} and {target!r}; labels present: "
                f"{sorted(set(labels))[:20]}"
            )
        z, codes = self._embed(adata, layer=layer)
        groups = None if within is None else column_labels(adata.obs, within, "obs")
        shift = centroid_shift(z, labels, str(source), str(target), groups=groups, within=within)
        vectors = self._factor_vectors(codes[moved])
        if key in self.factor_keys_:
            vectors[self.factor_keys_.index(key)] = np.broadcast_to(
                self._level_vector(key, str(target)),
                (len(moved), self.module_.config.embedding_dim),
            )
        values = self._predict_rows(z[moved] + shift[None, :], vectors)
        obs = adata.obs.iloc[moved].copy()
        obs[key] = str(target)
        return profile_adata(values, obs, self.var_names_)

    # -- persistence (save and load: NeuralEstimator) -------------------------------------
    _write_files = write_files
    _read_files = classmethod(read_files)

    # -- internals -------------------------------------------------------------------------
    def _codes(self, labels: dict[str, np.ndarray], n: int) -> np.ndarray:
        columns = [encode(labels[k], self.factor_levels_[k], k, "obs") for k in self.factor_keys_]
        return np.stack(columns, axis=1) if columns else np.zeros((n, 0), dtype=np.int64)

    def _var_codes(self, labels: dict[str, np.ndarray]) -> np.ndarray:
        columns = [
            encode(labels[k], self.var_factor_levels_[k], k, "var") for k in self.var_factor_keys_
        ]
        n = len(self.var_names_)
        return np.stack(columns, axis=1) if columns else np.zeros((n, 0), dtype=np.int64)

    def _level_vector(self, key: str, level: str) -> np.ndarray:
        weight = self.module_.factor_weight("obs", self.factor_keys_.index(key)).detach().numpy()
        levels = self.factor_levels_[key]
        if level in levels:
            return weight[levels.index(level)]
        parts = split_combination(level, self.schema_.combination_sep)
        if key == self.schema_.perturbation_key and len(parts) > 1:
            unknown = [p for p in parts if p not in levels]
            if not unknown:
                return weight[[levels.index(p) for p in parts]].sum(axis=0)
        raise DataValidationError(
            f"obs[{key!r}] value {level!r} was not seen in fit; known values: {levels[:20]}"
        )

    def _factor_vectors(
        self,
        codes: np.ndarray,
        overrides: dict[str, str] | None = None,
    ) -> list[np.ndarray]:
        vectors = []
        for k, key in enumerate(self.factor_keys_):
            if overrides and key in overrides:
                vec = self._level_vector(key, overrides[key])
                vectors.append(np.broadcast_to(vec, (len(codes), vec.shape[0])))
            else:
                weight = self.module_.factor_weight("obs", k).detach().numpy()
                vectors.append(weight[codes[:, k]])
        return vectors

    def _predict_rows(self, z: np.ndarray, vectors: list[np.ndarray]) -> np.ndarray:
        return predict_rows(self.module_, z, vectors)

    def _embed(
        self,
        adata: AnnData,
        *,
        layer: str | None = None,
        mask: np.ndarray | str | None = None,
        use_learned: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        return embed_rows(self, adata, layer=layer, mask=mask, use_learned=use_learned)

    def _perturbation_shift(self, context: str, perturbation: str) -> np.ndarray:
        schema = self.schema_
        if not {schema.context_key, schema.perturbation_key} <= set(self.train_labels_):
            raise DataValidationError(
                "transfer='arithmetic' needs the context and perturbation keys in the training obs"
            )
        return arithmetic_shift(
            self.module_.sample_embedding.weight.detach().numpy(),
            self.train_labels_[schema.context_key],
            self.train_labels_[schema.perturbation_key],
            control=schema.control,
            context=context,
            perturbation=perturbation,
        )

"""The Universal Gene Embedding estimator: one latent space for the samples of every species.

See :mod:`transferome.models.uge.network` for the network and
:mod:`transferome.models.uge.genes` for the species-independent gene descriptions its gene
tokens are computed from. Cross-species prediction by latent arithmetic (paper 4.2) is in
:mod:`transferome.models.uge.transfer`; it is exposed here as :meth:`predict`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from transferome._logging import get_logger
from transferome.data.schema import DatasetDescription, Schema, as_schema
from transferome.data.species import MultiSpecies
from transferome.errors import DataValidationError
from transferome.models._neural import NeuralEstimator
from transferome.models._persist import check_var_names
from transferome.models.base import Target
from transferome.models.uge._encode import (
    descriptions_of,
    descriptor_table,
    encode,
    encode_known,
    known_species,
    resolve_species,
    species_table,
)
from transferome.models.uge._fit import build_network, check_params, fit_inputs, group_latents
from transferome.models.uge.data import (
    UGERows,
    split_species,
    token_statistics,
)
from transferome.models.uge.genes import (
    best_matches,
    cosine_similarity,
    gene_variances,
    top_by_variance,
)
from transferome.models.uge.persist import read_files, write_files

__all__ = ["UniversalGeneEmbedding"]

_log = get_logger(__name__)


class UniversalGeneEmbedding(NeuralEstimator):
    """Cross-species transformer over gene tokens with a ``<cls>`` sample embedding.

    Parameters
    ----------
    n_tokens
        Gene tokens per sample: the species' most variable genes (sequence length).
    n_decode
        Genes the decoder rebuilds in training, per species (most variable first); prediction
        decodes every gene.
    d_model, n_layers, n_heads, d_ff, dropout
        Transformer size; the paper uses 256, 4 and 8. The defaults (128 wide, 4 layers, 8
        heads, 256 tokens, 15 epochs at lr 1e-3 instead of the paper's 100 at 1e-4) keep a fit
        of the default simulated atlas to about 15 CPU-minutes (``benchmarks/uge_speed.py``).
    gene_description
        ``auto``, ``profile``, ``reactome`` or ``both`` (see
        :func:`~transferome.models.uge.genes.describe_genes`); ignored for species whose
        descriptions are passed to :meth:`fit`.
    label_key
        obs column of the classes learned by the annotation head (``None``: no head).
    perturbation_token
        Give each sample an external token naming its perturbation (paper 3.1.3: external
        tokens mark perturbed molecules), so the drug direction in the latent space is
        explicit. Labels unseen in training (e.g. a new combination) get the "none" token.
    mask_fraction, ecs_weight, ecs_beta, class_weight, residual_weight
        Loss settings, see :class:`~transferome.models.uge.network.UGEConfig`.
    tie_weight
        L2 penalty pulling the per-species residuals of ortholog-tied gene tokens to zero
        (used when :meth:`fit` gets ``orthologs``).
    alignment, alignment_weight
        ``none``, ``coral`` (means and covariances) or ``mmd``: align the species' ``<cls>``
        distributions in training, so that a head trained on the labelled species reads the
        unlabelled ones (domain adaptation).
    pooled_cls
        Start ``<cls>`` from the expression-weighted sum of the gene tokens (see
        :class:`~transferome.models.uge.network.UGEConfig`).
    balance_classes
        Weight the annotation head's cross-entropy by inverse class frequency (of the
        labelled rows), so that rare classes count as much as common ones.
    values
        Token input values: ``relative`` (each cell's values divided by its maximum, paper
        3.1.2) or ``standardised`` (each gene centred and scaled within its species, stored
        for later data of that species; data of an unseen species are standardised on
        themselves).
    unlabelled_descriptions
        With ``orthologs`` and ``label_key``: ``orthologs`` describes the genes of species
        outside ``labelled_species`` through their orthologs in a labelled species (no label
        of theirs is used, zero-shot); ``own`` computes them from their own contexts.
    route
        Latent arithmetic of :meth:`predict`: ``drug`` (target control + the perturbation's
        shift measured elsewhere), ``species`` (the perturbed group in another species + the
        shift between species) or ``both`` (their mean).
    anchor_control
        Add the decoded latent shift to the observed control mean (True) or return the
        decoded latent itself (False, as in the paper).
    **training
        The training arguments, the fields of :class:`~transferome.training.TrainingConfig`
        (defaults as there except ``max_epochs=15``, ``batch_size=32`` and
        ``accelerator="cpu"``). ``max_epochs=0`` builds the network without training it (the
        step-0 model: with ``orthologs``, tied genes share their token). ``early_stopping``
        watches a ``validation_fraction`` share of the rows; ``random_state`` seeds the
        initialisation, masking and batching.
    """

    name: ClassVar[str] = "uge"
    training_defaults: ClassVar[Mapping[str, Any]] = {
        "max_epochs": 15,
        "batch_size": 32,
        "accelerator": "cpu",
    }
    fast_params: ClassVar[dict[str, Any]] = {
        "n_tokens": 16,
        "n_decode": 64,
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "d_ff": 32,
        "max_epochs": 30,
        "batch_size": 16,
        "lr": 3e-3,
    }

    def __init__(  # noqa: PLR0913 - the hyperparameters, keyword-only, as every estimator
        self,
        *,
        n_tokens: int = 256,
        n_decode: int = 2048,
        d_model: int = 128,
        n_layers: int = 4,
        n_heads: int = 8,
        d_ff: int = 256,
        dropout: float = 0.1,
        gene_description: str = "auto",
        label_key: str | None = None,
        perturbation_token: bool = True,
        mask_fraction: float = 0.15,
        ecs_weight: float = 0.1,
        ecs_beta: float = 0.6,
        class_weight: float = 1.0,
        residual_weight: float = 1e-3,
        tie_weight: float = 1.0,
        alignment: str = "none",
        alignment_weight: float = 1.0,
        pooled_cls: bool = False,
        balance_classes: bool = False,
        values: str = "relative",
        unlabelled_descriptions: str = "orthologs",
        route: str = "drug",
        anchor_control: bool = True,
        **training: Any,
    ) -> None:
        super().__init__(**training)
        self.n_tokens = n_tokens
        self.n_decode = n_decode
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.d_ff = d_ff
        self.dropout = dropout
        self.gene_description = gene_description
        self.label_key = label_key
        self.perturbation_token = perturbation_token
        self.mask_fraction = mask_fraction
        self.ecs_weight = ecs_weight
        self.ecs_beta = ecs_beta
        self.class_weight = class_weight
        self.residual_weight = residual_weight
        self.tie_weight = tie_weight
        self.alignment = alignment
        self.alignment_weight = alignment_weight
        self.pooled_cls = pooled_cls
        self.balance_classes = balance_classes
        self.values = values
        self.unlabelled_descriptions = unlabelled_descriptions
        self.route = route
        self.anchor_control = anchor_control

    # -- fitting -------------------------------------------------------------------------------
    @property
    def schema(self) -> Schema:
        """The obs keys in use (those given to :meth:`fit`)."""
        return getattr(self, "schema_", None) or Schema()

    def fit(
        self,
        adatas: Mapping[str, AnnData] | MultiSpecies | AnnData,
        *,
        schema: Schema | DatasetDescription | None = None,
        gene_descriptions: Mapping[str, pd.DataFrame] | None = None,
        labelled_species: Sequence[str] | None = None,
        orthologs: pd.DataFrame | None = None,
        ortholog_columns: Mapping[str, str] | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume_from: str | os.PathLike[str] | None = None,
    ) -> UniversalGeneEmbedding:
        """Learn the shared latent space from the data of one or more species.

        Parameters
        ----------
        adatas
            ``{species: AnnData}`` (each species its own genes), a
            :class:`~transferome.data.MultiSpecies` (whose ortholog table is used when
            ``orthologs`` is not given), or one AnnData (split by ``schema.species_key`` when
            that column exists). ``X`` log-normalised. Never modified.
        schema
            The obs keys (defaults of :class:`~transferome.data.schema.Schema` when ``None``).
        gene_descriptions
            Optional ``{species: DataFrame genes x features}`` used instead of descriptions
            computed from that species' data (e.g. borrowed through an ortholog table with
            :func:`~transferome.models.uge.genes.descriptions_through_map`, so that no label of
            that species is used).
        labelled_species
            Species whose ``label_key`` labels train the annotation head (default: all). The
            others are unlabelled: their labels are never read.
        orthologs
            Ortholog table linking genes of the species (long or wide layout, see
            :mod:`~transferome.data.species`): linked genes start from one shared
            token per ortholog group, the token genes are chosen jointly over the groups, and
            (see ``unlabelled_descriptions``) unlabelled species borrow their descriptions.
        ortholog_columns
            Wide tables only: ``{species: column}`` of gene names (default
            ``<species>_gene`` or ``<species>``).
        checkpoint_dir, resume_from
            Write best/last checkpoints there; continue an interrupted run from a checkpoint
            folder (see :func:`~transferome.training.fit_module`).
        """
        from transferome.training import fit_module

        check_params(self)
        schema = as_schema(schema)
        if isinstance(adatas, MultiSpecies) and orthologs is None:
            orthologs, ortholog_columns = adatas.orthologs, adatas.ortholog_columns
        data = split_species(adatas, schema.species_key)
        inputs = fit_inputs(
            self,
            data,
            schema,
            given=dict(gene_descriptions or {}),
            labelled_species=labelled_species,
            orthologs=orthologs,
            ortholog_columns=ortholog_columns,
        )
        network = build_network(self, inputs)
        blocks = inputs.blocks
        scaling = None
        if self.values == "standardised":
            scaling = {b.species: token_statistics(b.adata, b.tokens) for b in blocks}

        def rows(which: np.ndarray) -> UGERows:
            return UGERows(
                blocks,
                inputs.offsets,
                labels=inputs.labels,
                external=inputs.external,
                scaling=scaling,
                rows=which,
            )

        train, val = self._split_rows(sum(b.adata.n_obs for b in blocks))
        training = self.training_config(max_epochs=max(int(self.max_epochs), 1))
        if int(self.max_epochs) > 0:
            history = fit_module(
                network,
                rows(train),
                rows(val) if val is not None else None,
                config=training,
                checkpoint_dir=checkpoint_dir,
                resume_from=resume_from,
            ).history
        else:  # the network as built: tied orthologs, untrained
            history = pd.DataFrame({"epoch": pd.Series(dtype=np.int64)})
        self.schema_ = schema
        self.network_ = network.cpu().eval()
        self.history_ = history
        self.species_ = tuple(b.species for b in blocks)
        self.var_names_ = inputs.var_names
        self.tokens_ = {b.species: b.tokens for b in blocks}
        self.token_scaling_ = scaling
        self.offsets_ = inputs.offsets
        self.description_columns_ = inputs.columns
        self.description_mean_ = inputs.mean
        self.description_scale_ = inputs.scale
        self.classes_ = inputs.classes
        self.external_categories_ = inputs.categories
        self.group_latents_ = group_latents(self, blocks, schema)
        _log.info("UGE fitted on %s in %d epochs", ", ".join(self.species_), len(self.history_))
        return self

    def _split_rows(self, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self._validation_split(n, seed=self.random_state, minimum=10)

    # -- encoding ------------------------------------------------------------------------------
    def transform(
        self,
        adata: AnnData,
        *,
        species: str | None = None,
        gene_descriptions: pd.DataFrame | None = None,
    ) -> np.ndarray:
        """``<cls>`` sample embeddings (n_obs, d_model) of one species' data.

        A species not seen in training (or data whose genes differ from the fitted ones) is
        embedded through its gene descriptions: ``gene_descriptions`` when given, else computed
        from ``adata`` (which then needs the context and perturbation keys).
        """
        self._check_fitted()
        known = species if species is not None else known_species(self, adata)
        if known is not None and gene_descriptions is None:
            return encode_known(self, adata, known)
        table = descriptor_table(self, descriptions_of(self, adata, gene_descriptions))
        tokens = top_by_variance(gene_variances(adata), self.n_tokens)
        return encode(self, adata, table, tokens)

    # -- genes ---------------------------------------------------------------------------------
    def gene_embeddings(
        self,
        species: str | None = None,
        *,
        adata: AnnData | None = None,
        gene_descriptions: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Token embeddings (genes x d_model) of a fitted species' genes or of any other genes.

        Pass ``species`` for a species seen in training; for others pass ``gene_descriptions``
        (genes x features) or ``adata`` to compute them from; their residual is zero.
        """
        self._check_fitted()
        if gene_descriptions is None and adata is None:
            species = species if species is not None else self.species_[0]
            if species not in self.species_:
                raise DataValidationError(
                    f"species {species!r} was not seen in training ({list(self.species_)}); "
                    "pass adata= or gene_descriptions= to embed its genes"
                )
            return pd.DataFrame(
                species_table(self, species).numpy(), index=self.var_names_[species]
            )
        if gene_descriptions is None:
            gene_descriptions = descriptions_of(self, adata, None)
        table = descriptor_table(self, gene_descriptions)
        return pd.DataFrame(table.numpy(), index=list(map(str, gene_descriptions.index)))

    def gene_similarity(
        self, source: str | pd.DataFrame, target: str | pd.DataFrame
    ) -> pd.DataFrame:
        """Cosine similarity of gene embeddings: source genes (rows) x target genes (columns).

        Each side is a fitted species' name or a frame from :meth:`gene_embeddings`.
        """
        left = self.gene_embeddings(source) if isinstance(source, str) else source
        right = self.gene_embeddings(target) if isinstance(target, str) else target
        return cosine_similarity(left, right)

    def map_genes(
        self, source: str | pd.DataFrame, target: str | pd.DataFrame, *, top_k: int = 1
    ) -> pd.DataFrame:
        """For each target gene, its ``top_k`` most similar source genes.

        Returns a tidy frame with columns ``target_gene``, ``source_gene``, ``score``
        (cosine similarity) and ``rank`` (1 = best).
        """
        return best_matches(self.gene_similarity(source, target), top_k)

    # -- annotation ----------------------------------------------------------------------------
    def predict_proba(self, adata: AnnData, *, species: str | None = None) -> pd.DataFrame:
        """Class probabilities of the annotation head (observations x classes)."""
        self._check_fitted()
        if not self.classes_:
            raise DataValidationError("this model has no annotation head; fit it with label_key=")
        z = self.transform(adata, species=species)
        with torch.no_grad():
            logits = self.network_.classify(torch.from_numpy(z))
        probabilities = torch.softmax(logits, dim=-1).numpy()
        return pd.DataFrame(probabilities, index=adata.obs_names, columns=self.classes_)

    def predict_labels(self, adata: AnnData, *, species: str | None = None) -> np.ndarray:
        """Most probable class of each observation."""
        proba = self.predict_proba(adata, species=species)
        return np.asarray(self.classes_, dtype=object)[proba.to_numpy().argmax(axis=1)]

    # -- perturbation prediction ---------------------------------------------------------------
    def predict(
        self,
        adata: AnnData,
        targets: Sequence[Target],
        *,
        species: str | None = None,
        route: str | None = None,
    ) -> AnnData:
        """Predicted mean log profile of each ``(context, perturbation)`` target.

        ``adata`` holds one species' data with the controls of every target context; see
        :func:`~transferome.models.uge.transfer.predict_targets` for the latent arithmetic.
        """
        from transferome.models.uge.transfer import predict_targets

        self._check_fitted()
        species = resolve_species(self, adata, species)
        if species not in self.species_:
            raise DataValidationError(
                f"species {species!r} was not seen in training ({list(self.species_)})"
            )
        check_var_names(self.var_names_[species], adata.var_names, what=f"{species} data")
        return predict_targets(self, adata, targets, species=species, route=route or self.route)

    # -- persistence (save and load: NeuralEstimator; the files: uge.persist) -------------------
    _write_files = write_files
    _read_files = classmethod(read_files)

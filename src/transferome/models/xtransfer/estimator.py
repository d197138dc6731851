"""XTransfer: the XTransferCDR model (Liu & Jin, AAAI 2025) as a transferome estimator.

``fit`` draws the pairs of :func:`transferome.data.pairing.make_pairs` (two perturbations of
one context, each with a control of that context) and trains
:class:`~transferome.models.xtransfer.network.XTransferModule` on the shared training engine.

Prediction for a target ``(context, p)``: the basal states ``S`` of the target's control cells
are added to perturbation latents ``P`` of cells that received ``p`` in *other* contexts, and
decoded, ``D(S + P)``. Two ways of matching source cells to target cells (``matching``):

- ``"random"`` (the paper): every target control cell gets one source cell of ``p`` drawn at
  random (seeded by ``random_state``);
- ``"mean"``: every target control cell gets the mean latent of all source cells of ``p``.

A combination ``a+b`` measured in other contexts (cells of ``a+b``, in any order of its
parts, outside the target context in ``adata``, or seen in training) is a perturbation like
any other: its cells in those contexts give ``P``. A combination measured nowhere is built from
its singles, ``D(S + P_a + P_b)``, from the cells of ``a`` and ``b`` (in any context, the
target's included: only the combination is unmeasured there). When ``adata`` holds no cell of
a needed perturbation, the mean latent of that perturbation over the training cells (kept in
the model) is used. The returned AnnData holds one row per target: the mean of the predicted
cells.

Two transferome extensions change what is returned (``prediction``):

- ``"control_plus_delta"``: the target's measured control mean plus the decoded change
  ``mean(D(S + P)) - mean(D(S))``, so that errors of the decoder in reconstructing the
  target's own baseline cancel out;
- ``"anchored"``: the target's control mean plus the mean *observed* change of ``p`` in the
  source contexts, corrected by how the model's decoded change in the target differs from
  its decoded change in those sources: ``mean_c(delta_c) + w * (delta_hat(target) -
  mean_c(delta_hat_c))``. The network then only has to get the context-specific part of the
  response right; the shared part comes from the measurements. The weight ``w`` in
  ``[0, 1]`` is fitted per target by least squares when predicting each source context from
  the others (``w = 0`` is the additive baseline, so a correction that does not transfer is
  switched off). A combination measured in other contexts is anchored on its own observed
  changes there; a combination measured nowhere (built from its singles, no source context
  holds it) falls back to ``"control_plus_delta"``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from anndata import AnnData

from transferome.data.pairing import Pairs, make_pairs
from transferome.data.schema import (
    DatasetDescription,
    Schema,
    checked_schema,
    obs_labels,
    split_combination,
)
from transferome.errors import DataValidationError, TransferomeError
from transferome.models._neural import NeuralEstimator
from transferome.models._persist import (
    check_var_names,
)
from transferome.models.base import Target, prediction_adata
from transferome.models.xtransfer._files import read_files, write_files
from transferome.models.xtransfer._pairs import ENCODE_BATCH, PairRows, anchor_weight, gene_means
from transferome.models.xtransfer.network import XTransferConfig, XTransferModule

__all__ = ["XTransfer"]

_MATCHING = ("random", "mean")
_PREDICTION = ("decoded", "control_plus_delta", "anchored")


class XTransfer(NeuralEstimator):
    """Transfer a perturbation to a new context by adding latents: ``D(E_s(X) + E_p(X'))``.

    Parameters
    ----------
    hidden, latent_dim, dropout, batch_norm, n_residual, input_noise, latent_noise, latent_relu
        Architecture, see :class:`~transferome.models.xtransfer.network.XTransferConfig`.
        Defaults follow the paper (1024-512-256 to 128, batch norm, dropout 0.2); the authors'
        code uses ``n_residual=3`` and noise 0.1.
    w_sim, w_orth, w_reco_control, w_reco, w_cross
        Loss weights; 0 switches a term off.
    matching
        ``"random"`` or ``"mean"``: how source cells are matched to target cells (see the
        module docstring).
    prediction
        ``"decoded"`` (the paper), or the transferome extensions ``"control_plus_delta"`` and
        ``"anchored"`` (see the module docstring).
    **training
        The training arguments, the fields of :class:`~transferome.training.TrainingConfig`.
        Defaults follow the paper: ``max_epochs=60``, Adam ``lr=2e-4``,
        ``weight_decay=5e-4``, x0.5 every 8 epochs (``lr_step_size=8``, ``lr_gamma=0.5``);
        and ``accelerator="cpu"``. ``early_stopping`` watches the loss of a
        ``validation_fraction`` share of the pairs; ``random_state`` seeds the pairs, the
        initial weights, the training order and the random matching.
    """

    name: ClassVar[str] = "xtransfer"
    training_defaults: ClassVar[Mapping[str, Any]] = {
        "max_epochs": 60,
        "lr": 2e-4,
        "weight_decay": 5e-4,
        "lr_step_size": 8,
        "accelerator": "cpu",
    }
    fast_params: ClassVar[dict[str, Any]] = {
        "hidden": (32,),
        "latent_dim": 8,
        "dropout": 0.0,
        "max_epochs": 10,
        "batch_size": 32,
        "lr": 3e-3,
        "lr_step_size": None,
    }

    def __init__(  # noqa: PLR0913 - the hyperparameters, keyword-only, as every estimator
        self,
        *,
        hidden: Sequence[int] = (1024, 512, 256),
        latent_dim: int = 128,
        dropout: float = 0.2,
        batch_norm: bool = True,
        n_residual: int = 0,
        input_noise: float = 0.0,
        latent_noise: float = 0.0,
        latent_relu: bool = True,
        w_sim: float = 1.0,
        w_orth: float = 1.0,
        w_reco_control: float = 1.0,
        w_reco: float = 1.0,
        w_cross: float = 1.0,
        matching: str = "random",
        prediction: str = "decoded",
        **training: Any,
    ) -> None:
        super().__init__(**training)
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.n_residual = n_residual
        self.input_noise = input_noise
        self.latent_noise = latent_noise
        self.latent_relu = latent_relu
        self.w_sim = w_sim
        self.w_orth = w_orth
        self.w_reco_control = w_reco_control
        self.w_reco = w_reco
        self.w_cross = w_cross
        self.matching = matching
        self.prediction = prediction

    # ------------------------------------------------------------------ configuration
    def _module_config(self, n_genes: int) -> XTransferConfig:
        try:
            return XTransferConfig(
                n_genes=n_genes,
                hidden=tuple(int(h) for h in self.hidden),
                latent_dim=int(self.latent_dim),
                dropout=float(self.dropout),
                batch_norm=bool(self.batch_norm),
                n_residual=int(self.n_residual),
                input_noise=float(self.input_noise),
                latent_noise=float(self.latent_noise),
                latent_relu=bool(self.latent_relu),
                w_sim=float(self.w_sim),
                w_orth=float(self.w_orth),
                w_reco_control=float(self.w_reco_control),
                w_reco=float(self.w_reco),
                w_cross=float(self.w_cross),
            )
        except ValueError as exc:
            raise TransferomeError(f"invalid XTransfer hyperparameter: {exc}") from exc

    def _check_options(self) -> None:
        if self.matching not in _MATCHING:
            raise TransferomeError(f"matching={self.matching!r}; expected one of {_MATCHING}")
        if self.prediction not in _PREDICTION:
            raise TransferomeError(f"prediction={self.prediction!r}; expected one of {_PREDICTION}")

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        adata: AnnData,
        *,
        schema: Schema | DatasetDescription | None = None,
        layer: str | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume_from: str | os.PathLike[str] | None = None,
    ) -> XTransfer:
        """Train on the pairs of ``adata`` (log-normalised values in ``X`` or ``layer``).

        Parameters
        ----------
        adata
            Controls and perturbed cells; every context with perturbed cells needs controls.
            Never modified.
        schema
            The obs keys (the defaults when ``None``), or the description of the data ``adata`` was
            taken from (:func:`~transferome.data.schema.checked_schema`).
        layer
            Read values from this layer instead of ``X``.
        checkpoint_dir, resume_from
            Write best/last checkpoints there; continue an interrupted run from a checkpoint
            folder (see :func:`~transferome.training.fit_module`).
        """
        from transferome.training import AnnDataRows, fit_module

        self._check_options()
        schema = checked_schema(
            adata, schema, layer=layer, require_controls=False, allow_negative=True
        )
        if not (obs_labels(adata, schema.perturbation_key) != schema.control).any():
            raise DataValidationError(
                f"obs[{schema.perturbation_key!r}] holds only the control {schema.control!r}; "
                "XTransfer needs perturbed cells to learn from"
            )
        contexts = obs_labels(adata, schema.context_key)
        perturbations = obs_labels(adata, schema.perturbation_key)
        pairs = make_pairs(
            contexts, perturbations, control=schema.control, random_state=self.random_state
        )
        config = self.training_config()
        train, val = self._split_pairs(pairs)
        rows = AnnDataRows(adata, layer=layer)
        with self.seeded():
            module = XTransferModule(self._module_config(adata.n_vars))
        module.set_output_offset(torch.from_numpy(gene_means(rows)))
        result = fit_module(
            module,
            PairRows(rows, train),
            PairRows(rows, val) if val is not None else None,
            config=config,
            checkpoint_dir=checkpoint_dir,
            resume_from=resume_from,
        )
        module.eval()
        self.module_ = module
        self.history_ = result.history
        self.schema_ = schema
        self.var_names_ = [str(v) for v in adata.var_names]
        self.n_pairs_ = len(pairs)
        is_perturbed = perturbations != schema.control
        _, p_latent = self._encode(rows, np.flatnonzero(is_perturbed))
        labels = perturbations[is_perturbed]
        self.perturbations_ = sorted(set(labels))
        self.perturbation_latents_ = np.stack(
            [p_latent[labels == label].mean(axis=0) for label in self.perturbations_]
        ).astype(np.float32)
        return self

    def _split_pairs(self, pairs: Pairs) -> tuple[Pairs, Pairs | None]:
        train, val = self._validation_split(len(pairs), seed=[self.random_state, 1], minimum=4)
        return (pairs, None) if val is None else (pairs.take(train), pairs.take(val))

    # ------------------------------------------------------------------ latents
    @torch.no_grad()
    def _encode(self, rows: Any, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Basal and perturbation latents of the rows ``index`` (evaluation mode)."""
        module = self.module_
        module.eval()
        s_parts, p_parts = [], []
        for start in range(0, len(index), ENCODE_BATCH):
            x = rows[index[start : start + ENCODE_BATCH]]["x"]
            s, p = module.encode(x)
            s_parts.append(s.numpy())
            p_parts.append(p.numpy())
        width = module.config.latent_dim
        if not s_parts:
            return np.zeros((0, width), np.float32), np.zeros((0, width), np.float32)
        return np.concatenate(s_parts), np.concatenate(p_parts)

    def transform(
        self, adata: AnnData, *, layer: str | None = None, latent: str = "basal"
    ) -> np.ndarray:
        """Latents of every observation: ``"basal"`` (``S``) or ``"perturbation"`` (``P``)."""
        from transferome.training import AnnDataRows

        self._check_fitted()
        if latent not in ("basal", "perturbation"):
            raise TransferomeError(f"latent={latent!r}; expected 'basal' or 'perturbation'")
        check_var_names(self.var_names_, adata.var_names, what="data")
        s, p = self._encode(AnnDataRows(adata, layer=layer), np.arange(adata.n_obs))
        return s if latent == "basal" else p

    # ------------------------------------------------------------------ predict
    def predict(
        self, adata: AnnData, targets: Sequence[Target], *, layer: str | None = None
    ) -> AnnData:
        """Mean predicted profile of each ``(context, perturbation)`` target.

        Parameters
        ----------
        adata
            Holds the control cells of every target context, and usually the source cells of
            each perturbation (see the module docstring). Never modified.
        targets
            ``(context, perturbation)`` pairs; combinations join labels with the schema's
            separator.
        layer
            Read values from this layer instead of ``X``.
        """
        from transferome.training import AnnDataRows

        self._check_fitted()
        self._check_options()
        schema = self.schema_
        check_var_names(self.var_names_, adata.var_names, what="prediction data")
        for key in (schema.context_key, schema.perturbation_key):
            if key not in adata.obs.columns:
                raise DataValidationError(
                    f"obs key {key!r} is missing; obs has columns {list(adata.obs.columns)}"
                )
        targets = [(str(c), str(p)) for c, p in targets]
        contexts = obs_labels(adata, schema.context_key)
        perturbations = obs_labels(adata, schema.perturbation_key)
        rows = AnnDataRows(adata, layer=layer)
        rng = np.random.default_rng(self.random_state)
        values = np.stack(
            [self._predict_one(rows, contexts, perturbations, c, p, rng=rng) for c, p in targets]
        )
        return prediction_adata(values, targets, self.var_names_, schema)

    def _labels_of(self, perturbations: np.ndarray, components: tuple[str, ...]) -> list[str]:
        """Labels of ``perturbations`` naming exactly ``components`` (``b+a`` is ``a+b``)."""
        sep = self.schema_.combination_sep
        return [
            label
            for label in sorted(set(perturbations))
            if label != self.schema_.control and split_combination(label, sep) == components
        ]

    def _source_latents(
        self,
        rows: Any,
        contexts: np.ndarray,
        perturbations: np.ndarray,
        context: str,
        components: tuple[str, ...],
        *,
        exclude_target: bool,
    ) -> np.ndarray | None:
        """``P`` of the cells of ``components`` (outside ``context`` if asked) or the kept mean.

        ``None`` when no such cell is in the data and the model kept no latent for it.
        """
        mask = np.isin(perturbations, self._labels_of(perturbations, components))
        if exclude_target:
            mask &= contexts != context
        if mask.any():
            return self._encode(rows, np.flatnonzero(mask))[1]
        kept = self._labels_of(np.asarray(self.perturbations_), components)
        if kept:
            return self.perturbation_latents_[[self.perturbations_.index(kept[0])]]
        return None

    def _unknown(self, single: str, context: str, *, exclude_target: bool) -> DataValidationError:
        return DataValidationError(
            f"perturbation {single!r} has no cell in the prediction data"
            f"{' outside context ' + repr(context) if exclude_target else ''} and was not "
            f"seen in training; known perturbations: {self.perturbations_[:20]}"
        )

    def _predict_one(
        self,
        rows: Any,
        contexts: np.ndarray,
        perturbations: np.ndarray,
        context: str,
        perturbation: str,
        *,
        rng: np.random.Generator,
    ) -> np.ndarray:
        schema = self.schema_
        controls = np.flatnonzero((contexts == context) & (perturbations == schema.control))
        if controls.size == 0:
            raise DataValidationError(
                f"no {schema.control!r} cell of context {context!r} in "
                f"obs[{schema.context_key!r}]; XTransfer predicts from the target's controls"
            )
        components = split_combination(perturbation, schema.combination_sep)
        if not components or perturbation == schema.control:
            raise DataValidationError(f"target perturbation {perturbation!r} names no perturbation")
        # the perturbation as measured elsewhere (a combination too); a combination measured
        # nowhere is built from its singles
        whole = self._source_latents(
            rows, contexts, perturbations, context, components, exclude_target=True
        )
        if whole is None and len(components) == 1:
            raise self._unknown(components[0], context, exclude_target=True)
        from_singles = whole is None
        if from_singles:
            p_sources = []
            for single in components:
                latents = self._source_latents(
                    rows, contexts, perturbations, context, (single,), exclude_target=False
                )
                if latents is None:
                    raise self._unknown(single, context, exclude_target=False)
                p_sources.append(latents)
        else:
            assert whole is not None  # from_singles is false
            p_sources = [whole]
        target_delta = self._decoded_delta(rows, controls, p_sources, rng)
        if self.prediction == "decoded":
            return target_delta[0]
        measured = rows[controls]["x"].numpy().mean(axis=0)
        if self.prediction == "control_plus_delta" or from_singles:
            return measured + target_delta[1]
        treated = np.isin(perturbations, self._labels_of(perturbations, components))
        return measured + self._anchored_delta(
            rows,
            contexts,
            perturbations,
            context,
            treated_mask=treated,
            p_sources=p_sources,
            target_delta=target_delta[1],
            rng=rng,
        )

    def _decoded_delta(
        self,
        rows: Any,
        controls: np.ndarray,
        p_sources: list[np.ndarray],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``D(S + P)`` over ``controls`` and the mean decoded change ``D(S + P) - D(S)``."""
        s, _ = self._encode(rows, controls)
        p = np.zeros_like(s)
        for source in p_sources:
            if self.matching == "mean":
                p += source.mean(axis=0, keepdims=True)
            else:
                p += source[rng.integers(0, len(source), size=len(s))]
        module = self.module_
        s_t = torch.from_numpy(s)
        decoded = module.predict_from_latents(s_t, torch.from_numpy(p)).numpy().mean(axis=0)
        if self.prediction == "decoded":
            return decoded, decoded
        baseline = module.predict_from_latents(s_t, torch.zeros_like(s_t)).numpy().mean(axis=0)
        return decoded, decoded - baseline

    def _anchored_delta(
        self,
        rows: Any,
        contexts: np.ndarray,
        perturbations: np.ndarray,
        context: str,
        *,
        treated_mask: np.ndarray,
        p_sources: list[np.ndarray],
        target_delta: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Observed mean change of the source contexts plus the model's context difference.

        ``mean_c(observed delta_c) + w * (decoded delta(target) - mean_c(decoded delta_c))``
        over the source contexts ``c`` that hold treated cells (``treated_mask``) and controls,
        with ``w`` from :func:`_anchor_weight`; the decoded change of the target when there is
        no such context.
        """
        control = self.schema_.control
        observed, decoded = [], []
        for source in sorted(set(contexts[treated_mask]) - {context}):
            in_source = contexts == source
            treated = np.flatnonzero(in_source & treated_mask)
            source_controls = np.flatnonzero(in_source & (perturbations == control))
            if source_controls.size == 0:
                continue
            control_mean = rows[source_controls]["x"].numpy().mean(axis=0)
            observed.append(rows[treated]["x"].numpy().mean(axis=0) - control_mean)
            decoded.append(self._decoded_delta(rows, source_controls, p_sources, rng)[1])
        if not observed:
            return target_delta
        weight = anchor_weight(np.asarray(observed), np.asarray(decoded))
        return np.mean(observed, axis=0) + weight * (target_delta - np.mean(decoded, axis=0))

    # -- persistence (save and load: NeuralEstimator) -------------------------------------
    _write_files = write_files
    _read_files = classmethod(read_files)

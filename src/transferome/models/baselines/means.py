"""The baselines every model is compared with: ``control``, ``additive`` and ``linear``.

All three work on changes against the control mean of the same context (``delta``) and
predict one mean profile per target: the target context's own control mean (taken from the
``adata`` given to ``predict``) plus a predicted change.

- :class:`ControlBaseline`: no change.
- :class:`AdditiveBaseline`: the mean change of the perturbation over the contexts where it
  was measured; for a combination measured nowhere, the sum of its singles' changes (the
  target context's own where it measured them); across species through a gene mapping.
- :class:`LinearBaseline`: context and perturbation main effects plus a low-rank
  context x perturbation interaction on the change matrix, fitted by alternating ridge least
  squares, with rank and penalty chosen by inner validation.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome._logging import get_logger
from transferome.data.aggregate import context_deltas, control_means
from transferome.data.schema import (
    DatasetDescription,
    Schema,
    as_schema,
    checked_schema,
    split_combination,
)
from transferome.errors import DataValidationError, ModelFileError
from transferome.models._changes import mapping_matrix
from transferome.models._persist import check_var_names, read_model_files, write_model_files
from transferome.models.base import Estimator, Target, prediction_adata
from transferome.models.baselines._linear_fit import fit_effects, select_rank_penalty

__all__ = ["AdditiveBaseline", "ControlBaseline", "LinearBaseline"]

_log = get_logger(__name__)


def _validated_schema(adata: AnnData, schema: Schema | DatasetDescription | None) -> Schema:
    return checked_schema(
        adata, schema, require_controls=False, allow_negative=True, allow_nan=True
    )


class _Baseline(Estimator, abc.ABC):
    """Shared plumbing: target controls at predict time and the model files."""

    def _start_fit(self, adata: AnnData, schema: Schema | DatasetDescription | None) -> Schema:
        schema = _validated_schema(adata, schema)
        self.schema_ = schema
        self.var_names_ = [str(g) for g in adata.var_names]
        return schema

    def _targets_and_controls(
        self, adata: AnnData, targets: Sequence[Target]
    ) -> tuple[list[Target], np.ndarray]:
        self._check_fitted()
        check_var_names(self.var_names_, adata.var_names, what="data")
        pairs = [(str(c), str(p)) for c, p in targets]
        if not pairs:
            raise DataValidationError("no targets given to predict")
        controls = control_means(adata, schema=self.schema_)
        missing = sorted({c for c, _ in pairs if c not in controls.index})
        if missing:
            raise DataValidationError(
                f"target context(s) {missing} have no {self.schema_.control!r} observations "
                f"in the data given to predict; the prediction starts from them"
            )
        return pairs, controls.loc[[c for c, _ in pairs]].to_numpy(dtype=np.float64)

    def predict(self, adata: AnnData, targets: Sequence[Target]) -> AnnData:
        """Predict the mean profile of each (context, perturbation) target.

        Parameters
        ----------
        adata
            Data with the model's genes holding the controls of every target context
            (usually the training data).
        targets
            (context, perturbation) pairs; the control label predicts the control mean.

        Returns
        -------
        anndata.AnnData
            One row per target, see :func:`~transferome.models.prediction_adata`.
        """
        pairs, control = self._targets_and_controls(adata, targets)
        delta = np.vstack(
            [
                np.zeros(len(self.var_names_)) if p == self.schema_.control else self._delta(c, p)
                for c, p in pairs
            ]
        )
        return prediction_adata(control + delta, pairs, self.var_names_, self.schema_)

    @abc.abstractmethod
    def _delta(self, context: str, perturbation: str) -> np.ndarray:
        """Predicted change of ``perturbation`` in ``context`` (one value per gene)."""

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _extra(self) -> dict[str, Any]:
        return {}

    def _restore(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Set the fitted attributes from a model folder."""

    def _file_params(self) -> dict[str, Any]:
        """Hyperparameters as written to ``model.json`` (JSON values only)."""
        return self.get_params()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to the folder ``path`` (safetensors + JSON)."""
        self._check_fitted()
        return write_model_files(
            path,
            model_class=type(self).__name__,
            params=self._file_params(),
            arrays=self._arrays(),
            var_names=self.var_names_,
            extra={"schema": self.schema_.to_dict(), **self._extra()},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> _Baseline:
        """Read a model written by :meth:`save`.

        Raises
        ------
        ModelFileError
            Missing or corrupt files, or a folder holding another model.
        """
        meta, arrays = read_model_files(path, model_class=cls.__name__)
        try:
            model = cls(**meta["params"])
            model.schema_ = Schema.from_dict(meta["extra"]["schema"])
            model.var_names_ = [str(g) for g in meta["var_names"]]
            model._restore(meta["extra"], arrays)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: inconsistent model files ({exc})") from exc
        return model


class ControlBaseline(_Baseline):
    """Predict no change: the target context's own control mean."""

    name: ClassVar[str] = "control"
    fast_params: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        pass

    def fit(
        self, adata: AnnData, *, schema: Schema | DatasetDescription | None = None
    ) -> ControlBaseline:
        """Record the genes and keys (nothing else is learned); returns ``self``."""
        self._start_fit(adata, schema)
        return self

    def _delta(self, context: str, perturbation: str) -> np.ndarray:
        return np.zeros(len(self.var_names_))


class AdditiveBaseline(_Baseline):
    """Target control + the mean change of the perturbation in the contexts where it was seen.

    A perturbation's change is averaged over contexts (each context weighs the same); a
    combination measured in other contexts is transferred like any perturbation. A
    combination measured nowhere is predicted as the sum of its singles' changes, each taken
    from the target context itself where that single was measured there (the context's own
    response), and from the mean over contexts otherwise. With
    ``source`` data of another species, the source contexts' changes are carried to the
    target genes through ``gene_map`` (a target gene with several source genes takes their
    average) and pooled with the target species' own contexts; a target gene that no source
    gene maps to takes its change from the target species' contexts only, or zero.
    """

    name: ClassVar[str] = "additive"
    fast_params: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        pass

    def fit(
        self,
        adata: AnnData,
        *,
        schema: Schema | DatasetDescription | None = None,
        source: AnnData | None = None,
        gene_map: pd.DataFrame | None = None,
    ) -> AdditiveBaseline:
        """Learn each perturbation's mean change; returns ``self``.

        Parameters
        ----------
        adata
            Training data of the target species (the controls of the target contexts may be
            all it holds when ``source`` is given).
        schema
            The obs keys (also used for ``source``), or the description of the data ``adata`` was
            taken from (:func:`~transferome.data.schema.checked_schema`).
        source
            Training data of another species with the perturbations measured.
        gene_map
            (source gene, target gene) pairs, in columns ``source_gene`` and ``target_gene``
            or the first two columns (many-to-many pairs are averaged). ``None`` pairs genes
            of identical names.
        """
        schema = self._start_fit(adata, schema)
        rows: list[tuple[str, np.ndarray]] = []
        self.groups_: list[tuple[str, str]] = []
        self.group_deltas_ = np.zeros((0, len(self.var_names_)))
        try:
            own = context_deltas(adata, schema=schema)
            rows += [(p, own.iloc[i].to_numpy()) for i, (_, p) in enumerate(own.index)]
            self.groups_ = [(str(c), str(p)) for c, p in own.index]
            self.group_deltas_ = own.to_numpy(dtype=np.float64)
        except DataValidationError:
            if source is None:
                raise
        if source is not None:
            source_schema = _validated_schema(source, as_schema(schema))
            theirs = context_deltas(source, schema=source_schema)
            mapping = mapping_matrix(gene_map, list(theirs.columns), self.var_names_)
            mapped = theirs.to_numpy() @ mapping.T
            mapped[:, mapping.sum(axis=1) == 0] = np.nan
            rows += [(p, mapped[i]) for i, (_, p) in enumerate(theirs.index)]
        perturbations = sorted({p for p, _ in rows})
        shifts = np.zeros((len(perturbations), len(self.var_names_)))
        n_contexts = np.zeros(len(perturbations), dtype=np.int64)
        for k, perturbation in enumerate(perturbations):
            stack = np.vstack([v for p, v in rows if p == perturbation])
            present = ~np.isnan(stack)
            total = np.where(present, stack, 0.0).sum(axis=0)
            count = present.sum(axis=0)
            shifts[k] = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
            n_contexts[k] = stack.shape[0]
        self.perturbations_ = perturbations
        self.shifts_ = shifts
        self.n_contexts_ = n_contexts
        _log.debug("additive baseline: %d perturbations", len(perturbations))
        return self

    def _delta(self, context: str, perturbation: str) -> np.ndarray:
        sep = self.schema_.combination_sep
        parts = split_combination(perturbation, sep)
        index = {p: i for i, p in enumerate(self.perturbations_)}
        # a combination measured elsewhere under another order of its parts ("b+a")
        same = [p for p in self.perturbations_ if split_combination(p, sep) == parts]
        if perturbation in index or (len(parts) > 1 and same):
            return self.shifts_[index[perturbation if perturbation in index else same[0]]]
        own = {p: i for i, (c, p) in enumerate(self.groups_) if c == context}
        unseen = [p for p in parts if p not in index]
        if len(parts) < 2 or unseen:
            raise DataValidationError(
                f"perturbation {perturbation!r} was not seen in training"
                + (f" (singles {unseen} unseen)" if len(parts) > 1 else "")
                + f"; seen: {self.perturbations_[:20]}"
            )
        changes = []
        for part in parts:
            shift = self.shifts_[index[part]]
            if part in own:
                # genes the context did not measure take the mean over contexts
                mine = self.group_deltas_[own[part]]
                shift = np.where(np.isnan(mine), shift, mine)
            changes.append(shift)
        return np.sum(changes, axis=0)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "shifts": self.shifts_,
            "n_contexts": self.n_contexts_,
            "group_deltas": self.group_deltas_,
        }

    def _extra(self) -> dict[str, Any]:
        return {"perturbations": self.perturbations_, "groups": [list(g) for g in self.groups_]}

    def _restore(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.perturbations_ = [str(p) for p in extra["perturbations"]]
        self.shifts_ = np.asarray(arrays["shifts"], dtype=np.float64)
        self.n_contexts_ = np.asarray(arrays["n_contexts"])
        if self.shifts_.shape != (len(self.perturbations_), len(self.var_names_)):
            raise ValueError(f"shifts have shape {self.shifts_.shape}")
        # model folders written before the per-context changes were kept have neither
        self.groups_ = [(str(c), str(p)) for c, p in extra.get("groups", [])]
        deltas = arrays.get("group_deltas", np.zeros((0, len(self.var_names_))))
        self.group_deltas_ = np.asarray(deltas, dtype=np.float64)
        if self.group_deltas_.shape != (len(self.groups_), len(self.var_names_)):
            raise ValueError(f"group_deltas have shape {self.group_deltas_.shape}")


class LinearBaseline(_Baseline):
    """Main effects plus a low-rank context x perturbation interaction on the change matrix.

    The change of perturbation ``p`` in context ``c`` (mean minus the context's control mean)
    is modelled per gene as ``m + a_c + b_p + A_c . B_p`` with ``A_c`` a ``rank``-vector per
    context and ``B_p`` a ``rank`` x genes matrix per perturbation, fitted by alternating
    ridge least squares. The rank and the ridge penalty are chosen among ``ranks`` x
    ``penalties`` by inner validation: a ``val_fraction`` of the observed (context,
    perturbation) changes (only those whose perturbation is seen in another context) is held
    out, and the pair with the lowest squared error is refitted on all of them. A context
    without perturbed training data gets ``a_c = 0`` and no interaction; an unseen
    combination sums its singles' effects.

    Parameters
    ----------
    ranks
        Candidate ranks of the interaction (0: main effects only).
    penalties
        Candidate ridge penalties (positive), in units of observed groups.
    n_iter
        Alternating least-squares sweeps.
    val_fraction
        Fraction of the observed changes held out for the inner validation.
    random_state
        Seed of the validation draw and of the initial context factors.
    """

    name: ClassVar[str] = "linear"
    fast_params: ClassVar[dict[str, Any]] = {
        "ranks": (0, 1),
        "penalties": (1.0,),
        "n_iter": 10,
    }

    def __init__(
        self,
        *,
        ranks: Sequence[int] = (0, 1, 2, 4),
        penalties: Sequence[float] = (0.1, 1.0, 10.0),
        n_iter: int = 30,
        val_fraction: float = 0.2,
        random_state: int = 0,
    ) -> None:
        self.ranks = ranks
        self.penalties = penalties
        self.n_iter = n_iter
        self.val_fraction = val_fraction
        self.random_state = random_state

    def _check_params(self) -> None:
        if not self.ranks or any(int(r) < 0 for r in self.ranks):
            raise DataValidationError(f"ranks must be non-negative integers, got {self.ranks}")
        if not self.penalties or any(float(v) <= 0 for v in self.penalties):
            raise DataValidationError(f"penalties must be positive, got {self.penalties}")
        if int(self.n_iter) < 1:
            raise DataValidationError(f"n_iter must be at least 1, got {self.n_iter}")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise DataValidationError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    def fit(
        self, adata: AnnData, *, schema: Schema | DatasetDescription | None = None
    ) -> LinearBaseline:
        """Fit the effects on the training changes; returns ``self``."""
        self._check_params()
        schema = self._start_fit(adata, schema)
        deltas = context_deltas(adata, schema=schema)
        unmeasured = int(np.isnan(deltas.to_numpy()).sum())
        if unmeasured:
            raise DataValidationError(
                f"the linear baseline needs every gene measured in every training group, but "
                f"{unmeasured} (group, gene) changes are NaN (not measured); fill them or use "
                "the additive baseline, which averages what was measured"
            )
        contexts = sorted({c for c, _ in deltas.index})
        perturbations = sorted({p for _, p in deltas.index})
        c_pos = {c: i for i, c in enumerate(contexts)}
        p_pos = {p: i for i, p in enumerate(perturbations)}
        tensor = np.zeros((len(contexts), len(perturbations), deltas.shape[1]))
        mask = np.zeros((len(contexts), len(perturbations)))
        for row, (c, p) in enumerate(deltas.index):
            tensor[c_pos[c], p_pos[p]] = deltas.iloc[row].to_numpy()
            mask[c_pos[c], p_pos[p]] = 1.0
        rank, penalty, scores = select_rank_penalty(
            tensor,
            mask,
            ranks=[int(r) for r in self.ranks],
            penalties=[float(v) for v in self.penalties],
            n_iter=int(self.n_iter),
            val_fraction=float(self.val_fraction),
            seed=int(self.random_state),
        )
        effects = fit_effects(
            tensor,
            mask,
            rank=rank,
            penalty=penalty,
            n_iter=int(self.n_iter),
            seed=int(self.random_state),
        )
        self.contexts_ = contexts
        self.perturbations_ = perturbations
        self.rank_ = rank
        self.penalty_ = penalty
        self.validation_scores_ = scores
        self.offset_, self.context_effects_, self.perturbation_effects_ = effects[:3]
        self.context_factors_, self.perturbation_factors_ = effects[3:]
        _log.debug("linear baseline: rank %d, penalty %g (validation %s)", rank, penalty, scores)
        return self

    def _delta(self, context: str, perturbation: str) -> np.ndarray:
        p_pos = {p: i for i, p in enumerate(self.perturbations_)}
        parts = (
            (perturbation,)
            if perturbation in p_pos
            else split_combination(perturbation, self.schema_.combination_sep)
        )
        unseen = [p for p in parts if p not in p_pos]
        if unseen or (perturbation not in p_pos and len(parts) < 2):
            raise DataValidationError(
                f"perturbation {perturbation!r} was not seen in training"
                + (f" (singles {unseen} unseen)" if len(parts) > 1 else "")
                + f"; seen: {self.perturbations_[:20]}"
            )
        rows = [p_pos[p] for p in parts]
        delta = self.offset_ + self.perturbation_effects_[rows].sum(axis=0)
        if context in self.contexts_:
            c = self.contexts_.index(context)
            delta = delta + self.context_effects_[c]
            if self.rank_:
                interaction = self.perturbation_factors_[rows].sum(axis=0)
                delta = delta + self.context_factors_[c] @ interaction
        return delta

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "offset": self.offset_,
            "context_effects": self.context_effects_,
            "perturbation_effects": self.perturbation_effects_,
            "context_factors": self.context_factors_,
            "perturbation_factors": self.perturbation_factors_,
        }

    def _extra(self) -> dict[str, Any]:
        return {
            "contexts": self.contexts_,
            "perturbations": self.perturbations_,
            "rank": self.rank_,
            "penalty": self.penalty_,
            "validation_scores": self.validation_scores_,
        }

    def _restore(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.contexts_ = [str(c) for c in extra["contexts"]]
        self.perturbations_ = [str(p) for p in extra["perturbations"]]
        self.rank_ = int(extra["rank"])
        self.penalty_ = float(extra["penalty"])
        self.validation_scores_ = dict(extra["validation_scores"])
        self.offset_ = arrays["offset"]
        self.context_effects_ = arrays["context_effects"]
        self.perturbation_effects_ = arrays["perturbation_effects"]
        self.context_factors_ = arrays["context_factors"]
        self.perturbation_factors_ = arrays["perturbation_factors"]
        n_genes = len(self.var_names_)
        expected = {
            "offset": (n_genes,),
            "context_effects": (len(self.contexts_), n_genes),
            "perturbation_effects": (len(self.perturbations_), n_genes),
            "context_factors": (len(self.contexts_), self.rank_),
            "perturbation_factors": (len(self.perturbations_), self.rank_, n_genes),
        }
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                raise ValueError(f"{name} has shape {arrays[name].shape}, expected {shape}")

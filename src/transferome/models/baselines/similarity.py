"""Baselines that weight the source contexts by likeness: ``similar`` and ``collaborative``.

Both predict the target context's control plus a weighted mean of the perturbation's changes
in the other contexts, with weights ``softmax(similarity / T)``:

- :class:`SimilarBaseline`: similarity of control profiles (Pearson of the control means,
  each centred on the mean control over contexts); alike cells respond alike.
- :class:`CollaborativeBaseline`: similarity of the contexts' measured changes to the *other*
  perturbations (the target context's own measured perturbations, never the held-out one),
  each change centred on the mean change over contexts; where the target shares no other
  perturbation with a source, it falls back to the control similarity.

``T`` is chosen inside ``fit`` by leaving each measured context out in turn and predicting its
change from the others (never by looking at a target); among temperatures within 0.5% of the
best error the largest wins, so alike contexts (donors of one cell type) get the plain mean.
Across species, ``fit(source=..., gene_map=...)`` adds the other species' contexts, carried
onto the target genes, as sources named ``"<species>:<context>"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.schema import DatasetDescription, Schema, as_schema, split_combination
from transferome.errors import DataValidationError
from transferome.models._changes import ChangeTensor, change_tensor, mapped, mapping_matrix
from transferome.models._weighting import (
    TEMPERATURES,
    centred_similarity,
    pooled_similarity,
    relative_errors,
    response_similarity,
    softmax,
    temperature_from_errors,
    weighted_mean,
    weighted_means,
)
from transferome.models.base import Target, prediction_adata
from transferome.models.baselines.means import _Baseline, _validated_schema

__all__ = ["CollaborativeBaseline", "SimilarBaseline"]


class _SourceWeighting(_Baseline):
    """Shared plumbing: the change tensor, sources of a target, combinations, model files."""

    response_temperature_: float  # set by the weightings that use response likeness

    def __init__(
        self,
        *,
        temperatures: Sequence[float] = TEMPERATURES,
        tolerance: float = 0.005,
        max_pseudo_targets: int = 500,
        random_state: int = 0,
    ) -> None:
        self.temperatures = temperatures
        self.tolerance = tolerance
        self.max_pseudo_targets = max_pseudo_targets
        self.random_state = random_state

    def _check_weighting_params(self) -> None:
        temperatures = [float(t) for t in self.temperatures]
        if not temperatures or any(not t > 0 for t in temperatures):
            raise DataValidationError(
                f"temperatures must be positive (inf allowed), got {self.temperatures}"
            )
        if int(self.max_pseudo_targets) < 1:
            raise DataValidationError(
                f"max_pseudo_targets must be at least 1, got {self.max_pseudo_targets}"
            )

    def _fit_tensor(
        self,
        adata: AnnData,
        schema: Schema | DatasetDescription | None,
        source: AnnData | None,
        gene_map: pd.DataFrame | None,
        source_name: str = "source",
    ) -> ChangeTensor:
        self._check_weighting_params()
        schema = self._start_fit(adata, schema)
        try:
            tensor = change_tensor(adata, schema=schema)
        except DataValidationError:
            if source is None:
                raise
            tensor = None
        if source is not None:
            source_schema = _validated_schema(source, as_schema(schema))
            theirs = change_tensor(source, schema=source_schema)
            matrix = mapping_matrix(gene_map, list(map(str, source.var_names)), self.var_names_)
            species = source_name
            if source_schema.species_key and source_schema.species_key in source.obs:
                names = source.obs[source_schema.species_key].astype(str).unique()
                species = str(names[0]) if len(names) == 1 else source_name
            carried = mapped(theirs, matrix, species)
            tensor = carried if tensor is None else tensor.merged(carried)
        assert tensor is not None
        self.tensor_ = tensor
        finite = np.isfinite(tensor.controls)
        count = finite.sum(axis=0)
        total = np.where(finite, tensor.controls, 0.0).sum(axis=0)
        self.centre_ = np.divide(total, count, out=np.zeros(tensor.n_genes), where=count > 0)
        self.control_similarity_ = np.vstack(
            [centred_similarity(tensor.controls, row, self.centre_) for row in tensor.controls]
        )
        return tensor

    # -- sources -------------------------------------------------------------------------
    def _sources(self, context: str, perturbation: str) -> list[int]:
        tensor = self.tensor_
        j = tensor.perturbation_index()[perturbation]
        target = tensor.context_index().get(context, -1)
        return [int(s) for s in np.flatnonzero(tensor.measured[:, j]) if s != target]

    def _control_likeness(
        self, c: int | None, sources: Sequence[int], control: np.ndarray | None
    ) -> np.ndarray:
        """Return the centred control similarity of each source to the target.

        The target is context index ``c``, or its control mean ``control`` when given; zeros
        for an unknown context.
        """
        if control is not None:
            return centred_similarity(self.tensor_.controls[list(sources)], control, self.centre_)
        if c is not None:
            return self.control_similarity_[c, list(sources)]
        return np.zeros(len(sources))

    def _control_weights(
        self, context: str, sources: Sequence[int], control: np.ndarray | None
    ) -> np.ndarray:
        c = self.tensor_.context_index().get(context)
        return softmax(self._control_likeness(c, sources, control), self.temperature_)

    def _prepare_responses(self) -> None:
        """Pieces of the response likeness of every context pair (after fit or load)."""
        self._pieces = response_similarity(self.tensor_.values, self.tensor_.measured)

    def _response_likeness(
        self, c: int, p: int, sources: Sequence[int], control: np.ndarray | None = None
    ) -> np.ndarray:
        """Return the response likeness of each source to context ``c``.

        Over the perturbations both measured except ``p``; control likeness for a source that
        shares none.
        """
        shared = pooled_similarity(self._pieces, c, list(sources), exclude=p)
        return np.where(np.isfinite(shared), shared, self._control_likeness(c, sources, control))

    def _response_weights(
        self, c: int | None, p: int, sources: Sequence[int], control: np.ndarray | None
    ) -> np.ndarray:
        """Return the ``collaborative`` weights.

        The control weights where ``c`` is unknown or shares no other perturbation with any
        source.
        """
        if c is not None:
            shared = pooled_similarity(self._pieces, c, list(sources), exclude=p)
            if np.isfinite(shared).any():
                return softmax(
                    self._response_likeness(c, p, sources, control), self.response_temperature_
                )
        return softmax(self._control_likeness(c, sources, control), self.temperature_)

    def _pseudo_targets(self, min_sources: int = 2) -> list[tuple[int, int]]:
        """Measured (context, perturbation) pairs that can play the held-out one."""
        tensor = self.tensor_
        counts = tensor.measured.sum(axis=0)
        pairs = [
            (int(c), int(p))
            for c, p in zip(*np.nonzero(tensor.measured), strict=True)
            if counts[p] - 1 >= min_sources
        ]
        limit = int(self.max_pseudo_targets)
        if len(pairs) > limit:
            rng = np.random.default_rng(int(self.random_state))
            chosen = rng.choice(len(pairs), size=limit, replace=False)
            pairs = [pairs[i] for i in sorted(chosen)]
        return pairs

    def _select_temperature(
        self, similarity_of, pairs: list[tuple[int, int]]
    ) -> tuple[float, dict]:
        """Leave-one-context-out error of every temperature; ``similarity_of(c, p, S)``."""
        tensor = self.tensor_
        temperatures = [float(t) for t in self.temperatures]
        errors = []
        for c, p in pairs:
            sources = [s for s in np.flatnonzero(tensor.measured[:, p]) if s != c]
            similarity = similarity_of(c, p, sources)
            weights = np.vstack([softmax(similarity, t) for t in temperatures])
            predictions = weighted_means(tensor.values[sources, p], weights)
            errors.append(relative_errors(predictions, tensor.values[c, p]))
        return temperature_from_errors(temperatures, errors, tolerance=float(self.tolerance))

    # -- prediction ----------------------------------------------------------------------
    def predict(self, adata: AnnData, targets: Sequence[Target]) -> AnnData:
        """Predict the mean profile of each (context, perturbation) target.

        The target context's control mean comes from ``adata``; a combination measured in
        other contexts is transferred like any perturbation, one measured nowhere is the sum
        of its singles (the target context's own measured change of a single where it has
        one, the transferred change otherwise).
        """
        pairs, control = self._targets_and_controls(adata, targets)
        rows = []
        for (c, p), control_row in zip(pairs, control, strict=True):
            rows.append(
                np.zeros(len(self.var_names_))
                if p == self.schema_.control
                else np.nan_to_num(self._combined_change(c, p, control_row))
            )
        return prediction_adata(control + np.vstack(rows), pairs, self.var_names_, self.schema_)

    def _combined_change(
        self, context: str, perturbation: str, control: np.ndarray | None
    ) -> np.ndarray:
        index = self.tensor_.perturbation_index()
        if perturbation in index:
            if not self._sources(context, perturbation):
                raise DataValidationError(
                    f"perturbation {perturbation!r} was measured only in {context!r}; there is "
                    "no other context to transfer it from"
                )
            return self._change(context, perturbation, control)
        parts = split_combination(perturbation, self.schema_.combination_sep)
        unseen = [p for p in parts if p not in index]
        if len(parts) < 2 or unseen:
            raise DataValidationError(
                f"perturbation {perturbation!r} was not seen in training"
                + (f" (singles {unseen} unseen)" if len(parts) > 1 else "")
                + f"; seen: {list(self.tensor_.perturbations[:20])}"
            )
        position = self.tensor_.context_index().get(context)
        total = np.zeros(len(self.var_names_))
        for part in parts:
            j = index[part]
            if position is not None and self.tensor_.measured[position, j]:
                total = total + np.nan_to_num(self.tensor_.values[position, j])
            else:
                total = total + np.nan_to_num(self._change(context, part, control))
        return total

    def _change(self, context: str, perturbation: str, control: np.ndarray | None) -> np.ndarray:
        sources = self._sources(context, perturbation)
        weights = self._weights(context, perturbation, sources, control)
        j = self.tensor_.perturbation_index()[perturbation]
        return weighted_mean(self.tensor_.values[sources, j], weights)

    def _weights(
        self, context: str, perturbation: str, sources: list[int], control: np.ndarray | None
    ) -> np.ndarray:
        return self._control_weights(context, sources, control)

    def _delta(self, context: str, perturbation: str) -> np.ndarray:
        # the fitted control of the context (predict passes the one of its data)
        return self._combined_change(context, perturbation, None)

    def source_weights(self, adata: AnnData, targets: Sequence[Target]) -> pd.DataFrame:
        """Which source contexts each target's prediction used, with their weights.

        Returns
        -------
        pandas.DataFrame
            Columns ``context``, ``perturbation``, ``source_context``, ``weight`` (one row
            per target and source; combinations built from singles list each single).
        """
        pairs, control = self._targets_and_controls(adata, targets)
        records = []
        index = self.tensor_.perturbation_index()
        for (c, p), row in zip(pairs, control, strict=True):
            parts = (
                [p]
                if p in index
                else [q for q in split_combination(p, self.schema_.combination_sep) if q in index]
            )
            for part in parts:
                sources = self._sources(c, part)
                for s, w in zip(sources, self._weights(c, part, sources, row), strict=True):
                    records.append((c, p, self.tensor_.contexts[s], float(w)))
        return pd.DataFrame(
            records, columns=["context", "perturbation", "source_context", "weight"]
        )

    # -- model files ---------------------------------------------------------------------
    def _file_params(self) -> dict[str, Any]:
        params = self.get_params()
        params["temperatures"] = [_json_float(float(t)) for t in params["temperatures"]]
        return params

    def _arrays(self) -> dict[str, np.ndarray]:
        t = self.tensor_
        return {
            "values": t.values,
            "measured": t.measured.astype(np.uint8),
            "controls": t.controls,
            "centre": self.centre_,
            "control_similarity": self.control_similarity_,
        }

    def _extra(self) -> dict[str, Any]:
        return {
            "contexts": list(self.tensor_.contexts),
            "perturbations": list(self.tensor_.perturbations),
            "temperature": _json_float(self.temperature_),
            "temperature_errors": {
                str(k): _json_float(v) for k, v in self.temperature_errors_.items()
            },
        }

    def _restore(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.temperatures = tuple(float(t) for t in self.temperatures)
        contexts = tuple(str(c) for c in extra["contexts"])
        perturbations = tuple(str(p) for p in extra["perturbations"])
        values = np.asarray(arrays["values"], dtype=np.float64)
        if values.shape != (len(contexts), len(perturbations), len(self.var_names_)):
            raise ValueError(f"values have shape {values.shape}")
        self.tensor_ = ChangeTensor(
            contexts,
            perturbations,
            values,
            np.asarray(arrays["measured"]).astype(bool),
            np.asarray(arrays["controls"], dtype=np.float64),
        )
        self.centre_ = np.asarray(arrays["centre"], dtype=np.float64)
        self.control_similarity_ = np.asarray(arrays["control_similarity"], dtype=np.float64)
        self.temperature_ = float(extra["temperature"])
        self.temperature_errors_ = {
            float(k): float(v) for k, v in extra["temperature_errors"].items()
        }


def _json_float(value: float) -> float | str:
    return value if np.isfinite(value) else str(value)


class SimilarBaseline(_SourceWeighting):
    """Target control + the source contexts' changes weighted by control-profile likeness.

    Weights are ``softmax(sim / T)`` with ``sim`` the Pearson correlation of the centred
    control means of the target and each source context; ``T`` is chosen in ``fit`` by
    leaving each measured context out in turn.

    Parameters
    ----------
    temperatures
        Candidate temperatures (``inf``: the plain mean, i.e. ``additive``).
    tolerance
        Relative error margin within which the largest temperature is preferred.
    max_pseudo_targets
        At most this many measured (context, perturbation) pairs play the held-out one when
        choosing ``T`` (a seeded sample).
    random_state
        Seed of that sample.
    """

    name: ClassVar[str] = "similar"
    fast_params: ClassVar[dict[str, Any]] = {"max_pseudo_targets": 100}

    def fit(
        self,
        adata: AnnData,
        *,
        schema: Schema | DatasetDescription | None = None,
        source: AnnData | None = None,
        gene_map: pd.DataFrame | None = None,
    ) -> SimilarBaseline:
        """Learn the changes and choose ``T``; returns ``self``.

        Parameters
        ----------
        adata
            Training data (log-normalised, or changes with zero controls).
        schema
            The obs keys, or the description of the data ``adata`` was
            taken from (:func:`~transferome.data.schema.checked_schema`).
        source, gene_map
            Another species' training data and (source gene, target gene) pairs, as for
            :class:`~transferome.models.baselines.means.AdditiveBaseline`.
        """
        self._fit_tensor(adata, schema, source, gene_map)
        self.temperature_, self.temperature_errors_ = self._select_temperature(
            lambda c, p, s: self.control_similarity_[c, s], self._pseudo_targets()
        )
        return self


class CollaborativeBaseline(_SourceWeighting):
    """Source contexts weighted by how alike their responses to the other perturbations are.

    For a target (c, p), each source context s that measured p is weighted by the cosine of
    the centred changes of c and s pooled over every other perturbation both measured;
    sources sharing nothing with c get the control-profile similarity instead (the
    :class:`SimilarBaseline` weights, with that baseline's own leave-one-out temperature).
    Parameters as for :class:`SimilarBaseline`.
    """

    name: ClassVar[str] = "collaborative"
    fast_params: ClassVar[dict[str, Any]] = {"max_pseudo_targets": 100}

    def fit(
        self,
        adata: AnnData,
        *,
        schema: Schema | DatasetDescription | None = None,
        source: AnnData | None = None,
        gene_map: pd.DataFrame | None = None,
    ) -> CollaborativeBaseline:
        """Learn the changes and choose both temperatures; returns ``self``.

        Parameters as for :meth:`SimilarBaseline.fit`.
        """
        self._fit_tensor(adata, schema, source, gene_map)
        pairs = self._pseudo_targets()
        self.temperature_, self.temperature_errors_ = self._select_temperature(
            lambda c, p, s: self.control_similarity_[c, s], pairs
        )
        self._prepare_responses()
        self.response_temperature_, self.response_temperature_errors_ = self._select_temperature(
            self._response_likeness, pairs
        )
        return self

    def _weights(
        self, context: str, perturbation: str, sources: list[int], control: np.ndarray | None
    ) -> np.ndarray:
        c = self.tensor_.context_index().get(context)
        p = self.tensor_.perturbation_index()[perturbation]
        return self._response_weights(c, p, sources, control)

    def _extra(self) -> dict[str, Any]:
        return {
            **super()._extra(),
            "response_temperature": _json_float(self.response_temperature_),
            "response_temperature_errors": {
                str(k): _json_float(v) for k, v in self.response_temperature_errors_.items()
            },
        }

    def _restore(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._restore(extra, arrays)
        self.response_temperature_ = float(extra["response_temperature"])
        self.response_temperature_errors_ = {
            float(k): float(v) for k, v in extra["response_temperature_errors"].items()
        }
        self._prepare_responses()

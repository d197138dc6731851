"""``stacked``: transferome's default transfer predictor.

A perturbation's change in an unmeasured context is predicted as a linear stack of simple,
interpretable base predictors, each a weighted use of what was measured:

=================  ==========================================================================
``mean``           the perturbation's mean change over the other contexts (``additive``)
``similar``        the same, contexts weighted by control-profile likeness (``similar``)
``collaborative``  contexts weighted by the likeness of their responses to the target
                   context's other measured perturbations (``collaborative``)
``baseline``       weighted control of the sources minus the target's control: how far the
                   target's baseline is from theirs (saturation, genes barely expressed)
``context_bias``   the target context's mean deviation from the other contexts over its
                   other measured perturbations (a cell line that always moves gene g more)
``neighbours``     that deviation over the perturbations most like this one (kernel over
                   the likeness of their mean changes elsewhere)
``neighbours_own`` the target context's own changes to those perturbations
=================  ==========================================================================

The stack's coefficients are learned across genes and *pseudo-targets*: every measured
(context, perturbation) pair in turn plays the held-out one, its base predictions computed
from the other contexts exactly as at prediction time. Each pseudo-target weighs the same.
Out-of-fold predictions (folds of pseudo-targets) give an honest error of the stack and of
each base predictor; if the stack is not better than the best single one, that one is used.
The same out-of-fold residuals calibrate a predictive interval for every gene's change:
``|residual| ~ a + b * spread + c * |prediction|`` (spread: the standard deviation of the
sources' changes for the gene, shrunk towards the gene's spread pooled over all perturbations
and widened by ``sqrt(1 + 1/n)`` for ``n`` sources, so that a prediction from one or two
sources is not read as certain), scaled by the residuals' quantile at the nominal level.

Provenance (:meth:`StackedTransfer.provenance`, and ``uns["provenance"]`` of every
prediction) lists the source contexts with their effective weights, the base predictors'
coefficients and the neighbouring perturbations used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome._logging import get_logger
from transferome.data.schema import DatasetDescription, Schema, split_combination
from transferome.errors import DataValidationError
from transferome.models._weighting import (
    TEMPERATURES,
    context_mean_without,
    filled_weighted_means,
    relative_errors,
    softmax,
    temperature_from_errors,
    weighted_mean,
)
from transferome.models.base import Target, prediction_adata
from transferome.models.baselines.similarity import _json_float, _SourceWeighting
from transferome.models.stacked._spread import (
    fit_interval,
    half_width,
    pooled_spread,
    source_spread,
)
from transferome.models.stacked._stack import fit_stack

__all__ = ["BASE_PREDICTORS", "StackedTransfer"]

_log = get_logger(__name__)

BASE_PREDICTORS: tuple[str, ...] = (
    "mean",
    "similar",
    "collaborative",
    "baseline",
    "context_bias",
    "neighbours",
    "neighbours_own",
)
_SINGLE = ("mean", "similar", "collaborative")  # candidates when the stack does not pay


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows centred over finite genes and scaled to unit norm (NaN -> 0)."""
    finite = np.isfinite(x)
    count = finite.sum(axis=-1, keepdims=True)
    total = np.where(finite, x, 0.0).sum(axis=-1, keepdims=True)
    mean = np.divide(total, count, out=np.zeros(total.shape), where=count > 0)
    centred = np.where(finite, x - mean, 0.0)
    norm = np.sqrt((centred**2).sum(axis=-1, keepdims=True))
    return np.divide(centred, norm, out=np.zeros(centred.shape), where=norm > 0)


class StackedTransfer(_SourceWeighting):
    """Stacked transfer predictor with calibrated intervals and provenance (``stacked``).

    Parameters
    ----------
    temperatures
        Candidate softmax temperatures of the source and neighbour weights (``inf``: equal
        weights), each chosen by leave-one-context-out.
    tolerance
        Relative error margin within which the largest temperature is preferred.
    max_pseudo_targets
        At most this many measured pairs play the held-out one (a seeded sample).
    max_neighbours
        The ``neighbours`` predictors use at most this many of the target context's other
        perturbations, the most alike.
    ridge
        Ridge penalty of the stack, relative to the mean diagonal of the normal equations.
    n_folds
        Folds of pseudo-targets for the out-of-fold error and residuals.
    interval
        Nominal coverage of the predictive interval of each gene's change.
    random_state
        Seed of the pseudo-target sample and the folds.

    Attributes
    ----------
    coefficients_
        Coefficient of each base predictor (:data:`BASE_PREDICTORS`).
    base_errors_
        Out-of-fold mean relative squared error of the stack and of each single predictor.
    interval_scale_, interval_quantile_
        The interval model: half-width ``quantile * (a + b * spread + c * |prediction|)``.
    """

    name: ClassVar[str] = "stacked"
    fast_params: ClassVar[dict[str, Any]] = {"max_pseudo_targets": 120}

    def __init__(
        self,
        *,
        temperatures: Sequence[float] = TEMPERATURES,
        tolerance: float = 0.005,
        max_pseudo_targets: int = 200,
        max_neighbours: int = 20,
        ridge: float = 1e-3,
        n_folds: int = 5,
        interval: float = 0.8,
        random_state: int = 0,
    ) -> None:
        self.temperatures = temperatures
        self.tolerance = tolerance
        self.max_pseudo_targets = max_pseudo_targets
        self.max_neighbours = max_neighbours
        self.ridge = ridge
        self.n_folds = n_folds
        self.interval = interval
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self,
        adata: AnnData,
        *,
        schema: Schema | DatasetDescription | None = None,
        source: AnnData | None = None,
        gene_map: pd.DataFrame | None = None,
    ) -> StackedTransfer:
        """Learn the changes, the temperatures, the stack and the interval; returns ``self``.

        Parameters
        ----------
        adata
            Training data: log-normalised profiles with controls, or changes with zero
            controls (NaN = not measured).
        schema
            The obs keys, or the description of the data ``adata`` was
            taken from (:func:`~transferome.data.schema.checked_schema`).
        source, gene_map
            Another species' training data and (source gene, target gene) pairs: its
            contexts join as sources named ``"<species>:<context>"``.
        """
        if not 0.0 < float(self.interval) < 1.0:
            raise DataValidationError(f"interval must be in (0, 1), got {self.interval}")
        if int(self.max_neighbours) < 1:
            raise DataValidationError(
                f"max_neighbours must be at least 1, got {self.max_neighbours}"
            )
        if int(self.n_folds) < 2:
            raise DataValidationError(f"n_folds must be at least 2, got {self.n_folds}")
        if float(self.ridge) < 0:
            raise DataValidationError(f"ridge must be non-negative, got {self.ridge}")
        self._fit_tensor(adata, schema, source, gene_map)
        self._prepare()
        weighted = self._pseudo_targets(min_sources=2)
        self.temperature_, self.temperature_errors_ = self._select_temperature(
            lambda c, p, s: self.control_similarity_[c, s], weighted
        )
        self.response_temperature_, _ = self._select_temperature(self._response_likeness, weighted)
        pairs = self._pseudo_targets(min_sources=1)
        if not pairs:
            raise DataValidationError(
                "no perturbation is measured in two or more contexts; there is nothing to "
                "learn a transfer from"
            )
        self.neighbour_temperature_ = self._select_neighbour_temperature(pairs)
        features, truths, spreads = [], [], []
        for c, p in pairs:
            f, spread = self._features(c, p, None)
            features.append(f)
            truths.append(self.tensor_.values[c, p])
            spreads.append(spread)
        self._fit_stack(features, truths, spreads)
        _log.debug(
            "stacked: T=%s, response T=%s, neighbour T=%s, coefficients %s",
            self.temperature_,
            self.response_temperature_,
            self.neighbour_temperature_,
            dict(zip(BASE_PREDICTORS, np.round(self.coefficients_, 3), strict=True)),
        )
        return self

    def _prepare(self) -> None:
        """Quantities derived from the change tensor (recomputed after ``load``)."""
        t = self.tensor_
        self._prepare_responses()
        self._others = context_mean_without(t.values, t.measured)
        self._deviation = np.where(t.measured[:, :, None], t.values - self._others, np.nan)
        self._unit_others = _unit_rows(self._others)
        self._deviation_filled = np.nan_to_num(self._deviation)
        self._deviation_finite = np.isfinite(self._deviation).astype(np.float64)
        self._deviation_sum = self._deviation_filled.sum(axis=1)
        self._deviation_count = self._deviation_finite.sum(axis=1)
        self._values_filled = np.nan_to_num(t.values)
        self._values_finite = (np.isfinite(t.values) & t.measured[:, :, None]).astype(np.float64)
        self._pooled_spread = pooled_spread(t.values, t.measured)

    def _neighbours(self, c: int, p: int, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Find the ``max_neighbours`` perturbations of context ``c`` most like ``p``.

        Other perturbations measured in context ``c``, by their mean changes in the other
        contexts, and that likeness.
        """
        others = np.flatnonzero(self.tensor_.measured[c])
        others = others[others != p]
        if others.size == 0:
            return others, np.zeros(0)
        unit = _unit_rows(mean[None])[0]
        # all of c's rows at once: a view, where indexing by ``others`` would copy them
        similarity = np.einsum("qg,g->q", self._unit_others[c], unit)[others]
        k = int(self.max_neighbours)
        if others.size > k:
            nearest = np.sort(np.argpartition(-similarity, k - 1)[:k])
            others, similarity = others[nearest], similarity[nearest]
        return others, similarity

    def _select_neighbour_temperature(self, pairs: list[tuple[int, int]]) -> float:
        temperatures = [float(t) for t in self.temperatures]
        errors = []
        for c, p in pairs:
            mean = self._others[c, p]
            others, similarity = self._neighbours(c, p, mean)
            if others.size < 2:
                continue
            weights = np.vstack([softmax(similarity, t) for t in temperatures])
            correction = filled_weighted_means(
                self._deviation_filled[c, others], self._deviation_finite[c, others], weights
            )
            predictions = np.nan_to_num(mean)[None] + np.nan_to_num(correction)
            errors.append(relative_errors(predictions, self.tensor_.values[c, p]))
        if not errors:
            return float("inf")
        return temperature_from_errors(temperatures, errors, tolerance=float(self.tolerance))[0]

    def _features(
        self, c: int | None, p: int, control: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the base predictions (genes x predictors) and the sources' spread for (c, p)."""
        t = self.tensor_
        sources = [int(s) for s in np.flatnonzero(t.measured[:, p]) if s != c]
        rows = t.values[sources, p]
        n_genes = t.n_genes
        out = np.zeros((n_genes, len(BASE_PREDICTORS)))
        mean = weighted_mean(rows, np.full(len(sources), 1.0 / len(sources)))
        own_control = control if control is not None else t.controls[c]
        w_sim = softmax(self._control_likeness(c, sources, control), self.temperature_)
        w_col = self._response_weights(c, p, sources, control)
        out[:, 0] = mean
        out[:, 1] = weighted_mean(rows, w_sim)
        out[:, 2] = weighted_mean(rows, w_col)
        out[:, 3] = weighted_mean(t.controls[sources], w_sim) - own_control
        if c is not None:
            # mean deviation over every other perturbation of c (sums minus p's own)
            total = self._deviation_sum[c] - self._deviation_filled[c, p]
            count = self._deviation_count[c] - self._deviation_finite[c, p]
            out[:, 4] = np.divide(total, count, out=np.zeros(n_genes), where=count > 0)
            others, likeness = self._neighbours(c, p, mean)
            if others.size:
                filled = self._deviation_filled[c, others]
                finite = self._deviation_finite[c, others]
                w_k = softmax(likeness, self.neighbour_temperature_)
                out[:, 5] = filled_weighted_means(filled, finite, w_k)
                out[:, 6] = filled_weighted_means(
                    self._values_filled[c, others], self._values_finite[c, others], w_k
                )
        return np.nan_to_num(out), source_spread(rows, self._pooled_spread)

    def _fit_stack(
        self, features: list[np.ndarray], truths: list[np.ndarray], spreads: list[np.ndarray]
    ) -> None:
        stack = fit_stack(
            features,
            truths,
            predictors=BASE_PREDICTORS,
            singles=_SINGLE,
            ridge=float(self.ridge),
            n_folds=int(self.n_folds),
            random_state=int(self.random_state),
        )
        self.choice_ = stack.choice
        self.coefficients_ = stack.coefficients
        self.base_errors_ = stack.errors
        self.interval_scale_, self.interval_quantile_ = fit_interval(
            truths,
            spreads,
            stack.oof,
            stack.groups,
            level=float(self.interval),
            random_state=int(self.random_state),
        )

    # -- prediction ------------------------------------------------------------------------
    def _change_and_width(
        self, context: str, perturbation: str, control: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        c = self.tensor_.context_index().get(context)
        p = self.tensor_.perturbation_index()[perturbation]
        features, spread = self._features(c, p, control)
        change = features @ self.coefficients_
        return change, half_width(spread, change, self.interval_scale_, self.interval_quantile_)

    def _change(self, context: str, perturbation: str, control: np.ndarray | None) -> np.ndarray:
        return self._change_and_width(context, perturbation, control)[0]

    def predict(self, adata: AnnData, targets: Sequence[Target]) -> AnnData:
        """Predict each target's mean profile, with its interval and provenance.

        Returns
        -------
        anndata.AnnData
            ``X``: predicted profiles (control mean of the target context from ``adata``
            plus the predicted change); ``layers["lower"]`` / ``layers["upper"]``: the
            interval at level ``interval`` (``uns["interval"]``) around the change, added to
            the control; ``uns["provenance"]``: see :meth:`provenance`.
        """
        pairs, control = self._targets_and_controls(adata, targets)
        changes, widths = [], []
        index = self.tensor_.perturbation_index()
        for (c, p), row in zip(pairs, control, strict=True):
            if p == self.schema_.control:
                changes.append(np.zeros(len(self.var_names_)))
                widths.append(np.zeros(len(self.var_names_)))
                continue
            change = np.nan_to_num(self._combined_change(c, p, row))
            parts = [p] if p in index else split_combination(p, self.schema_.combination_sep)
            position = self.tensor_.context_index().get(c)
            width_sq = np.zeros(len(self.var_names_))
            for part in parts:
                j = index[part]
                if p != part and position is not None and self.tensor_.measured[position, j]:
                    continue  # the context's own measurement of a single: no transfer error
                width_sq += self._change_and_width(c, part, row)[1] ** 2
            changes.append(change)
            widths.append(np.sqrt(width_sq))
        change, width = np.vstack(changes), np.vstack(widths)
        out = prediction_adata(control + change, pairs, self.var_names_, self.schema_)
        out.layers["lower"] = (control + change - width).astype(np.float32)
        out.layers["upper"] = (control + change + width).astype(np.float32)
        out.uns["interval"] = float(self.interval)
        out.uns["provenance"] = self._provenance_table(pairs, control)
        return out

    def provenance(self, adata: AnnData, targets: Sequence[Target]) -> pd.DataFrame:
        """Tell what each target's prediction leaned on.

        Returns
        -------
        pandas.DataFrame
            Columns ``context``, ``perturbation``, ``kind`` (``source_context``: effective
            weight of a source context's measured change, the stack's coefficients on
            ``mean``, ``similar`` and ``collaborative`` folded together; ``base_predictor``:
            a coefficient of the stack; ``neighbour``: weight of another perturbation of the
            target context in the ``neighbours`` predictors), ``name``, ``weight``.
        """
        pairs, control = self._targets_and_controls(adata, targets)
        return self._provenance_table(pairs, control)

    def _provenance_table(self, pairs: list[Target], control: np.ndarray) -> pd.DataFrame:
        t = self.tensor_
        index = t.perturbation_index()
        records: list[tuple[str, str, str, str, float]] = []
        coefficient = dict(zip(BASE_PREDICTORS, self.coefficients_, strict=True))
        for (context, perturbation), row in zip(pairs, control, strict=True):
            if perturbation == self.schema_.control:
                continue
            parts = (
                [perturbation]
                if perturbation in index
                else split_combination(perturbation, self.schema_.combination_sep)
            )
            c = t.context_index().get(context)
            for part in parts:
                p = index[part]
                if part != perturbation and c is not None and t.measured[c, p]:
                    records.append(
                        (context, perturbation, "source_context", f"{context} ({part})", 1.0)
                    )
                    continue
                sources = [int(s) for s in np.flatnonzero(t.measured[:, p]) if s != c]
                w_sim = self._weights(context, part, sources, row)
                w_col = self._response_weights(c, p, sources, row)
                effective = (
                    coefficient["mean"] / len(sources)
                    + coefficient["similar"] * w_sim
                    + coefficient["collaborative"] * w_col
                )
                for s, w in zip(sources, effective, strict=True):
                    label = t.contexts[s] + ("" if part == perturbation else f" ({part})")
                    records.append((context, perturbation, "source_context", label, float(w)))
                if c is not None:
                    mean = weighted_mean(t.values[sources, p], np.full(len(sources), 1.0))
                    others, likeness = self._neighbours(c, p, mean)
                    w_k = softmax(likeness, self.neighbour_temperature_)
                    for q in np.argsort(-w_k)[:5]:
                        name = t.perturbations[others[q]]
                        records.append((context, perturbation, "neighbour", name, float(w_k[q])))
            for name, value in coefficient.items():
                records.append((context, perturbation, "base_predictor", name, float(value)))
        return pd.DataFrame(records, columns=["context", "perturbation", "kind", "name", "weight"])

    def source_weights(self, adata: AnnData, targets: Sequence[Target]) -> pd.DataFrame:
        """Return the ``source_context`` rows of :meth:`provenance` (columns as the baselines')."""
        table = self.provenance(adata, targets)
        table = table[table["kind"] == "source_context"]
        return table.rename(columns={"name": "source_context"})[
            ["context", "perturbation", "source_context", "weight"]
        ].reset_index(drop=True)

    # -- model files -----------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            **super()._arrays(),
            "coefficients": self.coefficients_,
            "interval_scale": self.interval_scale_,
        }

    def _extra(self) -> dict[str, Any]:
        return {
            **super()._extra(),
            "response_temperature": _json_float(self.response_temperature_),
            "neighbour_temperature": _json_float(self.neighbour_temperature_),
            "interval_quantile": self.interval_quantile_,
            "base_errors": self.base_errors_,
            "choice": self.choice_,
        }

    def _restore(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._restore(extra, arrays)
        self.response_temperature_ = float(extra["response_temperature"])
        self.neighbour_temperature_ = float(extra["neighbour_temperature"])
        self.interval_quantile_ = float(extra["interval_quantile"])
        self.base_errors_ = {str(k): float(v) for k, v in extra["base_errors"].items()}
        self.choice_ = str(extra["choice"])
        self.coefficients_ = np.asarray(arrays["coefficients"], dtype=np.float64)
        self.interval_scale_ = np.asarray(arrays["interval_scale"], dtype=np.float64)
        if self.coefficients_.shape != (len(BASE_PREDICTORS),):
            raise ValueError(f"coefficients have shape {self.coefficients_.shape}")
        self._prepare()

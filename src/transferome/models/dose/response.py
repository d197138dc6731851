"""Responses at doses and time points that were not measured.

Every model here fits a :class:`~transferome.data.dose.ConditionTable` (the mean change of
each measured condition, grouped into series along a dose or time axis) and predicts the
change of queried conditions: a series at a new position (an unseen dose or time), or a
series that has no measured condition at all (a perturbation in a new context), which is
then predicted from the *peer* series of the same perturbation in other contexts.

Baselines: :class:`NearestDose` (the measured condition nearest in log dose),
:class:`LogLinearDose` (linear interpolation in log dose, constant beyond the measured
range) and :class:`MeanDose` (the mean over the series' doses). :class:`DoseResponse` is
transferome's model: one Hill curve per series shared by all genes, with a gene-specific
amplitude, its slope and the pull of the curve's midpoint towards the perturbation's other
series chosen by leave-one-condition-out error on the training table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from transferome._logging import get_logger
from transferome.errors import DataValidationError
from transferome.models._persist import load_described
from transferome.models.dose._curves import _Centers, _Curve
from transferome.models.dose._files import read_files, write_files
from transferome.models.dose.base import DoseModel, DosePrediction
from transferome.models.dose.baselines import _interpolate, _nearest

__all__ = ["DoseResponse"]

_log = get_logger(__name__)


def _baseline_weights(kind: str, n_features: int) -> np.ndarray:
    """Return the stack weights that reproduce the kind's baseline.

    That is: log-linear inside the measured range, the nearest condition beyond it, the
    peers' nearest conditions for a new context.
    """
    weights = np.zeros(n_features)
    weights[1 if kind == "transfer" else 2] = 1.0
    return weights


def _logistic(z: npt.ArrayLike) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z)))


class DoseResponse(DoseModel):
    """Hill curves shared by all genes, stacked with the measured neighbours and peers.

    **Curves.** The change of gene ``g`` in series ``s`` at log dose ``x`` is modelled as
    ``A[s, g] * h(x)``, ``h(x) = 1 / (1 + exp(-n (x - c[s])))``, i.e. the Hill function
    ``dose^n / (dose^n + EC50^n)`` with ``EC50 = exp(c[s])``, monotone in the dose for every
    gene. Given the midpoint ``c[s]`` the amplitudes are least squares; ``c[s]`` minimises
    the series' relative residual plus ``prior * (c[s] - mu)^2``, where ``mu`` is the median
    midpoint of the perturbation's other series (measured from the perturbation's highest
    dose, so that compounds dosed on different scales share it; the median over all series
    when the perturbation has no other). The slope ``n`` and ``prior`` are chosen from
    ``slopes`` x ``priors`` by leave-one-condition-out error on the training series.

    **Stack.** A query is predicted as a weighted sum of candidate predictions: the series'
    own curve at the query, the nearest measured condition, the log-linear interpolation,
    the mean of the peer series' curves (the perturbation in other contexts) at the query,
    the nearest measured condition shifted by the peers' change between the two
    positions, the log-linear interpolation corrected by what the peers that measured the
    query position deviate from their own interpolation there, and the peers' measured
    change nearest the query. The weights are least squares over leave-one-condition-out
    pseudo-targets of the training table (each pseudo-target weighted by its size), one set
    per kind of
    query: ``interpolation`` (inside the series' measured range), ``extrapolation_high`` /
    ``_low`` (beyond it) and ``transfer`` (a series with no measured condition: its peers'
    curves and nearest conditions only). A kind without pseudo-targets uses the curve
    alone. Intervals: per gene, the ``level`` quantile of the pseudo-targets' absolute
    residuals of the same kind. :attr:`weights_` holds the weights (in the order of the
    candidates above).

    Parameters
    ----------
    slopes
        Candidate Hill slopes ``n`` (per unit of log dose, or per level).
    priors
        Candidate strengths of the pull of ``c[s]`` towards ``mu``.
    grid_step
        Spacing of the grid of midpoints searched (log units).
    grid_margin
        The grid extends this far beyond the measured positions (log units).
    max_pseudo
        Most pseudo-targets per kind (drawn by ``seed``).
    ridge
        Ridge penalty of the stack weights, relative to the mean squared feature.
    prior_targets
        The weights are shrunk towards those of the kind's baseline (log-linear inside the
        range, nearest beyond it, the peers' nearest in a new context) as strongly as this
        many pseudo-targets on which the baseline was exact (0, the default: only the
        ridge penalty); with few pseudo-targets a positive value keeps the model near the
        baseline.
    fit_genes
        The weights are fitted on each pseudo-target's ``fit_genes`` genes of largest
        measured change (its DEGs, as the ``_deg`` metrics choose them), so that the
        responding genes are predicted at their full size rather than shrunk with the
        noise of the rest; ``None``: on every gene.
    level
        Nominal coverage of the intervals.
    seed
        Seed of the pseudo-target samples.
    """

    name: ClassVar[str] = "dose_response"

    def __init__(
        self,
        *,
        slopes: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 3.0),
        priors: Sequence[float] = (0.0, 0.01, 0.1, 1.0),
        grid_step: float = 0.1,
        grid_margin: float = 4.0,
        max_pseudo: int = 200,
        ridge: float = 0.01,
        fit_genes: int | None = 50,
        prior_targets: float = 0.0,
        level: float = 0.8,
        seed: int = 0,
    ) -> None:
        self.slopes = tuple(float(s) for s in slopes)
        self.priors = tuple(float(p) for p in priors)
        self.grid_step = grid_step
        self.grid_margin = grid_margin
        self.max_pseudo = max_pseudo
        self.ridge = ridge
        self.fit_genes = fit_genes
        self.prior_targets = prior_targets
        self.level = level
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        if not self.slopes or any(not np.isfinite(s) or s <= 0 for s in self.slopes):
            raise DataValidationError(f"slopes must be positive numbers, got {self.slopes}")
        if not self.priors or any(not np.isfinite(p) or p < 0 for p in self.priors):
            raise DataValidationError(f"priors must be numbers >= 0, got {self.priors}")
        if not 0 < self.level < 1:
            raise DataValidationError(f"level must lie in (0, 1), got {self.level}")
        if self.grid_step <= 0 or self.grid_margin < 0:
            raise DataValidationError("grid_step must be > 0 and grid_margin >= 0")

    def _fit_extra(self) -> None:
        self._check_params()
        positions = self.table_.conditions["position"].to_numpy(dtype=float)
        lo, hi = positions.min() - self.grid_margin, positions.max() + self.grid_margin
        self.grid_ = np.arange(lo, hi + self.grid_step / 2, self.grid_step)
        conditions = self.table_.conditions
        self.anchor_ = conditions.groupby("perturbation")["position"].max().to_dict()
        # every fit below needs a series' deltas only through their Gram matrix Y Y^T
        self._gram = {}
        for s, (_, y) in self.series_.items():
            y0 = np.nan_to_num(y)
            self._gram[s] = y0 @ y0.T
        self._choose()
        self._centers = self._free_centers(self.slope_)
        self.curves_ = {s: self._fit_series(s, self.slope_, self.prior_) for s in self.series_}
        self._stack()
        self.ec50_ = self._ec50_table()

    def _basis(self, x: np.ndarray, slope: float) -> np.ndarray:
        """Hill values of positions ``x`` at every grid midpoint (grid x len(x))."""
        return _logistic(slope * (x[None, :] - self.grid_[:, None]))

    def _rss(self, h: np.ndarray, gram: np.ndarray) -> np.ndarray:
        """Relative residual of the rank-one fit at every grid midpoint."""
        total = max(float(np.trace(gram)), 1e-12)
        explained = np.einsum("ck,kl,cl->c", h, gram, h) / np.maximum((h**2).sum(axis=1), 1e-12)
        return 1.0 - explained / total

    def _free_centers(self, slope: float) -> _Centers:
        """Midpoint of each series with two or more conditions, fitted without a prior."""
        out = {}
        for s, (x, _) in self.series_.items():
            if len(x) >= 2:
                rss = self._rss(self._basis(x, slope), self._gram[s])
                out[s] = float(self.grid_[int(np.argmin(rss))])
        offsets = [c - self.anchor_[self.series_perturbation_[s]] for s, c in out.items()]
        return _Centers(out, float(np.median(offsets)) if offsets else 0.0)

    def _prior_mean(self, series: str, perturbation: str, centers: _Centers) -> float:
        """Return the median midpoint of the perturbation's other series (else of all series).

        Both are measured from the perturbation's highest dose.
        """
        anchor = self.anchor_.get(perturbation)
        if anchor is None:
            return float(np.median(self.grid_))
        own = [
            centers.by_series[s] - anchor
            for s in self.peers_.get(perturbation, [])
            if s != series and s in centers.by_series
        ]
        return float(anchor + (np.median(own) if own else centers.offset))

    def _best(self, h: np.ndarray, gram: np.ndarray, prior: float, mu: float) -> int:
        if h.shape[1] < 2:  # one point says nothing about the midpoint
            return int(np.argmin((self.grid_ - mu) ** 2))
        return int(np.argmin(self._rss(h, gram) + prior * (self.grid_ - mu) ** 2))

    def _fit_points(
        self, x: np.ndarray, y: np.ndarray, slope: float, prior: float, mu: float
    ) -> _Curve:
        y0 = np.nan_to_num(y)
        h = self._basis(x, slope)
        best = self._best(h, y0 @ y0.T, prior, mu)
        hb = h[best]
        return _Curve(float(self.grid_[best]), hb @ y0 / max(float(hb @ hb), 1e-12))

    def _fit_series(self, series: str, slope: float, prior: float) -> _Curve:
        x, y = self.series_[series]
        mu = self._prior_mean(series, self.series_perturbation_[series], self._centers)
        return self._fit_points(x, y, slope, prior, mu)

    def _pseudo_targets(self) -> list[tuple[str, int]]:
        pairs = [(s, i) for s, (x, _) in self.series_.items() if len(x) >= 3 for i in range(len(x))]
        if len(pairs) > self.max_pseudo:
            rng = np.random.default_rng(self.seed)
            keep = rng.choice(len(pairs), self.max_pseudo, replace=False)
            pairs = [pairs[i] for i in sorted(keep)]
        return pairs

    def _choose(self) -> None:
        pairs = self._pseudo_targets()
        self.pseudo_targets_ = len(pairs)
        if not pairs:
            _log.debug("dose_response: no series with 3+ conditions; slope and prior at defaults")
            self.slope_ = 1.5 if 1.5 in self.slopes else self.slopes[0]
            self.prior_ = 0.1 if 0.1 in self.priors else self.priors[-1]
            self.cv_errors_ = pd.DataFrame()
            return
        priors = np.asarray(self.priors)
        rows = []
        for slope in self.slopes:
            centers = self._free_centers(slope)
            errors = np.zeros(len(priors))
            for s, i in pairs:
                x, _ = self.series_[s]
                gram = self._gram[s]
                keep = np.arange(len(x)) != i
                sub = gram[np.ix_(keep, keep)]
                h = self._basis(x[keep], slope)
                norm = np.maximum((h**2).sum(axis=1), 1e-12)
                objective = self._rss(h, sub)[None, :]
                mu = self._prior_mean(s, self.series_perturbation_[s], centers)
                best = np.argmin(objective + priors[:, None] * (self.grid_ - mu)[None, :] ** 2, 1)
                # |A h_q - y_i|^2 with A = Y_keep^T h / |h|^2, all from the Gram matrix
                hb = h[best]
                hq = _logistic(slope * (x[i] - self.grid_[best]))
                fit2 = np.einsum("pk,kl,pl->p", hb, sub, hb) / norm[best] ** 2
                cross = hb @ gram[keep, i] / norm[best]
                yy = max(float(gram[i, i]), 1e-12)
                errors += (hq**2 * fit2 - 2 * hq * cross + gram[i, i]) / yy
            for prior, error in zip(self.priors, errors / len(pairs), strict=True):
                rows.append({"slope": slope, "prior": prior, "error": float(error)})
        self.cv_errors_ = pd.DataFrame(rows)
        best_row = self.cv_errors_.loc[self.cv_errors_["error"].idxmin()]
        self.slope_, self.prior_ = float(best_row["slope"]), float(best_row["prior"])
        _log.debug(
            "dose_response: slope %.3g, prior %.3g (relative error %.3f over %d pseudo-targets)",
            self.slope_,
            self.prior_,
            best_row["error"],
            len(pairs),
        )

    # ------------------------------------------------------------------ stack
    def _kind(self, x: np.ndarray, q: float) -> str:
        if len(x) == 0:
            return "transfer"
        if q > x.max() + 1e-9:
            return "extrapolation_high"
        if q < x.min() - 1e-9:
            return "extrapolation_low"
        return "interpolation"

    def _features(
        self, series: str, perturbation: str, q: float, drop: int | None = None
    ) -> tuple[str, np.ndarray]:
        """Kind of the query and its candidate predictions (features x genes).

        ``drop`` leaves condition ``drop`` of the series out (a pseudo-target); the series
        is then refitted without it. A series absent from training has no own features.
        """
        peers = [self.curves_[p] for p in self.peers_.get(perturbation, []) if p != series]
        peer_points = [self.series_[p] for p in self.peers_.get(perturbation, []) if p != series]
        if series in self.series_ and (drop is None or len(self.series_[series][0]) > 1):
            x, y = self.series_[series]
            curve = self.curves_[series]
            if drop is not None:
                keep = np.arange(len(x)) != drop
                x, y = x[keep], y[keep]
                mu = self._prior_mean(series, perturbation, self._centers)
                curve = self._fit_points(x, y, self.slope_, self.prior_, mu)
        else:
            x, y, curve = np.zeros(0), np.zeros((0, self.table_.n_genes)), None
        kind = self._kind(x, q)
        if kind == "transfer":
            return self._features_transfer(series, perturbation, q)
        assert curve is not None  # a series without its own conditions is a transfer
        own = self._value(curve, q)
        near_x = x[np.flatnonzero(np.abs(x - q) == np.abs(x - q).min())[-1]]
        near = _nearest(x, y, q)
        interp = _interpolate(x, y, q)
        if peers:
            peer_q = np.mean([self._value(c, q) for c in peers], axis=0)
            peer_n = np.mean([self._value(c, near_x) for c in peers], axis=0)
            shifted = near + (peer_q - peer_n)
        else:
            peer_q, shifted = own, near
        # what the peers that measured this position gained over their own interpolation
        gains = [
            py[at[0]] - _interpolate(np.delete(px, at[0]), np.delete(py, at[0], axis=0), q)
            for px, py in peer_points
            if len(px) > 1 and len(at := np.flatnonzero(np.abs(px - q) < 1e-9)) == 1
        ]
        corrected = interp + np.nanmean(gains, axis=0) if gains else interp
        measured = (
            np.nanmean([_nearest(px, py, q) for px, py in peer_points], axis=0)
            if peer_points
            else near
        )
        features = [own, near, interp, peer_q, shifted, corrected, measured]
        return kind, np.nan_to_num(np.vstack(features))

    def _pseudo(self) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
        """(features, truth) of leave-one-out pseudo-targets, by kind."""
        rng = np.random.default_rng(self.seed + 1)
        by_kind: dict[str, list[tuple[str, int, bool]]] = {}
        for s, (x, _) in self.series_.items():
            p = self.series_perturbation_[s]
            has_peers = len(self.peers_.get(p, [])) > 1
            for i in range(len(x)):
                if len(x) > 1:
                    kind = self._kind(np.delete(x, i), x[i])
                    by_kind.setdefault(kind, []).append((s, i, False))
                if has_peers:
                    by_kind.setdefault("transfer", []).append((s, i, True))
        out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for kind, items in by_kind.items():
            if len(items) > self.max_pseudo:
                chosen = rng.choice(len(items), self.max_pseudo, replace=False)
                items = [items[k] for k in sorted(chosen)]
            rows = []
            for s, i, transfer in items:
                p = self.series_perturbation_[s]
                x, y = self.series_[s]
                if transfer:  # the whole series held out: its peers only
                    _, feats = self._features_transfer(s, p, x[i])
                else:
                    _, feats = self._features(s, p, x[i], drop=i)
                rows.append((feats, np.nan_to_num(y[i])))
            out[kind] = rows
        return out

    def _features_transfer(
        self, series: str, perturbation: str, q: float
    ) -> tuple[str, np.ndarray]:
        """Features of a series with no measured condition: its peers' curves and points."""
        peers = [p for p in self.peers_.get(perturbation, []) if p != series]
        if not peers:
            raise DataValidationError(
                f"cannot predict {perturbation!r} in series {series!r}: the perturbation "
                "has no measured condition in training"
            )
        curve_mean = np.mean([self._value(self.curves_[p], q) for p in peers], axis=0)
        nearest = np.nanmean([_nearest(*self.series_[p], q) for p in peers], axis=0)
        return "transfer", np.nan_to_num(np.vstack([curve_mean, nearest]))

    def _stack(self) -> None:
        pseudo = self._pseudo()
        genes = self.table_.n_genes
        self.weights_: dict[str, np.ndarray] = {}
        self.halfwidth_: dict[str, np.ndarray] = {}
        for kind, rows in pseudo.items():
            feats = np.stack([f for f, _ in rows])  # n x F x G
            truth = np.stack([t for _, t in rows])  # n x G
            if self.fit_genes is not None and self.fit_genes < genes:
                # each pseudo-target's DEGs: the genes whose measured change is largest, as
                # the _deg metrics choose them
                top = np.argsort(-np.abs(truth), axis=1)[:, : self.fit_genes]
                feats_fit = np.take_along_axis(feats, top[:, None, :], axis=2)
                truth_fit = np.take_along_axis(truth, top, axis=1)
            else:
                feats_fit, truth_fit = feats, truth
            scale = 1.0 / np.maximum(np.sqrt((truth_fit**2).mean(axis=1)), 1e-12)
            n_f = feats.shape[1]
            a = np.einsum("nfg,n->nfg", feats_fit, scale).transpose(0, 2, 1).reshape(-1, n_f)
            b = (truth_fit * scale[:, None]).reshape(-1)
            gram = a.T @ a
            # shrunk towards the baseline of the kind, as if it had been right on
            # ``prior_targets`` pseudo-targets: few pseudo-targets, little departure from it
            prior = _baseline_weights(kind, n_f)
            per_target = np.trace(gram) / n_f / len(rows)
            penalty = (self.ridge * len(rows) + self.prior_targets) * per_target
            if not np.isfinite(penalty) or penalty <= 0:  # every candidate is zero
                w = prior
            else:
                w = np.linalg.solve(gram + penalty * np.eye(n_f), a.T @ b + penalty * prior)
            self.weights_[kind] = w
            residual = truth - np.einsum("f,nfg->ng", w, feats)
            self.halfwidth_[kind] = np.quantile(np.abs(residual), self.level, axis=0)
        for kind in ("interpolation", "extrapolation_high", "extrapolation_low", "transfer"):
            if kind not in self.weights_:
                self.weights_[kind] = _baseline_weights(kind, 2 if kind == "transfer" else 7)
                self.halfwidth_[kind] = np.full(genes, np.nan)
        self.pseudo_counts_ = {k: len(v) for k, v in pseudo.items()}

    # --------------------------------------------------------------- prediction
    def _value(self, curve: _Curve, q: float) -> np.ndarray:
        return curve.amplitude * float(_logistic(self.slope_ * (q - curve.center)))

    def _predict_row(self, series: str, perturbation: str, q: float) -> tuple[np.ndarray, str]:
        kind, feats = self._features(series, perturbation, q)
        return self.weights_[kind] @ feats, kind

    def predict(self, queries: pd.DataFrame) -> DosePrediction:
        """Predicted changes with intervals; ``source`` is each row's kind of query."""
        base = super().predict(queries)
        width = np.vstack([self.halfwidth_[s] for s in base.source]) if base.source else None
        lower = None if width is None else base.delta - width
        upper = None if width is None else base.delta + width
        return DosePrediction(base.delta, lower, upper, base.source, self.level)

    def hill_curve(self, series: str, positions: Sequence[float]) -> np.ndarray:
        """Evaluate the series' fitted Hill curve alone at ``positions`` (positions x genes)."""
        self._check_fitted()
        if series not in self.curves_:
            raise DataValidationError(f"unknown series {series!r}")
        curve = self.curves_[series]
        h = _logistic(self.slope_ * (np.asarray(positions, dtype=float) - curve.center))
        return np.outer(h, curve.amplitude)

    def curve(self, series: str, positions: Sequence[float]) -> DosePrediction:
        """Predicted changes of ``series`` along ``positions`` (e.g. a grid of log doses)."""
        self._check_fitted()
        perturbation = self.series_perturbation_.get(series)
        if perturbation is None:
            raise DataValidationError(
                f"unknown series {series!r}; fitted series include {list(self.curves_)[:5]}"
            )
        queries = pd.DataFrame(
            {"series": series, "perturbation": perturbation, "position": list(positions)}
        )
        return self.predict(queries)

    def ec50(self) -> pd.DataFrame:
        """Fitted midpoint of every perturbation: one curve shape shared by its series.

        The midpoint minimises the summed relative residual of all the perturbation's series
        (each with its own amplitudes) at the fitted slope.

        Columns: ``perturbation``, ``ec50`` (``exp`` of the midpoint, in the dose unit;
        for ordered levels the midpoint rank), ``log_ec50``, ``n_series``, ``lowest`` and
        ``highest`` measured value, ``bracketed`` (the midpoint lies within the measured
        range), ``identified`` (false when the best midpoint is an end of the searched grid,
        ``grid_margin`` beyond the measured doses: the response does not bend there, and the
        EC50 is only known to lie beyond that end), ``slope``.
        """
        self._check_fitted()
        return self.ec50_.copy()

    def _ec50_table(self) -> pd.DataFrame:
        rows = []
        levels = bool(self.table_.levels)
        for p, members in self.peers_.items():
            fits = [
                self._rss(self._basis(self.series_[s][0], self.slope_), self._gram[s])
                for s in members
            ]
            xs = np.concatenate([self.series_[s][0] for s in members])
            best = int(np.argmin(np.sum(fits, axis=0)))
            center = float(self.grid_[best])
            rows.append(
                {
                    "perturbation": p,
                    "ec50": center if levels else float(np.exp(center)),
                    "log_ec50": center,
                    "n_series": len(members),
                    "lowest": float(xs.min() if levels else np.exp(xs.min())),
                    "highest": float(xs.max() if levels else np.exp(xs.max())),
                    "bracketed": bool(xs.min() < center < xs.max()),
                    "identified": bool(0 < best < len(self.grid_) - 1),
                    "slope": self.slope_,
                }
            )
        return pd.DataFrame(rows)

    # ----------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model folder (``model.json`` + ``weights.safetensors``) at ``path``.

        The folder keeps the measured changes of the training conditions (the stack reads
        them), the curves, the stack weights and the interval widths.
        """
        self._check_fitted()
        return write_files(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DoseResponse:
        """Inverse of :meth:`save`: predicts what the saved model predicted."""
        return load_described(path, cls.__name__, partial(read_files, cls))

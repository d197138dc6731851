"""Dose and time: the measured conditions of each perturbation along a dose or time axis.

A *condition* is one (context, perturbation, dose, time) cell of the design; its change is
the mean of its observations minus the mean of the controls of its context (of the same
time point when the controls carry a time). With several species in one AnnData, a context is
named ``<species> <context>``. A *series* is the set of conditions that differ only along
the axis: for ``axis="dose"`` the doses of one perturbation in one context (at one
time), for ``axis="time"`` its time points at one dose. When every context holds a single
time point (TG-GATEs: ``hepatocyte_2h``, ``liver_4d``), the contexts *are* the time points
and a time series runs across them, each condition with its own context's controls.

Positions on the axis are natural logs of the values (doses and times act multiplicatively);
an ordered categorical of levels (``Low < Middle < High``) gives positions 1, 2, 3..., i.e.
levels equally spaced on the log scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome.data._backed import in_memory
from transferome.data.aggregate import code_means
from transferome.data.schema import Schema, axis_values, obs_labels
from transferome.errors import DataValidationError

__all__ = ["AXES", "ConditionTable", "condition_table"]

Axis = Literal["dose", "time"]
AXES: tuple[str, ...] = ("dose", "time")


@dataclass(frozen=True)
class ConditionTable:
    """Mean change of every measured condition, grouped into series along one axis.

    Attributes
    ----------
    axis
        ``"dose"`` or ``"time"``.
    conditions
        One row per condition: ``series`` (label), ``context``, ``perturbation``, ``dose``,
        ``time`` (NaN when absent), ``value`` (the axis value: a number, or the level name),
        ``position`` (log value, or the level rank), ``n_obs`` and ``control`` (the key of
        the control profile in ``controls`` of its first observation).
    deltas
        Conditions x genes mean change against control (float64; NaN where not measured).
    controls
        Control mean profiles (rows: control keys, columns: genes).
    genes
        Gene names.
    levels
        Level names of an ordered categorical axis (empty for numbers).
    control_profiles
        Conditions x genes: the control profile each change was taken against (the mean
        of its observations' own controls).
    obs_condition, obs_control
        Per observation of the data the table was built from: its condition row (-1 for
        controls) and its control key; ``None`` in a :meth:`subset`.
    """

    axis: str
    conditions: pd.DataFrame
    deltas: np.ndarray
    controls: pd.DataFrame
    genes: tuple[str, ...]
    levels: tuple[str, ...] = ()
    control_profiles: np.ndarray | None = field(default=None, repr=False)
    obs_condition: np.ndarray | None = field(default=None, repr=False)
    obs_control: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_genes(self) -> int:
        """The number of genes."""
        return len(self.genes)

    def series(self) -> dict[str, np.ndarray]:
        """Row indices of each series' conditions, ordered along the axis."""
        order = self.conditions.sort_values(["series", "position"]).index.to_numpy()
        labels = self.conditions["series"].to_numpy()[order]
        return {s: order[labels == s] for s in dict.fromkeys(labels)}

    def subset(self, rows: np.ndarray) -> ConditionTable:
        """Restrict the table to ``rows`` (positional indices), renumbered from 0."""
        rows = np.asarray(rows, dtype=int)
        return ConditionTable(
            axis=self.axis,
            conditions=self.conditions.iloc[rows].reset_index(drop=True),
            deltas=self.deltas[rows],
            controls=self.controls,
            genes=self.genes,
            levels=self.levels,
            control_profiles=(
                None if self.control_profiles is None else self.control_profiles[rows]
            ),
        )

    def control_of(self, row: int) -> np.ndarray:
        """Control profile of condition ``row`` (its observations' controls, averaged)."""
        if self.control_profiles is not None:
            return self.control_profiles[row]
        return self.controls.loc[self.conditions.at[row, "control"]].to_numpy(dtype=float)

    def label(self, row: int) -> str:
        """``perturbation @ value in context`` for messages and tables."""
        r = self.conditions.iloc[row]
        return f"{r['perturbation']} @ {self.axis} {r['value']} in {r['context']}"


def _fmt(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:g}"


def condition_table(
    adata: AnnData,
    *,
    schema: Schema,
    axis: Axis = "dose",
    control_means: pd.DataFrame | None = None,
    match_key: str | None = None,
) -> ConditionTable:
    """Build the :class:`ConditionTable` of ``adata`` along ``axis``.

    Parameters
    ----------
    adata
        Observations (log-normalised values, or changes with ``control_means``). Never
        modified; a backed AnnData is read into memory once.
    schema
        The obs keys; ``schema.dose_key`` (and ``schema.time_key`` for ``axis="time"``)
        must name columns of ``adata.obs``.
    axis
        ``"dose"`` or ``"time"``.
    control_means
        Fixed control profile per context (change data, whose control is zero); ``None``:
        the means of the control observations.
    match_key
        An obs column the controls of a condition must share with it besides the context
        (an experiment, plate or batch id: TG-GATEs' ``exp_id``), so that each change is
        taken against its own experiment's controls.

    Raises
    ------
    DataValidationError
        The axis column is missing, not numeric / ordered, NaN or not positive on a
        perturbed observation, or a condition has no controls to compare with.
    """
    if axis not in AXES:
        raise DataValidationError(f"axis must be one of {AXES}, got {axis!r}")
    key = schema.dose_key if axis == "dose" else schema.time_key
    flag = f"{axis}_key"
    if key is None or key not in adata.obs.columns:
        raise DataValidationError(
            f"the {axis} tasks need a {axis} column: obs has no {key!r} "
            f"(name it with {flag}= / --{axis}-key); obs has columns "
            f"{list(map(str, adata.obs.columns))}"
        )
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise DataValidationError(
            f"the data are empty ({adata.n_obs} observations x {adata.n_vars} genes)"
        )
    adata = in_memory(adata, what="condition_table")
    contexts = obs_labels(adata, schema.context_key)
    if schema.species_key and schema.species_key in adata.obs.columns:
        species = obs_labels(adata, schema.species_key)
        if len(set(species)) > 1:  # mouse brain and rat brain are different contexts
            contexts = np.char.add(np.char.add(species.astype(str), " "), contexts.astype(str))
            contexts = contexts.astype(object)
    perturbations = obs_labels(adata, schema.perturbation_key)
    is_control = perturbations == schema.control
    positions_raw, levels = axis_values(adata, key, what=axis)
    treated_values = positions_raw[~is_control]
    bad = ~np.isfinite(treated_values) | (treated_values <= 0)
    if bad.any():
        first = adata.obs_names[~is_control][np.flatnonzero(bad)[0]]
        raise DataValidationError(
            f"obs[{key!r}] ({axis}) is missing, zero or not finite on {int(bad.sum())} "
            f"perturbed observations (first at obs {first!r}); every perturbed observation "
            f"needs a positive {axis} for the {axis} tasks"
        )
    dose = (
        axis_values(adata, schema.dose_key, what="dose")[0]
        if schema.dose_key and schema.dose_key in adata.obs.columns
        else np.full(adata.n_obs, np.nan)
    )
    time = (
        axis_values(adata, schema.time_key, what="time")[0]
        if schema.time_key and schema.time_key in adata.obs.columns
        else np.full(adata.n_obs, np.nan)
    )
    # contexts that are time points: every context holds one time value
    frame = pd.DataFrame({"context": contexts, "time": time})
    per_context = frame[np.isfinite(time)].groupby("context")["time"].nunique()
    contexts_are_times = bool(len(per_context)) and bool((per_context <= 1).all())
    time_in_controls = np.isfinite(time[is_control]).any() and not contexts_are_times

    if match_key is not None:
        if match_key not in adata.obs.columns:
            raise DataValidationError(
                f"match_key {match_key!r} is not an obs column; obs has columns "
                f"{list(map(str, adata.obs.columns))}"
            )
        if control_means is not None:
            raise DataValidationError("give match_key or control_means, not both")
        matched = obs_labels(adata, match_key)
    else:
        matched = np.full(adata.n_obs, "", dtype=object)

    def control_key(c: str, t: float, m: str) -> str:
        key = f"{c}|{_fmt(t)}" if time_in_controls else c
        return f"{key}|{match_key}={m}" if match_key is not None else key

    obs_control = np.array(
        [control_key(c, t, m) for c, t, m in zip(contexts, time, matched, strict=True)],
        dtype=object,
    )
    genes = tuple(map(str, adata.var_names))
    if control_means is None:
        control_keys = sorted(set(obs_control[is_control]))
        code_of = {k: i for i, k in enumerate(control_keys)}
        codes = np.array(
            [code_of[k] if ctl else -1 for k, ctl in zip(obs_control, is_control, strict=True)]
        )
        controls = pd.DataFrame(
            code_means(adata.X, codes, len(control_keys)), index=control_keys, columns=list(genes)
        )
    else:
        controls = control_means.reindex(columns=list(genes))
    positive = np.where(positions_raw > 0, positions_raw, np.nan)
    axis_pos = positions_raw if levels else np.log(positive)
    treated = np.flatnonzero(~is_control)
    table = pd.DataFrame(
        {
            "context": contexts[treated],
            "perturbation": perturbations[treated],
            "dose": dose[treated],
            "time": time[treated],
            "position": axis_pos[treated],
            "raw": positions_raw[treated],
            "control": obs_control[treated],
        }
    )
    cond_cols = ["context", "perturbation", "dose", "time"]
    table = table.fillna({"dose": -1.0, "time": -1.0})
    grouped = table.groupby(cond_cols, sort=True)
    cond_index = grouped.ngroup().to_numpy()
    conditions = grouped.agg(
        position=("position", "first"),
        raw=("raw", "first"),
        control=("control", "first"),
        n_obs=("position", "size"),
    ).reset_index()
    conditions[["dose", "time"]] = conditions[["dose", "time"]].replace(-1.0, np.nan)
    missing = sorted(set(obs_control[treated]) - set(controls.index))
    if missing:
        raise DataValidationError(
            f"no control observations for {missing[:5]} ({len(missing)} in all): every "
            f"condition's change is taken against the controls of its context"
            + (" at the same time point" if time_in_controls else "")
        )
    codes = np.full(adata.n_obs, -1)
    codes[treated] = cond_index
    means = code_means(adata.X, codes, len(conditions))
    # each observation is compared with its own controls: a condition measured in several
    # experiments (match_key) averages their matched differences
    key_codes = pd.Index(controls.index).get_indexer(obs_control[treated])
    mixing = sp.csr_matrix(
        (np.ones(len(treated)), (cond_index, key_codes)), shape=(len(conditions), len(controls))
    )
    mixing = sp.diags(1.0 / np.asarray(mixing.sum(axis=1)).ravel()) @ mixing
    control_profiles = mixing @ controls.to_numpy(dtype=float)
    deltas = means - control_profiles

    def series_label(r: pd.Series) -> str:
        if axis == "dose":
            parts = [r["context"], r["perturbation"]]
            if np.isfinite(r["time"]) and not contexts_are_times:
                parts.append(f"time={_fmt(r['time'])}")
        else:
            parts = [] if contexts_are_times else [r["context"]]
            parts.append(r["perturbation"])
            if np.isfinite(r["dose"]):
                parts.append(f"dose={_fmt(r['dose'])}")
        return " | ".join(parts)

    conditions["series"] = conditions.apply(series_label, axis=1)
    if levels:
        conditions["value"] = [levels[int(v) - 1] for v in conditions["raw"]]
    else:
        conditions["value"] = [f"{v:g}" for v in conditions["raw"]]
    duplicated = conditions.duplicated(["series", "position"])
    if duplicated.any():
        # same position twice in a series: two contexts at one time point
        first = conditions[duplicated].iloc[0]
        raise DataValidationError(
            f"series {first['series']!r} has two conditions at {axis} {first['value']}; "
            "give each context one time point, or keep time out of the context labels"
        )
    columns = [
        "series",
        "context",
        "perturbation",
        "dose",
        "time",
        "value",
        "position",
        "n_obs",
        "control",
    ]
    return ConditionTable(
        axis=axis,
        conditions=conditions[columns],
        deltas=deltas,
        controls=controls,
        genes=genes,
        levels=levels,
        control_profiles=control_profiles,
        obs_condition=codes,
        obs_control=obs_control,
    )

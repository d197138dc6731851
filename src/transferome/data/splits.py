"""Deterministic train / validation / test splits for the transfer task.

Every split holds out (context, perturbation) groups of *perturbed* observations; the control
observations of every context always stay in training, because the transfer task predicts a
held-out context from its own controls. Each function returns a frozen :class:`Split` of index
arrays into ``adata`` (positions, not names) whose :meth:`Split.summary` says what was held out
and how many controls each held-out context keeps in training.

The validation fraction is carved from the training observations, group by group
(``floor(val_fraction * n)`` observations of each training group, chosen by ``seed``), and never
from the controls of a held-out context.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.schema import Schema, obs_labels, split_combination
from transferome.errors import DataValidationError

__all__ = [
    "HOLDOUTS",
    "Split",
    "holdout_combinations",
    "holdout_contexts",
    "holdout_groups",
    "holdout_perturbations",
    "holdout_species",
    "leave_one_context_out",
    "leave_whole_context_out",
    "sample_splits",
]

HOLDOUTS = ("group", "context")
"""What a transfer split holds out: one (context, perturbation) ``group`` (the context's other
perturbations stay in training) or a whole ``context`` (all its perturbed groups at once, its
controls kept: a new donor, cell line or organ)."""

Group = tuple[str, str]


@dataclass(frozen=True)
class Split:
    """Index arrays into ``adata`` for training, validation and test, and what was held out.

    Attributes
    ----------
    train, val, test
        Sorted integer positions of observations (disjoint).
    held_out
        The held-out (context, perturbation) groups, sorted.
    kept_controls
        Each held-out context mapped to the number of its controls left in training.
    name
        Short label of the split (used in benchmark tables).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    held_out: tuple[Group, ...]
    kept_controls: Mapping[str, int] = field(repr=False)
    name: str = ""

    def summary(self) -> str:
        """One paragraph stating the sizes, the held-out groups and the kept controls."""
        shown = ", ".join(f"({c!r}, {p!r})" for c, p in self.held_out[:6])
        if len(self.held_out) > 6:
            shown += f", ... ({len(self.held_out)} groups)"
        lines = [
            f"split {self.name or '(unnamed)'}: {len(self.train)} train, {len(self.val)} "
            f"validation, {len(self.test)} test observations; held out {shown}"
        ]
        for context, n in self.kept_controls.items():
            lines.append(f"held-out context {context!r} keeps its {n} controls in training")
        return "\n".join(lines)


def _labels(adata: AnnData, schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    for key in (schema.context_key, schema.perturbation_key):
        if key not in adata.obs.columns:
            raise DataValidationError(
                f"obs key {key!r} is missing; obs has columns {list(map(str, adata.obs.columns))}"
            )
    return obs_labels(adata, schema.context_key), obs_labels(adata, schema.perturbation_key)


def _make_split(
    adata: AnnData,
    schema: Schema,
    test_mask: np.ndarray,
    *,
    name: str,
    val_fraction: float,
    seed: int,
    left_out: np.ndarray | None = None,
) -> Split:
    """Build the split holding out ``test_mask``.

    ``left_out`` observations are in no part at all (removed from training without being
    predicted).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DataValidationError(f"val_fraction must be in [0, 1), got {val_fraction}")
    contexts, perturbations = _labels(adata, schema)
    is_control = perturbations == schema.control
    if (test_mask & is_control).any():
        raise DataValidationError("controls cannot be held out; they stay in training")
    if not test_mask.any():
        raise DataValidationError(f"split {name!r} holds out no observations")
    held_out = tuple(sorted(set(zip(contexts[test_mask], perturbations[test_mask], strict=True))))
    held_contexts = sorted({c for c, _ in held_out})
    kept = {c: int((is_control & (contexts == c)).sum()) for c in held_contexts}
    without = [c for c, n in kept.items() if n == 0]
    if without:
        raise DataValidationError(
            f"held-out context(s) {without} have no {schema.control!r} observations in "
            f"obs[{schema.perturbation_key!r}]; the transfer task needs target controls"
        )
    train_mask = ~test_mask
    if left_out is not None:
        train_mask &= ~(left_out & ~is_control)
    val_mask = np.zeros_like(train_mask)
    if val_fraction > 0:
        rng = np.random.default_rng(seed)
        protected = is_control & np.isin(contexts, held_contexts)
        candidates = train_mask & ~protected
        groups = sorted(set(zip(contexts[candidates], perturbations[candidates], strict=True)))
        for context, perturbation in groups:
            members = np.flatnonzero(
                candidates & (contexts == context) & (perturbations == perturbation)
            )
            n_val = int(np.floor(val_fraction * members.size))
            if n_val:
                val_mask[rng.choice(members, size=n_val, replace=False)] = True
        train_mask &= ~val_mask
    return Split(
        train=np.flatnonzero(train_mask),
        val=np.flatnonzero(val_mask),
        test=np.flatnonzero(test_mask),
        held_out=held_out,
        kept_controls=MappingProxyType(kept),
        name=name,
    )


def _as_list(values: str | Iterable[str], what: str) -> list[str]:
    items = [values] if isinstance(values, str) else [str(v) for v in values]
    if not items:
        raise DataValidationError(f"no {what} given to hold out")
    return items


def _check_present(values: Sequence[str], present: np.ndarray, key: str) -> None:
    known = set(present)
    missing = [v for v in values if v not in known]
    if missing:
        shown = sorted(known)[:20]
        raise DataValidationError(f"{missing} not found in obs[{key!r}]; labels present: {shown}")


def holdout_groups(
    adata: AnnData,
    groups: Iterable[Group],
    *,
    schema: Schema | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
    name: str = "",
) -> Split:
    """Hold out the observations of the given (context, perturbation) groups.

    Raises
    ------
    DataValidationError
        A group is a control group, is absent from the data, or its context has no controls.
    """
    schema = schema or Schema()
    contexts, perturbations = _labels(adata, schema)
    wanted = [(str(c), str(p)) for c, p in groups]
    if not wanted:
        raise DataValidationError("no (context, perturbation) groups given to hold out")
    present = set(zip(contexts, perturbations, strict=True))
    missing = [g for g in wanted if g not in present]
    if missing:
        raise DataValidationError(
            f"group(s) {missing} not observed in obs[{schema.context_key!r}] x "
            f"obs[{schema.perturbation_key!r}]"
        )
    controls = [g for g in wanted if g[1] == schema.control]
    if controls:
        raise DataValidationError(f"control group(s) {controls} cannot be held out")
    test_mask = np.asarray(pd.MultiIndex.from_arrays([contexts, perturbations]).isin(wanted))
    label = name or ";".join(f"{c}|{p}" for c, p in sorted(set(wanted)))
    return _make_split(adata, schema, test_mask, name=label, val_fraction=val_fraction, seed=seed)


def holdout_perturbations(
    adata: AnnData,
    perturbations: str | Iterable[str],
    *,
    schema: Schema | None = None,
    include_combinations: bool = True,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> Split:
    """Hold out whole perturbations, in every context.

    With ``include_combinations`` (the default) every combination that contains a held-out
    perturbation is held out too, so nothing about it leaks into training.
    """
    schema = schema or Schema()
    wanted = _as_list(perturbations, "perturbations")
    if schema.control in wanted:
        raise DataValidationError(f"the control label {schema.control!r} cannot be held out")
    _, labels = _labels(adata, schema)
    _check_present(wanted, labels, schema.perturbation_key)
    selected = set(wanted)
    if include_combinations:
        for label in set(labels) - {schema.control}:
            if set(split_combination(label, schema.combination_sep)) & selected:
                selected.add(label)
    test_mask = np.isin(labels, sorted(selected))
    return _make_split(
        adata,
        schema,
        test_mask,
        name="perturbation " + ",".join(wanted),
        val_fraction=val_fraction,
        seed=seed,
    )


def holdout_contexts(
    adata: AnnData,
    contexts: str | Iterable[str],
    *,
    schema: Schema | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> Split:
    """Hold out every perturbed observation of whole contexts; their controls stay in training."""
    schema = schema or Schema()
    wanted = _as_list(contexts, "contexts")
    context_labels, perturbation_labels = _labels(adata, schema)
    _check_present(wanted, context_labels, schema.context_key)
    test_mask = np.isin(context_labels, wanted) & (perturbation_labels != schema.control)
    return _make_split(
        adata,
        schema,
        test_mask,
        name="context " + ",".join(wanted),
        val_fraction=val_fraction,
        seed=seed,
    )


def holdout_species(
    adata: AnnData,
    species: str | Iterable[str],
    *,
    schema: Schema | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> Split:
    """Hold out every perturbed observation of whole species; their controls stay in training.

    The held-out groups are the (context, perturbation) pairs of the held-out species, so the
    context labels should be unique per species (e.g. ``"rat liver"``).
    """
    schema = schema or Schema()
    if schema.species_key is None or schema.species_key not in adata.obs.columns:
        raise DataValidationError(
            f"holding out a species needs the species obs key; {schema.species_key!r} is "
            f"missing from obs columns {list(map(str, adata.obs.columns))}"
        )
    wanted = _as_list(species, "species")
    species_labels = obs_labels(adata, schema.species_key)
    _check_present(wanted, species_labels, schema.species_key)
    _, perturbation_labels = _labels(adata, schema)
    test_mask = np.isin(species_labels, wanted) & (perturbation_labels != schema.control)
    return _make_split(
        adata,
        schema,
        test_mask,
        name="species " + ",".join(wanted),
        val_fraction=val_fraction,
        seed=seed,
    )


def holdout_combinations(
    adata: AnnData,
    combinations: str | Iterable[str] | None = None,
    *,
    schema: Schema | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> Split:
    """Hold out combination perturbations in every context; their singles stay in training.

    Parameters
    ----------
    adata
        The observations to split.
    combinations
        Combination labels to hold out. ``None`` selects every combination whose single
        perturbations are all observed, alone, in each context where the combination was.
    schema
        The obs keys (``Schema()`` when ``None``).
    val_fraction, seed
        ``floor(val_fraction * n)`` observations of each training group go to validation,
        chosen by ``seed``.

    Raises
    ------
    DataValidationError
        A label is not a combination, or one of its singles is not observed alone in a
        context where the combination was (the singles must be seen in training).
    """
    schema = schema or Schema()
    contexts, labels = _labels(adata, schema)
    observed = set(zip(contexts, labels, strict=True))
    combos = sorted(
        {
            p
            for p in set(labels) - {schema.control}
            if len(split_combination(p, schema.combination_sep)) > 1
        }
    )

    def singles_seen(combo: str) -> list[Group]:
        parts = split_combination(combo, schema.combination_sep)
        where = sorted({c for c, p in observed if p == combo})
        return [(c, s) for c in where for s in parts if (c, s) not in observed]

    if combinations is None:
        wanted = [p for p in combos if not singles_seen(p)]
        if not wanted:
            raise DataValidationError(
                f"no combination in obs[{schema.perturbation_key!r}] has all its singles "
                f"observed alone (combinations found: {combos[:10]})"
            )
    else:
        wanted = _as_list(combinations, "combinations")
        _check_present(wanted, labels, schema.perturbation_key)
        for combo in wanted:
            if combo not in combos:
                raise DataValidationError(f"{combo!r} is not a combination of perturbations")
            unseen = singles_seen(combo)
            if unseen:
                raise DataValidationError(
                    f"combination {combo!r}: single group(s) {unseen} are not observed; "
                    "a combination hold-out needs its singles in training"
                )
    test_mask = np.isin(labels, wanted)
    return _make_split(
        adata,
        schema,
        test_mask,
        name="combinations " + ",".join(wanted),
        val_fraction=val_fraction,
        seed=seed,
    )


def _transferable(
    adata: AnnData,
    schema: Schema,
    perturbations: Iterable[str] | None,
    contexts: Iterable[str] | None,
    min_contexts: int,
) -> tuple[dict[str, list[str]], list[str]]:
    """Find the transferable perturbations and the target contexts.

    Returns perturbation -> contexts where it is measured (in ``min_contexts`` or more),
    restricted to the chosen perturbations, and the chosen target contexts that have controls.
    """
    if min_contexts < 2:
        raise DataValidationError(f"min_contexts must be at least 2, got {min_contexts}")
    context_labels, labels = _labels(adata, schema)
    with_controls = set(context_labels[labels == schema.control])
    observed = sorted(set(zip(context_labels, labels, strict=True)))
    chosen = None if perturbations is None else set(_as_list(perturbations, "perturbations"))
    if chosen is not None:
        _check_present(sorted(chosen), labels, schema.perturbation_key)
    targets = sorted(with_controls)
    if contexts is not None:
        wanted = _as_list(contexts, "contexts")
        _check_present(wanted, context_labels, schema.context_key)
        without = [c for c in wanted if c not in with_controls]
        if without:
            raise DataValidationError(
                f"context(s) {without} have no {schema.control!r} observations; a transfer "
                "target needs its controls"
            )
        targets = sorted(set(wanted))
    per_perturbation: dict[str, list[str]] = {}
    for context, perturbation in observed:
        if perturbation == schema.control:
            continue
        if chosen is None or perturbation in chosen:
            per_perturbation.setdefault(perturbation, []).append(context)
    return (
        {p: where for p, where in per_perturbation.items() if len(where) >= min_contexts},
        targets,
    )


def leave_one_context_out(
    adata: AnnData,
    *,
    schema: Schema | None = None,
    perturbations: Iterable[str] | None = None,
    contexts: Iterable[str] | None = None,
    min_contexts: int = 2,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> Iterator[Split]:
    """Yield one split per (context, perturbation) group, holding out that group alone.

    This is ``holdout="group"``, for every group whose perturbation is measured in at least
    ``min_contexts`` contexts. The held-out context's other perturbations stay in training.
    Splits come sorted by perturbation, then context. Contexts without controls are skipped
    (they cannot be a transfer target); ``perturbations`` and ``contexts`` restrict the held-out
    groups.
    """
    schema = schema or Schema()
    per_perturbation, targets = _transferable(adata, schema, perturbations, contexts, min_contexts)
    for perturbation in sorted(per_perturbation):
        for context in per_perturbation[perturbation]:
            if context not in targets:
                continue
            yield holdout_groups(
                adata,
                [(context, perturbation)],
                schema=schema,
                val_fraction=val_fraction,
                seed=seed,
                name=f"{context}|{perturbation}",
            )


def leave_whole_context_out(
    adata: AnnData,
    *,
    schema: Schema | None = None,
    perturbations: Iterable[str] | None = None,
    contexts: Iterable[str] | None = None,
    min_contexts: int = 2,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> Iterator[Split]:
    """Yield one split per context, holding out all its perturbed groups at once.

    This is ``holdout="context"``: a new donor, cell line or organ; its controls stay in
    training. Every perturbed observation of the context leaves training. The groups predicted
    and scored are those whose perturbation is measured in at least ``min_contexts`` contexts
    (so another context holds it) and, when given, is one of ``perturbations``; the context's
    other perturbed observations are in no part of the split. Contexts without controls, or
    without a group to predict, are skipped; ``contexts`` chooses the held-out contexts. Splits
    come sorted by context and are named ``context <name>``.
    """
    schema = schema or Schema()
    per_perturbation, targets = _transferable(adata, schema, perturbations, contexts, min_contexts)
    context_labels, labels = _labels(adata, schema)
    for context in targets:
        held = [p for p, where in sorted(per_perturbation.items()) if context in where]
        if not held:
            continue
        in_context = context_labels == context
        yield _make_split(
            adata,
            schema,
            in_context & np.isin(labels, held),
            name=f"context {context}",
            val_fraction=val_fraction,
            seed=seed,
            left_out=in_context,
        )


def sample_splits(splits: Sequence[Split], max_splits: int | None, seed: int = 0) -> list[Split]:
    """Draw at most ``max_splits`` of ``splits`` (``None``: all of them).

    Drawn without replacement by ``seed``; they keep their original order.
    """
    splits = list(splits)
    if max_splits is not None and int(max_splits) < 1:
        raise DataValidationError(f"max_splits must be at least 1, got {max_splits}")
    if max_splits is None or len(splits) <= int(max_splits):
        return splits
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(splits), size=int(max_splits), replace=False))
    return [splits[i] for i in chosen]

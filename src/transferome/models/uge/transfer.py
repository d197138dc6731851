"""Perturbation prediction across species by latent arithmetic (paper 4.2).

With ``z(s, c, p)`` the mean ``<cls>`` embedding of species ``s``, context ``c`` under
perturbation ``p`` (computed from the training data when the model is fitted), the target
``(species t, context c, perturbation p)`` is predicted by one of two routes:

* ``drug``: ``z(t, c, control) + delta_p`` where ``delta_p`` is the mean of
  ``z(s', c', p) - z(s', c', control)`` over the groups where ``p`` was measured. Groups of the
  same context in other species are used when there are any (the organ-specific effect of the
  drug); otherwise every context. A combination never measured as such adds the deltas of its
  single perturbations.
* ``species``: ``z(s', c, p) + delta_species(s' -> t)`` where ``delta_species`` is the mean of
  ``z(t, c', q) - z(s', c', q)`` over every group measured in both species.

``both`` averages the two routes' latents. The latent is decoded into every gene of the target
species; with ``anchor_control`` the decoded shift ``decode(z_pred) - decode(z(t, c, control))``
is added to the observed control mean of the target context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from transferome.data.schema import obs_labels, split_combination
from transferome.errors import DataValidationError
from transferome.models.base import Target, prediction_adata
from transferome.models.uge._encode import species_table
from transferome.models.uge.data import validate_block
from transferome.models.uge.genes import mean_profile

if TYPE_CHECKING:
    from transferome.models.uge.estimator import UniversalGeneEmbedding

__all__ = ["drug_shift", "predict_targets", "species_shift"]


def _latent_dict(latents: pd.DataFrame) -> dict[tuple[str, str, str], np.ndarray]:
    values = latents.drop(columns="n").to_numpy(dtype=np.float64)
    return {(str(s), str(c), str(p)): values[i] for i, (s, c, p) in enumerate(latents.index)}


def drug_shift(
    latents: pd.DataFrame, perturbation: str, *, species: str, context: str, control: str
) -> np.ndarray | None:
    """Mean latent shift of ``perturbation`` away from the target group; ``None`` if unmeasured."""
    table = _latent_dict(latents)
    shifts = {
        (s, c): z - table[(s, c, control)]
        for (s, c, p), z in table.items()
        if p == perturbation and (s, c, control) in table and (s, c) != (species, context)
    }
    if not shifts:
        return None
    matched = [v for (s, c), v in shifts.items() if c == context]
    return np.mean(matched if matched else list(shifts.values()), axis=0)


def species_shift(latents: pd.DataFrame, source: str, target: str) -> np.ndarray | None:
    """Mean latent shift from ``source`` to ``target`` over groups measured in both."""
    table = _latent_dict(latents)
    shifts = [
        table[(target, c, p)] - z
        for (s, c, p), z in table.items()
        if s == source and (target, c, p) in table
    ]
    return np.mean(shifts, axis=0) if shifts else None


def _drug_route(
    latents: pd.DataFrame,
    z_control: np.ndarray,
    target: tuple[str, str, str],
    *,
    control: str,
    sep: str,
) -> np.ndarray | None:
    species, context, p = target
    whole = drug_shift(latents, p, species=species, context=context, control=control)
    if whole is not None:
        return z_control + whole
    parts = split_combination(p, sep)
    shifts = [
        drug_shift(latents, q, species=species, context=context, control=control) for q in parts
    ]
    found = [s for s in shifts if s is not None]
    if len(parts) < 2 or len(found) < len(shifts):
        return None
    return z_control + np.sum(found, axis=0)


def _species_route(latents: pd.DataFrame, species: str, context: str, p: str) -> np.ndarray | None:
    table = _latent_dict(latents)
    predictions = []
    for source in sorted(set(latents.index.get_level_values("species").astype(str))):
        if source == species or (source, context, p) not in table:
            continue
        shift = species_shift(latents, source, species)
        if shift is not None:
            predictions.append(table[(source, context, p)] + shift)
    return np.mean(predictions, axis=0) if predictions else None


def predict_targets(
    model: UniversalGeneEmbedding,
    adata: AnnData,
    targets: Sequence[Target],
    *,
    species: str,
    route: str,
) -> AnnData:
    """Predicted mean log profiles of ``targets`` in ``species`` (see the module docstring)."""
    if route not in ("drug", "species", "both"):
        raise DataValidationError(f"route={route!r} is not one of 'drug', 'species', 'both'")
    schema = model.schema
    validate_block(adata, schema, species=species)
    targets = [(str(c), str(p)) for c, p in targets]
    contexts = obs_labels(adata, schema.context_key)
    is_control = obs_labels(adata, schema.perturbation_key) == schema.control
    latents = model.group_latents_
    z_rows, x_rows, base_rows = [], [], []
    for context, perturbation in targets:
        rows = np.flatnonzero(is_control & (contexts == context))
        if len(rows) == 0:
            raise DataValidationError(
                f"target context {context!r} has no {schema.control!r} observations in the data; "
                "the prediction starts from the target's controls"
            )
        controls = adata[rows]
        z_control = model.transform(controls, species=species).mean(axis=0).astype(np.float64)
        candidates = []
        if route in ("drug", "both"):
            candidates.append(
                _drug_route(
                    latents,
                    z_control,
                    (species, context, perturbation),
                    control=schema.control,
                    sep=schema.combination_sep,
                )
            )
        if route in ("species", "both"):
            candidates.append(_species_route(latents, species, context, perturbation))
        found = [c for c in candidates if c is not None]
        if not found:
            raise DataValidationError(
                f"perturbation {perturbation!r} was not measured in any group the {route!r} "
                f"route can use to predict ({species!r}, {context!r})"
            )
        z_rows.append(np.mean(found, axis=0))
        base_rows.append(z_control)
        x_rows.append(mean_profile(controls))
    genes = torch.arange(adata.n_vars)
    table = species_table(model, species)
    with torch.no_grad():
        z = torch.from_numpy(np.asarray(z_rows, dtype=np.float32))
        decoded = model.network_.decode(z, genes, table=table).numpy()
        if model.anchor_control:
            base = torch.from_numpy(np.asarray(base_rows, dtype=np.float32))
            decoded = (
                np.asarray(x_rows)
                + decoded
                - model.network_.decode(base, genes, table=table).numpy()
            )
    extra: dict[str, Sequence[Any]] | None = (
        {schema.species_key: [species] * len(targets)} if schema.species_key else None
    )
    return prediction_adata(decoded, targets, list(adata.var_names), schema, extra_obs=extra)

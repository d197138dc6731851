"""Designs and count sampling of the simulator.

The model, with the parameters of :class:`~transferome.datasets.GenerativeParams` in
brackets:

- Bulk design (the UGE study): each animal is assigned a condition (control or a drug at a
  dose); blood is drawn on each of ``blood_days`` (context ``PBMC``), the drug is given after
  ``dosing_day`` so earlier draws are controls, and the organs are collected at necropsy on
  the last blood day. Animals are spread over ``n_batches`` processing batches.
- Single-cell design (sci-Plex): each cell line x perturbation x dose well holds
  ``cells_per_group`` cells (controls ``control_multiplier`` times more), split over wells
  (``sample``) and plates (``batch``).
- Per observation, the log abundance of gene ``g`` is baseline + context offset + loadings x
  (context activity + random program activity) + saturated drug change (damped by the gene's
  room to move in the context, :func:`~transferome.datasets._effects.headroom`) + random gene
  effects: of the animal (sd ``animal_gene_sd``, programs sd ``animal_program_sd``), the
  batch (sd ``batch_sd``), the blood-draw day (sd ``day_sd``); single cells add a cell state
  (programs sd ``cell_state_sd``) and a response factor Gamma(``response_shape``) scaling the
  drug shift.
- Library sizes are log-normal (``bulk_library`` or ``cell_library``, log sd
  ``library_sd``); counts are negative binomial with dispersion ``bulk_dispersion`` or
  ``cell_dispersion`` (variance ``mu + dispersion * mu^2``). Low-integrity contexts
  (``low_integrity_contexts``: the pancreas) get ``low_integrity_library`` times the reads,
  ``low_integrity_dispersion`` times the dispersion and extra gene noise of sd
  ``low_integrity_noise``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from transferome.datasets._effects import EffectModel, headroom, saturate
from transferome.datasets._genes import SpeciesGenes

if TYPE_CHECKING:
    from transferome.datasets._params import GenerativeParams

__all__ = [
    "bulk_design",
    "expected_log_profile",
    "gene_room",
    "sample_counts",
    "single_cell_design",
]


def bulk_design(
    species: str,
    organs: tuple[str, ...],
    conditions: list[tuple[str, float]],
    *,
    animals_per_group: int,
    blood_days: tuple[int, ...],
    dosing_day: int,
    n_batches: int,
    rng: np.random.Generator,
    blood_context: str = "PBMC",
    control: str = "control",
) -> pd.DataFrame:
    """Observations of the UGE design for one species (one row per sample)."""
    n_animals = len(conditions) * animals_per_group
    batches = rng.permutation(np.arange(n_animals) % max(n_batches, 1))
    necropsy = max(blood_days) if blood_days else dosing_day + 2
    rows = []
    for a in range(n_animals):
        perturbation, dose = conditions[a // animals_per_group]
        animal = f"{species}-a{a + 1:03d}"
        batch = f"batch{batches[a] + 1}"
        for day in blood_days:
            dosed = day > dosing_day
            label, amount = (perturbation, dose) if dosed else (control, 0.0)
            rows.append((blood_context, label, amount, animal, day, batch, perturbation))
        for organ in organs:
            rows.append((organ, perturbation, dose, animal, necropsy, batch, perturbation))
    columns = ["context", "perturbation", "dose", "sample", "day", "batch", "treatment_group"]
    obs = pd.DataFrame(rows, columns=columns)
    obs.insert(0, "species", species)
    return obs


def single_cell_design(
    species: str,
    cell_lines: tuple[str, ...],
    conditions: list[tuple[str, float]],
    *,
    cells_per_group: int,
    control_multiplier: int,
    wells_per_group: int,
    n_batches: int,
    control: str = "control",
) -> pd.DataFrame:
    """Observations of the sci-Plex-like design for one species (one row per cell)."""
    frames = []
    well = 0
    for line in cell_lines:
        for perturbation, dose in conditions:
            n = cells_per_group * (control_multiplier if perturbation == control else 1)
            wells = np.arange(n) % wells_per_group
            ids = [f"{line}-w{well + w + 1:04d}" for w in wells]
            plates = [f"plate{(well + w) % max(n_batches, 1) + 1}" for w in wells]
            well += wells_per_group
            frames.append(
                pd.DataFrame(
                    {
                        "context": line,
                        "perturbation": perturbation,
                        "dose": float(dose),
                        "sample": ids,
                        "day": 1,
                        "batch": plates,
                    }
                )
            )
    obs = pd.concat(frames, ignore_index=True)
    obs.insert(0, "species", species)
    return obs


def _group_changes(
    obs: pd.DataFrame, genes: SpeciesGenes, effects: EffectModel
) -> tuple[np.ndarray, np.ndarray]:
    """Program shift of each observation's (context, perturbation, dose) group."""
    keys = obs[["context", "perturbation", "dose"]].astype(str).agg("|".join, axis=1)
    codes, uniques = pd.factorize(keys)
    first = obs.groupby(codes, sort=True).head(1)
    shifts = np.zeros((len(uniques), genes.loadings.shape[1]))
    for code, (_, row) in zip(codes[first.index], first.iterrows(), strict=True):
        shifts[code] = effects.program_shift(
            genes.species, row["context"], row["perturbation"], float(row["dose"])
        )
    return codes, shifts


def gene_room(
    genes: SpeciesGenes,
    effects: EffectModel,
    offsets: np.ndarray,
    params: GenerativeParams | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Room of every gene to fall and to rise in every context (two contexts x genes arrays).

    From the noise-free control log abundance (baseline + context offset + loadings x context
    activity); ones when ``params`` is ``None`` or ``params.headroom`` is 0.
    """
    activity = effects.context_activity[genes.species]
    eta = genes.baseline[None, :] + offsets + activity @ genes.loadings.T
    if params is None:
        return headroom(eta, 0.0, 0.0, 0.0)
    return headroom(eta, params.headroom, params.headroom_low, params.headroom_high)


def _damped(change: np.ndarray, down: np.ndarray, up: np.ndarray) -> np.ndarray:
    return change * np.where(change < 0, down, up)


def expected_log_profile(
    genes: SpeciesGenes,
    effects: EffectModel,
    offsets: np.ndarray,
    context: str,
    perturbation: str,
    *,
    dose: float,
    scale: float = 1e4,
    room: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Noise-free log-normalised profile (``log1p(scale * proportion)``) of one group.

    ``room`` is the genes' room to fall and rise in every context (:func:`gene_room`, computed
    once for all groups); ``None``: no damping.
    """
    c = effects.contexts.index(context)
    eta = genes.baseline + offsets[c] + genes.loadings @ effects.context_activity[genes.species][c]
    shift = effects.program_shift(genes.species, context, perturbation, dose)
    change = saturate(genes.loadings @ shift, effects.max_log_change)
    if room is not None:
        down, up = room
        change = _damped(change, down[c], up[c])
    eta = eta + change
    p = np.exp(eta - eta.max())
    return np.log1p(scale * p / p.sum())


def _random_effects(
    rng: np.random.Generator, labels: pd.Series, n_genes: int, sd: float
) -> np.ndarray:
    codes, uniques = pd.factorize(labels)
    return rng.normal(0.0, sd, size=(len(uniques), n_genes))[codes]


def sample_counts(
    rng: np.random.Generator,
    obs: pd.DataFrame,
    genes: SpeciesGenes,
    effects: EffectModel,
    offsets: np.ndarray,
    *,
    params: GenerativeParams,
    single_cell: bool,
) -> sp.csr_matrix:
    """Negative-binomial counts of every observation (sparse CSR, observations x genes)."""
    n_obs, n_genes = len(obs), genes.n_genes
    n_programs = genes.loadings.shape[1]
    ctx = np.array([effects.contexts.index(c) for c in obs["context"]])
    codes, shifts = _group_changes(obs, genes, effects)

    activity = effects.context_activity[genes.species][ctx]
    shift = shifts[codes]
    if single_cell:
        activity = activity + rng.normal(0.0, params.cell_state_sd, size=(n_obs, n_programs))
        factor = rng.gamma(params.response_shape, 1.0 / params.response_shape, size=n_obs)
        shift = shift * factor[:, None]
    else:
        animal_codes, animals = pd.factorize(obs["sample"])
        animal_programs = rng.normal(0.0, params.animal_program_sd, (len(animals), n_programs))
        activity = activity + animal_programs[animal_codes]
    eta = genes.baseline[None, :] + offsets[ctx] + activity @ genes.loadings.T
    change = saturate(shift @ genes.loadings.T, params.max_log_change)
    if params.headroom > 0:
        down, up = gene_room(genes, effects, offsets, params)
        change = _damped(change, down[ctx], up[ctx])
    eta += change
    eta += _random_effects(rng, obs["batch"], n_genes, params.batch_sd)
    if not single_cell:
        eta += _random_effects(rng, obs["sample"], n_genes, params.animal_gene_sd)
        eta += _random_effects(rng, obs["day"], n_genes, params.day_sd)

    low = obs["context"].str.lower().isin([c.lower() for c in params.low_integrity_contexts])
    low = low.to_numpy()
    if low.any():
        eta[low] += rng.normal(0.0, params.low_integrity_noise, size=(int(low.sum()), n_genes))

    eta -= eta.max(axis=1, keepdims=True)
    p = np.exp(eta)
    p /= p.sum(axis=1, keepdims=True)
    library = params.cell_library if single_cell else params.bulk_library
    size = library * np.exp(rng.normal(0.0, params.library_sd, size=n_obs))
    size[low] *= params.low_integrity_library
    dispersion = np.full(n_obs, params.cell_dispersion if single_cell else params.bulk_dispersion)
    dispersion[low] *= params.low_integrity_dispersion
    mu = p * size[:, None]
    shape = 1.0 / dispersion[:, None]
    rate = rng.gamma(np.broadcast_to(shape, mu.shape), mu / shape)
    counts = rng.poisson(rate)
    return sp.csr_matrix(counts.astype(np.float32))

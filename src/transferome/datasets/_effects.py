"""Contexts and perturbations of the simulator: what moves the programs.

The model, with the parameters of :class:`~transferome.datasets.GenerativeParams` in
brackets:

- A context (organ, cell line) is a vector of program activities, normal with sd
  ``context_sd`` and shared by the species up to normal noise of sd ``context_species_sd``;
  each gene is tissue-specific with probability ``p_tissue_specific`` (a log offset of
  ``tissue_offset`` in one random context), plus small gene x context offsets of sd
  ``context_gene_sd``.
- A drug hits 1 to ``max_targets`` programs with a signed effect of magnitude uniform in
  ``effect_range``. Its program shift in context ``c``, species ``s`` at dose ``x`` is
  ``hill(x) * sensitivity[s] * (exposure[c] * effect + interaction[c])``, where
  ``hill(x) = x^n / (x^n + ec50^n)`` (``hill_n``; ``ec50`` log-uniform in ``ec50_range``),
  the organ exposure is uniform in ``exposure_range`` (the brain gets ``brain_exposure``
  times less: the blood-brain barrier), the species sensitivity is log-normal with sd
  ``sensitivity_sd``, and the interaction is a context-specific, non-additive part, normal
  with sd ``interaction_sd`` on the targeted programs and a third of it elsewhere.
- A combination adds its drugs' shifts plus a synergy term, normal with sd ``interaction_sd``
  scaled by the smaller of the two Hill factors.
- A gene's log change is its loadings times the program shift, saturated smoothly at
  ``max_log_change`` (``c * tanh(x / c)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from transferome.data.schema import split_combination

if TYPE_CHECKING:
    from transferome.datasets.simulator import GenerativeParams

__all__ = [
    "EffectModel",
    "context_offsets",
    "draw_ancestral_offsets",
    "draw_effects",
    "hill",
    "saturate",
]


def hill(dose: float | np.ndarray, ec50: float, n: float) -> np.ndarray:
    """Fraction of the maximal effect reached at ``dose`` (0 at dose 0, 1/2 at ``ec50``)."""
    x = np.maximum(np.asarray(dose, dtype=float), 0.0)
    return x**n / (x**n + ec50**n)


def saturate(change: np.ndarray, limit: float) -> np.ndarray:
    """Smooth saturation of log changes at +-``limit``."""
    return limit * np.tanh(change / limit)


@dataclass(frozen=True)
class EffectModel:
    """Program activities of the contexts and program shifts of the perturbations."""

    species: tuple[str, ...]
    contexts: tuple[str, ...]
    drugs: tuple[str, ...]
    context_activity: dict[str, np.ndarray]  # species -> contexts x programs
    drug_effect: np.ndarray  # drugs x programs
    exposure: np.ndarray  # drugs x contexts
    sensitivity: np.ndarray  # species x drugs
    ec50: np.ndarray  # drugs
    hill_n: float
    interaction: np.ndarray  # drugs x contexts x programs
    synergy: dict[tuple[str, str], np.ndarray]  # sorted drug pair -> programs
    max_log_change: float
    combination_sep: str = "+"

    def program_shift(
        self, species: str, context: str, perturbation: str, dose: float
    ) -> np.ndarray:
        """Shift of the program activities caused by ``perturbation`` (zeros for control)."""
        n_programs = self.drug_effect.shape[1]
        parts = split_combination(perturbation, self.combination_sep)
        parts = tuple(p for p in parts if p in self.drugs)
        if not parts:
            return np.zeros(n_programs)
        s = self.species.index(species)
        c = self.contexts.index(context)
        total = np.zeros(n_programs)
        factors = []
        for drug in parts:
            d = self.drugs.index(drug)
            h = float(hill(dose, self.ec50[d], self.hill_n))
            factors.append(h)
            shift = self.exposure[d, c] * self.drug_effect[d] + self.interaction[d, c]
            total += h * self.sensitivity[s, d] * shift
        if len(parts) > 1:
            for i, a in enumerate(parts):
                for b in parts[i + 1 :]:
                    total += min(factors) * self.synergy[(a, b)]
        return total


def draw_effects(
    rng: np.random.Generator,
    species: tuple[str, ...],
    contexts: tuple[str, ...],
    drugs: tuple[str, ...],
    pairs: tuple[tuple[str, str], ...],
    n_programs: int,
    params: GenerativeParams,
    combination_sep: str = "+",
) -> EffectModel:
    """Draw context activities, drug effects, exposures, sensitivities and interactions."""
    n_ctx, n_drugs = len(contexts), len(drugs)
    base_activity = rng.normal(0.0, params.context_sd, size=(n_ctx, n_programs))
    activity = {
        s: base_activity + rng.normal(0.0, params.context_species_sd, size=base_activity.shape)
        for s in species
    }
    effect = np.zeros((n_drugs, n_programs))
    low, high = params.effect_range
    for d in range(n_drugs):
        m = int(rng.integers(1, min(params.max_targets, n_programs) + 1))
        targets = rng.choice(n_programs, size=m, replace=False)
        effect[d, targets] = rng.choice([-1.0, 1.0], size=m) * rng.uniform(low, high, size=m)
    exposure = rng.uniform(*params.exposure_range, size=(n_drugs, n_ctx))
    for c, name in enumerate(contexts):
        if name.lower() == "brain":
            exposure[:, c] *= params.brain_exposure
    sensitivity = np.exp(rng.normal(0.0, params.sensitivity_sd, size=(len(species), n_drugs)))
    lo, hi = np.log(params.ec50_range[0]), np.log(params.ec50_range[1])
    ec50 = np.exp(rng.uniform(lo, hi, size=n_drugs))
    scale = np.where(effect != 0, 1.0, 1.0 / 3.0)[:, None, :]
    interaction = rng.normal(0.0, params.interaction_sd, size=(n_drugs, n_ctx, n_programs))
    interaction *= scale
    synergy = {
        tuple(sorted(pair)): rng.normal(0.0, params.interaction_sd, size=n_programs)
        for pair in pairs
    }
    return EffectModel(
        species=species,
        contexts=contexts,
        drugs=drugs,
        context_activity=activity,
        drug_effect=effect,
        exposure=exposure,
        sensitivity=sensitivity,
        ec50=ec50,
        hill_n=params.hill_n,
        interaction=interaction,
        synergy=synergy,
        max_log_change=params.max_log_change,
        combination_sep=combination_sep,
    )


def context_offsets(
    rng: np.random.Generator,
    ancestor: np.ndarray,
    ancestral_offsets: np.ndarray,
    params: GenerativeParams,
) -> np.ndarray:
    """Gene x context log offsets of one species (contexts x genes).

    Orthologs share the ancestral offsets (tissue specificity is conserved); species-specific
    genes draw their own.
    """
    n_ctx = ancestral_offsets.shape[0]
    out = np.empty((n_ctx, len(ancestor)))
    known = ancestor >= 0
    out[:, known] = ancestral_offsets[:, ancestor[known]]
    out[:, ~known] = draw_ancestral_offsets(rng, n_ctx, int((~known).sum()), params)
    return out + rng.normal(0.0, params.context_gene_sd / 2, size=out.shape)


def draw_ancestral_offsets(
    rng: np.random.Generator, n_ctx: int, n_genes: int, params: GenerativeParams
) -> np.ndarray:
    """Tissue-specific genes and small gene x context offsets (contexts x genes)."""
    offsets = rng.normal(0.0, params.context_gene_sd, size=(n_ctx, n_genes))
    specific = np.flatnonzero(rng.random(n_genes) < params.p_tissue_specific)
    offsets[rng.integers(0, n_ctx, size=len(specific)), specific] += params.tissue_offset
    return offsets

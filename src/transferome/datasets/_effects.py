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

      hill(x) * sensitivity[s] * species_gain[s] * (gain[c] * (base + crosstalk[c] @ base)
                                                     + interaction[c])

  with ``base = exposure[c] * effect``, where ``hill(x) = x^n / (x^n + ec50^n)``
  (``hill_n``; ``ec50`` log-uniform in ``ec50_range``) and the species sensitivity is
  log-normal with sd ``sensitivity_sd``.
- What makes one context's response predictable from others' (the structured context
  dependence; each part is off at 0):

  - ``gain[c]``, one factor per program, is a smooth function of the context's program
    activities shared by every drug: ``exp(gain_sd * tanh(activity[c] @ W))`` with ``W`` a
    normal programs x programs matrix of sd ``1 / sqrt(programs)``. Contexts with alike
    activities (alike control profiles) pass a drug's shift alike, and the other drugs
    measured in a context reveal its gains.
  - ``crosstalk[c]`` carries part of a shift on to other programs, again a smooth function
    of the activities: ``crosstalk_sd * tanh(activity[c] @ V)`` reshaped to programs x
    programs (no diagonal), ``V`` normal of sd ``1 / sqrt(programs)``.
  - ``exposure[c]`` (uniform in ``exposure_range``, the brain ``brain_exposure`` times less:
    the blood-brain barrier) is a property of the context shared by the drugs in the
    proportion ``exposure_sharing``, the rest drawn per (drug, context).
  - ``species_gain[s]``: species differ per program, log-normal with sd
    ``species_program_sd`` (on top of the one sensitivity per drug).
  - ``interaction[c]``, the independent residual per (drug, context), normal with sd
    ``interaction_sd`` on the targeted programs and a third of it elsewhere: nothing is
    exact.
- A combination adds its drugs' shifts plus a synergy term scaled by the smaller of the two
  Hill factors and passed by the context's gains: on every program both drugs target,
  ``-synergy_shared * sign(e_a + e_b) * min(|e_a|, |e_b|)`` (two drugs on one program
  saturate it: sub-additive), plus chance, normal with sd ``interaction_sd``.
- A gene's log change is its loadings times the program shift, saturated smoothly at
  ``max_log_change`` (``c * tanh(x / c)``), and damped by its room to move in the context
  (see :func:`headroom`, ``headroom``, ``headroom_low``, ``headroom_high``): a gene barely
  expressed in an organ cannot fall much there, one near the top cannot rise much.

Every structured part draws from its own random stream (:func:`structure_rng`), so with them
all off (:meth:`~transferome.datasets.GenerativeParams.unstructured`) the atlas is exactly that
of transferome 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from transferome.data.schema import split_combination

if TYPE_CHECKING:
    from transferome.datasets._params import GenerativeParams

__all__ = [
    "EffectModel",
    "context_offsets",
    "draw_ancestral_offsets",
    "draw_effects",
    "headroom",
    "hill",
    "saturate",
    "structure_rng",
]


def hill(dose: float | np.ndarray, ec50: float, n: float) -> np.ndarray:
    """Fraction of the maximal effect reached at ``dose`` (0 at dose 0, 1/2 at ``ec50``)."""
    x = np.maximum(np.asarray(dose, dtype=float), 0.0)
    return x**n / (x**n + ec50**n)


def saturate(change: np.ndarray, limit: float) -> np.ndarray:
    """Smooth saturation of log changes at +-``limit``."""
    return limit * np.tanh(change / limit)


def structure_rng(seed: int) -> np.random.Generator:
    """Return the random stream of the structured context dependence, apart from the main one.

    Drawing the structured parts from their own stream leaves every draw of the main stream
    (``default_rng(seed)``) where it was, so switching them off reproduces the unstructured
    atlas exactly.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))


def headroom(
    eta: np.ndarray, strength: float, low: float, high: float
) -> tuple[np.ndarray, np.ndarray]:
    """How far each gene can fall and rise, from its log abundance in the context.

    ``eta`` is contexts x genes log abundance (any offset: it is taken relative to each
    context's median gene). A gene ``low`` log units below the median can fall half as far
    as one in the middle, one ``high`` above it can rise half as far: ``down = 1 - strength
    * sigmoid(-(z + low))`` and ``up = 1 - strength * sigmoid(z - high)`` with ``z = eta -
    median``. ``strength = 0`` gives ones (no dependence on the baseline).
    """
    if strength == 0:
        ones = np.ones_like(eta, dtype=float)
        return ones, ones
    z = eta - np.median(eta, axis=-1, keepdims=True)
    down = 1.0 - strength / (1.0 + np.exp(z + low))
    up = 1.0 - strength / (1.0 + np.exp(high - z))
    return down, up


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
    gain: dict[str, np.ndarray]  # species -> contexts x programs (ones: none)
    crosstalk: dict[str, np.ndarray] | None  # species -> contexts x programs x programs
    species_gain: np.ndarray  # species x programs (ones: none)
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
        gain = self.gain[species][c]
        total = np.zeros(n_programs)
        factors = []
        for drug in parts:
            d = self.drugs.index(drug)
            h = float(hill(dose, self.ec50[d], self.hill_n))
            factors.append(h)
            base = self.exposure[d, c] * self.drug_effect[d]
            if self.crosstalk is not None:
                base = base + self.crosstalk[species][c] @ base
            shift = gain * base + self.interaction[d, c]
            total += h * self.sensitivity[s, d] * (self.species_gain[s] * shift)
        if len(parts) > 1:
            for i, a in enumerate(parts):
                for b in parts[i + 1 :]:
                    total += min(factors) * (gain * self.synergy[(a, b)])
        return total


def draw_effects(
    rng: np.random.Generator,
    species: tuple[str, ...],
    contexts: tuple[str, ...],
    drugs: tuple[str, ...],
    pairs: tuple[tuple[str, str], ...],
    *,
    n_programs: int,
    params: GenerativeParams,
    combination_sep: str = "+",
    structure: np.random.Generator | None = None,
) -> EffectModel:
    """Draw context activities, drug effects, exposures, sensitivities and interactions.

    ``rng`` draws what the unstructured model draws, in its order; ``structure`` (default
    :func:`structure_rng` of 0) the structured parts.
    """
    structure = structure if structure is not None else structure_rng(0)
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
        cast(tuple[str, str], tuple(sorted(pair))): rng.normal(
            0.0, params.interaction_sd, size=n_programs
        )
        for pair in pairs
    }
    # The structured parts, from their own stream (drawn whatever their scale, so that one
    # scale changes nothing else).
    shared_exposure = structure.uniform(*params.exposure_range, size=n_ctx)
    for c, name in enumerate(contexts):
        if name.lower() == "brain":
            shared_exposure[c] *= params.brain_exposure
    if params.exposure_sharing > 0:
        w = params.exposure_sharing
        exposure = (1.0 - w) * exposure + w * shared_exposure[None, :]
    width = 1.0 / np.sqrt(n_programs)
    gain_map = structure.normal(0.0, width, size=(n_programs, n_programs))
    crosstalk_map = structure.normal(0.0, width, size=(n_programs, n_programs * n_programs))
    species_log_gain = structure.normal(0.0, 1.0, size=(len(species), n_programs))
    gain = {
        s: np.exp(params.gain_sd * np.tanh(activity[s] @ gain_map))
        if params.gain_sd > 0
        else np.ones((n_ctx, n_programs))
        for s in species
    }
    crosstalk = None
    if params.crosstalk_sd > 0:
        off_diagonal = 1.0 - np.eye(n_programs)
        crosstalk = {
            s: params.crosstalk_sd
            * np.tanh(activity[s] @ crosstalk_map).reshape(n_ctx, n_programs, n_programs)
            * off_diagonal
            for s in species
        }
    species_gain = np.exp(params.species_program_sd * species_log_gain)
    if params.synergy_shared > 0:
        index = {d: i for i, d in enumerate(drugs)}
        for (a, b), chance in synergy.items():
            ea, eb = effect[index[a]], effect[index[b]]
            both = (ea != 0) & (eb != 0)
            shared = np.sign(ea + eb) * np.minimum(np.abs(ea), np.abs(eb))
            synergy[(a, b)] = chance - params.synergy_shared * np.where(both, shared, 0.0)
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
        gain=gain,
        crosstalk=crosstalk,
        species_gain=species_gain,
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

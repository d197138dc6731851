"""The built-in simulated atlas: perturbation responses across organs and species.

:func:`simulate` generates, deterministically from a seed, the design of the Universal Gene
Embedding study (two species x 10 organs x control + 3 drugs, blood drawn over five days) or
a sci-Plex-like single-cell screen, with a known ground truth. What a model may see
(:attr:`SimulatedAtlas.adatas`, :attr:`SimulatedAtlas.orthologs`) is kept apart from the
truth (:attr:`SimulatedAtlas.truth`).

The generative model is described where it is implemented: genes and their evolution in
:mod:`transferome.datasets._genes`, contexts and drugs in :mod:`transferome.datasets._effects`,
designs and counts in :mod:`transferome.datasets._sampling`. Every rate and scale is a field
of :class:`GenerativeParams`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations as pairs_of
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.schema import split_combination
from transferome.data.species import MultiSpecies
from transferome.datasets._effects import (
    context_offsets,
    draw_ancestral_offsets,
    draw_effects,
    structure_rng,
)
from transferome.datasets._genes import evolve_genes, ortholog_tables
from transferome.datasets._params import GenerativeParams, as_params
from transferome.datasets._sampling import (
    bulk_design,
    expected_log_profile,
    gene_room,
    sample_counts,
    single_cell_design,
)
from transferome.errors import DataValidationError

__all__ = [
    "ORGANS",
    "QUICK",
    "GenerativeParams",
    "SimulatedAtlas",
    "SimulationTruth",
    "simulate",
]

ORGANS = (
    "brain",
    "heart",
    "kidney",
    "liver",
    "lung",
    "muscle",
    "pancreas",
    "spleen",
    "stomach",
    "thymus",
)
"""The ten organs of the UGE study (blood gives an eleventh context, ``PBMC``)."""

_BULK_DRUGS = ("tetracycline", "drug_a", "drug_b")
_CELL_LINES = ("A549", "K562", "MCF7")
_TARGET_CELLS = 1e4  # normalize_total target

QUICK: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "bulk": MappingProxyType({"n_genes": 300, "animals_per_group": 3}),
        "single_cell": MappingProxyType(
            {
                "n_genes": 300,
                "cells_per_group": 15,
                "drugs": ("drug_01", "drug_02", "drug_03", "drug_04"),
                "combinations": 2,
            }
        ),
    }
)
"""Keyword arguments of :func:`simulate` for a small, quick atlas (tests, ``--quick``)."""


@dataclass(frozen=True)
class SimulationTruth:
    """What generated the data; never given to a model.

    Attributes
    ----------
    means
        Per species, one row per (species, context, perturbation, dose) group: ``X`` holds the
        noise-free mean log-normalised profile (``log1p(1e4 * expected proportion)``), the
        layer ``"change"`` the difference to the control of the same context; obs ``n_obs``
        is the number of observations of the group. :meth:`profiles` pools the doses.
    correspondence
        Every true ortholog pair between two species with ``functional_similarity`` (cosine
        of the program loadings), ``diverged`` (function redrawn, sequence kept),
        ``homology_type``, ``sequence_identity`` and ``in_ortholog_table``.
    loadings
        Per species, genes x programs loadings.
    program_effects
        Tidy table of the program shift of every perturbed group (``species, context,
        perturbation, dose, program, shift``).
    drugs
        Per drug: ``ec50`` and the base effect on each program; per species sensitivity.
    exposure
        Drugs x contexts exposure.
    """

    means: MappingProxyType
    correspondence: pd.DataFrame
    loadings: MappingProxyType
    program_effects: pd.DataFrame
    drugs: pd.DataFrame
    exposure: pd.DataFrame

    def profiles(
        self,
        species: str,
        groups: Sequence[tuple[str, str]] | None = None,
        *,
        context_key: str = "context",
        perturbation_key: str = "perturbation",
    ) -> AnnData:
        """Noise-free mean profile of each (context, perturbation) group of ``species``.

        The group's doses are pooled as its observations are (weighted by their number), so
        a row is what the mean of the group's observations tends to with infinite data: the
        best prediction any model could make, the simulator's ceiling.

        Parameters
        ----------
        species
            One of the simulated species.
        groups
            ``(context, perturbation)`` pairs (default: every group, controls included).
        context_key, perturbation_key
            obs names of the rows' labels (those of the data's schema).

        Returns
        -------
        AnnData
            One row per group: ``X`` the profile, ``layers["change"]`` its difference to the
            context's noise-free control.
        """
        if species not in self.means:
            raise DataValidationError(
                f"species {species!r} is not simulated; the truth has {list(self.means)}"
            )
        means = self.means[species]
        obs = means.obs
        pairs = list(zip(obs["context"].astype(str), obs["perturbation"].astype(str), strict=True))
        wanted = (
            list(dict.fromkeys(pairs)) if groups is None else [(str(c), str(p)) for c, p in groups]
        )
        missing = [g for g in wanted if g not in set(pairs)]
        if missing:
            raise DataValidationError(
                f"groups {missing[:5]} are not in the simulated truth of {species!r}"
            )
        codes = pd.Series(range(len(wanted)), index=pd.MultiIndex.from_tuples(wanted))
        rows = np.array([codes.get(pair, -1) for pair in pairs])
        weight = obs["n_obs"].to_numpy(dtype=np.float64) * (rows >= 0)
        pool = np.zeros((len(wanted), len(pairs)))
        pool[rows[rows >= 0], np.flatnonzero(rows >= 0)] = weight[rows >= 0]
        pool /= pool.sum(axis=1, keepdims=True)
        profile = pool @ np.asarray(means.X, dtype=np.float64)
        change = pool @ np.asarray(means.layers["change"], dtype=np.float64)
        frame = pd.DataFrame(
            {context_key: [c for c, _ in wanted], perturbation_key: [p for _, p in wanted]},
            index=[f"{c}|{p}" for c, p in wanted],
        )
        return AnnData(
            X=profile.astype(np.float32),
            obs=frame,
            var=pd.DataFrame(index=means.var_names.copy()),
            layers={"change": change.astype(np.float32)},
        )


@dataclass(frozen=True)
class SimulatedAtlas:
    """A simulated dataset: one AnnData per species, the ortholog table, and the truth.

    Attributes
    ----------
    adatas
        Species -> AnnData; ``X`` log-normalised (normalize_total 1e4 + log1p), raw counts in
        ``layers["counts"]`` (sparse CSR), obs ``species, context, perturbation, dose,
        sample, day, batch`` (bulk adds ``treatment_group``, the animal's assigned condition).
    orthologs
        ``source_species, source_gene, target_species, target_gene, sequence_identity,
        homology_type``, as a user would download it (incomplete and sometimes wrong about
        function).
    truth
        :class:`SimulationTruth`.
    mode
        ``"bulk"`` or ``"single_cell"``.
    seed
        The seed it was generated from.
    """

    adatas: MappingProxyType
    orthologs: pd.DataFrame
    truth: SimulationTruth = field(repr=False)
    mode: str
    seed: int

    @property
    def species(self) -> tuple[str, ...]:
        """The simulated species, in order."""
        return tuple(self.adatas)

    @property
    def multi_species(self) -> MultiSpecies:
        """The data of every species with the ortholog table."""
        return MultiSpecies(self.adatas, self.orthologs)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{s}: {a.n_obs} x {a.n_vars}" for s, a in self.adatas.items())
        return f"SimulatedAtlas(mode={self.mode!r}, seed={self.seed}, {shapes})"


def _sorted_pair(pair: Sequence[str]) -> tuple[str, str]:
    first, second = sorted(pair)
    return first, second


def _labels(values, what: str) -> tuple[str, ...]:
    out = tuple(str(v) for v in values)
    if not out or len(set(out)) != len(out) or any(not v.strip() for v in out):
        raise DataValidationError(f"{what} must be non-empty, unique labels; got {list(out)}")
    return out


def _conditions(
    drugs: tuple[str, ...], doses: tuple[float, ...], combos: tuple[str, ...], control: str
) -> list[tuple[str, float]]:
    return [(control, 0.0)] + [(p, float(d)) for p in drugs + combos for d in doses]


def _combinations(
    drugs: tuple[str, ...], combinations: int | tuple[str, ...] | None, sep: str
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    if combinations is None or combinations == 0:
        return (), ()
    if isinstance(combinations, int):
        all_pairs = list(pairs_of(drugs, 2))
        if combinations > len(all_pairs):
            raise DataValidationError(
                f"combinations={combinations} but {len(drugs)} drugs give {len(all_pairs)} pairs"
            )
        chosen = all_pairs[:: max(1, len(all_pairs) // combinations)][:combinations]
        return tuple(sep.join(p) for p in chosen), tuple(_sorted_pair(p) for p in chosen)
    labels = _labels(combinations, "combinations")
    pairs: list[tuple[str, str]] = []
    for label in labels:
        parts = split_combination(label, sep)
        if len(parts) != 2 or any(p not in drugs for p in parts):
            raise DataValidationError(
                f"combination {label!r} must join two of the drugs {list(drugs)} with {sep!r}"
            )
        pairs.append((parts[0], parts[1]))
    return labels, tuple(pairs)


def simulate(  # noqa: PLR0913 - the mode, then the design of the atlas, keyword-only
    mode: Literal["bulk", "single_cell"] = "bulk",
    *,
    seed: int = 0,
    species: tuple[str, ...] | None = None,
    contexts: tuple[str, ...] | None = None,
    drugs: tuple[str, ...] | None = None,
    doses: tuple[float, ...] | None = None,
    combinations: int | tuple[str, ...] | None = None,
    n_genes: int = 2000,
    n_programs: int = 8,
    animals_per_group: int = 10,
    blood_days: tuple[int, ...] = (1, 2, 3, 4, 5),
    dosing_day: int = 3,
    cells_per_group: int = 60,
    control_multiplier: int = 3,
    n_batches: int = 4,
    params: GenerativeParams | Mapping[str, Any] | str | None = None,
) -> SimulatedAtlas:
    """Generate a simulated perturbation atlas with a known ground truth.

    Parameters
    ----------
    mode
        ``"bulk"``: the UGE design, ``animals_per_group`` animals per condition, ``contexts``
        organs collected at necropsy plus blood (``PBMC``) drawn on ``blood_days`` with dosing
        after ``dosing_day``. ``"single_cell"``: ``contexts`` cell lines x (control +
        ``drugs`` x ``doses`` + combinations), ``cells_per_group`` cells per group.
    seed
        Seed of the only random generator used (``np.random.default_rng(seed)``).
    species
        Default ``("mouse", "rat")`` (bulk) or ``("human",)`` (single cell).
    contexts
        Organs (default :data:`ORGANS`) or cell lines (default ``A549, K562, MCF7``).
    drugs
        Default ``tetracycline, drug_a, drug_b`` (bulk) or ``drug_01`` ... ``drug_12``.
    doses
        Doses of every drug, in units of the EC50 scale (EC50s are drawn log-uniform in
        ``params.ec50_range``). Default ``(10.0,)`` (bulk) or ``(0.1, 1.0, 10.0)``.
    combinations
        Number of drug pairs to add as combinations (``drug_a+drug_b``), or their labels.
        Default none (bulk) or 3 (single cell).
    n_genes
        Approximate number of genes per species; the ancestral gene count is chosen so that
        after loss, duplication and species-specific genes each species has about this many.
    n_programs
        Number of latent gene programs.
    animals_per_group, blood_days, dosing_day
        Bulk design. Defaults give 40 animals, 400 organ samples and 200 blood samples per
        species.
    cells_per_group, control_multiplier
        Single-cell design; controls get ``control_multiplier`` times more cells.
    n_batches
        Processing batches (bulk) or plates (single cell).
    params
        Rates and scales of the model: a :class:`GenerativeParams`, a mapping of its fields
        (the rest at their defaults; what a configuration file gives), or ``"unstructured"``
        for :meth:`GenerativeParams.unstructured` (the atlas of transferome 0.1).

    Returns
    -------
    SimulatedAtlas
        The data per species, the ortholog table, and the truth (kept separately).
    """
    if mode not in ("bulk", "single_cell"):
        raise DataValidationError(f"mode must be 'bulk' or 'single_cell', got {mode!r}")
    params = as_params(params)
    bulk = mode == "bulk"
    species = _labels(species or (("mouse", "rat") if bulk else ("human",)), "species")
    contexts = _labels(contexts or (ORGANS if bulk else _CELL_LINES), "contexts")
    default_drugs = _BULK_DRUGS if bulk else tuple(f"drug_{i:02d}" for i in range(1, 13))
    drugs = _labels(drugs or default_drugs, "drugs")
    if any("+" in d or d == "control" for d in drugs):
        raise DataValidationError(f"drug names may not contain '+' or be 'control': {drugs}")
    doses = tuple(float(d) for d in (doses or ((10.0,) if bulk else (0.1, 1.0, 10.0))))
    if not doses or any(not np.isfinite(d) or d <= 0 for d in doses):
        raise DataValidationError(f"doses must be positive numbers, got {doses}")
    combos, pairs = _combinations(
        drugs, combinations if combinations is not None else (0 if bulk else 3), "+"
    )
    for name, value in (("n_genes", n_genes), ("n_programs", n_programs)):
        if value < 2:
            raise DataValidationError(f"{name} must be >= 2, got {value}")
    if (bulk and animals_per_group < 1) or (not bulk and cells_per_group < 1):
        raise DataValidationError("animals_per_group and cells_per_group must be >= 1")

    rng = np.random.default_rng(seed)
    structure = structure_rng(seed)
    growth = (1 - params.p_loss) * (1 + params.p_duplication) + params.p_specific
    n_ancestral = max(2, round(n_genes / growth))
    _, genes, identity = evolve_genes(
        rng, species, n_ancestral, n_programs, params, structure=structure
    )
    orthologs, correspondence = ortholog_tables(rng, genes, identity, params)
    all_contexts = (*contexts, "PBMC") if bulk and blood_days else contexts
    effects = draw_effects(
        rng,
        species,
        all_contexts,
        drugs,
        pairs,
        n_programs=n_programs,
        params=params,
        structure=structure,
    )
    ancestral_offsets = draw_ancestral_offsets(rng, len(all_contexts), n_ancestral, params)
    conditions = _conditions(drugs, doses, combos, "control")

    adatas, means, loadings, program_rows = {}, {}, {}, []
    programs = [f"program_{k + 1}" for k in range(n_programs)]
    for s in species:
        g = genes[s]
        offsets = context_offsets(rng, g.ancestor, ancestral_offsets, params)
        if bulk:
            obs = bulk_design(
                s,
                contexts,
                conditions,
                animals_per_group=animals_per_group,
                blood_days=tuple(blood_days),
                dosing_day=dosing_day,
                n_batches=n_batches,
                rng=rng,
            )
        else:
            obs = single_cell_design(
                s,
                contexts,
                conditions,
                cells_per_group=cells_per_group,
                control_multiplier=control_multiplier,
                wells_per_group=2,
                n_batches=n_batches,
            )
        counts = sample_counts(rng, obs, g, effects, offsets, params=params, single_cell=not bulk)
        adatas[s] = _to_adata(obs, counts, g.names, s, dense_x=bulk, mode=mode, seed=seed)
        means[s] = _truth_means(obs, g, effects, offsets, params)
        loadings[s] = pd.DataFrame(g.loadings, index=g.names.astype(str), columns=programs)
        groups = means[s].obs
        for _, row in groups[groups.perturbation != "control"].iterrows():
            shift = effects.program_shift(s, row.context, row.perturbation, row.dose)
            for k, value in enumerate(shift):
                program_rows.append(
                    (s, row.context, row.perturbation, row.dose, programs[k], value)
                )

    drug_table = pd.DataFrame(effects.drug_effect, index=list(drugs), columns=programs)
    drug_table.insert(0, "ec50", effects.ec50)
    for i, s in enumerate(species):
        drug_table[f"sensitivity_{s}"] = effects.sensitivity[i]
    truth = SimulationTruth(
        means=MappingProxyType(means),
        correspondence=correspondence,
        loadings=MappingProxyType(loadings),
        program_effects=pd.DataFrame(
            program_rows,
            columns=["species", "context", "perturbation", "dose", "program", "shift"],
        ),
        drugs=drug_table,
        exposure=pd.DataFrame(effects.exposure, index=list(drugs), columns=list(all_contexts)),
    )
    return SimulatedAtlas(
        adatas=MappingProxyType(adatas), orthologs=orthologs, truth=truth, mode=mode, seed=seed
    )


def _to_adata(obs, counts, names, species, *, dense_x: bool, mode: str, seed: int) -> AnnData:
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(_TARGET_CELLS, totals, out=np.zeros_like(totals), where=totals > 0)
    logged = counts.multiply(scale[:, None]).tocsr()
    logged.data = np.log1p(logged.data).astype(np.float32)
    obs = obs.copy()
    obs.index = [f"{species}-s{i + 1:05d}" for i in range(len(obs))]
    for column in ("species", "context", "perturbation", "sample", "batch"):
        obs[column] = obs[column].astype("category")
    if "treatment_group" in obs:
        obs["treatment_group"] = obs["treatment_group"].astype("category")
    adata = AnnData(
        X=logged.toarray() if dense_x else logged,
        obs=obs,
        var=pd.DataFrame(index=pd.Index(names.astype(str))),
        layers={"counts": counts},
    )
    adata.uns["transferome"] = {"simulated": True, "mode": mode, "seed": seed, "species": species}
    return adata


def _truth_means(obs: pd.DataFrame, genes, effects, offsets, params) -> AnnData:
    key = ["species", "context", "perturbation", "dose"]
    groups = (
        obs.groupby(key, sort=False, observed=True)
        .size()
        .rename("n_obs")
        .reset_index()
        .sort_values(["context", "perturbation", "dose"])
        .reset_index(drop=True)
    )
    room = gene_room(genes, effects, offsets, params) if params.headroom > 0 else None
    profiles = np.stack(
        [
            expected_log_profile(
                genes, effects, offsets, r.context, r.perturbation, dose=r.dose, room=room
            )
            for r in groups.itertuples()
        ]
    )
    control = {
        r.context: profiles[i]
        for i, r in enumerate(groups.itertuples())
        if r.perturbation == "control"
    }
    change = profiles - np.stack([control[c] for c in groups["context"]])
    groups.index = [f"{r.context}|{r.perturbation}|{r.dose:g}" for r in groups.itertuples()]
    for column in ("species", "context", "perturbation"):
        groups[column] = groups[column].astype("category")
    return AnnData(
        X=profiles.astype(np.float32),
        obs=groups,
        var=pd.DataFrame(index=pd.Index(genes.names.astype(str))),
        layers={"change": change.astype(np.float32)},
    )

"""Genes of the simulator: programs, ancestral genes and their evolution in each species.

The model, with the parameters of :class:`~transferome.datasets.GenerativeParams` in
brackets:

- ``K`` latent gene programs (``n_programs``). An ancestral gene loads on 0 to 3 of them
  (probabilities ``program_count_probs``) with signed weights of magnitude uniform in
  ``loading_range``; a gene with no loading is only moved by organs through its own
  tissue-specific offsets and never by a drug.
- Each ancestral gene has a baseline log abundance drawn normal with sd ``baseline_sd``.
- In every species independently: a gene is lost with probability ``p_loss``, duplicated
  with probability ``p_duplication`` (the copy keeps the loadings plus normal noise of sd
  ``duplicate_drift`` and half the abundance), and ``p_specific`` x the ancestral count of
  species-specific genes with their own loadings are added. Every species' loadings drift
  from the ancestor by normal noise of sd ``species_drift`` on the non-zero entries.
- A fraction ``p_diverged`` of the genes that stay one-to-one between the first species and
  another has its loadings redrawn in that other species: the gene keeps its high sequence
  identity but not its function, so the ortholog table is wrong about it. With
  ``diverged_disjoint`` the new loadings avoid every program of the old ones, so the gene
  responds to other programs than its sequence partner (otherwise they may share some by
  chance).
- The ortholog table a user would download lists every pair of copies of an ancestral gene
  present in two species, with sequence identity ``0.7 + 0.28 * Beta(4, 2)`` (lower between
  duplicated copies) and the homology type (one2one, one2many, many2many); a fraction
  ``p_unannotated`` of true ortholog pairs is missing from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from transferome.datasets._params import GenerativeParams

__all__ = ["SpeciesGenes", "draw_loadings", "evolve_genes", "ortholog_tables"]


@dataclass(frozen=True)
class SpeciesGenes:
    """The genes of one species (arrays aligned with ``names``)."""

    species: str
    names: np.ndarray
    ancestor: np.ndarray  # index of the ancestral gene, -1 for species-specific genes
    loadings: np.ndarray  # genes x programs
    baseline: np.ndarray  # log abundance before organ and drug effects
    diverged: np.ndarray  # loadings redrawn in this species (function lost, sequence kept)

    @property
    def n_genes(self) -> int:
        return len(self.names)


def draw_loadings(
    rng: np.random.Generator, n: int, n_programs: int, params: GenerativeParams
) -> np.ndarray:
    """Sparse signed program loadings of ``n`` genes (``n x n_programs``)."""
    probs = np.asarray(params.program_count_probs, dtype=float)
    counts = rng.choice(len(probs), size=n, p=probs / probs.sum())
    counts = np.minimum(counts, n_programs)
    low, high = params.loading_range
    loadings = np.zeros((n, n_programs))
    for i, m in enumerate(counts):
        if m == 0:
            continue
        programs = rng.choice(n_programs, size=m, replace=False)
        loadings[i, programs] = rng.choice([-1.0, 1.0], size=m) * rng.uniform(low, high, size=m)
    return loadings


def _redraw_nonempty(
    rng: np.random.Generator, n_programs: int, params: GenerativeParams
) -> np.ndarray:
    row = np.zeros(n_programs)
    while not row.any():
        row = draw_loadings(rng, 1, n_programs, params)[0]
    return row


def _drift(rng: np.random.Generator, loadings: np.ndarray, sd: float) -> np.ndarray:
    return loadings + (loadings != 0) * rng.normal(0.0, sd, size=loadings.shape)


def _away_from(rng: np.random.Generator, row: np.ndarray, old: np.ndarray) -> np.ndarray:
    """``row`` with each loading on a program of ``old`` moved to a program of neither."""
    taken = old != 0
    clash = np.flatnonzero((row != 0) & taken)
    if not len(clash):
        return row
    free = np.flatnonzero(~taken & (row == 0))
    out = row.copy()
    moved = rng.choice(free, size=min(len(clash), len(free)), replace=False)
    out[moved] = row[clash[: len(moved)]]
    out[clash] = 0.0
    if not out.any():  # no program left free: keep the redraw as it was
        return row
    return out


def evolve_genes(
    rng: np.random.Generator,
    species: tuple[str, ...],
    n_ancestral: int,
    n_programs: int,
    params: GenerativeParams,
    *,
    structure: np.random.Generator | None = None,
) -> tuple[np.ndarray, dict[str, SpeciesGenes], np.ndarray]:
    """Draw the ancestral genes and evolve them into each species.

    ``structure`` draws the programs a diverged gene moves to (``diverged_disjoint``), apart
    from ``rng``, which draws what the unstructured model draws.

    Returns
    -------
    ancestral_loadings
        ``n_ancestral x n_programs``.
    genes
        :class:`SpeciesGenes` of each species.
    identity
        Sequence identity of each ancestral gene between species (``n_ancestral``).
    """
    ancestral = draw_loadings(rng, n_ancestral, n_programs, params)
    ancestral_baseline = rng.normal(0.0, params.baseline_sd, size=n_ancestral)
    identity = 0.7 + 0.28 * rng.beta(4.0, 2.0, size=n_ancestral)

    kept = {s: rng.random(n_ancestral) >= params.p_loss for s in species}
    duplicated = {s: kept[s] & (rng.random(n_ancestral) < params.p_duplication) for s in species}
    # Divergence: among genes one-to-one between the first species and another one.
    diverged_in = {s: np.zeros(n_ancestral, dtype=bool) for s in species}
    first = species[0]
    for other in species[1:]:
        one2one = (
            kept[first]
            & kept[other]
            & ~duplicated[first]
            & ~duplicated[other]
            & ancestral.any(axis=1)
            & ~np.any([diverged_in[s] for s in species], axis=0)
        )
        candidates = np.flatnonzero(one2one)
        n_div = round(params.p_diverged * len(candidates))
        diverged_in[other][rng.choice(candidates, size=n_div, replace=False)] = True

    genes: dict[str, SpeciesGenes] = {}
    n_specific = round(params.p_specific * n_ancestral)
    for s in species:
        rows: list[np.ndarray] = []
        ancestor: list[int] = []
        baseline: list[float] = []
        diverged: list[bool] = []
        own = _drift(rng, ancestral, params.species_drift)
        own_baseline = ancestral_baseline + rng.normal(0.0, params.baseline_species_sd, n_ancestral)
        for g in np.flatnonzero(kept[s]):
            row = own[g]
            if diverged_in[s][g]:
                old = row
                row = _redraw_nonempty(rng, n_programs, params)
                if params.diverged_disjoint and structure is not None:
                    row = _away_from(structure, row, old)
            if duplicated[s][g]:
                copy = _drift(rng, row[None, :], params.duplicate_drift)[0]
                for r in (row, copy):
                    rows.append(r)
                    ancestor.append(int(g))
                    baseline.append(own_baseline[g] - np.log(2.0) + rng.normal(0.0, 0.3))
                    diverged.append(False)
            else:
                rows.append(row)
                ancestor.append(int(g))
                baseline.append(own_baseline[g])
                diverged.append(bool(diverged_in[s][g]))
        specific = draw_loadings(rng, n_specific, n_programs, params)
        rows.extend(specific)
        ancestor.extend([-1] * n_specific)
        baseline.extend(rng.normal(0.0, params.baseline_sd, size=n_specific))
        diverged.extend([False] * n_specific)
        # Shuffle so that gene order and names carry no information about orthology.
        order = rng.permutation(len(rows))
        width = max(5, len(str(len(rows))))
        genes[s] = SpeciesGenes(
            species=s,
            names=np.array([f"{s}-g{i:0{width}d}" for i in range(len(rows))], dtype=object),
            ancestor=np.asarray(ancestor, dtype=int)[order],
            loadings=np.asarray(rows, dtype=float)[order],
            baseline=np.asarray(baseline, dtype=float)[order],
            diverged=np.asarray(diverged, dtype=bool)[order],
        )
    return ancestral, genes, identity


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    denom = na * nb
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.einsum("ij,ij->i", a, b) / denom
    # Two genes that load on no program are both drug-insensitive: functionally equal.
    both_empty = (na == 0) & (nb == 0)
    return np.where(both_empty, 1.0, np.where(denom == 0, 0.0, cos))


def ortholog_tables(
    rng: np.random.Generator,
    genes: dict[str, SpeciesGenes],
    identity: np.ndarray,
    params: GenerativeParams,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw the ortholog table a user would download, and the true gene correspondence.

    Returns
    -------
    orthologs
        ``source_species, source_gene, target_species, target_gene, sequence_identity,
        homology_type``: one row per annotated pair of copies of an ancestral gene.
    correspondence
        Every true ortholog pair with ``functional_similarity`` (cosine of the program
        loadings), ``diverged``, ``in_ortholog_table`` and the ``ancestral_gene`` index.
    """
    frames = []
    for a, b in combinations(list(genes), 2):
        ga, gb = genes[a], genes[b]
        ia = pd.DataFrame({"ia": np.arange(ga.n_genes), "anc": ga.ancestor})
        ib = pd.DataFrame({"ib": np.arange(gb.n_genes), "anc": gb.ancestor})
        ia, ib = ia[ia.anc >= 0], ib[ib.anc >= 0]
        pairs = ia.merge(ib, on="anc")
        na = pairs.groupby("anc")["ia"].transform("nunique").to_numpy()
        nb = pairs.groupby("anc")["ib"].transform("nunique").to_numpy()
        homology = np.where(
            (na == 1) & (nb == 1),
            "one2one",
            np.where((na > 1) & (nb > 1), "many2many", "one2many"),
        )
        seq = identity[pairs.anc.to_numpy()] * np.where(
            (na > 1) | (nb > 1), rng.uniform(0.85, 1.0, size=len(pairs)), 1.0
        )
        ra, rb = pairs.ia.to_numpy(), pairs.ib.to_numpy()
        frames.append(
            pd.DataFrame(
                {
                    "source_species": a,
                    "source_gene": ga.names[ra].astype(str),
                    "target_species": b,
                    "target_gene": gb.names[rb].astype(str),
                    "sequence_identity": np.round(seq, 4),
                    "homology_type": homology,
                    "ancestral_gene": pairs.anc.to_numpy(),
                    "functional_similarity": _cosine(ga.loadings[ra], gb.loadings[rb]),
                    "diverged": ga.diverged[ra] | gb.diverged[rb],
                    "in_ortholog_table": rng.random(len(pairs)) >= params.p_unannotated,
                }
            )
        )
    public = ["source_species", "source_gene", "target_species", "target_gene"]
    public += ["sequence_identity", "homology_type"]
    if not frames:  # one species: no pairs
        columns = [*public, "ancestral_gene", "functional_similarity", "diverged"]
        correspondence = pd.DataFrame(columns=[*columns, "in_ortholog_table"])
        return correspondence[public], correspondence
    correspondence = pd.concat(frames, ignore_index=True)
    orthologs = correspondence.loc[correspondence.in_ortholog_table, public]
    return orthologs.reset_index(drop=True), correspondence

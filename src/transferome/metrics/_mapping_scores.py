"""Scoring a gene mapping against a known answer: precision@k, MRR, calibration of confidences."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from transferome.errors import DataValidationError
from transferome.metrics._mapping import mapping_metrics

__all__ = [
    "evaluate_mapping",
    "expected_calibration_error",
    "ranked_candidates",
    "reliability_table",
    "simulation_truth",
    "true_reactome",
]


def _check_truth(truth: pd.DataFrame) -> None:
    missing = {"target_gene", "source_gene"} - set(truth.columns)
    if missing:
        raise DataValidationError(
            f"the truth table needs columns 'target_gene' and 'source_gene'; missing "
            f"{sorted(missing)}"
        )


def ranked_candidates(mapping: pd.DataFrame) -> dict[str, list[str]]:
    """Each target gene's source candidates, best first (empty for genes without partner)."""
    ranked: dict[str, list[str]] = {str(g): [] for g in mapping["target_gene"].unique()}
    found = mapping[mapping["source_gene"].notna()].sort_values(
        ["target_gene", "rank"], kind="stable"
    )
    for target, group in found.groupby("target_gene", sort=False):
        ranked[str(target)] = group["source_gene"].astype(str).tolist()
    return ranked


def evaluate_mapping(
    mapping: pd.DataFrame, truth: pd.DataFrame, *, group_column: str | None = "ortholog_class"
) -> pd.DataFrame:
    """Precision@1, precision@5 and MRR of a mapping, overall and per group of target genes.

    Parameters
    ----------
    mapping
        What :func:`~transferome.crossspecies.map_genes` returns.
    truth
        Columns ``target_gene`` and ``source_gene`` (one row per true pair: a target with
        several true partners is a hit when any of them is ranked), optionally a group column.
        Target genes absent from ``truth`` are not scored; target genes in ``truth`` but absent
        from ``mapping`` count as misses.
    group_column
        Column of ``truth`` that splits the scores (e.g. the ortholog class); ignored when
        absent.

    Returns
    -------
    pandas.DataFrame
        One row per group (``all`` first): ``group``, ``n_genes``, ``precision_at_1``,
        ``precision_at_5``, ``mrr``.
    """
    _check_truth(truth)
    ranked = ranked_candidates(mapping)
    for gene in truth["target_gene"].astype(str).unique():
        ranked.setdefault(gene, [])
    pairs = truth[["target_gene", "source_gene"]].astype(str)
    groups: list[tuple[str, pd.DataFrame]] = [("all", pairs)]
    if group_column is not None and group_column in truth.columns:
        for name, part in truth.groupby(group_column, sort=True, observed=True):
            groups.append((str(name), part[["target_gene", "source_gene"]].astype(str)))
    rows: list[dict[str, Any]] = []
    for name, part in groups:
        genes = set(part["target_gene"])
        subset = {g: ranked[g] for g in genes}
        rows.append({"group": name, "n_genes": len(genes), **mapping_metrics(subset, part)})
    return pd.DataFrame(rows)


def reliability_table(mapping: pd.DataFrame, truth: pd.DataFrame, n_bins: int = 10) -> pd.DataFrame:
    """Confidence of each target's rank-1 candidate against how often it is right, in bins.

    Only target genes present in ``truth`` with a candidate are used. Returns one row per
    non-empty bin: ``bin_low``, ``bin_high``, ``n``, ``mean_confidence``, ``accuracy``.
    """
    _check_truth(truth)
    if n_bins < 1:
        raise DataValidationError(f"n_bins must be at least 1, got {n_bins}")
    true_pairs = set(truth[["target_gene", "source_gene"]].astype(str).itertuples(index=False))
    scored = set(truth["target_gene"].astype(str))
    top = mapping[(mapping["rank"] == 1) & mapping["source_gene"].notna()]
    top = top[top["target_gene"].astype(str).isin(scored)]
    correct = np.array(
        [
            (str(t), str(s)) in true_pairs
            for t, s in zip(top["target_gene"], top["source_gene"], strict=True)
        ],
        dtype=float,
    )
    confidence = top["confidence"].to_numpy(dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        inside = which == b
        if inside.any():
            rows.append(
                {
                    "bin_low": edges[b],
                    "bin_high": edges[b + 1],
                    "n": int(inside.sum()),
                    "mean_confidence": float(confidence[inside].mean()),
                    "accuracy": float(correct[inside].mean()),
                }
            )
    return pd.DataFrame(rows, columns=["bin_low", "bin_high", "n", "mean_confidence", "accuracy"])


def expected_calibration_error(table: pd.DataFrame) -> float:
    """Count-weighted mean of ``|accuracy - mean_confidence|`` over a reliability table."""
    n = table["n"].to_numpy(dtype=float)
    if n.sum() == 0:
        return float("nan")
    gap = np.abs(table["accuracy"].to_numpy() - table["mean_confidence"].to_numpy())
    return float((gap * n).sum() / n.sum())


def true_reactome(atlas: Any, species: str) -> pd.DataFrame:
    """Noise-free reactome (genes x (context, perturbation)) of a simulated atlas' species."""
    means = atlas.truth.means[species]
    perturbed = means[means.obs["perturbation"].astype(str) != "control"]
    columns = pd.MultiIndex.from_arrays(
        [perturbed.obs["context"].astype(str), perturbed.obs["perturbation"].astype(str)]
    )
    return pd.DataFrame(
        np.asarray(perturbed.layers["change"]).T, index=perturbed.var_names, columns=columns
    )


def simulation_truth(
    atlas: Any, source: str, target: str, *, tolerance: float = 0.01
) -> pd.DataFrame:
    """Return the functional answer of a simulated atlas, and each target gene's ortholog class.

    Non-diverged orthologs are their own answer (class ``one-to-one`` or ``many-to-many``).
    A target gene whose function diverged (sequence kept) has as answer the source genes whose
    noise-free reactome correlates best with its own (within ``tolerance`` of the best
    Pearson correlation), class ``diverged``. Genes without an ortholog are not scored.

    Parameters
    ----------
    atlas
        A :class:`~transferome.datasets.SimulatedAtlas`.
    source, target
        Species names.
    tolerance
        A diverged gene's answer holds every source gene within this of the best Pearson
        correlation.
    """
    corr = atlas.truth.correspondence
    pairs = corr[(corr["source_species"] == source) & (corr["target_species"] == target)]
    if pairs.empty:
        flipped = corr[(corr["source_species"] == target) & (corr["target_species"] == source)]
        pairs = flipped.rename(
            columns={
                "source_gene": "target_gene",
                "target_gene": "source_gene",
                "source_species": "target_species",
                "target_species": "source_species",
            }
        )
    if pairs.empty:
        raise DataValidationError(f"the atlas has no ortholog pairs between {source} and {target}")
    kept = pairs[~pairs["diverged"].astype(bool)]
    rows = pd.DataFrame(
        {
            "target_gene": kept["target_gene"].astype(str),
            "source_gene": kept["source_gene"].astype(str),
            "ortholog_class": np.where(
                kept["homology_type"].astype(str) == "one2one", "one-to-one", "many-to-many"
            ),
        }
    )
    diverged = pairs.loc[pairs["diverged"].astype(bool), "target_gene"].astype(str).unique()
    parts = [rows]
    if len(diverged):
        s_true = true_reactome(atlas, source)
        t_true = true_reactome(atlas, target).loc[list(diverged), s_true.columns]
        s_z = s_true.sub(s_true.mean(axis=1), axis=0)
        s_z = s_z.div(np.linalg.norm(s_z, axis=1) + 1e-12, axis=0)
        t_z = t_true.sub(t_true.mean(axis=1), axis=0)
        t_z = t_z.div(np.linalg.norm(t_z, axis=1) + 1e-12, axis=0)
        corr_matrix = t_z.to_numpy() @ s_z.to_numpy().T
        for i, gene in enumerate(t_true.index):
            close = np.flatnonzero(corr_matrix[i] >= corr_matrix[i].max() - tolerance)
            parts.append(
                pd.DataFrame(
                    {
                        "target_gene": gene,
                        "source_gene": s_true.index[close].astype(str),
                        "ortholog_class": "diverged",
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)

"""The change tensor the source-weighting models learn from.

For every context ``c`` with controls and every perturbation ``p`` measured there, the change
``values[c, p]`` is the group's mean profile minus the context's control mean, gene by gene
(NaN for a gene nobody in the group measured, and for a pair never measured). Data of another
species are carried onto the target genes through a gene map and join as extra contexts named
``"<species>:<context>"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.aggregate import group_means
from transferome.data.schema import Schema, obs_labels
from transferome.errors import DataValidationError

__all__ = ["ChangeTensor", "change_tensor", "mapping_matrix"]


@dataclass(frozen=True)
class ChangeTensor:
    """Measured changes of a dataset.

    Attributes
    ----------
    contexts, perturbations
        Labels of the first two axes (sorted; contexts of a source species come last).
    values
        ``(contexts, perturbations, genes)`` changes against the context's control; NaN
        where not measured.
    measured
        ``(contexts, perturbations)``: the pair was measured.
    controls
        ``(contexts, genes)`` control mean of each context (NaN for genes a source species
        cannot map).
    """

    contexts: tuple[str, ...]
    perturbations: tuple[str, ...]
    values: np.ndarray
    measured: np.ndarray
    controls: np.ndarray

    @property
    def n_genes(self) -> int:
        return int(self.values.shape[2])

    def context_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.contexts)}

    def perturbation_index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.perturbations)}

    def merged(self, other: ChangeTensor) -> ChangeTensor:
        """Return this tensor with ``other``'s contexts appended (perturbations united)."""
        perturbations = tuple(sorted(set(self.perturbations) | set(other.perturbations)))
        contexts = self.contexts + tuple(c for c in other.contexts if c not in self.contexts)
        values = np.full((len(contexts), len(perturbations), self.n_genes), np.nan)
        measured = np.zeros((len(contexts), len(perturbations)), dtype=bool)
        controls = np.full((len(contexts), self.n_genes), np.nan)
        c_pos = {c: i for i, c in enumerate(contexts)}
        p_pos = {p: i for i, p in enumerate(perturbations)}
        for part in (self, other):
            rows = [c_pos[c] for c in part.contexts]
            cols = [p_pos[p] for p in part.perturbations]
            values[np.ix_(rows, cols)] = part.values
            measured[np.ix_(rows, cols)] = part.measured
            controls[rows] = part.controls
        return ChangeTensor(contexts, perturbations, values, measured, controls)


def change_tensor(adata: AnnData, *, schema: Schema) -> ChangeTensor:
    """Compute the changes of every perturbed group whose context has controls.

    Raises
    ------
    DataValidationError
        An obs key is missing, or no perturbed group has controls in its context.
    """
    for key in (schema.context_key, schema.perturbation_key):
        if key not in adata.obs.columns:
            raise DataValidationError(
                f"obs key {key!r} is missing; obs has columns {list(map(str, adata.obs.columns))}"
            )
    contexts = obs_labels(adata, schema.context_key)
    labels = obs_labels(adata, schema.perturbation_key)
    with_controls = sorted(set(contexts[labels == schema.control]))
    control_set = set(with_controls)
    groups = {
        (c, p)
        for c, p in zip(contexts, labels, strict=True)
        if p != schema.control and c in control_set
    }
    perturbations = sorted({p for _, p in groups})
    if not groups:
        raise DataValidationError(
            f"no perturbed group in obs[{schema.perturbation_key!r}] has controls in its "
            f"context (obs[{schema.context_key!r}]); changes are learned against them"
        )
    n_genes = adata.n_vars
    c_pos = {c: i for i, c in enumerate(with_controls)}
    p_pos = {p: i for i, p in enumerate(perturbations)}
    values = np.full((len(with_controls), len(perturbations), n_genes), np.nan)
    measured = np.zeros((len(with_controls), len(perturbations)), dtype=bool)
    controls = np.zeros((len(with_controls), n_genes))
    # every group's mean in one pass (an on-disk X is streamed, its group statistics cached)
    wanted = [(c, schema.control) for c in with_controls] + sorted(groups)
    means = group_means(adata, schema=schema, groups=wanted).to_numpy()
    controls[:] = means[: len(with_controls)]
    for k, (context, perturbation) in enumerate(sorted(groups)):
        i, j = c_pos[context], p_pos[perturbation]
        values[i, j] = means[len(with_controls) + k] - controls[i]
        measured[i, j] = True
    return ChangeTensor(tuple(with_controls), tuple(perturbations), values, measured, controls)


def mapping_matrix(
    gene_map: pd.DataFrame | None, source_genes: Sequence[str], target_genes: Sequence[str]
) -> np.ndarray:
    """Row-normalised (target x source) averaging matrix; all-zero rows for unmapped genes.

    ``gene_map`` has columns ``source_gene`` and ``target_gene`` (or two columns); ``None``
    pairs genes of identical names.
    """
    if gene_map is None:
        source_set = set(source_genes)
        pairs = [(g, g) for g in target_genes if g in source_set]
    else:
        if {"source_gene", "target_gene"} <= set(gene_map.columns):
            frame = gene_map[["source_gene", "target_gene"]]
        elif gene_map.shape[1] >= 2:
            frame = gene_map.iloc[:, :2]
        else:
            raise DataValidationError(
                "gene_map needs columns 'source_gene' and 'target_gene' (or two columns)"
            )
        pairs = list(frame.dropna().astype(str).itertuples(index=False, name=None))
    s_pos = {g: i for i, g in enumerate(source_genes)}
    t_pos = {g: i for i, g in enumerate(target_genes)}
    matrix = np.zeros((len(target_genes), len(source_genes)))
    for source, target in set(pairs):
        if source in s_pos and target in t_pos:
            matrix[t_pos[target], s_pos[source]] = 1.0
    counts = matrix.sum(axis=1)
    if not counts.any():
        raise DataValidationError(
            "the gene mapping links no gene of the source data to a gene of the target data"
        )
    return np.divide(matrix, counts[:, None], out=np.zeros_like(matrix), where=counts[:, None] > 0)


def mapped(tensor: ChangeTensor, matrix: np.ndarray, prefix: str) -> ChangeTensor:
    """``tensor`` carried onto other genes by a (target x source) ``matrix``.

    Genes no source gene maps to are NaN; a source value that is NaN leaves its target NaN.
    Contexts are renamed ``"<prefix>:<context>"``.
    """
    unmapped = matrix.sum(axis=1) == 0

    def carry(x: np.ndarray) -> np.ndarray:
        finite = np.isfinite(x)
        out = np.where(finite, x, 0.0) @ matrix.T
        weight = finite.astype(np.float64) @ matrix.T
        out = np.divide(out, weight, out=np.full_like(out, np.nan), where=weight > 0)
        out[..., unmapped] = np.nan
        return out

    return ChangeTensor(
        tuple(f"{prefix}:{c}" for c in tensor.contexts),
        tensor.perturbations,
        carry(tensor.values),
        tensor.measured.copy(),
        carry(tensor.controls),
    )

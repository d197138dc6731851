"""Reactome vectors: each gene's expression change in every (context, perturbation) pair.

The reactome of a gene (UGE paper, after Chen et al. 2024) is the vector of its mean log
change, treated minus control of the same species and context (organ), over every
(context, perturbation) pair; with 10 organs and 3 drugs it has 30 entries. Genes of two
species can then be compared by what they do rather than by sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome.data.aggregate import group_means
from transferome.data.schema import Schema, obs_labels, validate
from transferome.errors import DataValidationError

__all__ = ["Reactome", "reactome", "signature_reactome"]

PAIR_NAMES = ("context", "perturbation")


@dataclass(frozen=True)
class Reactome:
    """Reactome vectors of one species (what :func:`reactome` returns).

    Attributes
    ----------
    values
        Genes x (context, perturbation) mean log change, treated minus control; the columns are
        a two-level MultiIndex named ``("context", "perturbation")`` covering every context x
        perturbation of the data; NaN where a pair was not measured (no treated or no control
        observation).
    se
        Standard error of each entry (Welch: ``sqrt(var_t / n_t + var_c / n_c)`` over the
        replicate units); NaN where either side has fewer than two units.
    n
        One row per pair (same index as the columns of ``values``) with ``n_treated`` and
        ``n_control``: the replicate units behind each entry (samples when a sample key is
        used, observations otherwise).
    species
        Species label (``None`` when unknown).
    """

    values: pd.DataFrame
    se: pd.DataFrame
    n: pd.DataFrame
    species: str | None = None

    def __post_init__(self) -> None:
        if not self.values.columns.equals(self.se.columns) or not self.values.index.equals(
            self.se.index
        ):
            raise DataValidationError("reactome values and standard errors must share labels")
        if not self.n.index.equals(self.values.columns):
            raise DataValidationError(
                "reactome counts need one row per (context, perturbation) pair"
            )

    @property
    def genes(self) -> pd.Index:
        """Gene names (rows of ``values``)."""
        return self.values.index

    @property
    def pairs(self) -> pd.MultiIndex:
        """All (context, perturbation) pairs, measured or not."""
        return self.values.columns

    @property
    def measured(self) -> pd.Series:
        """Boolean Series over pairs: whether the pair was measured."""
        return pd.Series(
            np.isfinite(self.values.to_numpy()).any(axis=0), index=self.pairs, name="measured"
        )

    def measured_pairs(self) -> pd.MultiIndex:
        """Pairs with a measured value."""
        return self.pairs[self.measured.to_numpy()]

    def replace(self, **changes: Any) -> Reactome:
        """Return a copy with some fields replaced (e.g. completed ``values``)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return Reactome(**current)

    def tidy(self) -> pd.DataFrame:
        """Long table: gene, context, perturbation, value, se, n_treated, n_control."""
        long = self.values.stack(list(range(self.values.columns.nlevels)), future_stack=True)
        se = self.se.stack(list(range(self.se.columns.nlevels)), future_stack=True)
        frame = pd.DataFrame({"value": long, "se": se})
        frame.index.names = ["gene", *PAIR_NAMES]
        frame = frame.reset_index()
        counts = self.n.reset_index()
        counts.columns = [*PAIR_NAMES, "n_treated", "n_control"]
        frame = frame.merge(counts, on=list(PAIR_NAMES), how="left")
        if self.species is not None:
            frame.insert(0, "species", self.species)
        return frame


def _indicator(codes: np.ndarray, n_groups: int) -> sp.csr_matrix:
    n = codes.shape[0]
    return sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_groups, n), dtype=np.float64)


def _factorize_rows(keys: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer code of each row's key combination and the sorted unique combinations."""
    grouped = keys.groupby(list(keys.columns), sort=True, observed=True)
    codes = grouped.ngroup().to_numpy()
    uniques = grouped.size().index.to_frame(index=False)
    return codes, uniques


def _unit_means(
    matrix: Any, contexts: np.ndarray, perturbations: np.ndarray, samples: np.ndarray | None
) -> tuple[np.ndarray, pd.DataFrame]:
    """Mean profile of each replicate unit (sample within a group, or one observation)."""
    if samples is None:
        dense = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
        units = pd.DataFrame({"context": contexts, "perturbation": perturbations})
        return dense.astype(np.float64), units
    keys = pd.DataFrame({"context": contexts, "perturbation": perturbations, "sample": samples})
    codes, units = _factorize_rows(keys)
    indicator = _indicator(codes, len(units))
    sizes = np.asarray(indicator.sum(axis=1)).ravel()
    sums = indicator @ matrix
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    units = units[["context", "perturbation"]]
    return sums / sizes[:, None], units


def _group_stats(
    unit_values: np.ndarray, group_codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sample variance (ddof 1; NaN below two units) and unit count of each group."""
    indicator = _indicator(group_codes, n_groups)
    counts = np.asarray(indicator.sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (indicator @ unit_values) / counts[:, None]
        squares = indicator @ (unit_values**2)
        var = (squares - counts[:, None] * means**2) / (counts[:, None] - 1)
    var = np.where(counts[:, None] >= 2, np.maximum(var, 0.0), np.nan)
    return means, var, counts


def reactome(
    adata: AnnData,
    *,
    schema: Schema | None = None,
    layer: str | None = None,
    species: str | None = None,
    by_sample: bool = True,
) -> Reactome:
    """Reactome vectors of the genes of one species.

    For every context ``c`` and perturbation ``p`` of the data, entry ``(c, p)`` of gene ``g``
    is ``mean(log x_g | c, p) - mean(log x_g | c, control)``. Doses are pooled (use the
    perturbation label to separate them if needed); combinations are pairs of their own.

    Parameters
    ----------
    adata
        Log-normalised data of one species (``X`` or ``layer``); never modified.
    schema
        Obs keys (default :class:`~transferome.data.Schema`).
    layer
        Use ``adata.layers[layer]`` instead of ``X``.
    species
        Keep only this species (required when ``schema.species_key`` holds several).
    by_sample
        When the schema has a sample key present in ``obs``, average the observations of
        each sample first, so that replicates (and ``n``, and the standard error) are
        samples (animals, donors) rather than cells.

    Returns
    -------
    Reactome
        Values, standard errors and replicate counts.

    Raises
    ------
    DataValidationError
        Missing keys, raw counts or non-logged values, several species without ``species``.
    """
    schema = schema or Schema()
    description = validate(
        adata,
        schema,
        layer=layer,
        require_controls=False,
        allow_negative=True,
    )
    if description.value_type in ("counts", "linear"):
        where = "X" if layer is None else f"layer {layer!r}"
        raise DataValidationError(
            f"reactome needs log-normalised values but {where} holds {description.value_type} "
            "values; run normalize_total + log1p first or pass layer= naming a log layer"
        )
    schema = description.schema
    mask = np.ones(adata.n_obs, dtype=bool)
    label = species
    if schema.species_key is not None:
        present = description.species
        if species is not None:
            if species not in present:
                raise DataValidationError(
                    f"species {species!r} not found in obs[{schema.species_key!r}]; "
                    f"present: {list(present)}"
                )
            mask = obs_labels(adata, schema.species_key) == species
        elif len(present) > 1:
            raise DataValidationError(
                f"obs[{schema.species_key!r}] holds several species {list(present)}; "
                "pass species= or one AnnData per species"
            )
        else:
            label = present[0]
    matrix = adata.layers[layer] if layer is not None else adata.X
    matrix = matrix[np.flatnonzero(mask)] if not mask.all() else matrix
    contexts = obs_labels(adata, schema.context_key)[mask]
    perturbations = obs_labels(adata, schema.perturbation_key)[mask]
    samples = None
    if by_sample and schema.sample_key is not None:
        samples = obs_labels(adata, schema.sample_key)[mask]
    unit_values, units = _unit_means(matrix, contexts, perturbations, samples)

    context_order = sorted(set(contexts))
    perturbation_order = sorted(set(perturbations) - {schema.control})
    if not perturbation_order:
        raise DataValidationError(
            f"obs[{schema.perturbation_key!r}] holds only the control label {schema.control!r}; "
            "a reactome needs perturbed observations"
        )
    codes, uniques = _factorize_rows(units)
    means, var, counts = _group_stats(unit_values, codes, len(uniques))
    lookup = {(c, p): i for i, (c, p) in enumerate(uniques.itertuples(index=False))}

    pairs = pd.MultiIndex.from_product([context_order, perturbation_order], names=PAIR_NAMES)
    n_genes = adata.n_vars
    values = np.full((n_genes, len(pairs)), np.nan)
    se = np.full((n_genes, len(pairs)), np.nan)
    n_treated = np.zeros(len(pairs), dtype=int)
    n_control = np.zeros(len(pairs), dtype=int)
    for j, (context, perturbation) in enumerate(pairs):
        t = lookup.get((context, perturbation))
        c = lookup.get((context, schema.control))
        n_treated[j] = counts[t] if t is not None else 0
        n_control[j] = counts[c] if c is not None else 0
        if t is None or c is None:
            continue
        values[:, j] = means[t] - means[c]
        se[:, j] = np.sqrt(var[t] / counts[t] + var[c] / counts[c])
    genes = pd.Index(adata.var_names.astype(str), name="gene")
    return Reactome(
        values=pd.DataFrame(values, index=genes, columns=pairs),
        se=pd.DataFrame(se, index=genes, columns=pairs),
        n=pd.DataFrame({"n_treated": n_treated, "n_control": n_control}, index=pairs),
        species=label,
    )


def signature_reactome(
    adata: AnnData, *, schema: Schema | None = None, species: str | None = None
) -> Reactome:
    """Compute the reactome of change data (signatures: one row per measured group).

    A NaN marks a gene not measured. E.g. L1000, Tahoe or DrugMatrix signatures read with
    ``values="delta"``.

    Rows of one (context, perturbation) are averaged gene by gene over their finite values;
    control rows are ignored (their change is zero by definition). ``se`` is NaN (one
    signature carries no replicate spread) and ``n_treated`` counts the rows.
    """
    schema = schema or Schema()
    for key in (schema.context_key, schema.perturbation_key):
        if key not in adata.obs.columns:
            raise DataValidationError(
                f"obs key {key!r} is missing; obs has {list(map(str, adata.obs.columns))}"
            )
    contexts = obs_labels(adata, schema.context_key)
    perturbations = obs_labels(adata, schema.perturbation_key)
    keep = perturbations != schema.control
    if not keep.any():
        raise DataValidationError("the signatures hold only control rows")
    treated = adata[keep]
    data = treated.X.data if sp.issparse(treated.X) else np.asarray(treated.X)
    if np.isinf(data).any():
        raise DataValidationError("the signatures hold infinite values")
    means = group_means(treated, schema=schema)  # NaN-aware: over the rows that measured a gene
    means.index.names = list(PAIR_NAMES)
    contexts_all = sorted(set(contexts[keep]))
    perturbations_all = sorted(set(perturbations[keep]))
    grid = pd.MultiIndex.from_product([contexts_all, perturbations_all], names=PAIR_NAMES)
    genes = pd.Index(adata.var_names.astype(str))
    values = pd.DataFrame(means.to_numpy().T, index=genes, columns=means.index).reindex(
        columns=grid
    )
    keys = pd.MultiIndex.from_arrays([contexts[keep], perturbations[keep]], names=PAIR_NAMES)
    rows = keys.value_counts()
    n = pd.DataFrame({"n_treated": rows, "n_control": 0}).reindex(grid)
    n = n.fillna(0).astype(int)
    se = pd.DataFrame(np.nan, index=genes, columns=grid)
    return Reactome(values=values, se=se, n=n, species=species)

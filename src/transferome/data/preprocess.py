"""Preprocessing: normalise total counts, log1p, highly variable genes, gene-set projection.

:func:`prepare_values` is the one place that decides what the values of a dataset are and
puts them on the log-normalised scale every model and metric expects: raw counts and
fractional counts (e.g. salmon ``NumReads``) are normalised (``normalize_total`` + ``log1p``)
with a warning saying what was detected; log-normalised values are kept; changes against
control (``values="delta"``) pass through. Every command of the command line and
``transferome run`` call it.

:func:`preprocess` returns a new AnnData with ``X`` log-normalised, the raw counts in
``layers["counts"]`` and the chosen genes recorded in ``uns["transferome"]["genes"]``; data
that are already log-normalised are not logged again, so running it twice gives the same
result. :class:`GeneSet` holds the chosen genes, and :func:`project_genes` (or
``preprocess(new, genes=...)``) puts a later dataset on the same genes, in the same order.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from transferome._logging import get_logger
from transferome.data._backed import in_memory, is_backed, rewritten
from transferome.data._normalize import _as_float, _describe, _normalize_log
from transferome.data.schema import check_matrix, detect_value_type
from transferome.errors import DataValidationError

__all__ = ["VALUES", "GeneSet", "PreparedValues", "prepare_values", "preprocess", "project_genes"]

_log = get_logger(__name__)
_UNS = "transferome"
Flavor = Literal["seurat", "cell_ranger"]
Values = Literal["auto", "log", "counts", "delta"]
VALUES: tuple[str, ...] = ("auto", "log", "counts", "delta")
"""What :func:`prepare_values` accepts as ``values`` (``--values`` on the command line)."""


@dataclass(frozen=True)
class GeneSet:
    """An ordered, frozen list of genes to put every dataset on.

    Parameters
    ----------
    genes
        Gene names, unique, in the order of the columns.
    source
        How they were chosen (e.g. ``"highly_variable"``, ``"all"``).
    """

    genes: tuple[str, ...]
    source: str = "given"

    def __post_init__(self) -> None:
        genes = tuple(map(str, self.genes))
        dup = pd.Index(genes)[pd.Index(genes).duplicated()]
        if len(dup):
            raise DataValidationError(f"gene set has duplicated genes, e.g. {list(dup[:5])}")
        if not genes:
            raise DataValidationError("gene set is empty")
        object.__setattr__(self, "genes", genes)

    def __len__(self) -> int:
        return len(self.genes)

    def __contains__(self, gene: object) -> bool:
        return gene in set(self.genes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON, ``uns``)."""
        return {"genes": list(self.genes), "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneSet:
        """Inverse of :meth:`to_dict`."""
        return cls(genes=tuple(data["genes"]), source=str(data.get("source", "given")))

    @classmethod
    def from_adata(cls, adata: AnnData) -> GeneSet:
        """Read the gene set :func:`preprocess` recorded in ``adata.uns``."""
        record = adata.uns.get(_UNS, {})
        if "genes" not in record:
            raise DataValidationError(
                "adata.uns['transferome']['genes'] is missing: run transferome.data.preprocess "
                "first, or build a GeneSet from a list of genes"
            )
        return cls(genes=tuple(record["genes"]), source=str(record.get("gene_source", "given")))


@dataclass(frozen=True)
class PreparedValues:
    """What :func:`prepare_values` returns.

    Attributes
    ----------
    adata
        The data to use: ``X`` log-normalised (``values == "log"``) or changes against
        control (``values == "delta"``); the input itself when nothing was changed.
    values
        ``"log"`` or ``"delta"``: what ``adata.X`` now holds.
    detected
        What the input values were found (or declared) to be, in words.
    normalised
        Whether ``normalize_total`` + ``log1p`` was applied (the input values are then in
        ``layers["counts"]``).
    """

    adata: AnnData
    values: Literal["log", "delta"]
    detected: str
    normalised: bool


def prepare_values(
    adata: AnnData,
    values: Values = "auto",
    *,
    layer: str | None = None,
    target_sum: float = 1e4,
    where: str = "data",
) -> PreparedValues:
    """Detect what the values are and put them on the log-normalised scale.

    Parameters
    ----------
    adata
        The data; never modified.
    values
        ``"auto"``: detect (:func:`~transferome.data.detect_value_type`): raw counts,
        fractional counts and normalised-but-unlogged values are normalised
        (``normalize_total`` to ``target_sum`` + ``log1p``, as :func:`preprocess` does) with
        a WARNING naming what was detected; log-normalised values are kept; data marked as
        changes (``uns["transferome"]["values"] == "delta"``, e.g. the L1000 loader) are
        kept as changes; negative values are an error that asks for ``values="delta"``.
        ``"log"``: use the values as they are (no check of their scale). ``"counts"``: always
        normalise. ``"delta"``: the values are changes against control (negative allowed),
        passed through.
    layer
        Read the values from this layer instead of ``X`` (they become ``X`` of the result).
    target_sum
        Total of every observation after normalisation.
    where
        Name of the data in the messages (e.g. the file name).

    Returns
    -------
    PreparedValues

    Raises
    ------
    DataValidationError
        An unknown ``values``, a missing layer, NaN / infinite values (outside ``"delta"``),
        or negative values under ``"auto"``, ``"log"`` or ``"counts"``.
    """
    if values not in VALUES:
        raise DataValidationError(f"values must be one of {VALUES}, got {values!r}")
    if layer is not None and layer not in adata.layers:
        raise DataValidationError(
            f"{where}: layer {layer!r} not found; layers are {sorted(adata.layers)}"
        )
    source = adata.layers[layer] if layer is not None else adata.X
    if source is None:
        raise DataValidationError(f"{where}: X is empty (None); pass a layer to use")
    out = adata
    # on disk, values that change (or move from a layer to X) go to a new file, block by block
    stored = is_backed(adata) and adata.n_obs > 0
    if layer is not None and not stored:
        out = in_memory(adata, what="prepare_values", copy=True)
        out.X = out.layers[layer].copy()

    def as_is() -> AnnData:  # the values as they are, in X
        if layer is not None and stored:
            return rewritten(
                adata, layer=layer, transform=lambda b: b, keep_input=None, uns=dict(adata.uns)
            )
        return out

    if values == "delta" or (
        values == "auto" and dict(adata.uns.get(_UNS, {})).get("values") == "delta"
    ):
        return PreparedValues(as_is(), "delta", "changes against control", normalised=False)
    try:
        value_type = detect_value_type(source)
    except DataValidationError as exc:
        hint = (
            "; if these are changes against control (signatures, z-scores) pass "
            "values='delta' (--values delta)"
            if "negative" in str(exc) or "NaN" in str(exc)
            else ""
        )
        raise DataValidationError(f"{where}: {exc}{hint}") from exc
    if values == "log" or (values == "auto" and value_type == "log"):
        detected = "log-normalised values" if value_type == "log" else _describe(value_type, source)
        if values == "log" and value_type != "log":
            _log.info("%s: holds %s; used as they are (values='log')", where, detected)
        return PreparedValues(as_is(), "log", detected, normalised=False)
    detected = _describe(value_type, source) if value_type != "log" else "log-like values"
    record = dict(adata.uns.get(_UNS, {}))
    record["input_values"] = {"detected": detected, "target_sum": float(target_sum)}
    if stored:
        # a new file on disk, written a block of rows at a time: the matrix is never held
        normalised = rewritten(
            adata,
            layer=layer,
            transform=lambda block: _normalize_log(block, target_sum),
            keep_input="counts",
            uns={**adata.uns, _UNS: record},
        )
    else:
        normalised = out if out is not adata else adata.copy()
        counts = _as_float(normalised.X)
        normalised.layers["counts"] = counts.copy()
        normalised.X = _normalize_log(counts, target_sum)
        normalised.uns[_UNS] = record
    _log.warning(
        "%s: %s holds %s; normalised them%s (normalize_total to %g + log1p; the input "
        "values are kept in layers['counts']); pass --values log (values='log') to use "
        "them as they are",
        where,
        "X" if layer is None else f"layer {layer!r}",
        detected,
        " as asked (values='counts')" if values == "counts" else "",
        target_sum,
    )
    return PreparedValues(normalised, "log", detected, normalised=True)


def _max_variance(matrix) -> float:
    """Largest per-gene variance of a dense or sparse matrix."""
    if sp.issparse(matrix):
        mean = np.asarray(matrix.mean(axis=0)).ravel()
        mean_sq = np.asarray(matrix.multiply(matrix).mean(axis=0)).ravel()
        return float(np.max(mean_sq - mean**2, initial=0.0))
    return float(np.max(np.var(np.asarray(matrix), axis=0), initial=0.0))


def _highly_variable(adata: AnnData, n_top_genes: int, flavor: Flavor, batch_key: str | None):
    import scanpy as sc

    if flavor not in ("seurat", "cell_ranger"):
        raise DataValidationError(f"flavor must be 'seurat' or 'cell_ranger', got {flavor!r}")
    if batch_key is not None and batch_key not in adata.obs:
        raise DataValidationError(f"batch_key {batch_key!r} not in obs; obs has {list(adata.obs)}")
    if adata.n_obs < 2 or _max_variance(adata.X) == 0.0:
        # no gene varies: every dispersion is undefined (scanpy fails); keep the first genes
        return adata.var_names[:n_top_genes]
    with warnings.catch_warnings():
        # constant genes give 0/0 dispersions; scanpy ranks them last, which is what we want
        warnings.simplefilter("ignore", RuntimeWarning)
        # with every gene constant scanpy warns that it returns all genes; we rank them below
        warnings.filterwarnings(
            "ignore", message=".*n_top_genes.*normalized dispersions", category=UserWarning
        )
        table = sc.pp.highly_variable_genes(
            adata,
            n_top_genes=n_top_genes,
            flavor=flavor,
            batch_key=batch_key,
            inplace=False,
        )
    # scanpy may flag more than n_top_genes (ties); keep exactly the n best, in var order
    score = np.nan_to_num(np.asarray(table["dispersions_norm"], dtype=np.float64), nan=-np.inf)
    best = np.sort(np.argsort(-score, kind="stable")[:n_top_genes])
    return adata.var_names[best]


def preprocess(
    adata: AnnData,
    *,
    target_sum: float = 1e4,
    n_top_genes: int | None = 2000,
    layer: str | None = None,
    flavor: Flavor = "seurat",
    batch_key: str | None = None,
    genes: GeneSet | Sequence[str] | None = None,
    max_missing: float = 0.5,
) -> AnnData:
    """Normalise, log-transform and select genes; return a new AnnData.

    Parameters
    ----------
    adata
        The data; never modified.
    target_sum
        Total counts of each observation after normalisation.
    n_top_genes
        Number of highly variable genes to keep (scanpy ``highly_variable_genes``);
        ``None``, or a number at least the number of genes, keeps every gene.
    layer
        Read the values from this layer instead of ``X``.
    flavor, batch_key
        Passed to :func:`scanpy.pp.highly_variable_genes` (``"seurat"`` or ``"cell_ranger"``,
        both on the log-normalised values); exactly the ``n_top_genes`` genes of highest
        normalised dispersion are kept, in their original order.
    genes
        Instead of selecting genes, put the data on these genes (see :func:`project_genes`);
        normalisation still uses every gene of ``adata``.
    max_missing
        With ``genes``: the largest fraction of them that may be absent from ``adata``.

    Returns
    -------
    AnnData
        ``X`` log-normalised (float32); ``layers["counts"]`` the raw counts when the input
        held counts (kept when the input already had that layer); ``uns["transferome"]``
        records the gene list (``"genes"``) and the settings (``"preprocess"``).

    Notes
    -----
    Input values are classified with :func:`~transferome.data.detect_value_type`:
    ``counts`` are normalised and logged; ``log`` values are kept as they are (never logged
    twice); ``linear`` values (fractional counts such as salmon ``NumReads``, or normalised
    but not logged values) are normalised and logged like counts, with a warning, as
    :func:`prepare_values` does; negative values (changes, z-scores) are an error.
    """
    check_matrix(adata, layer)
    for axis, names in (("obs", adata.obs_names), ("var", adata.var_names)):
        if names.duplicated().any():
            shown = list(dict.fromkeys(map(str, names[names.duplicated()])))[:5]
            raise DataValidationError(
                f"duplicated {axis} names, e.g. {shown}; make them unique first "
                f"(AnnData.{axis}_names_make_unique())"
            )
    if not target_sum > 0:
        raise DataValidationError(f"target_sum must be positive, got {target_sum}")
    if n_top_genes is not None and n_top_genes < 1:
        raise DataValidationError(f"n_top_genes must be at least 1 or None, got {n_top_genes}")
    adata = in_memory(adata, what="preprocess")  # X of a backed AnnData, read once
    source = adata.layers[layer] if layer is not None else adata.X
    if source is None:
        raise DataValidationError("adata.X is empty (None); pass layer= to use a layer")
    value_type = detect_value_type(source)  # raises on NaN, inf, negative values
    out = adata.copy()
    values = _as_float(source)
    if value_type in ("counts", "linear"):
        if value_type == "linear":
            _log.warning(
                "X holds %s; normalised them (normalize_total to %g + log1p)",
                _describe(value_type, values),
                target_sum,
            )
        out.layers["counts"] = values.copy()
        out.X = _normalize_log(values, target_sum)
    else:
        out.X = values
    record = dict(adata.uns.get(_UNS, {}))
    previous = dict(record.get("preprocess", {}))
    settings = {
        "target_sum": float(target_sum),
        "n_top_genes": -1 if n_top_genes is None else int(n_top_genes),
        "flavor": flavor,
        "input": previous.get("input", value_type),
    }
    if genes is not None:
        gene_set = genes if isinstance(genes, GeneSet) else GeneSet(tuple(genes))
        out = project_genes(out, gene_set, max_missing=max_missing)
    elif n_top_genes is not None and n_top_genes < out.n_vars:
        chosen = _highly_variable(out, n_top_genes, flavor, batch_key)
        gene_set = GeneSet(tuple(map(str, chosen)), source="highly_variable")
        out = out[:, list(gene_set.genes)].copy()
    else:
        gene_set = GeneSet(tuple(map(str, out.var_names)), source=record.get("gene_source", "all"))
    record.update(
        genes=list(gene_set.genes),
        gene_source=gene_set.source,
        preprocess=settings,
    )
    out.uns[_UNS] = {**dict(out.uns.get(_UNS, {})), **record}
    _log.info(
        "preprocessed %d observations: %s input, %d genes (%s)",
        out.n_obs,
        value_type,
        len(gene_set),
        gene_set.source,
    )
    return out


def _project(matrix: Any, columns: np.ndarray, n_genes: int) -> Any:
    present = columns >= 0
    if sp.issparse(matrix):
        csc = sp.csc_matrix(matrix)[:, columns[present]]
        selector = sp.csr_matrix(
            (np.ones(int(present.sum())), (np.arange(int(present.sum())), np.flatnonzero(present))),
            shape=(int(present.sum()), n_genes),
        )
        return sp.csr_matrix(csc @ selector, dtype=matrix.dtype)
    dense = np.asarray(matrix)
    out = np.zeros((dense.shape[0], n_genes), dtype=dense.dtype)
    out[:, present] = dense[:, columns[present]]
    return out


def project_genes(
    adata: AnnData,
    genes: GeneSet | Sequence[str],
    *,
    max_missing: float = 0.5,
) -> AnnData:
    """Put ``adata`` on ``genes`` (same genes, same order); absent genes are filled with zeros.

    Parameters
    ----------
    adata
        The data; never modified.
    genes
        Target genes, e.g. ``GeneSet.from_adata(training_data)``.
    max_missing
        Largest fraction of ``genes`` that may be absent from ``adata``; beyond it the
        datasets do not share enough genes and a :class:`DataValidationError` lists them.

    Returns
    -------
    AnnData
        ``X`` and every layer with one column per gene of ``genes``; the ``var`` columns when
        no gene is missing; ``uns["transferome"]["missing_genes"]`` the genes filled with zeros.

    Warns
    -----
    UserWarning
        When some genes are absent (the message lists them).
    """
    gene_set = genes if isinstance(genes, GeneSet) else GeneSet(tuple(genes))
    if not 0.0 <= max_missing <= 1.0:
        raise DataValidationError(f"max_missing must be in [0, 1], got {max_missing}")
    if adata.var_names.duplicated().any():
        dup = list(dict.fromkeys(adata.var_names[adata.var_names.duplicated()]))[:5]
        raise DataValidationError(f"duplicated var names, e.g. {dup}; make them unique first")
    columns = np.asarray(adata.var_names.get_indexer(list(gene_set.genes)), dtype=np.int64)
    missing = [g for g, c in zip(gene_set.genes, columns, strict=True) if c < 0]
    if len(missing) > max_missing * len(gene_set):
        raise DataValidationError(
            f"{len(missing)} of {len(gene_set)} genes ({len(missing) / len(gene_set):.0%}) are "
            f"absent from the data (more than max_missing={max_missing:.0%}), e.g. "
            f"{missing[:10]}; are the gene names of the same kind (symbols vs ids, species)?"
        )
    if missing:
        shown = ", ".join(missing[:20]) + (", ..." if len(missing) > 20 else "")
        warnings.warn(
            f"{len(missing)} of {len(gene_set)} genes are absent and filled with zeros: {shown}",
            UserWarning,
            stacklevel=2,
        )
    n = len(gene_set)
    adata = in_memory(adata, what="project_genes")
    var = adata.var.reindex(pd.Index(gene_set.genes, dtype=object))
    out = AnnData(
        X=_project(adata.X, columns, n) if adata.X is not None else None,
        obs=adata.obs.copy(),
        var=var if not missing else pd.DataFrame(index=var.index),
        layers={k: _project(v, columns, n) for k, v in adata.layers.items()},
        obsm={k: v.copy() for k, v in adata.obsm.items()},
        uns=copy.deepcopy(dict(adata.uns)),
    )
    record = dict(out.uns.get(_UNS, {}))
    record["missing_genes"] = list(missing)
    out.uns[_UNS] = record
    return out

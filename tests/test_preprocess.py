"""Preprocessing: normalisation, log, gene selection, idempotence and gene-set projection."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tests.conftest import make_counts_adata
from transferome.data import GeneSet, Schema, preprocess, project_genes, read_h5ad, validate
from transferome.errors import DataValidationError


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


@pytest.fixture
def counts():
    return make_counts_adata(n_per_group=4, n_genes=40, seed=1)


@pytest.mark.parametrize("sparse", [False, True])
def test_counts_are_normalised_and_logged(counts, sparse) -> None:
    adata = counts.copy()
    if sparse:
        adata.X = sp.csr_matrix(adata.X)
    before = _dense(adata.X).copy()
    out = preprocess(adata, target_sum=100.0, n_top_genes=None)
    np.testing.assert_allclose(np.expm1(_dense(out.X)).sum(axis=1), 100.0, rtol=1e-4)
    np.testing.assert_array_equal(_dense(out.layers["counts"]), before)
    np.testing.assert_array_equal(_dense(adata.X), before)  # input untouched
    assert "counts" not in adata.layers
    assert "transferome" not in adata.uns
    assert validate(out).value_type == "log"
    assert out.uns["transferome"]["preprocess"]["input"] == "counts"


def test_highly_variable_genes_exact_number_in_order(counts) -> None:
    rng = np.random.default_rng(5)
    variable = ["g11", "g23", "g30"]
    counts = counts.copy()
    for gene in variable:  # a few genes switched on in random cells: highly variable
        column = counts.var_names.get_loc(gene)
        counts.X[:, column] = rng.choice([0.0, 200.0], size=counts.n_obs)
    out = preprocess(counts, n_top_genes=7)
    assert set(variable) <= set(out.var_names)
    assert out.n_vars == 7
    positions = [counts.var_names.get_loc(g) for g in out.var_names]
    assert positions == sorted(positions)
    assert out.uns["transferome"]["genes"] == list(out.var_names)
    assert GeneSet.from_adata(out) == GeneSet(tuple(out.var_names), source="highly_variable")
    assert out.layers["counts"].shape == (counts.n_obs, 7)


@pytest.mark.parametrize("n_top_genes", [7, None])
def test_idempotent(counts, n_top_genes) -> None:
    once = preprocess(counts, n_top_genes=n_top_genes)
    twice = preprocess(once, n_top_genes=n_top_genes)
    assert list(twice.var_names) == list(once.var_names)
    np.testing.assert_array_equal(_dense(twice.X), _dense(once.X))
    np.testing.assert_array_equal(_dense(twice.layers["counts"]), _dense(once.layers["counts"]))
    assert twice.uns["transferome"] == once.uns["transferome"]
    assert list(twice.layers) == list(once.layers)


def test_log_data_not_logged_twice(counts) -> None:
    adata = counts.copy()
    adata.X = np.log1p(adata.X / 2.0).astype(np.float32)
    out = preprocess(adata, n_top_genes=None)
    np.testing.assert_array_equal(out.X, adata.X)
    assert "counts" not in out.layers
    assert out.uns["transferome"]["preprocess"]["input"] == "log"


def test_fractional_counts_normalised_like_counts(counts) -> None:
    adata = counts.copy()
    adata.X = (adata.X * 100.5).astype(np.float32)  # fractional counts (salmon NumReads)
    out = preprocess(adata, n_top_genes=None)
    np.testing.assert_allclose(out.X, preprocess(counts, n_top_genes=None).X, rtol=1e-5)
    np.testing.assert_array_equal(out.layers["counts"], adata.X)


def test_layer_as_input(counts) -> None:
    adata = counts.copy()
    adata.layers["raw"] = adata.X.copy()
    adata.X = np.zeros_like(adata.X) + 0.5
    out = preprocess(adata, layer="raw", n_top_genes=None)
    np.testing.assert_array_equal(out.layers["counts"], counts.X)


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        ("negative", {}, "negative"),
        ("nan", {}, "NaN"),
        (None, {"layer": "nope"}, "layer 'nope' not found"),
        (None, {"target_sum": 0}, "target_sum must be positive"),
        (None, {"n_top_genes": 0}, "n_top_genes must be at least 1"),
        (None, {"flavor": "seurat_v3", "n_top_genes": 5}, "flavor must be 'seurat'"),
        (None, {"batch_key": "plate", "n_top_genes": 5}, "batch_key 'plate' not in obs"),
        ("empty", {}, "empty"),
    ],
)
def test_errors(counts, change, kwargs, message) -> None:
    adata = counts.copy()
    if change == "negative":
        adata.X[0, 0] = -1
    elif change == "nan":
        adata.X[0, 0] = np.nan
    elif change == "empty":
        adata = adata[:0].copy()
    with pytest.raises(DataValidationError, match=message):
        preprocess(adata, **kwargs)


def test_gene_set() -> None:
    genes = GeneSet(("b", "a", "c"), source="given")
    assert len(genes) == 3
    assert "a" in genes
    assert "z" not in genes
    assert GeneSet.from_dict(genes.to_dict()) == genes
    with pytest.raises(DataValidationError, match="duplicated genes"):
        GeneSet(("a", "a"))
    with pytest.raises(DataValidationError, match="empty"):
        GeneSet(())
    with pytest.raises(DataValidationError, match=r"run transferome\.data\.preprocess"):
        GeneSet.from_adata(make_counts_adata())
    with pytest.raises(AttributeError):
        genes.source = "x"  # type: ignore[misc]


@pytest.mark.parametrize("sparse", [False, True])
def test_project_genes_fills_missing_with_zeros(counts, sparse) -> None:
    adata = counts.copy()
    adata.layers["counts"] = adata.X.copy()
    if sparse:
        adata.X = sp.csr_matrix(adata.X)
    target = GeneSet(("g3", "absent1", "g0", "absent2"))
    with pytest.warns(UserWarning, match="2 of 4 genes are absent.*absent1, absent2"):
        out = project_genes(adata, target)
    assert list(out.var_names) == list(target.genes)
    dense = _dense(out.X)
    np.testing.assert_array_equal(dense[:, 0], counts.X[:, 3])
    np.testing.assert_array_equal(dense[:, 2], counts.X[:, 0])
    assert not dense[:, [1, 3]].any()
    np.testing.assert_array_equal(out.layers["counts"][:, 0], counts.X[:, 3])
    assert out.uns["transferome"]["missing_genes"] == ["absent1", "absent2"]
    assert list(out.obs_names) == list(adata.obs_names)


def test_project_genes_too_many_missing(counts) -> None:
    with pytest.raises(DataValidationError, match=r"3 of 4 genes \(75%\) are absent.*'x1'"):
        project_genes(counts, ["g1", "x1", "x2", "x3"], max_missing=0.5)


def test_preprocess_onto_recorded_genes(counts) -> None:
    reference = preprocess(counts, n_top_genes=6)
    genes = GeneSet.from_adata(reference)
    later = make_counts_adata(n_per_group=3, n_genes=40, seed=9)
    later = later[:, [g for g in later.var_names if g != genes.genes[0]]].copy()
    with pytest.warns(UserWarning, match=genes.genes[0]):
        out = preprocess(later, genes=genes)
    assert list(out.var_names) == list(genes.genes)
    # normalised on every gene of the later data, then projected
    full = np.log1p(later.X / later.X.sum(axis=1, keepdims=True) * 1e4)
    column = later.var_names.get_loc(genes.genes[1])
    np.testing.assert_allclose(out.X[:, 1], full[:, column], rtol=1e-5)
    assert not out.X[:, 0].any()


def test_real_counts(shared_data) -> None:
    adata = read_h5ad(shared_data / "kang_pbmc_muscat.h5ad")
    out = preprocess(adata, n_top_genes=300)
    assert out.shape == (adata.n_obs, 300)
    assert out.uns["transferome"]["preprocess"]["input"] == "counts"
    description = validate(
        out, Schema(context_key="cluster_id", perturbation_key="group_id", control="ctrl")
    )
    assert description.value_type == "log"
    again = preprocess(out, n_top_genes=300)
    np.testing.assert_array_equal(_dense(again.X), _dense(out.X))

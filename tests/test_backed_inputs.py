"""Backed AnnData (``read_h5ad(path, backed="r")``): every path gives what the in-memory data
give, reads the file in its stored dtype, leaves the file and the AnnData alone, and stops with
a clear error when it would need more memory than there is."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import transferome.data._backed as backed_module
from transferome.benchmark import run_task
from transferome.data import prepare_values, preprocess, project_genes, read_h5ad, validate
from transferome.data._backed import dense_values, in_memory, is_backed
from transferome.datasets import simulate
from transferome.errors import DataValidationError
from transferome.models import get_model

KINDS = ("dense", "sparse")
# FE draws its training blocks from chunks of the file's rows, a different (equally good)
# sample of blocks than in memory: tests/test_streaming.py compares its fits
MODELS = (
    "control",
    "additive",
    "linear",
    "similar",
    "collaborative",
    "stacked",
    "xtransfer",
    "uge",
)
# fewer training steps than the quick presets: these tests compare, they do not need a good fit
SMALLER = {
    "fe": {"max_epochs": 2, "batch_size": 60, "gene_block": 100},
    "xtransfer": {"max_epochs": 2, "batch_size": 128, "early_stopping": None},
    "uge": {"max_epochs": 3, "batch_size": 64},
}
NOT_BITWISE = {"uge"}
TARGETS = [
    ("liver", "drug_a"),
    ("kidney", "drug_b"),
    ("brain", "tetracycline"),
]


@pytest.fixture(scope="module")
def mouse() -> AnnData:
    adata = simulate(seed=0, n_genes=300, animals_per_group=3).adatas["mouse"]
    assert adata.X.dtype == np.float32
    return adata


def _with_x(adata: AnnData, x, kind: str) -> AnnData:
    out = adata.copy()
    out.X = sp.csr_matrix(x) if kind == "sparse" else np.asarray(x, dtype=np.float32)
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module", params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def log_file(mouse: AnnData, kind: str, tmp_path_factory) -> tuple[AnnData, Path]:
    """Log-normalised data in memory and the same written to an h5ad file."""
    adata = _with_x(mouse, np.asarray(mouse.X), kind)
    path = tmp_path_factory.mktemp("backed") / f"log_{kind}.h5ad"
    adata.write_h5ad(path)
    return anndata.read_h5ad(path), path


@pytest.fixture
def log_backed(log_file) -> Iterator[AnnData]:
    _, path = log_file
    adata = anndata.read_h5ad(path, backed="r")
    yield adata
    adata.file.close()


@pytest.fixture
def counts_pair(mouse: AnnData, kind: str, tmp_path) -> Iterator[tuple[AnnData, AnnData]]:
    """Raw counts in ``X``: in memory, and the same opened backed."""
    adata = _with_x(mouse, mouse.layers["counts"].toarray(), kind)
    path = tmp_path / f"counts_{kind}.h5ad"
    adata.write_h5ad(path)
    backed = anndata.read_h5ad(path, backed="r")
    yield anndata.read_h5ad(path), backed
    backed.file.close()


def _assert_same_prediction(got: AnnData, expected: AnnData, *, exact: bool = True) -> None:
    if exact:
        np.testing.assert_array_equal(got.X, expected.X)
    else:
        np.testing.assert_allclose(got.X, expected.X, rtol=1e-5, atol=1e-5)
    pd.testing.assert_frame_equal(got.obs, expected.obs)
    assert list(got.var_names) == list(expected.var_names)
    assert set(got.layers) == set(expected.layers)
    for name in expected.layers:
        np.testing.assert_array_equal(got.layers[name], expected.layers[name])


def _model(name: str):
    cls = get_model(name)
    return cls(**{**cls.fast_params, **SMALLER.get(name, {})})


def _fit_predict(name: str, adata: AnnData) -> AnnData:
    return _model(name).fit(adata).predict(adata, TARGETS)


def test_file_has_the_layout_under_test(log_file, log_backed, kind: str) -> None:
    memory, _ = log_file
    assert log_backed.isbacked
    assert isinstance(log_backed.X, h5py.Dataset) == (kind == "dense")
    assert log_backed.X.dtype == np.float32
    assert sp.issparse(memory.X) == (kind == "sparse")


def test_validate_reads_backed_file_like_memory(log_file, log_backed) -> None:
    memory, _ = log_file
    assert validate(log_backed) == validate(memory)


@pytest.mark.parametrize("name", MODELS)
def test_model_on_backed_file_predicts_as_in_memory(name: str, log_file, log_backed) -> None:
    memory, path = log_file
    before = _sha256(path)
    expected = _fit_predict(name, memory)
    got = _fit_predict(name, log_backed)
    # two fits of uge differ in float rounding even on the same in-memory data
    _assert_same_prediction(got, expected, exact=name not in NOT_BITWISE)
    assert log_backed.isbacked
    assert not log_backed.is_view
    assert _sha256(path) == before


@pytest.mark.parametrize("name", ["additive", "uge"])
def test_model_fitted_in_memory_predicts_from_backed_controls(
    name: str, log_file, log_backed
) -> None:
    memory, _ = log_file
    model = _model(name).fit(memory)
    _assert_same_prediction(model.predict(log_backed, TARGETS), model.predict(memory, TARGETS))


def test_fe_transform_and_impute_on_backed_file(log_file, log_backed) -> None:
    memory, _ = log_file
    model = _model("fe").fit(memory)
    np.testing.assert_array_equal(model.transform(log_backed), model.transform(memory))
    imputed = model.impute(log_backed)
    expected = model.impute(memory)
    assert not imputed.isbacked
    assert log_backed.isbacked
    np.testing.assert_array_equal(imputed.X, expected.X)
    pd.testing.assert_frame_equal(imputed.obs, expected.obs)


def test_run_task_on_backed_file_scores_as_in_memory(log_file, log_backed) -> None:
    memory, path = log_file
    before = _sha256(path)
    options = {"task_options": {"max_splits": 3}, "models": ["control", "additive", "linear"]}
    expected = run_task("transfer", memory, **options)
    got = run_task("transfer", log_backed, **options)
    pd.testing.assert_frame_equal(got.results, expected.results)
    assert log_backed.isbacked
    assert _sha256(path) == before


@pytest.mark.parametrize("kind", ["dense"], indirect=True)
def test_backed_dense_file_is_never_read_whole_as_another_dtype(
    log_file, log_backed, monkeypatch
) -> None:
    """Reading a float32 dataset whole through numpy with a dtype (e.g. ``np.asarray(X,
    float64)``) would double the memory; the paths read it in its stored dtype."""
    memory, _ = log_file
    original = h5py.Dataset.__array__

    def guarded(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.dtype:
            raise AssertionError(f"whole {self.dtype} dataset {self.name} read as {dtype}")
        return original(self, dtype, copy)

    monkeypatch.setattr(h5py.Dataset, "__array__", guarded)
    for name in ("control", "additive", "linear"):
        _assert_same_prediction(_fit_predict(name, log_backed), _fit_predict(name, memory))
    _fit_predict("fe", log_backed)
    loaded = in_memory(log_backed, what="test")
    assert loaded.X.dtype == np.float32
    assert not loaded.isbacked
    assert dense_values(log_backed, what="test").dtype == np.float32
    run_task("transfer", log_backed, models=["additive"], task_options={"max_splits": 2})


def test_backed_file_too_large_for_memory_is_a_clear_error(
    log_file, log_backed, monkeypatch
) -> None:
    memory, path = log_file
    before = _sha256(path)
    monkeypatch.setattr(backed_module, "_available_bytes", lambda: 1024)
    message = r"needs the whole expression matrix in memory.*backed AnnData.*to_memory\(\)"
    with pytest.raises(DataValidationError, match=rf"preprocess {message}"):
        preprocess(log_backed)
    # the paths that stream the file a block of rows at a time need no room for the matrix
    assert validate(log_backed) == validate(memory)
    for name in ("additive", "linear", "similar", "stacked"):
        _assert_same_prediction(_fit_predict(name, log_backed), _fit_predict(name, memory))
    for name in ("fe", "uge"):  # the neural models train from the file
        assert _fit_predict(name, log_backed).n_obs == len(TARGETS)
    options = {"task_options": {"max_splits": 2}, "models": ["additive", "similar"]}
    pd.testing.assert_frame_equal(
        run_task("transfer", log_backed, **options).results,
        run_task("transfer", memory, **options).results,
    )
    # an in-memory AnnData is never checked
    preprocess(memory)
    assert log_backed.isbacked
    assert _sha256(path) == before


def test_view_of_backed_file_is_measured_by_its_own_rows(log_backed, monkeypatch) -> None:
    full = backed_module._stored_x_bytes(log_backed)
    half = log_backed[: log_backed.n_obs // 2]
    assert backed_module._stored_x_bytes(half) == pytest.approx(full * half.n_obs / 180)
    monkeypatch.setattr(backed_module, "_available_bytes", lambda: int(full * 0.75))
    with pytest.raises(DataValidationError, match="needs the whole expression matrix"):
        in_memory(log_backed, what="test")
    assert in_memory(half, what="test").n_obs == half.n_obs


def test_preprocess_backed_counts_file_as_in_memory(counts_pair) -> None:
    memory, backed = counts_pair
    got = preprocess(backed, n_top_genes=50)
    expected = preprocess(memory, n_top_genes=50)
    assert not got.isbacked
    assert backed.isbacked
    assert list(got.var_names) == list(expected.var_names)
    for a, b in ((got.X, expected.X), (got.layers["counts"], expected.layers["counts"])):
        assert type(a) is type(b)
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(
            a.toarray() if sp.issparse(a) else a, b.toarray() if sp.issparse(b) else b
        )


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def test_prepare_values_of_backed_file(counts_pair, monkeypatch) -> None:
    """Raw counts on disk are normalised into a new file a block of rows at a time: the
    matrix is never held (1 KiB of memory "available"), the values are those of memory."""
    memory, backed = counts_pair
    expected = prepare_values(memory)
    monkeypatch.setattr(backed_module, "_available_bytes", lambda: 1024)
    got = prepare_values(backed)
    assert got.normalised
    assert expected.normalised
    assert got.detected == expected.detected
    assert is_backed(got.adata)
    assert backed.isbacked
    folder = Path(getattr(got.adata.X, "group", got.adata.X).file.filename).parent
    assert folder.exists()
    assert got.adata.uns["transferome"] == expected.adata.uns["transferome"]
    pd.testing.assert_frame_equal(got.adata.obs, expected.adata.obs)
    # every model streams it: the default predictor fits from the new file
    _model("stacked").fit(got.adata).predict(got.adata, TARGETS)
    monkeypatch.undo()
    loaded = in_memory(got.adata, what="test")
    np.testing.assert_array_equal(_dense(loaded.X), _dense(expected.adata.X))
    np.testing.assert_array_equal(
        _dense(loaded.layers["counts"]), _dense(expected.adata.layers["counts"])
    )
    del got, loaded
    gc.collect()
    assert not folder.exists()  # the temporary file goes with the data


def test_prepare_values_takes_a_backed_layer_without_loading_it(counts_pair, monkeypatch):
    memory, backed = counts_pair
    expected = prepare_values(memory, "log")
    monkeypatch.setattr(backed_module, "_available_bytes", lambda: 1024)
    path = Path(backed.filename)
    with_layer = read_h5ad(path, backed=True)
    with_layer.layers["raw"] = with_layer.X  # the same on-disk values as a layer
    got = prepare_values(with_layer, "log", layer="raw")
    assert is_backed(got.adata)
    assert not got.normalised
    monkeypatch.undo()
    np.testing.assert_array_equal(
        _dense(in_memory(got.adata, what="test").X), _dense(expected.adata.X)
    )


def test_prepare_values_passes_backed_log_file_through(log_backed) -> None:
    prepared = prepare_values(log_backed)
    assert prepared.adata is log_backed
    assert not prepared.normalised


def test_project_genes_of_backed_file(log_file, log_backed) -> None:
    memory, _ = log_file
    genes = [*map(str, memory.var_names[10:40]), "absent_gene"]
    with pytest.warns(UserWarning, match="absent"):
        got = project_genes(log_backed, genes)
    with pytest.warns(UserWarning, match="absent"):
        expected = project_genes(memory, genes)
    assert not got.isbacked
    assert list(got.var_names) == genes
    a, b = got.X, expected.X
    np.testing.assert_array_equal(
        a.toarray() if sp.issparse(a) else a, b.toarray() if sp.issparse(b) else b
    )


def test_evaluate_groups_scores_backed_observations_as_in_memory(log_file, log_backed) -> None:
    from transferome.data.schema import Schema
    from transferome.metrics import evaluate_groups

    schema = Schema()
    memory, path = log_file
    before = _sha256(path)
    held = (memory.obs["context"] == "liver") & (memory.obs["perturbation"] == "drug_a")
    train = memory[~held.to_numpy()].copy()
    model = get_model("additive")().fit(train, schema=schema)
    pred = model.predict(train, [("liver", "drug_a")])
    expected = evaluate_groups(pred, memory, schema=schema)
    got = evaluate_groups(pred, log_backed, schema=schema)
    pd.testing.assert_frame_equal(got, expected)
    assert log_backed.isbacked
    assert _sha256(path) == before

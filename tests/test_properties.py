"""Property-based tests: malformed input gives a transferome error with a message, never a
traceback from a dependency.

Readers get random text tables, random GCT files, random bytes and truncated copies of valid
files; validation and preprocessing get AnnData objects of random shapes, dtypes and labels,
with NaN, infinite and negative values.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_counts_adata
from transferome.data import preprocess, read, read_gct, read_table, validate, write
from transferome.errors import DataValidationError, ReaderError, TransferomeError

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

FIELD = st.one_of(
    st.integers(-5, 1000).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.sampled_from(["", "NaN", "NA", "inf", "True", "g1", "s1", "na", " "]),
    st.text(alphabet='ab1.-e,;\t"\n ', max_size=6),
)


def _outcome(call) -> object:
    """Run ``call``; a transferome error is a valid outcome, anything else fails the test."""
    try:
        return call()
    except TransferomeError as exc:
        error = exc
    assert str(error), "a transferome error must carry a message"
    return error


def _check_read(adata: object) -> None:
    if isinstance(adata, AnnData):
        assert adata.X is None or adata.X.shape == (adata.n_obs, adata.n_vars)
        _outcome(lambda: validate(adata, require_controls=False, allow_negative=True))


@FAST
@given(
    rows=st.lists(st.lists(FIELD, min_size=0, max_size=5), min_size=0, max_size=6),
    genes_in=st.sampled_from(["rows", "columns"]),
    suffix=st.sampled_from([".csv", ".tsv"]),
)
def test_random_tables(tmp_path_factory, rows, genes_in, suffix) -> None:
    sep = "," if suffix == ".csv" else "\t"
    path = tmp_path_factory.mktemp("table") / f"x{suffix}"
    path.write_text("\n".join(sep.join(r) for r in rows))
    _check_read(_outcome(lambda: read_table(path, genes_in=genes_in)))


@FAST
@given(
    dims=st.lists(st.integers(-1, 4), min_size=0, max_size=5),
    version=st.sampled_from(["#1.2", "#1.3", "#1.x"]),
    rows=st.lists(st.lists(FIELD, min_size=0, max_size=6), min_size=0, max_size=7),
)
def test_random_gct(tmp_path_factory, dims, version, rows) -> None:
    path = tmp_path_factory.mktemp("gct") / "x.gct"
    lines = [version, "\t".join(map(str, dims)), *("\t".join(r) for r in rows)]
    path.write_text("\n".join(lines))
    _check_read(_outcome(lambda: read_gct(path)))


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, Path]:
    """One small valid file per format, to truncate or corrupt."""
    folder = tmp_path_factory.mktemp("valid")
    adata = make_counts_adata(n_per_group=2, n_genes=5)
    files = {
        "x.csv": write(adata, folder / "x.csv", genes_in="rows"),
        "x.tsv.gz": write(adata, folder / "x.tsv.gz", genes_in="columns"),
        "x.gct": write(adata, folder / "x.gct"),
        "x.h5ad": write(adata, folder / "x.h5ad"),
    }
    tenx = write(adata, folder / "tenx")
    for name in ("matrix.mtx.gz", "features.tsv.gz", "barcodes.tsv.gz"):
        files[f"tenx/{name}"] = tenx / name
    return files


READ_OPTIONS = {"x.csv": {"genes_in": "rows"}, "x.tsv.gz": {"genes_in": "columns"}}


def _copy_tree(valid_files: dict[str, Path], target: Path) -> None:
    for name, source in valid_files.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(source.read_bytes())


def _read_copy(folder: Path, name: str) -> object:
    target = folder / name
    path = target.parent if name.startswith("tenx/") else target
    return _outcome(lambda: read(path, **READ_OPTIONS.get(name, {})))


@FAST
@given(
    name=st.sampled_from(
        [
            *sorted(READ_OPTIONS),
            "x.gct",
            "x.h5ad",
            "tenx/matrix.mtx.gz",
            "tenx/features.tsv.gz",
            "tenx/barcodes.tsv.gz",
        ]
    ),
    fraction=st.floats(0.0, 0.99),
)
def test_truncated_files(tmp_path_factory, valid_files, name, fraction) -> None:
    folder = tmp_path_factory.mktemp("cut")
    _copy_tree(valid_files, folder)
    data = valid_files[name].read_bytes()
    (folder / name).write_bytes(data[: int(len(data) * fraction)])
    _check_read(_read_copy(folder, name))


@FAST
@given(
    name=st.sampled_from([*sorted(READ_OPTIONS), "x.gct", "x.h5ad", "tenx/matrix.mtx.gz"]),
    junk=st.binary(min_size=0, max_size=200),
)
def test_random_bytes(tmp_path_factory, valid_files, name, junk) -> None:
    folder = tmp_path_factory.mktemp("junk")
    _copy_tree(valid_files, folder)
    (folder / name).write_bytes(junk)
    result = _read_copy(folder, name)
    if len(junk) == 0:
        assert isinstance(result, ReaderError)
    _check_read(result)


LABELS = st.sampled_from(["control", "a", "b", "a+b", "+", "", "x"])


@st.composite
def random_adata(draw) -> AnnData:
    n_obs = draw(st.integers(0, 6))
    n_vars = draw(st.integers(0, 5))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.bool_, np.complex64]))
    values = draw(
        st.lists(
            st.one_of(
                st.integers(0, 50).map(float),
                st.floats(-5, 60, allow_nan=False),
                st.sampled_from([np.nan, np.inf, -1.0, 0.5]),
            ),
            min_size=n_obs * n_vars,
            max_size=n_obs * n_vars,
        )
    )
    matrix = np.array(values, dtype=np.float64).reshape(n_obs, n_vars)
    if dtype in (np.int64, np.bool_):
        matrix = np.nan_to_num(matrix, nan=0, posinf=0, neginf=0)
    matrix = matrix.astype(dtype)
    if draw(st.booleans()) and dtype != np.bool_:
        matrix = sp.csr_matrix(matrix)
    obs = pd.DataFrame(
        {
            "context": draw(
                st.lists(st.sampled_from(["liver", "heart", None]), min_size=n_obs, max_size=n_obs)
            ),
            "perturbation": draw(st.lists(LABELS, min_size=n_obs, max_size=n_obs)),
        },
        index=[f"c{i}" for i in range(n_obs)],
    )
    var_names = [f"g{draw(st.integers(0, 6))}" for _ in range(n_vars)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Variable names are not unique")
        return AnnData(X=matrix, obs=obs, var=pd.DataFrame(index=var_names))


@FAST
@given(adata=random_adata(), require_counts=st.booleans(), allow_negative=st.booleans())
def test_validate_random_adata(adata, require_counts, allow_negative) -> None:
    result = _outcome(
        lambda: validate(adata, require_counts=require_counts, allow_negative=allow_negative)
    )
    assert not isinstance(result, TransferomeError) or isinstance(result, DataValidationError)


@FAST
@given(adata=random_adata(), n_top_genes=st.sampled_from([None, 1, 2, 3]))
def test_preprocess_random_adata(adata, n_top_genes) -> None:
    x_before = adata.X.toarray() if sp.issparse(adata.X) else np.array(adata.X)
    result = _outcome(lambda: preprocess(adata, n_top_genes=n_top_genes))
    if isinstance(result, AnnData):
        assert result.n_vars == (
            adata.n_vars if n_top_genes is None else min(n_top_genes, adata.n_vars)
        )
        assert np.isfinite(result.X.toarray() if sp.issparse(result.X) else result.X).all()
    x_after = adata.X.toarray() if sp.issparse(adata.X) else adata.X
    np.testing.assert_array_equal(x_before, x_after)

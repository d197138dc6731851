"""Readers and writers: round trips, the real L1000 GCT file, and every reader error."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tests.conftest import make_counts_adata
from transferome.data import (
    read,
    read_10x_mtx,
    read_gct,
    read_table,
    write,
    write_gct,
    write_table,
)
from transferome.errors import ReaderError


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


@pytest.fixture
def small():
    adata = make_counts_adata(n_per_group=2, n_genes=7, seed=4)
    adata.obs["dose"] = np.linspace(0.0, 1.0, adata.n_obs)
    return adata


@pytest.mark.parametrize(
    ("name", "write_kwargs", "read_kwargs", "keeps_obs"),
    [
        ("x.csv", {"genes_in": "rows", "metadata": "meta.csv"}, {"genes_in": "rows"}, True),
        ("x.tsv.gz", {"genes_in": "columns"}, {"genes_in": "columns"}, False),
        ("x.txt", {"genes_in": "rows"}, {"genes_in": "rows"}, False),
        ("x.gct", {"version": "1.3"}, {}, True),
        ("x.gct", {"version": "1.2"}, {}, False),
        ("tenx", {}, {}, False),
        ("x.h5ad", {}, {}, True),
    ],
)
def test_round_trip(  # noqa: PLR0917 - pytest passes fixtures and parameters by name
    tmp_path, small, name, write_kwargs, read_kwargs, keeps_obs
) -> None:
    before = small.copy()
    kwargs = dict(write_kwargs)
    if "metadata" in kwargs:
        kwargs["metadata"] = tmp_path / kwargs["metadata"]
        read_kwargs = {**read_kwargs, "metadata": kwargs["metadata"]}
    write(small, tmp_path / name, **kwargs)
    back = read(tmp_path / name, **read_kwargs)
    np.testing.assert_array_equal(_dense(back.X), small.X)
    assert list(back.obs_names) == list(small.obs_names)
    assert list(back.var_names) == list(small.var_names)
    if keeps_obs:
        for column in small.obs.columns:
            np.testing.assert_array_equal(
                back.obs[column].astype(str).to_numpy(), small.obs[column].astype(str).to_numpy()
            )
        np.testing.assert_allclose(back.obs["dose"].astype(float), small.obs["dose"])
    np.testing.assert_array_equal(before.X, small.X)  # the writer left the data alone
    leftovers = [p.name for p in tmp_path.rglob(".*.tmp")]
    assert leftovers == []


def test_table_float_values_and_annotations(tmp_path) -> None:
    path = tmp_path / "expr.tsv"
    path.write_text("symbol\tid\ts1\ts2\nA\tENS1\t0.5\t1e-3\nB\tENS2\tNaN\t2\n")
    adata = read_table(path, genes_in="rows", gene_column="id", annotation_columns=["symbol"])
    assert adata.shape == (2, 2)
    assert list(adata.var_names) == ["ENS1", "ENS2"]
    assert list(adata.var["symbol"]) == ["A", "B"]
    # an explicit NaN is data (validation reports it), not a ragged row
    np.testing.assert_allclose(adata.X, [[0.5, np.nan], [1e-3, 2.0]], rtol=1e-6)


def test_metadata_extra_rows_ignored_and_id_column(tmp_path) -> None:
    (tmp_path / "x.csv").write_text("gene,s1,s2\ng1,1,2\ng2,3,4\n")
    (tmp_path / "m.csv").write_text("condition,id\nctrl,s2\nstim,s1\nstim,s9\n")
    adata = read_table(
        tmp_path / "x.csv", genes_in="rows", metadata=tmp_path / "m.csv", metadata_id_column="id"
    )
    assert list(adata.obs["condition"]) == ["stim", "ctrl"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


TABLE_ERRORS = [
    ("", {}, "empty table"),
    ("gene,s1,s2\n", {}, "a header but no data rows"),
    ("gene,s1,s2\ng1,1,2\ng2,3\n", {}, "line 3 has 2 fields, expected 3"),
    ("gene,s1,s2\ng1,1,2,9\ng2,3,4\n", {}, "line 2 has 4 fields, expected 3"),
    ("gene,s1,s2\ng1,1,2\ng2,3,4,5\n", {}, "line 3 has 4 fields, expected 3"),
    ("gene,s1,s2\ng1,1,abc\n", {}, "'abc' in column 's2'"),
    ("gene,s1,s1\ng1,1,2\n", {}, r"duplicated column names.*'s1'"),
    ("gene,s1\ng1,1\ng1,2\n", {}, r"duplicated gene ids in column 'gene': \['g1'\]"),
    ("gene,s1\n,1\n", {}, "empty gene id"),
    ("gene,s1\ng1,1\n", {"gene_column": "symbol"}, "gene column 'symbol' not found"),
    ("gene\ng1\n", {}, "no expression columns"),
    ("gene,s1\ng1,1\n", {"genes_in": "sideways"}, "genes_in='rows'"),
    ("gene,s1\ng1,1\n", {"genes_in": None}, "say how the table is laid out"),
    ("gene,s1\ng1,1\n", {"sample_column": "gene"}, "sample_column is for genes_in='columns'"),
    ("gene,s1\ng1,True\n", {}, "'True' in column 's1'"),
]


@pytest.mark.parametrize(("text", "kwargs", "message"), TABLE_ERRORS)
def test_table_errors(tmp_path, text, kwargs, message) -> None:
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(ReaderError, match=message) as info:
        read_table(path, **{"genes_in": "rows", **kwargs})
    assert str(info.value).startswith(str(path))
    assert "ReaderError" not in str(info.value)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ("sample,c\ns1,a\n", r"1 sample id\(s\) of the expression table have no row.*'s2'"),
        ("sample,c\ns1,a\ns1,b\ns2,c\n", "duplicated sample ids"),
        ("sample,g2\ns1,a\ns2,b\n", r"metadata columns \['g2'\] also come from the table"),
    ],
)
def test_metadata_errors(tmp_path, meta, message) -> None:
    _write(tmp_path / "x.csv", "sample,g1,g2\ns1,1,2\ns2,3,4\n")
    _write(tmp_path / "m.csv", meta)
    with pytest.raises(ReaderError, match=message):
        read_table(
            tmp_path / "x.csv",
            genes_in="columns",
            annotation_columns=["g2"] if "also come" in message else (),
            metadata=tmp_path / "m.csv",
        )


def test_truncated_gzip_table(tmp_path, small) -> None:
    path = write_table(small, tmp_path / "x.csv.gz", genes_in="rows")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReaderError, match=r"x\.csv\.gz"):
        read_table(path, genes_in="rows")


def test_l1000_gct(shared_data) -> None:
    adata = read_gct(shared_data / "l1000_modz_3drugs_65lines.gct")
    assert adata.shape == (272, 978)
    for column in ("cell_id", "pert_iname", "pert_idose", "pert_itime"):
        assert column in adata.obs
    assert set(adata.obs["pert_iname"]) == {"vemurafenib", "atorvastatin", "venlafaxine"}
    assert adata.obs["cell_id"].nunique() == 65
    assert adata.obs["distil_nsample"].dtype.kind == "i"  # numeric metadata typed
    assert "pr_gene_symbol" in adata.var
    assert adata.var.loc["200814_at", "pr_gene_symbol"] == "PSME1"
    first = "CPC006_A549_6H:BRD-U88459701-000-01-8:10"
    assert adata.obs_names[0] == first
    assert adata.obs.loc[first, "cell_id"] == "A549"
    assert adata.X[0, adata.var_names.get_loc("200814_at")] == pytest.approx(-0.5236, abs=1e-6)
    assert np.isfinite(adata.X).all()


def test_gct_real_round_trip(shared_data, tmp_path) -> None:
    adata = read_gct(shared_data / "l1000_modz_3drugs_65lines.gct")
    back = read_gct(write_gct(adata, tmp_path / "copy.gct"))
    np.testing.assert_array_equal(back.X, adata.X)
    pd.testing.assert_frame_equal(back.obs, adata.obs)
    pd.testing.assert_frame_equal(back.var, adata.var)


GCT_OK = "#1.3\n2\t2\t1\t1\nid\tsymbol\tc1\tc2\ncell\tna\tA\tB\ng1\tX\t1\t2\ng2\tY\t3\t4\n"
GCT_ERRORS = [
    ("#1.4\n", "expected '#1.2' or '#1.3'"),
    ("gene,s1\n", "not a GCT file"),
    ("#1.3\n2 2 1\n", "line 2 must hold 4 counts"),
    ("#1.2\nx y\n", "line 2 must hold 2 counts"),
    (GCT_OK.replace("2\t2\t1\t1", "3\t2\t1\t1"), "declares 3 rows but the file holds 2"),
    (GCT_OK.rsplit("\n", 2)[0] + "\n", "declares 2 rows but the file holds 1"),
    (GCT_OK.replace("g2\tY\t3\t4", "g2\tY\t3"), "has 3 fields, expected 4"),
    (GCT_OK.replace("g1\tX\t1\t2", "g1\tX\t1\t2\t5"), "line 5 has 5 fields, expected 4"),
    (GCT_OK.replace("g2\tY\t3\t4", "g2\tY\t3\tfoo"), "'foo' in column"),
    (GCT_OK.replace("\tc2\n", "\n"), "header line has 3 fields, expected 4"),
    (GCT_OK.replace("c2", "c1"), r"duplicated column ids.*'c1'"),
    (GCT_OK.replace("g2\tY", "g1\tY"), r"duplicated row ids: \['g1'\]"),
    (GCT_OK.replace("cell\tna\tA\tB", "cell\tA\tB"), "column metadata line 4 has 3 fields"),
    ("#1.3\n2\t2\t1\t1\nid\tsymbol\tc1\tc2\n", "truncated file"),
]


@pytest.mark.parametrize(("text", "message"), GCT_ERRORS)
def test_gct_errors(tmp_path, text, message) -> None:
    path = _write(tmp_path / "bad.gct", text)
    with pytest.raises(ReaderError, match=message) as info:
        read_gct(path)
    assert "bad.gct" in str(info.value)


def test_gct_small_ok(tmp_path) -> None:
    adata = read_gct(_write(tmp_path / "ok.gct", GCT_OK))
    assert adata.shape == (2, 2)
    assert list(adata.obs["cell"]) == ["A", "B"]
    assert list(adata.var["symbol"]) == ["X", "Y"]
    np.testing.assert_array_equal(adata.X, [[1, 3], [2, 4]])


def _tenx(folder: Path, matrix: str, genes: str, barcodes: str, prefix: str = "") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / f"{prefix}matrix.mtx").write_text(matrix)
    (folder / f"{prefix}genes.tsv").write_text(genes)
    (folder / f"{prefix}barcodes.tsv").write_text(barcodes)
    return folder


MTX = "%%MatrixMarket matrix coordinate integer general\n3 2 3\n1 1 5\n3 1 1\n2 2 7\n"


def test_10x_v2_layout_with_prefix(tmp_path) -> None:
    folder = _tenx(tmp_path / "v2", MTX, "E1\tA\nE2\tB\nE3\tA\n", "c1\nc2\n", prefix="GSM1_")
    adata = read(folder / "GSM1_matrix.mtx")
    assert adata.shape == (2, 3)
    assert list(adata.var_names) == ["A", "B", "A-1"]  # duplicated symbols made unique
    assert list(adata.var["gene_ids"]) == ["E1", "E2", "E3"]
    np.testing.assert_array_equal(adata.X.toarray(), [[5, 0, 1], [0, 7, 0]])
    by_id = read_10x_mtx(folder, prefix="GSM1_", var_names="gene_ids")
    assert list(by_id.var_names) == ["E1", "E2", "E3"]


@pytest.mark.parametrize(
    ("matrix", "genes", "barcodes", "message"),
    [
        (MTX, "E1\tA\nE2\tB\n", "c1\nc2\n", "lists 2 genes"),
        (MTX, "E1\tA\nE2\tB\nE3\tC\n", "c1\nc1\n", "duplicated barcodes"),
        ("not a matrix\n", "E1\tA\n", "c1\n", "not a readable Matrix Market file"),
        (MTX.rsplit("\n", 2)[0] + "\n", "E1\tA\nE2\tB\nE3\tC\n", "c1\nc2\n", "Matrix Market"),
        (MTX, "", "c1\nc2\n", "empty file"),
    ],
)
def test_10x_errors(tmp_path, matrix, genes, barcodes, message) -> None:
    folder = _tenx(tmp_path / "bad", matrix, genes, barcodes)
    with pytest.raises(ReaderError, match=message):
        read(folder)


def test_10x_missing_files(tmp_path) -> None:
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "matrix.mtx").write_text(MTX)
    with pytest.raises(ReaderError, match=r"missing \['features.tsv"):
        read(folder)
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as handle:
        handle.write("c1\nc2\n")
    with pytest.raises(ReaderError, match="not a 10x folder"):
        read(folder)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("missing.h5ad", {}, "no such file"),
        ("x.xlsx", {}, "unknown file type '.xlsx'"),
        ("folder", {}, "not a 10x folder"),
        ("x.gct", {"genes_in": "rows"}, "bad options for the gct reader"),
        ("x.h5ad", {}, "not a readable .h5ad file"),
    ],
)
def test_read_dispatch_errors(tmp_path, name, kwargs, message) -> None:
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
    elif name != "missing.h5ad":
        path.write_text("garbage\n")
    with pytest.raises(ReaderError, match=message):
        read(path, **kwargs)


@pytest.mark.parametrize("name", ["x.csv", "x.gct", "x.h5ad"])
def test_interrupted_write_leaves_no_file(tmp_path, small, monkeypatch, name) -> None:
    target = tmp_path / name
    target_old = b"previous content"
    target.write_bytes(target_old)

    def broken(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a fi") if isinstance(path, (str, Path)) else None
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    monkeypatch.setattr(type(small), "write_h5ad", broken)
    with pytest.raises(KeyboardInterrupt):
        write(small, target, **({"genes_in": "rows"} if name == "x.csv" else {}))
    assert target.read_bytes() == target_old
    assert [p.name for p in tmp_path.iterdir()] == [name]

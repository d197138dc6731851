"""The ``info`` and ``validate`` commands on every readable format, and their errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.conftest import make_counts_adata
from transferome.cli import main
from transferome.data import Schema, read, validate, write, write_gct, write_h5ad, write_table
from transferome.errors import DataValidationError

KANG_ARGS = ["--context-key", "cell_type", "--perturbation-key", "condition"]


def test_help(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "info" in out
    assert "validate" in out
    with pytest.raises(SystemExit):
        main(["info", "--help"])
    assert "--genes-in" in capsys.readouterr().out


def test_info_kang_table(shared_data, capsys) -> None:
    path = shared_data / "kang_pbmc_scgen_valid.h5ad"
    assert main(["info", str(path), *KANG_ARGS, "--control", "control"]) == 0
    out = capsys.readouterr().out
    assert "1975 observations x 6998 genes" in out
    assert "values (X): log" in out
    rows = [line for line in out.splitlines() if "Mono" in line or "CD4T" in line]
    assert len(rows) == 3
    assert any("CD14+Mono" in r and "238" in r and "83" in r for r in rows)
    for cell_type in ("B", "CD8T", "Dendritic", "FCGR3A+Mono", "NK"):
        assert cell_type in out
    assert "control" in out
    assert "stimulated" in out


def test_info_gct(shared_data, capsys) -> None:
    path = shared_data / "l1000_modz_3drugs_65lines.gct"
    args = ["--context-key", "cell_id", "--perturbation-key", "pert_iname"]
    code = main(["info", str(path), *args, "--control", "atorvastatin", "--allow-negative"])
    assert code == 0
    out = capsys.readouterr().out
    assert "272 observations x 978 genes" in out
    assert "signed" in out
    assert "vemurafenib" in out


def test_info_and_validate_table_with_metadata(tmp_path, capsys) -> None:
    adata = make_counts_adata(n_per_group=2, n_genes=6)
    write_table(adata, tmp_path / "x.tsv", genes_in="rows", metadata=tmp_path / "meta.csv")
    args = [str(tmp_path / "x.tsv"), "--genes-in", "rows", "--metadata", str(tmp_path / "meta.csv")]
    assert main(["info", *args]) == 0
    out = capsys.readouterr().out
    assert "18 observations x 6 genes" in out
    assert "counts" in out
    assert main(["validate", *args, "--require-counts"]) == 0
    assert "valid (18 observations x 6 genes, counts, 3 contexts, 2 perturbations)" in (
        capsys.readouterr().out
    )


def test_info_describes_a_file_without_keys(shared_data, tmp_path, capsys) -> None:
    # Baron has neither 'context' nor 'perturbation': info lists the obs columns instead
    assert main(["info", str(shared_data / "baron_pancreas_human.h5ad")]) == 0
    out = capsys.readouterr().out
    assert "2142 observations x 20125 genes" in out
    assert "values (X): counts" in out
    assert "human3 (914)" in out  # the donor column with its levels and counts
    assert "cell_ontology_class" in out
    assert "no obs column 'context' or 'perturbation'" in out
    # a 10x folder has no obs columns at all
    write(make_counts_adata(n_per_group=2, n_genes=6), tmp_path / "tenx")
    assert main(["info", str(tmp_path / "tenx")]) == 0
    assert "obs columns: none" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "tenx"), "--layer", "nope"]) == 2
    assert "layer 'nope' not found" in capsys.readouterr().err


def test_validate_10x_folder(tmp_path, capsys) -> None:
    write(make_counts_adata(n_per_group=2, n_genes=6), tmp_path / "tenx")
    # a 10x folder has no obs keys: the message names the missing key
    assert main(["validate", str(tmp_path / "tenx")]) == 2
    assert "obs key 'context' (given as context_key) is missing" in capsys.readouterr().err


def _bad(kind: str):
    """(AnnData, extra command-line options, expected message) for each validation error."""
    adata = make_counts_adata(n_per_group=2, n_genes=6)
    options: list[str] = []
    if kind == "missing key":
        options = ["--context-key", "tissue"]
        message = "obs key 'tissue' (given as context_key) is missing"
    elif kind == "control absent":
        options = ["--control", "vehicle"]
        message = "control label 'vehicle' not found in obs['perturbation']; labels present: ["
    elif kind == "context without control":
        keep = ~((adata.obs.context == "heart") & (adata.obs.perturbation == "control"))
        adata = adata[keep.to_numpy()].copy()
        message = "context(s) ['heart'] in obs['context'] have no 'control' observations"
    elif kind in ("nan", "inf", "negative"):
        adata.X[2, 3] = {"nan": np.nan, "inf": np.inf, "negative": -3.0}[kind]
        message = {"nan": "1 NaN", "inf": "1 infinite", "negative": "1 negative entries"}[kind]
    elif kind == "not counts":
        adata.X = adata.X + 0.25
        options = ["--require-counts"]
        message = "raw counts are required"
    elif kind in ("duplicated obs", "duplicated var"):
        axis = kind.split()[1]
        names = list(getattr(adata, f"{axis}_names"))
        names[1] = names[0]
        setattr(adata, f"{axis}_names", names)
        message = f"duplicated {axis} names"
    elif kind == "empty":
        adata = adata[:0].copy()
        message = "the data are empty (0 observations x 6 genes)"
    else:  # pragma: no cover - guards the parametrization
        raise AssertionError(kind)
    return adata, options, message


VALIDATION_ERRORS = [
    "missing key",
    "control absent",
    "context without control",
    "nan",
    "inf",
    "negative",
    "not counts",
    "duplicated obs",
    "duplicated var",
    "empty",
]


@pytest.mark.parametrize("kind", VALIDATION_ERRORS)
def test_validate_crafted_bad_h5ad(tmp_path, capsys, kind) -> None:
    adata, options, message = _bad(kind)
    path = tmp_path / "bad.h5ad"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "(Observation|Variable) names are not unique")
        write_h5ad(adata, path)
    assert main(["validate", str(path), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    # the same error from the function, on the file read back
    flags = {"--require-counts": {"require_counts": True}}
    kwargs: dict = {}
    keys: dict = {}
    for i, option in enumerate(options):
        if option in flags:
            kwargs.update(flags[option])
        elif option.startswith("--"):
            keys[option[2:].replace("-", "_")] = options[i + 1]
    with pytest.raises(DataValidationError) as info:
        validate(read(path), Schema(**keys), **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("kind", ["nan", "negative", "control absent", "not counts"])
def test_validate_crafted_bad_gct(tmp_path, capsys, kind) -> None:
    adata, options, message = _bad(kind)
    path = write_gct(adata, tmp_path / "bad.gct")
    assert main(["validate", str(path), *options]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("bad.h5ad", "not hdf5", [], "not a readable .h5ad file"),
        ("bad.csv", "gene,s1,s2\ng1,1,2\ng2,3\n", ["--genes-in", "rows"], "line 3 has 2 fields"),
        ("bad.csv", "gene,s1\ng1,1\n", [], "genes_in='rows' (one gene per row)"),
        ("bad.gct", "#1.3\n1\t1\t0\t0\nid\ts1\n", [], "declares 1 rows but the file holds 0"),
        ("bad.h5ad", "x", ["--genes-in", "rows"], "--genes-in applies to table input"),
        ("bad.parquet", "x", [], "unknown file type '.parquet'"),
        ("missing.h5ad", None, [], "no such file or directory"),
    ],
)
@pytest.mark.parametrize("command", ["info", "validate"])
def test_bad_file(  # noqa: PLR0917 - pytest passes fixtures and parameters by name
    tmp_path, capsys, command, name, content, options, message
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert main([command, str(path), *options]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    assert message in captured.err
    assert str(path) in captured.err
    assert "Traceback" not in captured.err

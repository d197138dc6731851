"""Reactome vectors computed by hand on tiny data."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from transferome.crossspecies import Reactome, reactome
from transferome.data import Schema
from transferome.errors import DataValidationError


def _tiny(*, with_samples: bool = False) -> AnnData:
    rows = [
        ("liver", "control", "a1", [1.0, 0.5]),
        ("liver", "control", "a2", [3.0, 0.5]),
        ("liver", "drug", "a3", [4.0, 1.5]),
        ("liver", "drug", "a4", [6.0, 2.5]),
        ("heart", "control", "a5", [2.0, 1.0]),
        ("heart", "other", "a6", [2.5, 0.0]),
    ]
    obs = pd.DataFrame(
        {
            "context": [r[0] for r in rows],
            "perturbation": [r[1] for r in rows],
            "sample": [r[2] for r in rows],
        },
        index=[f"o{i}" for i in range(len(rows))],
    )
    if not with_samples:
        obs = obs.drop(columns="sample")
    x = np.array([r[3] for r in rows], dtype=np.float32)
    return AnnData(X=x, obs=obs, var=pd.DataFrame(index=["geneA", "geneB"]))


def test_values_by_hand() -> None:
    result = reactome(_tiny())
    assert isinstance(result, Reactome)
    assert list(result.pairs) == [
        ("heart", "drug"),
        ("heart", "other"),
        ("liver", "drug"),
        ("liver", "other"),
    ]
    assert result.values.loc["geneA", ("liver", "drug")] == pytest.approx(3.0)
    assert result.values.loc["geneB", ("liver", "drug")] == pytest.approx(1.5)
    assert result.values.loc["geneA", ("heart", "other")] == pytest.approx(0.5)
    # never measured: no treated observations
    assert np.isnan(result.values.loc["geneA", ("heart", "drug")])
    assert np.isnan(result.values.loc["geneA", ("liver", "other")])
    # Welch standard error: var_t = 2, var_c = 2, n = 2 each
    assert result.se.loc["geneA", ("liver", "drug")] == pytest.approx(np.sqrt(2.0))
    # a single observation on either side gives no standard error
    assert np.isnan(result.se.loc["geneA", ("heart", "other")])
    assert result.n.loc[("liver", "drug")].tolist() == [2, 2]
    assert result.n.loc[("heart", "other")].tolist() == [1, 1]
    assert result.n.loc[("heart", "drug")].tolist() == [0, 1]
    assert list(result.measured_pairs()) == [("heart", "other"), ("liver", "drug")]


def test_samples_are_the_replicates() -> None:
    adata = _tiny(with_samples=True)
    # two cells of the same animal: averaged first, so still two liver-control replicates
    extra = adata[adata.obs_names == "o0"].copy()
    extra.obs_names = ["o0b"]
    extra.X = np.array([[1.0, 0.5]], dtype=np.float32)
    data = ad.concat([adata, extra])
    by_sample = reactome(data)
    by_cell = reactome(data, by_sample=False)
    assert by_sample.n.loc[("liver", "drug"), "n_control"] == 2
    assert by_cell.n.loc[("liver", "drug"), "n_control"] == 3
    # by sample: control mean (1 + 3) / 2 = 2 -> change 3; by cell: (1 + 1 + 3) / 3
    assert by_sample.values.loc["geneA", ("liver", "drug")] == pytest.approx(3.0)
    assert by_cell.values.loc["geneA", ("liver", "drug")] == pytest.approx(5.0 - 5.0 / 3)


def test_input_is_not_modified_and_tidy_table() -> None:
    adata = _tiny()
    before = adata.X.copy()
    result = reactome(adata, schema=Schema(species_key=None))
    np.testing.assert_array_equal(adata.X, before)
    tidy = result.tidy()
    assert len(tidy) == 2 * 4
    assert set(tidy.columns) >= {"gene", "context", "perturbation", "value", "se", "n_treated"}
    row = tidy[(tidy.gene == "geneA") & (tidy.context == "liver") & (tidy.perturbation == "drug")]
    assert row["value"].item() == pytest.approx(3.0)


def test_species_selection_and_errors() -> None:
    adata = _tiny()
    adata.obs["species"] = ["mouse", "mouse", "mouse", "mouse", "rat", "rat"]
    with pytest.raises(DataValidationError, match="several species"):
        reactome(adata)
    mouse = reactome(adata, species="mouse")
    assert mouse.species == "mouse"
    assert mouse.values.loc["geneA", ("liver", "drug")] == pytest.approx(3.0)
    with pytest.raises(DataValidationError, match="'dog' not found"):
        reactome(adata, species="dog")
    counts = _tiny()
    counts.X = np.round(counts.X * 10)
    with pytest.raises(DataValidationError, match="log-normalised"):
        reactome(counts)
    controls_only = _tiny()
    controls_only.obs["perturbation"] = "control"
    with pytest.raises(DataValidationError, match="only the control"):
        reactome(controls_only)
    with pytest.raises(DataValidationError, match="missing"):
        reactome(_tiny(), schema=Schema(context_key="organ"))


def test_only_measured_hides_the_other_cells() -> None:
    from transferome.crossspecies import measured_cells, only_measured

    full = {"mouse": reactome(_tiny())}
    assert measured_cells(full) == {("mouse", "liver", "drug"), ("mouse", "heart", "other")}
    partial = only_measured(full, {("mouse", "liver", "drug")})
    assert measured_cells(partial) == {("mouse", "liver", "drug")}
    assert np.isnan(partial["mouse"].values[("heart", "other")]).all()
    assert partial["mouse"].n.loc[("heart", "other"), "n_treated"] == 0
    # the input is left as it was
    assert measured_cells(full) == {("mouse", "liver", "drug"), ("mouse", "heart", "other")}

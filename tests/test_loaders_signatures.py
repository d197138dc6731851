"""Loaders of the signature files (Tahoe, Perturb-seq, DrugMatrix), sci-Plex3 and TG-GATEs rat."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from transferome.data import validate
from transferome.datasets import (
    load_drugmatrix_signatures,
    load_perturbseq_signatures,
    load_sciplex3_pseudobulk,
    load_tahoe_signatures,
    load_tggates_rat_liver,
)
from transferome.errors import ReaderError

SCHEMA_KEYS = ("species", "context", "perturbation")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _check_keys(adata: AnnData, species: str) -> None:
    for key in SCHEMA_KEYS:
        assert key in adata.obs.columns
    assert set(adata.obs["species"]) == {species}
    assert "control" in set(adata.obs["perturbation"])


def _check_zero_controls(adata: AnnData, n_signatures: int, n_contexts: int) -> np.ndarray:
    """Every context has one all-zero control row after the signatures; returns the mask."""
    assert adata.n_obs == n_signatures + n_contexts
    assert adata.uns["transferome"]["values"] == "delta"
    assert adata.uns["transferome"]["zero_controls"] is True
    controls = (adata.obs["perturbation"] == "control").to_numpy()
    assert controls.sum() == n_contexts
    assert set(adata.obs.loc[controls, "context"]) == set(adata.obs["context"])
    assert np.all(np.asarray(adata.X)[controls] == 0)
    for layer in adata.layers.values():
        assert np.all(np.asarray(layer)[controls] == 0)
    return controls


def test_tahoe_signatures_keep_nan(shared_data: Path) -> None:
    path = shared_data / "sigrecon_tahoe_rank_signatures.h5ad"
    before = _md5(path)
    adata = load_tahoe_signatures(path)
    assert _md5(path) == before
    assert adata.n_vars == 6764
    _check_keys(adata, "human")
    controls = _check_zero_controls(adata, 1010, 10)
    signatures = np.asarray(adata.X)[~controls]
    assert adata.obs["context"].nunique() == 10
    assert adata.obs.loc[~controls, "perturbation"].nunique() == 101
    assert 0.01 < np.isnan(signatures).mean() < 0.05  # not-ranked genes stay NaN
    assert np.nanmin(signatures) == -1.0
    assert np.nanmax(signatures) == 1.0
    assert "sig_up" in adata.layers
    assert {"cell_line", "n_ranked"} <= set(adata.obs.columns)
    assert "description" in adata.uns
    plain = load_tahoe_signatures(path, add_zero_controls=False)
    assert plain.n_obs == 1010
    assert "control" not in set(plain.obs["perturbation"])
    assert plain.uns["transferome"]["zero_controls"] is False


def test_perturbseq_signatures_keep_nan(shared_data: Path) -> None:
    adata = load_perturbseq_signatures(shared_data / "sigrecon_perturbseq_rank_signatures.h5ad")
    assert adata.n_vars == 7225
    _check_keys(adata, "human")
    controls = _check_zero_controls(adata, 1170, 2)
    assert set(adata.obs["context"]) == {"K562", "RPE1"}
    knockdowns = adata.obs.loc[~controls]
    assert knockdowns["perturbation"].nunique() == 585
    assert knockdowns.groupby("perturbation", observed=True)["context"].nunique().eq(2).all()
    signatures = np.asarray(adata.X)[~controls]
    # only the 1,000 most up-regulated genes of each knock-down are scored; NaN elsewhere
    np.testing.assert_array_equal((~np.isnan(signatures)).sum(axis=1), 1000)
    assert np.nanmin(signatures) == pytest.approx(0.001)
    assert np.nanmax(signatures) == 1.0


def test_drugmatrix_signatures(shared_data: Path) -> None:
    adata = load_drugmatrix_signatures(shared_data / "sigrecon_drugmatrix_rank_signatures.h5ad")
    assert adata.n_vars == 15248
    _check_keys(adata, "rat")
    controls = _check_zero_controls(adata, 78, 2)
    assert set(adata.obs["context"]) == {"liver", "kidney"}
    assert adata.obs.loc[~controls, "perturbation"].nunique() == 39
    assert "A1bg" in adata.var_names  # mouse symbols
    assert not np.isnan(np.asarray(adata.X)).any()
    assert validate(adata, allow_negative=True).value_type == "signed"


def test_sciplex3_pseudobulk(shared_data: Path) -> None:
    adata = load_sciplex3_pseudobulk(shared_data / "sciplex3_pseudobulk_9drugs_3lines.h5ad")
    assert adata.shape == (30, 3000)
    _check_keys(adata, "human")
    assert adata.uns["transferome"]["values"] == "log"
    description = validate(adata, allow_negative=True)
    assert set(description.contexts) == {"A549", "K562", "MCF7"}
    assert len(description.perturbations) == 9
    assert (adata.obs["perturbation"] == "control").sum() == 3
    assert {"cell_line", "is_control", "dataset"} <= set(adata.obs.columns)
    assert "ensembl_id" in adata.var.columns
    assert validate(adata).value_type == "log"


def test_tggates_rat_liver_dose_time(shared_data: Path) -> None:
    adata = load_tggates_rat_liver(shared_data / "tggates_rat_liver_wy14643_dose_time.h5ad")
    assert adata.shape == (48, 11886)
    _check_keys(adata, "rat")
    info = adata.uns["transferome"]
    assert info["values"] == "log2"
    assert info["rescaled_per_gene"] is True
    description = validate(adata, allow_negative=True)
    assert set(description.contexts) == {"liver_4d", "liver_8d", "liver_15d", "liver_29d"}
    assert set(description.perturbations) == {
        "WY-14643_10mg/kg",
        "WY-14643_30mg/kg",
        "WY-14643_100mg/kg",
    }
    obs = adata.obs
    is_control = obs["perturbation"] == "control"
    assert is_control.sum() == 12
    assert (obs.loc[is_control, "dose"] == 0).all()
    assert (obs.loc[~is_control, "dose"] > 0).all()
    assert obs.groupby(["context", "perturbation"], observed=True).size().eq(3).all()
    assert set(obs["time"]) == {4.0, 8.0, 15.0, 29.0}
    assert obs["sample"].is_unique
    assert set(obs["context_original"]) == {"rat_liver_in_vivo"}
    assert set(obs["perturbation_original"]) == {"control", "WY-14643"}


def _write(tmp_path: Path, obs: dict[str, list], name: str = "broken.h5ad") -> Path:
    n = len(next(iter(obs.values())))
    frame = pd.DataFrame(obs, index=[f"r{i}" for i in range(n)])
    adata = AnnData(
        X=np.zeros((n, 3), dtype=np.float32),
        obs=frame,
        var=pd.DataFrame(index=["g0", "g1", "g2"]),
    )
    path = tmp_path / name
    adata.write_h5ad(path)
    return path


@pytest.mark.parametrize(
    ("loader", "obs", "missing"),
    [
        (load_tahoe_signatures, {"context": ["A", "B"]}, "perturbation"),
        (load_perturbseq_signatures, {"perturbation": ["g", "g"]}, "context"),
        (load_drugmatrix_signatures, {"organ": ["liver", "kidney"]}, "context"),
        (load_sciplex3_pseudobulk, {"perturbation": ["control", "d"]}, "cell_line"),
        (
            load_tggates_rat_liver,
            {"compound": ["WY", "WY"], "dose_mg_per_kg": [0.0, 10.0]},
            "time_days",
        ),
    ],
)
def test_missing_column_is_named(
    tmp_path: Path, loader: Callable[[Path], AnnData], obs: dict[str, list], missing: str
) -> None:
    path = _write(tmp_path, obs)
    with pytest.raises(ReaderError, match=rf"broken\.h5ad.*'{missing}'"):
        loader(path)


def test_signature_file_with_controls_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, {"context": ["A", "B"], "perturbation": ["control", "d"]})
    with pytest.raises(ReaderError, match="already has 'control'"):
        load_tahoe_signatures(path)


def test_sciplex3_without_vehicle_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, {"cell_line": ["A", "B"], "perturbation": ["d", "d"]})
    with pytest.raises(ReaderError, match="no 'control'"):
        load_sciplex3_pseudobulk(path)


def test_wrong_suffix_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "signatures.csv"
    path.write_text("a,b\n")
    with pytest.raises(ReaderError, match=r"signatures\.csv"):
        load_drugmatrix_signatures(path)

"""``transferome simulate`` writes the atlas and its truth; ``transferome info`` reads it back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferome.cli import main
from transferome.data import read_h5ad, validate


@pytest.fixture(scope="module")
def atlas_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "atlas"
    assert main(["simulate", "--out", str(out), "--quick", "--seed", "2"]) == 0
    return out


def test_simulate_writes_the_atlas(atlas_dir: Path) -> None:
    names = sorted(p.name for p in atlas_dir.iterdir())
    assert names == ["mouse.h5ad", "orthologs.csv", "rat.h5ad", "truth"]
    truth = sorted(p.name for p in (atlas_dir / "truth").iterdir())
    assert truth == [
        "correspondence.csv",
        "drugs.csv",
        "exposure.csv",
        "mouse_loadings.csv",
        "mouse_means.h5ad",
        "program_effects.csv",
        "rat_loadings.csv",
        "rat_means.h5ad",
    ]
    assert not [p for p in atlas_dir.rglob(".*.tmp")]  # no temporary files left behind
    mouse = read_h5ad(atlas_dir / "mouse.h5ad")
    description = validate(mouse, layer="counts", require_counts=True)
    assert description.species == ("mouse",)
    assert "PBMC" in description.contexts
    orthologs = pd.read_csv(atlas_dir / "orthologs.csv")
    assert set(orthologs["source_gene"]) <= set(mouse.var_names)
    means = read_h5ad(atlas_dir / "truth" / "mouse_means.h5ad")
    assert list(means.var_names) == list(mouse.var_names)
    assert "change" in means.layers
    correspondence = pd.read_csv(atlas_dir / "truth" / "correspondence.csv")
    assert correspondence["diverged"].any()


def test_same_seed_same_files(atlas_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert main(["simulate", "--out", str(again), "--quick", "--seed", "2"]) == 0
    a, b = read_h5ad(atlas_dir / "rat.h5ad"), read_h5ad(again / "rat.h5ad")
    assert np.array_equal(a.layers["counts"].toarray(), b.layers["counts"].toarray())


def test_info_reads_it_back(atlas_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(atlas_dir / "mouse.h5ad")]) == 0
    out = capsys.readouterr().out
    assert "tetracycline" in out
    assert "PBMC" in out
    assert "species: mouse" in out


def test_refuses_non_empty_folder(atlas_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (atlas_dir / "mouse.h5ad").stat().st_mtime_ns
    assert main(["simulate", "--out", str(atlas_dir), "--quick"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (atlas_dir / "mouse.h5ad").stat().st_mtime_ns == before


def test_overwrite_and_single_cell(tmp_path: Path) -> None:
    out = tmp_path / "cells"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    args = ["simulate", "--out", str(out), "--quick", "--mode", "single_cell", "--overwrite"]
    assert main(args) == 0
    assert (out / "notes.txt").read_text() == "keep me"
    human = read_h5ad(out / "human.h5ad")
    description = validate(human)
    assert description.combinations
    assert pd.read_csv(out / "orthologs.csv").empty

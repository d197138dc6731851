"""Command line: run, init-config, and the single steps fit / predict / evaluate / map-genes."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml

from transferome.cli import main
from transferome.datasets import simulate


@pytest.fixture(scope="module")
def atlas_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("atlas")
    atlas = simulate(
        n_genes=60,
        n_programs=4,
        contexts=("liver", "kidney", "brain"),
        drugs=("tetracycline", "drug_a"),
        animals_per_group=2,
        blood_days=(),
    )
    paths = {}
    for species, adata in atlas.adatas.items():
        paths[species] = folder / f"{species}.h5ad"
        adata.write_h5ad(paths[species])
    paths["orthologs"] = folder / "orthologs.csv"
    atlas.orthologs.to_csv(paths["orthologs"], index=False)
    return paths


def _config(paths) -> dict:
    return {
        "data": {
            "path": {"mouse": str(paths["mouse"]), "rat": str(paths["rat"])},
            "orthologs": str(paths["orthologs"]),
        },
        "models": {"control": {}, "additive": {}},
        "tasks": {"transfer": {"max_splits": 2}, "gene_mapping": {"methods": ["ortholog"]}},
    }


def test_init_config_writes_a_valid_template(tmp_path, capsys):
    file = tmp_path / "my.yaml"
    assert main(["init-config", str(file)]) == 0
    assert "# transferome run configuration" in file.read_text()
    assert main(["run", "--config", str(file), "--check"]) == 0
    assert "configuration is valid" in capsys.readouterr().out
    assert main(["init-config", str(file)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["init-config", str(file), "--quick", "--overwrite"]) == 0


def test_invalid_config_fails_before_training_naming_the_field(tmp_path, atlas_files, capsys):
    raw = _config(atlas_files)
    raw["models"]["additive"] = {"smoothing": 2}
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(raw))
    assert main(["run", "--config", str(file), "--out", str(tmp_path / "out")]) == 2
    assert "models.additive.smoothing" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["run", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_run_on_user_files(tmp_path, atlas_files, capsys):
    file = tmp_path / "run.yaml"
    file.write_text(yaml.safe_dump(_config(atlas_files)))
    out = tmp_path / "results"
    assert main(["-q", "run", "--config", str(file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "report.html" in printed
    # task by task, who wins against the strongest baseline (files: no simulated truth)
    transfer = next(line for line in printed.splitlines() if line.startswith("Perturbation"))
    assert transfer.startswith(
        "Perturbation transfer across contexts: additive wins on pearson_delta (mean); additive "
    )
    assert "truth" not in transfer
    assert (out / "report.html").is_file()
    assert (out / "config.original.yaml").read_text() == file.read_text()
    summary = pd.read_csv(out / "tables" / "transfer_summary.csv")
    assert set(summary["model"]) == {"control", "additive", "ceiling"}
    mapping = pd.read_csv(out / "tables" / "gene_mapping_mappings.csv")
    assert set(mapping["method"]) == {"ortholog"}
    assert "gene_mapping_precision.csv" not in {p.name for p in (out / "tables").iterdir()}
    # a second run into the same folder is refused without --overwrite
    assert main(["run", "--config", str(file), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_fit_predict_evaluate(tmp_path, atlas_files, capsys):
    mouse = ad.read_h5ad(atlas_files["mouse"])
    train = mouse[
        ~((mouse.obs["context"] == "liver") & (mouse.obs["perturbation"] == "drug_a"))
    ].copy()
    train_file = tmp_path / "train.h5ad"
    train.write_h5ad(train_file)
    model = tmp_path / "model"
    assert main(["fit", str(train_file), "--model", "additive", "--out", str(model)]) == 0
    assert (model / "model.json").is_file()
    assert main(["fit", str(train_file), "--model", "linear", "--out", str(tmp_path / "m2"),
                 "--param", "ranks=[0, 1]", "--param", "n_iter=3"]) == 0  # fmt: skip
    assert main(["fit", str(train_file), "--model", "linear", "--out", str(tmp_path / "m3"),
                 "--param", "rank=1"]) == 2  # fmt: skip
    assert "rank" in capsys.readouterr().err
    pred = tmp_path / "pred.h5ad"
    code = main(
        ["predict", str(model), str(train_file), "--target", "liver:drug_a", "--out", str(pred)]
    )
    assert code == 0
    layout = ad.read_h5ad(pred)
    controls = (train.obs["context"] == "liver") & (train.obs["perturbation"] == "control")
    assert layout.n_obs == int(controls.sum()) + 1
    assert set(layout.obs["perturbation"]) == {"control", "drug_a"}
    assert set(layout.obs["context"]) == {"liver"}
    assert float(np.min(layout.X)) < 0.0  # written as predicted, as benchmark scores it
    clipped = tmp_path / "clipped.h5ad"
    args = ["predict", str(model), str(train_file), "--target", "liver:drug_a", "--clip-negative"]
    assert main([*args, "--out", str(clipped)]) == 0
    assert float(np.min(ad.read_h5ad(clipped).X)) >= 0.0
    assert list(layout.var_names) == list(train.var_names)
    metrics = tmp_path / "metrics.csv"
    assert main(["evaluate", str(pred), str(atlas_files["mouse"]), "--out", str(metrics)]) == 0
    table = pd.read_csv(metrics)
    assert set(table["perturbation"]) == {"drug_a"}
    r2 = table.loc[table["metric"] == "r2", "value"].item()
    assert 0.5 < r2 <= 1.0


def test_map_genes_command(tmp_path, atlas_files):
    out = tmp_path / "mapping.csv"
    args = [
        "map-genes",
        str(atlas_files["mouse"]),
        str(atlas_files["rat"]),
        "--method",
        "combined",
        "--orthologs",
        str(atlas_files["orthologs"]),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    mapping = pd.read_csv(out)
    rat = ad.read_h5ad(atlas_files["rat"])
    assert set(mapping["target_gene"]) == set(rat.var_names)
    assert mapping["rank"].dropna().min() == 1
    assert main(args) == 2


def test_suggest_command(tmp_path, atlas_files, capsys):
    rat = ad.read_h5ad(atlas_files["rat"])
    unmeasured = (rat.obs["context"] == "brain") & (rat.obs["perturbation"] == "drug_a")
    rat_file = tmp_path / "rat.h5ad"
    rat[~unmeasured.to_numpy()].copy().write_h5ad(rat_file)
    out = tmp_path / "suggestions.csv"
    args = [
        "suggest",
        f"mouse={atlas_files['mouse']}",
        f"rat={rat_file}",
        "--orthologs",
        str(atlas_files["orthologs"]),
        "--budget",
        "3",
        "--n-models",
        "2",
        "--epochs",
        "30",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    table = pd.read_csv(out)
    # the only unmeasured cell of the design is the one suggested
    assert table[["species", "context", "perturbation"]].values.tolist() == [
        ["rat", "brain", "drug_a"]
    ]
    assert "1. rat brain drug_a" in capsys.readouterr().out
    # the completion ensemble is the other ranking
    out_ensemble = tmp_path / "ensemble.csv"
    ensemble_args = [*args[:-1], str(out_ensemble), "--method", "ensemble"]
    assert main(ensemble_args) == 0
    table = pd.read_csv(out_ensemble)
    assert table[["species", "context", "perturbation"]].values.tolist() == [
        ["rat", "brain", "drug_a"]
    ]
    assert "own_error" not in table.columns

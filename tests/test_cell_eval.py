"""The h5ad written by ``transferome predict`` is read by the independent evaluator cell-eval,
and its ``pearson_delta`` equals ours."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest

from transferome.cli import main
from transferome.data import Schema
from transferome.datasets import simulate
from transferome.metrics import evaluate_groups


def test_cell_eval_pearson_delta_equals_ours(tmp_path):
    cell_eval = pytest.importorskip("cell_eval", reason="cell-eval is a test extra")
    atlas = simulate(
        n_genes=60,
        n_programs=4,
        contexts=("liver", "kidney", "brain"),
        drugs=("tetracycline", "drug_a"),
        animals_per_group=3,
        blood_days=(),
    )
    mouse = atlas.adatas["mouse"]
    held = (mouse.obs["context"] == "liver") & mouse.obs["perturbation"].isin(
        ["drug_a", "tetracycline"]
    )
    train_file = tmp_path / "train.h5ad"
    mouse[~held.to_numpy()].copy().write_h5ad(train_file)
    model = tmp_path / "model"
    assert main(["fit", str(train_file), "--model", "additive", "--out", str(model)]) == 0
    pred_file = tmp_path / "pred.h5ad"
    targets = ["--target", "liver:drug_a", "--target", "liver:tetracycline"]
    predict = ["predict", str(model), str(train_file), *targets, "--replicates", "3"]
    assert main([*predict, "--out", str(pred_file)]) == 0

    pred = ad.read_h5ad(pred_file)
    liver = mouse[(mouse.obs["context"] == "liver").to_numpy()]
    real = ad.AnnData(
        X=np.asarray(liver.X, dtype=np.float32),
        obs=liver.obs[["context", "perturbation"]].astype(str),
        var=liver.var.copy(),
    )
    pred.obs = pred.obs[["context", "perturbation"]].astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # third-party deprecations inside cell-eval
        evaluator = cell_eval.MetricsEvaluator(
            pred,
            real,
            control_pert="control",
            pert_col="perturbation",
            num_threads=1,
            outdir=str(tmp_path / "cell-eval"),
            skip_de=True,
        )
        results, _ = evaluator.compute(profile="anndata", write_csv=False)
    theirs = dict(zip(results["perturbation"], results["pearson_delta"], strict=True))

    predicted_rows = pred[(pred.obs["perturbation"] != "control").to_numpy()]
    ours = evaluate_groups(predicted_rows, mouse, schema=Schema())
    ours = ours[ours["metric"] == "pearson_delta"].set_index("perturbation")["value"]
    assert set(theirs) == {"drug_a", "tetracycline"}
    for perturbation, value in theirs.items():
        assert value == pytest.approx(ours[perturbation], abs=1e-5)
    assert 0.3 < min(theirs.values()) <= 1.0

"""End to end: every task of ``transferome run`` on a tiny simulated atlas, and atomic outputs."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from transferome.pipeline import STAGES, Progress, run_pipeline, validate_config
from transferome.pipeline.steps import load_model

TINY = {
    "seed": 0,
    "n_degs": 20,
    "data": {
        "simulate": {
            "mode": "bulk",
            "n_genes": 60,
            "n_programs": 4,
            "contexts": ["liver", "kidney", "brain"],
            "drugs": ["tetracycline", "drug_a"],
            "animals_per_group": 2,
            "blood_days": [],
        }
    },
    "combination_data": {
        "simulate": {
            "mode": "single_cell",
            "n_genes": 60,
            "contexts": ["A549", "K562"],
            "drugs": ["drug_01", "drug_02", "drug_03"],
            "combinations": 1,
            "cells_per_group": 5,
            "doses": [1.0],
        }
    },
    "models": {
        "control": {},
        "additive": {},
        "linear": {"ranks": [0, 1], "penalties": [1.0], "n_iter": 5},
        "stacked": {"max_pseudo_targets": 50},
        "xtransfer": {"hidden": [16], "latent_dim": 4, "max_epochs": 1, "batch_size": 64},
        "fe": {
            "embedding_dim": 4,
            "hidden": [8],
            "max_epochs": 1,
            "batch_size": 64,
            "gene_block": 64,
            "transform_epochs": 5,
        },
        "uge": {
            "n_tokens": 8,
            "n_decode": 16,
            "d_model": 8,
            "n_layers": 1,
            "n_heads": 2,
            "d_ff": 16,
            "max_epochs": 2,
            "batch_size": 32,
        },
    },
    "tasks": {
        "transfer": {
            "max_splits": 2,
            "models": ["control", "additive", "linear", "stacked", "xtransfer", "fe"],
        },
        "species_transfer": {"perturbations": ["tetracycline"]},
        "annotation": {},
        "combination": {"models": ["control", "additive", "xtransfer"]},
        "gene_mapping": {},
        "design": {"steps": 1, "seeds": 2},
        "ablation": {
            "max_splits": 1,
            "variants": {"all losses": {}, "without L_cross": {"w_cross": 0.0}},
        },
    },
}
"""The smallest configuration that runs every task with every model (the test preset)."""

BASELINES_ONLY = {
    "seed": 0,
    "data": copy.deepcopy(TINY["data"]),
    "models": {"control": {}, "additive": {}},
    "tasks": {"transfer": {"max_splits": 2}, "gene_mapping": {"methods": ["ortholog"]}},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "results"
    result = run_pipeline(validate_config(TINY), out, progress=Progress(stream=None))
    return out, result


def test_every_task_runs_and_writes_its_tables(tiny_run):
    out, result = tiny_run
    assert list(result.stages) == list(TINY["tasks"])
    assert result.skipped == {}
    tables = {p.name for p in (out / "tables").iterdir()}
    for name in TINY["tasks"]:
        assert any(t.startswith(f"{name}_") for t in tables), name
    assert "summary.csv" in tables
    figures = {p.stem for p in (out / "figures").glob("*.png")}
    assert figures == {p.stem for p in (out / "figures").glob("*.svg")}
    for figure in (
        "transfer_scatter",
        "species_transfer_scatter",
        "annotation_accuracy",
        "mapping_precision",
        "acquisition_curve",
        "latent_umap",
    ):
        assert figure in figures
    assert (out / "report.html").stat().st_size > 10_000
    assert not list(out.parent.glob(".results.*"))


def test_report_shows_what_the_predictor_leaned_on(tiny_run):
    out, _ = tiny_run
    provenance = pd.read_csv(out / "tables" / "transfer_provenance.csv")
    assert set(provenance["model"]) == {"stacked"}
    assert {"source_context", "base_predictor"} <= set(provenance["kind"])
    held_out = pd.read_csv(out / "tables" / "transfer_results.csv")
    held_out = held_out[held_out["model"] == "stacked"][["context", "perturbation"]]
    assert set(map(tuple, held_out.drop_duplicates().to_numpy())) == set(
        map(tuple, provenance[["context", "perturbation"]].drop_duplicates().to_numpy())
    )
    html = (out / "report.html").read_text()
    assert "What each prediction leaned on" in html


def test_results_are_scored_against_the_baselines(tiny_run):
    out, _ = tiny_run
    summary = pd.read_csv(out / "tables" / "transfer_summary.csv")
    r2_deg = summary[summary["metric"] == "r2_deg"].set_index("model")["mean"]
    # the drugs change gene expression: adding the change measured elsewhere beats no change
    assert r2_deg["additive"] > r2_deg["control"]
    assert set(r2_deg.index) == {
        "control",
        "additive",
        "linear",
        "stacked",
        "xtransfer",
        "fe",
        "truth",
    }
    species = pd.read_csv(out / "tables" / "species_transfer_summary.csv")
    assert set(species["model"]) == {"control", "additive (orthologs)", "uge", "ceiling"}
    for task in ("transfer", "species_transfer", "combination", "ablation"):
        frame = pd.read_csv(out / "tables" / f"{task}_summary.csv")
        ceiling = frame[frame["model"] == "ceiling"]
        assert set(ceiling["metric"]) == {"pearson_delta", "pearson_delta_deg"}, task
        scaled = frame[frame["metric"] == "scaled_pearson_delta"]
        assert set(scaled["model"]) == set(frame["model"]) - {"ceiling"}, task
    # the simulator's noise-free truth is scored beside the models (on two animals a group
    # its pearson_delta is not always above additive's: the animals' own effects are shared
    # by their organs, so the other organs' changes carry some of the held-out noise)
    for task in ("transfer", "combination"):
        frame = pd.read_csv(out / "tables" / f"{task}_summary.csv")
        scores = frame.set_index(["model", "metric"])["mean"]
        assert 0 < scores[("truth", "pearson_delta")] <= 1, task
        assert scores[("truth", "r2_delta")] > scores[("control", "r2_delta")], task
    accuracy = pd.read_csv(out / "tables" / "annotation_accuracy.csv")
    assert set(accuracy["context"]) == {"liver", "kidney", "brain", "all"}
    assert accuracy["accuracy"].between(0, 1).all()
    # the stage scores what the benchmark task scores, with its ortholog-mapped baselines
    assert list(accuracy.columns) == [
        "context",
        "n",
        "accuracy",
        "chance",
        "ortholog_knn",
        "ortholog_logistic",
    ]
    assert accuracy[["chance", "ortholog_knn", "ortholog_logistic"]].stack().between(0, 1).all()
    precision = pd.read_csv(out / "tables" / "gene_mapping_precision.csv")
    assert {"ortholog", "reactome", "combined", "uge embedding"} <= set(precision["method"])
    assert {"all", "one-to-one"} <= set(precision["group"])
    curve = pd.read_csv(out / "tables" / "design_curve.csv")
    assert set(curve["strategy"]) == {"suggested", "largest interval", "random"}
    assert set(curve["seed"]) == {0, 1}
    assert np.isfinite(curve["error"]).all()
    # every strategy starts from the same design, and acquiring lowers the error left (on
    # average: a new measurement can also move the predictor's other predictions)
    first = curve[curve["step"] == 0].groupby("seed")["error"].nunique()
    assert (first == 1).all()
    assert (
        curve[curve["step"] == 1]["measured"] > curve[curve["step"] == 0]["measured"].max()
    ).all()
    assert curve[curve["step"] == 1]["error"].mean() < curve[curve["step"] == 0]["error"].mean()
    design = pd.read_csv(out / "tables" / "design_auc.csv")
    assert set(design["strategy"]) == {"suggested", "largest interval", "random"}
    summary = pd.read_csv(out / "tables" / "summary.csv").set_index("task")
    row = summary.loc["Experimental design"]
    assert row["model"] == "suggested"
    saved = -design.set_index("strategy")["vs_random"]
    assert row["score"] == pytest.approx(saved["suggested"])
    assert row["baseline_score"] == pytest.approx(saved.drop("suggested").max())
    latent = pd.read_csv(out / "tables" / "species_transfer_latent.csv")
    assert set(latent["species"]) == {"mouse", "rat"}
    assert len(latent) == 36


def _keyed(results: pd.DataFrame, models: list[str]) -> pd.Series:
    rows = results[results["model"].isin(models)]
    return rows.set_index(["model", "context", "perturbation", "metric"])["value"].sort_index()


def test_run_scores_what_the_benchmark_scores(tiny_run):
    """The perturbation numbers of ``transferome run`` are those of ``run_task`` (transfer)
    and of ``AdditiveBaseline`` fitted with the other species as ``source`` (species), on the
    same splits: the same values, not close ones."""
    from transferome.benchmark import get_task, run_task
    from transferome.benchmark.species import gene_pairs
    from transferome.metrics import control_means, evaluate_groups
    from transferome.models.baselines.means import AdditiveBaseline, ControlBaseline
    from transferome.pipeline._data import load_data

    _, result = tiny_run
    config = validate_config(TINY)
    data = load_data(config.data, config.schema())
    mouse, rat = data.adatas["mouse"], data.adatas["rat"]
    baselines = ["control", "additive", "linear"]

    splits = get_task("transfer").make_splits(mouse, schema=data.schema, seed=0, max_splits=2)
    benchmark = run_task(
        "transfer",
        mouse,
        schema=data.schema,
        models=baselines,
        model_params={"linear": TINY["models"]["linear"]},
        splits=splits,
        n_degs=TINY["n_degs"],
    )
    staged = result.stages["transfer"].tables["results"]
    assert set(staged["split"]) == {s.name for s in splits}
    expected = _keyed(benchmark.results, [*baselines, "ceiling"])
    pd.testing.assert_series_equal(_keyed(staged, [*baselines, "ceiling"]), expected)
    assert {"pearson_delta", "r2_deg", "discrimination"} <= set(expected.index.unique("metric"))

    schema = data.schema
    contexts = rat.obs[schema.context_key].astype(str).to_numpy()
    held = rat.obs[schema.perturbation_key].astype(str).to_numpy() == "tetracycline"
    train = rat[~held].copy()
    targets = [(c, "tetracycline") for c in sorted(set(contexts[held]))]
    pairs = gene_pairs(data.orthologs, mouse.var_names, rat.var_names)
    assert set(pairs.columns) == {"source_gene", "target_gene"}
    fits = {
        "control": ControlBaseline().fit(train, schema=schema),
        "additive (orthologs)": AdditiveBaseline().fit(
            train, schema=schema, source=mouse, gene_map=pairs
        ),
    }
    frames = []
    for label, model in fits.items():
        scored = evaluate_groups(
            model.predict(train, targets),
            rat,
            schema=schema,
            control_means=control_means(rat, schema=schema),
            n_degs=TINY["n_degs"],
        )
        frames.append(scored.assign(model=label))
    species = result.stages["species_transfer"].tables["results"]
    species = species[species["metric"] != "scaled_pearson_delta"]
    pd.testing.assert_series_equal(
        _keyed(species, list(fits)), _keyed(pd.concat(frames, ignore_index=True), list(fits))
    )


def test_config_and_models_are_kept_and_reload(tiny_run):
    out, _ = tiny_run
    again = validate_config(yaml.safe_load((out / "config.yaml").read_text()))
    assert dict(again.models) == dict(validate_config(TINY).models)
    model = load_model(out / "models" / "transfer_additive")
    assert type(model).__name__ == "AdditiveBaseline"
    assert (out / "models" / "species_transfer_uge" / "weights.safetensors").is_file()


def test_existing_folder_needs_overwrite(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    config = validate_config(BASELINES_ONLY)
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_pipeline(config, out, progress=Progress(stream=None))
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    # --overwrite replaces the results of a run, never a folder of the user's own files
    with pytest.raises(FileExistsError, match="does not look like transferome results"):
        run_pipeline(config, out, overwrite=True, progress=Progress(stream=None))
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    for marker in ("versions.json", "config.yaml"):
        (out / marker).write_text("{}")
    run_pipeline(config, out, overwrite=True, progress=Progress(stream=None))
    assert not (out / "mine.txt").exists()
    assert (out / "report.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch, error):
    config = validate_config(BASELINES_ONLY)

    def interrupted(context, **options):
        raise error("stop")

    monkeypatch.setitem(STAGES, "gene_mapping", replace(STAGES["gene_mapping"], run=interrupted))
    with pytest.raises(error):
        run_pipeline(config, tmp_path / "results", progress=Progress(stream=None))
    assert list(tmp_path.iterdir()) == []


def test_progress_reports_each_stage(tmp_path):
    import io

    stream = io.StringIO()
    run_pipeline(validate_config(BASELINES_ONLY), tmp_path / "out", progress=Progress(stream))
    text = stream.getvalue()
    assert "2 stages, about" in text
    assert "[1/2] Perturbation transfer across organs: started" in text
    assert "left" in text
    assert "[2/2] Gene mapping across species" in text
    assert Path(tmp_path / "out" / "report.html").is_file()


def test_the_reactome_of_each_species_is_computed_once_a_run(monkeypatch):
    import importlib

    from transferome.data import Schema
    from transferome.datasets import simulate
    from transferome.pipeline._data import RunData

    module = importlib.import_module("transferome.crossspecies.reactome")
    calls: list[int] = []
    original = module.reactome

    def counted(adata, **kwargs):
        calls.append(adata.n_obs)
        return original(adata, **kwargs)

    monkeypatch.setattr(module, "reactome", counted)
    monkeypatch.setattr("transferome.crossspecies.reactome", counted)
    atlas = simulate("bulk", seed=0, n_genes=40, animals_per_group=2)
    data = RunData(dict(atlas.adatas), Schema(), orthologs=atlas.orthologs)
    first = data.reactome("mouse")
    assert data.reactome("mouse") is first
    data.reactome("rat")
    assert len(calls) == 2
    assert data.multi_species.species == ("mouse", "rat")
